package reports

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jepsen-go/jepsen/checkers"
	"github.com/jepsen-go/jepsen/history"
)

// Limits that keep a report readable and small.
const (
	// MaxViolations is the most counterexamples a report shows (smallest
	// witnesses first); the rest are counted.
	MaxViolations = 20
	// maxNemesisRows caps the table of nemesis actions.
	maxNemesisRows = 200
	// maxUnknownKeys caps the list of undecided keys.
	maxUnknownKeys = 50
)

// ReportFile is the name of the report in a run directory, and
// PorcupineDir the directory of porcupine's visualizations next to it.
const (
	ReportFile   = "report.html"
	PorcupineDir = "porcupine"
)

//go:embed report.html.tmpl
var templates embed.FS

var reportTmpl = template.Must(template.New("report.html.tmpl").Funcs(template.FuncMap{
	"f1": func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"dur": func(d time.Duration) string {
		if d <= 0 {
			return "—"
		}
		return d.Round(time.Millisecond).String()
	},
	"add":  func(a, b int) int { return a + b },
	"add1": func(y float64) float64 { return y + 6 },
	"elems": func(name string, els []checkers.SetElement, total int) elementList {
		return elementList{Name: name, Els: els, Total: total, More: total - len(els)}
	},
	"raw": func(v []byte) string {
		if history.IsNull(v) {
			return "null"
		}
		return string(v)
	},
}).ParseFS(templates, "report.html.tmpl"))

// Write writes dir/report.html for the run in dir, whose checker result
// is res, and porcupine's visualization of each violation it shows into
// dir/porcupine/. It reads dir/test.json (which should be complete: write
// it before calling Write), dir/history.jsonl and the logs. It returns the
// report's path. A missing test.json, an unreadable log or a history cut
// short are noted in the report, not errors.
func Write(ctx context.Context, dir string, res *checkers.Result) (string, error) {
	return write(ctx, source{out: dir, dir: dir, history: filepath.Join(dir, "history.jsonl"), info: history.FileInfo{Format: "jsonl"}}, res)
}

// History is a history to report on that need not come from a run
// directory: a file recorded by another tool, converted from Jepsen or
// written by hand.
type History struct {
	// Out is the directory report.html and porcupine/ are written into.
	Out string
	// Path is the history file. A test.json beside it, if any, gives the
	// run's settings; without one the report says which are unknown.
	Path string
	// Ops are the history's operations, as read from Path.
	Ops []history.Op
	// Info says how Path was read (format, no times, ...).
	Info history.FileInfo
}

// WriteHistory writes Out/report.html for the history h, whose checker
// result is res, and returns its path. It shows what the history alone
// tells (verdict, counterexamples, plots, the faults the history records)
// and, without a test.json beside the history, says which settings are
// unknown.
func WriteHistory(ctx context.Context, h History, res *checkers.Result) (string, error) {
	if h.Ops == nil {
		return "", errors.New("write report: no operations")
	}
	src := source{out: h.Out, history: h.Path, ops: h.Ops, info: h.Info}
	if d := filepath.Dir(h.Path); sameDir(d, h.Out) {
		src.dir = d
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(h.Path), "test.json")); err == nil {
		src.metaDir = filepath.Dir(h.Path)
	}
	return write(ctx, src, res)
}

// sameDir reports whether a and b name the same directory.
func sameDir(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// HistoryNames are the names of a history in a directory, in the order
// they are looked for.
var HistoryNames = []string{"history.jsonl", "history.edn"}

// FindHistory returns the history file of path: path itself if it is a
// file, else the first of HistoryNames in it. Its error wraps
// ErrNotRunDir when a directory holds none.
func FindHistory(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s: no such file or directory: %w", path, ErrNotRunDir)
		}
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if !fi.IsDir() {
		return path, nil
	}
	for _, n := range HistoryNames {
		if fi, err := os.Stat(filepath.Join(path, n)); err == nil && !fi.IsDir() {
			return filepath.Join(path, n), nil
		}
	}
	return "", fmt.Errorf("%s has no %s: %w (want a run directory or a directory holding a history)", path, strings.Join(HistoryNames, " or "), ErrNotRunDir)
}

// Rebuild regenerates the report of path from its files alone: a run
// directory, a directory holding only a history (history.jsonl or
// history.edn), or a history file (JSONL or EDN), whose report goes next
// to it. It checks the history again (with the workload and time budget
// of test.json, if there is one) to get the counterexamples and
// porcupine's visualizations, then writes the report. It does not change
// results.json. Its error wraps ErrNotRunDir when path holds no history.
func Rebuild(ctx context.Context, path string) (string, *checkers.Result, error) {
	hist, err := FindHistory(path)
	if err != nil {
		return "", nil, err
	}
	dir := filepath.Dir(hist)
	var opts checkers.Options
	if meta, err := ReadMeta(dir); err == nil {
		opts = checkers.Options{Workload: meta.Config.Workload, Timeout: meta.Config.CheckTimeout}
	}
	ops, info, err := history.ReadFileInfo(hist)
	if err != nil {
		return "", nil, err
	}
	if len(ops) == 0 {
		return "", nil, fmt.Errorf("%s: the history is empty: nothing to report", hist)
	}
	res := checkers.Check(ctx, ops, opts)
	if ctx.Err() != nil {
		return "", nil, ctx.Err()
	}
	out, err := WriteHistory(ctx, History{Out: dir, Path: hist, Ops: ops, Info: info}, res)
	return out, res, err
}

// source is what a report is made from.
type source struct {
	out     string // directory of report.html and porcupine/
	dir     string // directory of the run's logs, "" if they are elsewhere
	metaDir string // directory of test.json; "" means the same as dir
	history string // path of the history file
	ops     []history.Op
	info    history.FileInfo
}

// elementList is one category of set elements, for the template.
type elementList struct {
	Name        string
	Els         []checkers.SetElement
	Total, More int
}

// view is what the template shows.
type view struct {
	Title        string
	VerdictClass string
	Sentence     string
	Meta         *Meta
	MetaNote     string
	Settings     [][2]string
	Command      string
	Generated    string
	Res          *checkers.Result
	HistoryNote  string
	Stats        []statRow

	Violations     []violation
	MoreViolations int
	Unknown        []checkers.UnknownKey
	MoreUnknown    int
	Set            *checkers.SetResult

	LatencySVG    template.HTML
	ThroughputSVG template.HTML
	NodesSVG      template.HTML
	NodeLegend    []legendItem
	PlotNotes     []string
	LatencyDrawn  int
	Completed     int
	Dangling      int
	BinWidth      float64
	HasFaults     bool

	Nemesis     []nemesisView
	MoreNemesis int
	Logs        []logFile

	// Known is false when the run's settings are unknown (no test.json).
	Known bool
	// Timeless is true when the history has no times.
	Timeless bool
	// Interrupted says that the run was stopped early, and when.
	Interrupted string
	// Header is the line under the verdict.
	Header string
	// UnknownSettings names the settings a history without test.json
	// cannot tell.
	UnknownSettings string
	// TimeNote says that the history has no times, or had some out of order.
	TimeNote string
	// Recheck is the command that checks this history again.
	Recheck string
	// Files are links to the files next to the report that exist.
	Files []fileLink
	// Kinds sums up the violations by kind, and KindLine in a sentence.
	Kinds    []KindCount
	KindLine string
	// SortedFailures is the number of invalid keys.
	InvalidKeys int

	clk clock
}

// fileLink is a link to a file of the run.
type fileLink struct{ Link, What string }

type statRow struct {
	F                      string
	Invoke, OK, Fail, Info int
}

type violation struct {
	N             int
	ID            string
	Key           string
	Explanation   string
	Minimal       bool
	WitnessOps    int
	Operations    int
	Ops           []witnessOp
	Diagram       *diagram
	Kind          string
	Faults        []string
	Start         string
	Porcupine     string
	PorcupineNote string
	Excerpts      []excerpt
	OtherExcerpts []excerpt
}

type nemesisView struct {
	At, Took, F, Value, Error string
}

func write(ctx context.Context, src source, res *checkers.Result) (string, error) {
	if res == nil {
		return "", errors.New("write report: no checker result")
	}
	dir := src.out
	v := &view{Res: res, Generated: time.Now().UTC().Format(time.RFC3339), clk: clock{timeless: src.info.Timeless}, Timeless: src.info.Timeless}
	metaDir := src.metaDir
	if metaDir == "" {
		metaDir = src.dir
	}
	var meta *Meta
	if metaDir != "" {
		if _, err := os.Stat(filepath.Join(metaDir, "test.json")); err == nil {
			m, err := ReadMeta(metaDir)
			if err != nil {
				v.MetaNote = err.Error()
			} else {
				meta, v.Known = m, true
			}
		}
	}
	if meta == nil {
		meta = &Meta{}
	}
	v.Meta = meta

	// One pass over the history.
	var next func() (history.Op, error)
	if ops := src.ops; ops != nil {
		i := 0
		next = func() (history.Op, error) {
			if i == len(ops) {
				return history.Op{}, io.EOF
			}
			i++
			return ops[i-1], nil
		}
	} else {
		f, err := os.Open(src.history)
		if err != nil {
			return "", fmt.Errorf("write report: %w", err)
		}
		defer f.Close()
		r := history.NewReader(f, src.history)
		next = r.Next
	}
	a, err := analyze(func() (history.Op, error) {
		op, err := next()
		if err != nil && err != io.EOF {
			// A history cut short: report on the valid prefix.
			v.HistoryNote = "The history could not be read to its end (" + err.Error() + "); the plots show the part before that line."
			return op, io.EOF
		}
		return op, err
	}, meta.NodeNames())
	if err != nil {
		return "", fmt.Errorf("write report: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	a.timeless = src.info.Timeless
	v.fill(meta, res, a)
	v.describeSource(src, a)

	// Counterexamples.
	if res.Linear != nil {
		fails := failureOrder(res.Linear.Failures)
		v.Kinds = ViolationKinds(res.Linear.Failures)
		if len(v.Kinds) > 0 {
			parts := make([]string, len(v.Kinds))
			for i, k := range v.Kinds {
				parts[i] = k.Plural()
			}
			v.KindLine = "Violations by kind: " + strings.Join(parts, ", ") + "."
		}
		v.InvalidKeys = len(fails)
		if len(fails) > MaxViolations {
			v.MoreViolations = len(fails) - MaxViolations
			fails = fails[:MaxViolations]
		}
		if err := os.RemoveAll(filepath.Join(dir, PorcupineDir)); err != nil {
			return "", fmt.Errorf("write report: %w", err)
		}
		for i, f := range fails {
			vi, err := v.violation(dir, i+1, f, a)
			if err != nil {
				return "", err
			}
			v.Violations = append(v.Violations, vi)
		}
		v.Unknown = slices.Clone(res.Linear.Unknown)
		slices.SortStableFunc(v.Unknown, func(a, b checkers.UnknownKey) int { return CompareKeys(a.Key, b.Key) })
		if len(v.Unknown) > maxUnknownKeys {
			v.MoreUnknown = len(v.Unknown) - maxUnknownKeys
			v.Unknown = v.Unknown[:maxUnknownKeys]
		}
	}
	v.Set = res.Set
	if src.dir != "" {
		v.addExcerpts(src.dir, meta)
	}
	v.Files = filesOf(dir, src, v.Logs)
	if err := ctx.Err(); err != nil {
		return "", err
	}

	// Plots.
	if b, n, err := latencyPlot(a); err != nil {
		v.PlotNotes = append(v.PlotNotes, err.Error())
	} else {
		v.LatencySVG, v.LatencyDrawn = template.HTML(b), n
	}
	if b, w, err := throughputPlot(a); err != nil {
		v.PlotNotes = append(v.PlotNotes, err.Error())
	} else {
		v.ThroughputSVG, v.BinWidth = template.HTML(b), w
	}
	if b, err := nodesPlot(a); err != nil {
		v.PlotNotes = append(v.PlotNotes, err.Error())
	} else if b != nil {
		v.NodesSVG = template.HTML(b)
		v.NodeLegend = nodeLegend(a)
	}

	var buf bytes.Buffer
	if err := reportTmpl.Execute(&buf, v); err != nil {
		return "", fmt.Errorf("write report: %w", err)
	}
	path := filepath.Join(dir, ReportFile)
	if err := WriteFileAtomic(path, buf.Bytes()); err != nil {
		return "", fmt.Errorf("write report: %w", err)
	}
	return path, nil
}

// fill sets the verdict, settings, stats and nemesis table.
func (v *view) fill(m *Meta, res *checkers.Result, a *analysis) {
	target := m.Target
	if target == "" {
		target = "an unknown target"
	}
	v.Title = "jepsen: " + target + " — " + strings.ToUpper(res.Valid.String())
	v.VerdictClass, v.Sentence = verdictSentence(res, a)
	faults := m.Config.Nemesis
	if faults == "" {
		faults = "none"
	}
	if faults != "none" && m.Config.NemesisInterval > 0 {
		faults += fmt.Sprintf(" (a fault, then healing, every %s)", m.Config.NemesisInterval)
	}
	nodes := "—"
	if m.Config.Nodes > 0 {
		nodes = fmt.Sprintf("%d (%s)", m.Config.Nodes, strings.Join(m.NodeNames(), " "))
	}
	rate := "as fast as clients can go"
	if m.Config.Rate > 0 {
		rate = fmt.Sprintf("%g ops/s", m.Config.Rate)
	}
	v.Settings = [][2]string{
		{"target", target},
		{"nodes", nodes},
		{"workload", orDash(m.Config.Workload, res.Workload)},
		{"faults", faults},
		{"seed", fmt.Sprint(m.Seed)},
		{"time limit", durOrDash(m.Config.TimeLimit)},
		{"clients", fmt.Sprintf("%d concurrent, %s, op timeout %s", m.Config.Concurrency, rate, durOrDash(m.Config.OpTimeout))},
	}
	if len(m.Config.Env) > 0 {
		v.Settings = append(v.Settings, [2]string{"node environment", strings.Join(m.Config.Env, " ")})
	}
	if !m.Created.IsZero() {
		v.Settings = append(v.Settings, [2]string{"started", m.Created.UTC().Format("2006-01-02 15:04:05 MST")})
	}
	if d := m.Duration(); d > 0 {
		v.Settings = append(v.Settings, [2]string{"whole run took", d.Round(time.Millisecond).String()})
	}
	v.Settings = append(v.Settings,
		[2]string{"history", fmt.Sprintf("%d events, %d keys; checked in %.2fs", res.Ops, res.Keys, res.Seconds)},
		[2]string{"versions", strings.TrimSpace(fmt.Sprintf("jepsen %s, %s %s", orDash(m.Jepsen, ""), m.Go, imageNote(m.Image)))},
		[2]string{"run id", orDash(m.RunID, "")},
	)
	v.Command = m.Config.Command
	if v.Command == "" {
		// test.json of a run started without the command line: every
		// recorded setting, the defaults of `jepsen run` being unknown here.
		c := m.Config
		if c.Seed == 0 {
			c.Seed = m.Seed
		}
		v.Command = c.Reproduce(Settings{})
	}
	v.Completed, v.Dangling = len(a.points), a.dangling
	v.HasFaults = len(a.faults) > 0
	for f, byType := range res.Stats.ByF {
		v.Stats = append(v.Stats, statRow{F: f, Invoke: byType[history.Invoke], OK: byType[history.OK], Fail: byType[history.Fail], Info: byType[history.Info]})
	}
	sort.Slice(v.Stats, func(i, j int) bool { return v.Stats[i].F < v.Stats[j].F })
	for i, r := range a.rows {
		if i == maxNemesisRows {
			v.MoreNemesis = len(a.rows) - i
			break
		}
		took := "did not complete"
		if r.End >= 0 {
			took = time.Duration(r.End - r.Start).Round(time.Millisecond).String()
		}
		val := r.Done
		if history.IsNull(val) {
			val = r.Plan
		}
		if a.timeless && r.End >= 0 {
			switch n := (r.End - r.Start) / history.TimelessStep; n {
			case 0:
				took = "—"
			case 1:
				took = "1 position"
			default:
				took = fmt.Sprintf("%d positions", n)
			}
		}
		v.Nemesis = append(v.Nemesis, nemesisView{At: v.clk.at(r.Start), Took: took, F: r.F, Value: clipLine(string(val)), Error: clipLine(r.Error)})
	}
}

func imageNote(img string) string {
	if img == "" {
		return ""
	}
	return ", image " + img
}

func orDash(s, alt string) string {
	if s != "" {
		return s
	}
	if alt != "" {
		return alt
	}
	return "—"
}

func durOrDash(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	return d.String()
}

// verdictSentence says the verdict in one sentence.
func verdictSentence(res *checkers.Result, a *analysis) (class, sentence string) {
	if res.Error != "" {
		return "trouble", "No verdict: the check could not run (" + res.Error + ")."
	}
	under := "with no faults injected"
	if len(a.faults) > 0 {
		var kinds []string
		for _, f := range a.faults {
			if !slices.Contains(kinds, f.Kind) {
				kinds = append(kinds, f.Kind)
			}
		}
		under = "under " + strings.Join(kinds, ", ") + " faults"
	}
	if res.Valid == checkers.Unknown && len(res.Problems) > 0 {
		return "unknown", "Unknown: this run could not really test the store: " + strings.TrimSuffix(res.Problems[0].Message, ".") + "."
	}
	if len(a.faults) == 0 {
		under += ": this run says nothing about fault tolerance"
	}
	switch res.Valid {
	case checkers.Valid:
		if res.Set != nil {
			return "valid", fmt.Sprintf("Valid: every one of the %d acknowledged adds was still there at the end and nothing that failed appeared, %s.", res.Set.Acknowledged, under)
		}
		return "valid", fmt.Sprintf("Valid: all %d operations on %d keys fit one order consistent with real time (linearizable), %s.", opsOf(res), res.Keys, under)
	case checkers.Invalid:
		if s := res.Set; s != nil {
			power := ""
			if s.LostAfterPowerLoss > 0 {
				power = fmt.Sprintf(" (%d of them acknowledged before a power loss)", s.LostAfterPowerLoss)
			}
			return "invalid", fmt.Sprintf("Invalid: the store lost %d acknowledged writes%s, kept %d writes it said had failed and returned %d values nobody wrote, %s.", s.Lost, power, s.Unexpected, s.Corrupted, under)
		}
		if l := res.Linear; l != nil && len(l.Failures) > 0 {
			t := int64(-1)
			for _, f := range l.Failures {
				if len(f.Witness) > 0 && (t < 0 || f.Witness[0].Time < t) {
					t = f.Witness[0].Time
				}
			}
			when := ""
			if t >= 0 {
				when = fmt.Sprintf(", the first at %.3fs", float64(t)/1e9)
				// Clock actions are instants; the offsets they left are
				// told apart, node by node.
				fs := slices.DeleteFunc(a.faultsDuring(t, t), func(f string) bool { return strings.HasSuffix(f, "-clock") })
				if len(fs) > 0 {
					when += " during " + fs[0]
				}
				if c := a.clocksAt(t); c != "" {
					when += ", with clocks off: " + c
				}
			}
			return "invalid", fmt.Sprintf("Invalid: the store is not linearizable — on %d of %d keys clients saw results that no single order of the operations can produce%s.", l.InvalidKeys, l.Keys, when)
		}
		return "invalid", "Invalid: the checker found a violation."
	}
	if l := res.Linear; l != nil {
		return "unknown", fmt.Sprintf("Unknown: the checker could not decide %d of %d keys within its time budget; it found nothing wrong in the others.", l.UnknownKeys, l.Keys)
	}
	if s := res.Set; s != nil {
		return "unknown", fmt.Sprintf("Unknown: %d acknowledged adds were never read back, so the history cannot tell whether they were lost.", s.NeverReadAcknowledged)
	}
	return "unknown", "Unknown: the checker could not decide."
}

func opsOf(res *checkers.Result) int {
	if res.Linear != nil {
		return res.Linear.Operations
	}
	return res.Ops
}

var unsafeFile = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// violation builds the view of one invalid key and writes its porcupine
// visualization.
func (v *view) violation(dir string, n int, f checkers.KeyFailure, a *analysis) (violation, error) {
	vi := violation{N: n, ID: fmt.Sprintf("violation-%d", n), Key: f.Key, Explanation: v.clk.text(f.Explanation), Minimal: f.Minimal,
		WitnessOps: f.WitnessOps, Operations: f.Operations, PorcupineNote: f.VisualizationNote, Kind: ViolationKind(f)}
	vi.Ops = pairWitness(f.Witness, v.clk)
	markImpossible(vi.Ops, f.Explanation, f.ImpossibleIndex)
	t0, t1 := int64(-1), int64(0)
	for i := range vi.Ops {
		o := &vi.Ops[i]
		if o.Node != "" {
			o.NodeState = a.nodeStateAt(o.Node, o.Call)
		}
		if t0 < 0 || o.Call < t0 {
			t0 = o.Call
		}
		t1 = max(t1, o.Call, o.Ret)
	}
	if t0 >= 0 {
		vi.Faults = a.faultsDuring(t0, t1)
		vi.Start = v.clk.at(t0)
	}
	vi.Diagram = layoutDiagram(vi.Ops, a.faults)
	if len(f.Visualization) > 0 {
		name := fmt.Sprintf("%02d-%s.html", n, clipName(unsafeFile.ReplaceAllString(f.Key, "_")))
		if err := os.MkdirAll(filepath.Join(dir, PorcupineDir), 0o755); err != nil {
			return vi, fmt.Errorf("write porcupine visualization: %w", err)
		}
		if err := WriteFileAtomic(filepath.Join(dir, PorcupineDir, name), securePorcupine(f.Visualization)); err != nil {
			return vi, fmt.Errorf("write porcupine visualization: %w", err)
		}
		vi.Porcupine = PorcupineDir + "/" + name
	}
	return vi, nil
}

func clipName(s string) string {
	if len(s) > 60 {
		return s[:60]
	}
	return s
}

// securePorcupine adds a Content Security Policy to porcupine's page that
// allows its own inline script (by hash) and nothing else: no network
// requests, no injected scripts, no inline event handlers. porcupine
// shows state descriptions with innerHTML, and those hold the store's
// values.
func securePorcupine(page []byte) []byte {
	script := "'none'"
	if i := bytes.Index(page, []byte("<script>")); i >= 0 {
		if j := bytes.LastIndex(page, []byte("</script>")); j > i {
			sum := sha256.Sum256(page[i+len("<script>") : j])
			script = "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		}
	}
	meta := []byte(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src ` + script + `; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">`)
	if i := bytes.Index(page, []byte("<head>")); i >= 0 {
		i += len("<head>")
		return slices.Concat(page[:i], []byte("\n    "), meta, page[i:])
	}
	return slices.Concat(meta, page)
}

// addExcerpts reads every log once and attaches to each violation the
// lines around it.
func (v *view) addExcerpts(dir string, m *Meta) {
	v.Logs = runLogs(dir)
	if len(v.Violations) == 0 || len(v.Logs) == 0 {
		return
	}
	var windows []logWindow
	for _, vi := range v.Violations {
		t0, t1 := int64(-1), int64(0)
		for _, o := range vi.Ops {
			if t0 < 0 || o.Call < t0 {
				t0 = o.Call
			}
			t1 = max(t1, o.Call, o.Ret)
		}
		t0 = max(t0, 0)
		at, until := m.Start.Add(time.Duration(t0)), m.Start.Add(time.Duration(t1))
		windows = append(windows, logWindow{from: at.Add(-logBefore), at: at, until: until, to: until.Add(logAfter)})
	}
	runFrom, runTo := m.Start.Add(-10*time.Minute), m.End.Add(10*time.Minute)
	if m.End.IsZero() {
		runTo = m.Start.Add(24 * time.Hour)
	}
	if !m.Created.IsZero() && m.Created.Before(m.Start) {
		runFrom = m.Created.Add(-10 * time.Minute)
	}
	for _, lf := range v.Logs {
		ex := excerpts(lf, windows, m.Start, runFrom, runTo)
		for i := range v.Violations {
			vi := &v.Violations[i]
			e := ex[i]
			for _, o := range vi.Ops {
				if o.Node == lf.Source {
					e.Active = true
				}
			}
			if e.Active {
				vi.Excerpts = append(vi.Excerpts, e)
			} else {
				vi.OtherExcerpts = append(vi.OtherExcerpts, e)
			}
		}
	}
}
