package reports

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/jepsen-go/jepsen/checkers"
	"github.com/jepsen-go/jepsen/history"
)

// unknownSettings are the settings only test.json tells.
const unknownSettings = "the target, the node count, the faults asked for and their schedule, the seed, the time limit, the number of clients, their rate and op timeout"

// describeSource fills in what the report says about where its history
// came from: the header line, the settings a history without test.json
// cannot tell, notes on its times, and how to check it again.
func (v *view) describeSource(src source, a *analysis) {
	res, m := v.Res, v.Meta
	v.Recheck = "jepsen check " + ShellQuote(src.history)
	v.Sentence = v.clk.text(v.Sentence)
	format := strings.ToUpper(src.info.Format)
	if format == "" {
		format = "JSONL"
	}
	if v.Known {
		v.Header = fmt.Sprintf("%s · %s workload · faults: %s · seed %d", m.Target, m.Config.Workload, orDash(m.Config.Nemesis, "none"), m.Seed)
	} else {
		v.Title = "jepsen: " + filepath.Base(src.history) + " — " + strings.ToUpper(res.Valid.String())
		v.Header = fmt.Sprintf("%s (%s) · %s workload · settings unknown: no test.json", filepath.Base(src.history), format, res.Workload)
		v.UnknownSettings = unknownSettings
		v.Sentence = strings.Replace(v.Sentence, "with no faults injected", "with no fault recorded in the history", 1)
		v.Sentence = strings.Replace(v.Sentence, ": this run says nothing about fault tolerance", "", 1)
		faults := "none recorded in the history"
		if len(a.rows) > 0 {
			faults = nemesisSummary(a.rows) + " (the nemesis operations of the history)"
		}
		nodes := "unknown"
		if len(a.nodes) > 0 {
			nodes = fmt.Sprintf("%d named in the history (%s)", len(a.nodes), strings.Join(a.nodes, " "))
		}
		v.Settings = [][2]string{
			{"history", fmt.Sprintf("%s, %s: %d events, %d keys; checked in %.2fs", src.history, format, res.Ops, res.Keys, res.Seconds)},
			{"workload", res.Workload + " (detected from the operations)"},
			{"faults", faults},
			{"nodes", nodes},
			{"clients", fmt.Sprintf("%d processes in the history", clientProcesses(src.ops))},
			{"unknown", "without test.json, " + unknownSettings + " are unknown"},
		}
	}
	var notes []string
	if src.info.Timeless {
		notes = append(notes, "This history has no times: the order of the file is the real-time order, which is all a linearizability check needs. Every time in this report is a position in the history (op 12 is its 13th operation, from 0); latencies are counted in positions, and throughput cannot be measured.")
	}
	if n := src.info.Reordered; n > 0 {
		notes = append(notes, fmt.Sprintf("%d operations had a time earlier than the operation before them (Jepsen takes each time on its client's own thread); the order of the file was kept and each was given the time of the one before.", n))
	}
	if n := src.info.AddedInvokes; n > 0 {
		notes = append(notes, fmt.Sprintf("%d nemesis operations had no invocation (Jepsen logs nemesis actions as :info alone); each was given one at its own time.", n))
	}
	v.TimeNote = strings.Join(notes, " ")
	if res.Interrupted != "" {
		v.Title += " (interrupted)"
		v.Interrupted = "Interrupted (" + res.Interrupted + "): this verdict covers the history recorded until then, not the whole planned run."
	}
}

// nemesisSummary counts the nemesis actions by f: "start ×3, stop ×3".
func nemesisSummary(rows []nemesisRow) string {
	var fs []string
	n := map[string]int{}
	for _, r := range rows {
		if n[r.F] == 0 {
			fs = append(fs, r.F)
		}
		n[r.F]++
	}
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = fmt.Sprintf("%s ×%d", f, n[f])
	}
	return strings.Join(parts, ", ")
}

func clientProcesses(ops []history.Op) int {
	seen := map[int]bool{}
	for _, o := range ops {
		if o.IsClient() {
			seen[o.Process.ID] = true
		}
	}
	return len(seen)
}

// filesOf lists the files a report in out can link to: those that exist.
func filesOf(out string, src source, logs []logFile) []fileLink {
	var files []fileLink
	if rel, err := filepath.Rel(out, src.history); err == nil && !strings.HasPrefix(rel, "..") && !filepath.IsAbs(rel) {
		what := "every operation, one JSON object per line"
		if src.info.Format == "edn" {
			what = "every operation, in EDN"
		}
		files = append(files, fileLink{Link: filepath.ToSlash(rel), What: what})
	}
	for _, f := range []fileLink{
		{"results.json", "the verdict and all the evidence"},
		{"test.json", "settings, seed, versions, timings"},
	} {
		if _, err := os.Stat(filepath.Join(out, f.Link)); err == nil {
			files = append(files, f)
		}
	}
	for _, l := range logs {
		files = append(files, fileLink{Link: l.Link, What: l.Source})
	}
	return files
}

// KindCount is how many invalid keys show one kind of violation.
type KindCount struct {
	// Kind is the kind of violation: "stale read", "lost write", ...
	Kind string
	// Count is the number of keys whose proof shows it.
	Count int
	// Keys are the first few of those keys, in natural order.
	Keys []string
}

// Kinds of violation, as ViolationKind names them.
const (
	KindStaleRead     = "stale read"
	KindLostWrite     = "lost write"
	KindNeverWritten  = "read of a value never written"
	KindImpossibleCAS = "impossible cas"
	KindWrongCASFail  = "impossible cas failure"
	KindNoOrder       = "no single order"
)

// kindHelp says what each kind means, for the report.
var kindHelp = map[string]string{
	KindStaleRead:     "a read returned an older value after a newer one had been written or read",
	KindLostWrite:     "a read found the key absent after a write to it had completed",
	KindNeverWritten:  "a read returned a value that no operation wrote before it",
	KindImpossibleCAS: "a cas succeeded although the key could not hold its from value then",
	KindWrongCASFail:  "a cas failed saying the key did not hold its from value, although it must have",
	KindNoOrder:       "no single order of the operations fits; no one operation is to blame",
}

// ViolationKind names the kind of violation a key's proof shows, from the
// operation its explanation says cannot be explained.
func ViolationKind(f checkers.KeyFailure) string {
	if f.ImpossibleIndex == nil {
		return KindNoOrder
	}
	var op *history.Op
	for i := range f.Witness {
		if f.Witness[i].Index == *f.ImpossibleIndex {
			op = &f.Witness[i]
		}
	}
	if op == nil {
		return KindNoOrder
	}
	switch {
	case op.F == history.FRead && strings.Contains(f.Explanation, "but no operation had written"):
		return KindNeverWritten
	case op.F == history.FRead && history.IsNull(op.Value):
		return KindLostWrite
	case op.F == history.FRead:
		return KindStaleRead
	case op.F == history.FCAS && op.Type == history.OK:
		return KindImpossibleCAS
	case op.F == history.FCAS:
		return KindWrongCASFail
	}
	return KindNoOrder
}

// maxKindKeys caps the keys named per kind.
const maxKindKeys = 5

// ViolationKinds sums up failures by kind, the most frequent first.
func ViolationKinds(fails []checkers.KeyFailure) []KindCount {
	by := map[string]*KindCount{}
	var out []*KindCount
	sorted := slices.Clone(fails)
	slices.SortStableFunc(sorted, func(a, b checkers.KeyFailure) int { return CompareKeys(a.Key, b.Key) })
	for _, f := range sorted {
		k := ViolationKind(f)
		c := by[k]
		if c == nil {
			c = &KindCount{Kind: k}
			by[k] = c
			out = append(out, c)
		}
		c.Count++
		if len(c.Keys) < maxKindKeys {
			c.Keys = append(c.Keys, f.Key)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	res := make([]KindCount, len(out))
	for i, c := range out {
		res[i] = *c
	}
	return res
}

// Help says what the kind means.
func (k KindCount) Help() string { return kindHelp[k.Kind] }

// Plural is the kind with a count: "3 stale reads".
func (k KindCount) Plural() string {
	if k.Count == 1 {
		return "1 " + k.Kind
	}
	switch k.Kind {
	case KindNeverWritten:
		return fmt.Sprintf("%d reads of values never written", k.Count)
	case KindImpossibleCAS:
		return fmt.Sprintf("%d impossible cas operations", k.Count)
	case KindWrongCASFail:
		return fmt.Sprintf("%d impossible cas failures", k.Count)
	case KindNoOrder:
		return fmt.Sprintf("%d keys with no single order", k.Count)
	}
	return fmt.Sprintf("%d %ss", k.Count, k.Kind)
}

// CompareKeys orders keys naturally: runs of digits compare as numbers,
// so that k2 comes before k10.
func CompareKeys(a, b string) int {
	tie := 0 // fewer leading zeros first, if nothing else differs
	for a != "" && b != "" {
		if isDigit(a[0]) && isDigit(b[0]) {
			na, ra := digitRun(a)
			nb, rb := digitRun(b)
			ta, tb := strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if len(ta) != len(tb) {
				return len(ta) - len(tb)
			}
			if c := strings.Compare(ta, tb); c != 0 {
				return c
			}
			if tie == 0 {
				tie = len(na) - len(nb)
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return tie
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digitRun(s string) (run, rest string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}
