package reports

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jepsen-go/jepsen/checkers"
	"github.com/jepsen-go/jepsen/history"
)

// Times of the durability run's faults (see setSynth), in ns.
const (
	sec          = int64(time.Second)
	syncedUntil  = 12*sec + 300*int64(time.Millisecond) // n1 synced what it acknowledged before this
	powerLossAt  = 14 * sec
	powerBackAt  = 18 * sec
	corruptAt    = 20 * sec
	corruptEndAt = 28 * sec
	lastAdd      = 30 * sec
)

// setSynth describes a synthetic run of the set workload on three nodes
// under durability faults: n1 loses power at 14 s, having synced only
// what it acknowledged before 12.3 s, and is started at 18 s; n2 is
// stopped at 20 s, its wal/1.log gets a bit flip at 4096, and it is
// started at 28 s. Adds go to n1, n2 and n3 in turn; those sent to a node
// that is down fail. The adds n1 acknowledged after 12.3 s are absent at
// the final reads: lost.
type setSynth struct {
	workers int
}

// write creates the run directory in dir and returns how many
// acknowledged adds it lost.
func (s setSynth) write(t testing.TB, dir string) (lost int) {
	t.Helper()
	nodes := []string{"n1", "n2", "n3"}
	var ops []history.Op
	emit := func(op history.Op) { ops = append(ops, op) }
	down := func(node string, t int64) bool {
		return (node == "n1" && t >= powerLossAt && t < powerBackAt) || (node == "n2" && t >= corruptAt && t < corruptEndAt)
	}
	// Adds: every worker adds one element every 50 ms, each taking 2 ms.
	// Ops are generated in time order, so the history needs no sort.
	type pending struct {
		at int64
		op history.Op
	}
	var events []pending
	present := map[string]bool{}           // present at the end
	values := map[string]json.RawMessage{} // the value added
	var keys []string
	i := 0
	for at := sec; at < lastAdd; at += 50 * int64(time.Millisecond) {
		for w := range s.workers {
			key := fmt.Sprintf("s%d", i)
			node := nodes[i%len(nodes)]
			start := at + int64(w)*int64(time.Millisecond)
			v := history.MustValue(i)
			values[key] = v
			inv := history.Op{Type: history.Invoke, Process: history.Client(w), F: history.FAdd, Key: key, Value: v, Node: node}
			comp := inv
			comp.Type = history.OK
			if down(node, start) {
				comp.Type, comp.Error = history.Fail, history.ErrUnavailable
			} else {
				present[key] = node != "n1" || start < syncedUntil || start >= powerLossAt
				if !present[key] {
					lost++
				}
			}
			events = append(events, pending{start, inv}, pending{start + 2*int64(time.Millisecond), comp})
			keys = append(keys, key)
			i++
		}
	}
	for _, n := range []struct {
		f          string
		plan, done history.Fault
		at, took   int64
	}{
		{history.FPowerLoss, history.Fault{Kind: "power-loss", Targets: []string{"n1"}}, history.Fault{Kind: "power-loss", Targets: []string{"n1"}}, powerLossAt, 50 * int64(time.Millisecond)},
		{history.FStart, history.Fault{Targets: []string{"n1"}}, history.Fault{Targets: []string{"n1"}}, powerBackAt, 200 * int64(time.Millisecond)},
		{history.FCorrupt, history.Fault{Kind: "corrupt", Targets: []string{"n2"}}, history.Fault{Kind: "corrupt", Targets: []string{"n2"},
			Corruption: &history.Corruption{File: "wal/1.log", Offset: 4096, Kind: history.CorruptBitFlip, Length: 1}}, corruptAt, 100 * int64(time.Millisecond)},
		{history.FStart, history.Fault{Targets: []string{"n2"}}, history.Fault{Targets: []string{"n2"}}, corruptEndAt, 200 * int64(time.Millisecond)},
	} {
		events = append(events,
			pending{n.at, history.Op{Type: history.Invoke, Process: history.NemesisProcess, F: n.f, Value: history.EncodeFault(n.f, n.plan)}},
			pending{n.at + n.took, history.Op{Type: history.Info, Process: history.NemesisProcess, F: n.f, Value: history.EncodeFault(n.f, n.done)}})
	}
	sort.SliceStable(events, func(a, b int) bool { return events[a].at < events[b].at })
	for _, e := range events {
		e.op.Time = e.at
		emit(e.op)
	}
	// Final reads, one key after the other, on n3.
	at := lastAdd + 2*sec
	for _, key := range keys {
		p := history.Client(100)
		emit(history.Op{Type: history.Invoke, Process: p, F: history.FRead, Key: key, Node: "n3", Time: at})
		var v json.RawMessage
		if present[key] {
			v = values[key]
		}
		emit(history.Op{Type: history.OK, Process: p, F: history.FRead, Key: key, Value: v, Node: "n3", Time: at + 500_000})
		at += int64(time.Millisecond)
	}

	if err := os.MkdirAll(filepath.Join(dir, "nodes"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	hw := history.NewWriter(f)
	var actions []Action
	var nemStart int64
	for i := range ops {
		ops[i].Index = int64(i)
		if err := hw.Write(&ops[i]); err != nil {
			t.Fatal(err)
		}
		if o := ops[i]; o.Process.Nemesis {
			if o.Type == history.Invoke {
				nemStart = o.Time
			} else {
				actions = append(actions, Action{F: o.F, Value: o.Value, Start: nemStart, Duration: time.Duration(o.Time - nemStart)})
			}
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m := Meta{
		RunID: "nosync-20260102T030400-abcdef", Target: "nosync", Seed: 7, Jepsen: "(test)", Go: "go1.26",
		Created: start.Add(-5 * time.Second), Start: start, End: start.Add(time.Duration(at) + 3*time.Second),
		Nemesis: actions, Verdict: "invalid", Completed: true,
		Config: Settings{Workload: "set", Nemesis: "power-loss,corrupt", NemesisInterval: 5 * time.Second, Nodes: len(nodes), Concurrency: s.workers,
			TimeLimit: time.Duration(lastAdd), Seed: 7, OpTimeout: time.Second, CheckTimeout: time.Minute,
			Command: "jepsen run --workload set --nemesis power-loss,corrupt --seed 7 --target ./nosync"},
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		line := start.Add(time.Second).Format("2006-01-02T15:04:05.000Z") + " [INFO]  nosync: serving node=" + n + "\n"
		if err := os.WriteFile(filepath.Join(dir, "nodes", n+".log"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return lost
}

// makeSetRun writes the durability run into a new directory, checks it
// and writes its report.
func makeSetRun(t testing.TB) (dir string, lost int, ops []history.Op, res *checkers.Result) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "nosync", "20260102T030400")
	lost = setSynth{workers: 4}.write(t, dir)
	ops, err := history.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	res = checkers.Check(context.Background(), ops, checkers.Options{Workload: checkers.WorkloadSet})
	if res.Error != "" {
		t.Fatal(res.Error)
	}
	if _, err := Write(context.Background(), dir, res); err != nil {
		t.Fatal(err)
	}
	return dir, lost, ops, res
}

// TestDurabilityFaults checks that power-loss and corrupt ops, and the
// starts that heal them, make fault spans and node-state lanes, and that
// the report names the power loss in the explanation of each lost write.
func TestDurabilityFaults(t *testing.T) {
	dir, lost, ops, res := makeSetRun(t)
	a, err := analyze(feed(ops), []string{"n1", "n2", "n3"})
	if err != nil {
		t.Fatal(err)
	}
	const ms = int64(time.Millisecond)
	var faults []string
	for _, f := range a.faults {
		faults = append(faults, fmt.Sprintf("%s|%s|%d-%d|%v", f.Kind, f.Label, f.Start/ms, f.End/ms, f.Healed))
	}
	if want := []string{"power-loss|power-loss n1|14000-18200|true", "corrupt|corrupt n2 wal/1.log|20000-28200|true"}; !slices.Equal(faults, want) {
		t.Errorf("faults %q, want %q", faults, want)
	}
	var lanes []string
	for _, s := range a.nodeSpans {
		lanes = append(lanes, fmt.Sprintf("%s|%s|%s|%d-%d", s.Node, s.State, s.text(), s.Start/ms, s.End/ms))
	}
	if want := []string{"n1|power lost|power lost|14000-18200", "n2|corrupted|corrupted: wal/1.log bitflip at 4096|20000-28200"}; !slices.Equal(lanes, want) {
		t.Errorf("node lanes %q, want %q", lanes, want)
	}
	for _, tc := range []struct {
		node string
		at   int64
		want string
	}{
		{"n1", powerLossAt - 1, ""}, {"n1", powerLossAt + sec, "power lost"}, {"n1", powerBackAt + 300*ms, ""},
		{"n2", corruptAt + sec, "corrupted: wal/1.log bitflip at 4096"}, {"n2", corruptEndAt + 300*ms, ""}, {"n3", corruptAt + sec, ""},
	} {
		if got := a.nodeStateAt(tc.node, tc.at); got != tc.want {
			t.Errorf("state of %s at %dms = %q, want %q", tc.node, tc.at/ms, got, tc.want)
		}
	}
	var legend []string
	for _, l := range nodeLegend(a) {
		legend = append(legend, l.Name)
	}
	if want := []string{"power lost", "corrupted"}; !slices.Equal(legend, want) {
		t.Errorf("legend %q, want %q", legend, want)
	}

	// The checker: the adds n1 acknowledged between 12.3 s and its power
	// loss are lost, and each explanation names the power loss.
	s := res.Set
	if lost < 10 || lost > checkers.MaxSetElements {
		t.Fatalf("the synthetic run lost %d adds; want 10 to %d", lost, checkers.MaxSetElements)
	}
	if res.Valid != checkers.Invalid || s == nil || s.Lost != lost || s.LostAfterPowerLoss != lost || len(s.LostElements) != lost || s.Unexpected+s.Corrupted != 0 {
		t.Fatalf("verdict %s, set %+v; want %d lost", res.Valid, s, lost)
	}
	for _, e := range s.LostElements {
		if !strings.Contains(e.Explanation, " was acknowledged by n1 at 1") || !strings.HasSuffix(e.Explanation, "found it absent; n1 lost power at 14.000s, before syncing it.") {
			t.Errorf("lost %s: %s", e.Key, e.Explanation)
		}
	}

	b, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	for _, want := range []string{
		fmt.Sprintf("Invalid: the store lost %d acknowledged writes (%d of them acknowledged before a power loss), kept 0 writes", lost, lost),
		"under power-loss, corrupt faults",
		`id="nodes-plot"`, "power-loss n1", "corrupt n2 wal/1.log", // fault bands
		">power lost</text>", ">corrupted: wal/1.log bitflip at 4096</text>", // lanes
		"</i>power lost</span>", "</i>corrupted</span>", // legend
		"n1 lost power at 14.000s, before syncing it.",
		"<b>power-loss</b>", "<b>corrupt</b>", // what the faults do
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestDurabilityReportInBrowser opens the durability run's report in
// Chromium: the node timeline renders, the lost writes' explanations name
// the power loss, and the page runs no script and requests nothing.
func TestDurabilityReportInBrowser(t *testing.T) {
	ctx, log := openBrowser(t)
	dir, _, _, _ := makeSetRun(t)
	report := fileURL(filepath.Join(dir, ReportFile))
	var facts pageFacts
	var shot []byte
	err := chromedp.Run(ctx,
		chromedp.Navigate(report),
		chromedp.WaitReady("#files"),
		chromedp.Evaluate(`document.querySelectorAll('details').forEach(d => d.open = true)`, nil),
		chromedp.Evaluate(factsJS, &facts),
		chromedp.Screenshot("#faults", &shot, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("open %s: %v", report, err)
	}
	path := filepath.Join(artifactDir(t), "durability-faults.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of #faults: %s", path)
	errs, reqs, dialogs := log.snapshot()
	if len(errs) > 0 || len(dialogs) > 0 {
		t.Errorf("console errors %q, dialogs %q", errs, dialogs)
	}
	for _, u := range reqs {
		if u != report {
			t.Errorf("network request to %s", u)
		}
	}
	if b := facts.Nodes; b == nil || b.W < 100 || b.H < 50 || b.N < 20 {
		t.Errorf("node plot did not render: %+v", b)
	}
	if facts.Scripts != 0 || facts.Injected != 0 {
		t.Errorf("report has %d scripts and %d images/frames; want none", facts.Scripts, facts.Injected)
	}
	for _, w := range []string{"n1 lost power at 14.000s, before syncing it.", "power lost", "corrupted", "under power-loss, corrupt faults"} {
		if !strings.Contains(facts.Text, w) {
			t.Errorf("the page does not show %q as text", w)
		}
	}
}

// TestAnalyzeNemesisV1 checks that a history written before nemesis ops
// carried history.Fault (history/testdata/nemesis-v1.jsonl) renders as it
// always did: the same fault spans and node states.
func TestAnalyzeNemesisV1(t *testing.T) {
	ops, err := history.ReadFile(filepath.Join("..", "history", "testdata", "nemesis-v1.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := analyze(feed(ops), []string{"n1", "n2", "n3", "n4", "n5"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range a.faults {
		got = append(got, fmt.Sprintf("F %s|%s|%d|%d|%v", f.Kind, f.Label, f.Start, f.End, f.Healed))
	}
	for _, s := range a.nodeSpans {
		got = append(got, fmt.Sprintf("N %s|%s|%s|%d|%d", s.Node, s.State, s.Detail, s.Start, s.End))
	}
	want := []string{
		"F partition|partition partial: every node still reaches some others|0|3000000|true",
		"F pause|pause n1 n2 n4|4000000|7000000|true",
		"F strobe-clock|strobe-clock|8000000|9000000|true",
		"F packet|packet delay 100ms±50ms, loss 20%, dup 10%, reorder 20%, corrupt 5%|10000000|13000000|true",
		"F bump-clock|bump-clock|14000000|15000000|true",
		"F kill|kill n1 n3|16000000|19000000|true",
		"F reset-clock|reset-clock|20000000|21000000|true",
		"N n1|partitioned|cut off from n3 n5|0|3000000",
		"N n2|partitioned|cut off from n3 n4|0|3000000",
		"N n3|partitioned|cut off from n1 n2|0|3000000",
		"N n4|partitioned|cut off from n2 n5|0|3000000",
		"N n5|partitioned|cut off from n1 n4|0|3000000",
		"N n1|paused|pause|4000000|7000000",
		"N n2|paused|pause|4000000|7000000",
		"N n4|paused|pause|4000000|7000000",
		"N n3|strobe|clock strobe +7.6s|8000000|21000000",
		"N n4|strobe|clock strobe +7.6s|8000000|21000000",
		"N n1|packet|delay 100ms±50ms, loss 20%, dup 10%, reorder 20%, corrupt 5%|10000000|13000000",
		"N n2|packet|delay 100ms±50ms, loss 20%, dup 10%, reorder 20%, corrupt 5%|10000000|13000000",
		"N n3|packet|delay 100ms±50ms, loss 20%, dup 10%, reorder 20%, corrupt 5%|10000000|13000000",
		"N n4|packet|delay 100ms±50ms, loss 20%, dup 10%, reorder 20%, corrupt 5%|10000000|13000000",
		"N n5|packet|delay 100ms±50ms, loss 20%, dup 10%, reorder 20%, corrupt 5%|10000000|13000000",
		"N n5|clock|clock -25.1s|14000000|21000000",
		"N n1|killed|kill|16000000|19000000",
		"N n3|killed|kill|16000000|19000000",
	}
	if !slices.Equal(got, want) {
		t.Errorf("faults and node states:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestAnalyzeFaultDescriptions checks fault spans and node states made
// from the typed description of ops: the durability kinds, a kind the
// reports do not know, and Jepsen's generic start and stop.
func TestAnalyzeFaultDescriptions(t *testing.T) {
	pl := history.Fault{Kind: "power-loss", Targets: []string{"n1", "n2"}}
	cor := history.Fault{Kind: "corrupt", Targets: []string{"n3"}, Corruption: &history.Corruption{File: "raft.db", Offset: 100, Kind: history.CorruptTruncate, Length: 7}}
	full := history.Fault{Kind: "disk-full", Targets: []string{"n2"}}
	pair := func(f string, v json.RawMessage, at int64) []history.Op {
		return []history.Op{
			{Type: history.Invoke, Process: history.NemesisProcess, F: f, Value: v, Time: at},
			{Type: history.Info, Process: history.NemesisProcess, F: f, Value: v, Time: at + 5},
		}
	}
	tests := []struct {
		name string
		ops  [][]history.Op
		want []string // fault spans, then node states
	}{
		{"power loss of two nodes, started one at a time", [][]history.Op{
			pair(history.FPowerLoss, history.EncodeFault(history.FPowerLoss, pl), 10),
			pair(history.FStart, history.EncodeFault(history.FStart, history.Fault{Targets: []string{"n1"}}), 20),
			pair(history.FStart, history.EncodeFault(history.FStart, history.Fault{Targets: []string{"n2"}}), 30)},
			[]string{"power-loss n1 n2@10-35", "n1 power lost@10-25", "n2 power lost@10-35"}},
		{"kill, power loss and corruption healed by one start", [][]history.Op{
			pair(history.FKill, history.EncodeFault(history.FKill, history.Fault{Targets: []string{"n1"}}), 10),
			pair(history.FPowerLoss, history.EncodeFault(history.FPowerLoss, history.Fault{Kind: "power-loss", Targets: []string{"n2"}}), 12),
			pair(history.FCorrupt, history.EncodeFault(history.FCorrupt, cor), 14),
			pair(history.FStart, history.EncodeFault(history.FStart, history.Fault{Targets: []string{"n1", "n2", "n3"}}), 20)},
			[]string{"kill n1@10-25", "power-loss n2@12-25", "corrupt n3 raft.db@14-25",
				"n1 killed@10-25", "n2 power lost@12-25", "n3 corrupted: raft.db truncate at 100@14-25"}},
		{"a corruption whose kill failed touched no node", [][]history.Op{{
			{Type: history.Invoke, Process: history.NemesisProcess, F: history.FCorrupt, Value: history.EncodeFault(history.FCorrupt, history.Fault{Kind: "corrupt", Targets: []string{"n3"}}), Time: 10},
			{Type: history.Info, Process: history.NemesisProcess, F: history.FCorrupt, Value: history.EncodeFault(history.FCorrupt, history.Fault{Kind: "corrupt", Targets: []string{}}), Time: 15, Error: "kill n3: no such container"}}},
			[]string{"corrupt@10-15"}},
		{"a kind the reports do not know, healed by its stop", [][]history.Op{
			pair("fill-disk", history.EncodeFault("fill-disk", full), 10),
			pair("stop-disk-full", history.EncodeFault("stop-disk-full", history.Fault{Kind: "disk-full"}), 20)},
			[]string{"disk-full n2@10-25", "n2 disk-full@10-25"}},
		{"Jepsen's start and stop while a power loss is on", [][]history.Op{
			pair(history.FPowerLoss, history.EncodeFault(history.FPowerLoss, history.Fault{Kind: "power-loss", Targets: []string{"n1"}}), 10),
			pair("stop", history.MustValue("network healed"), 20),
			pair(history.FStart, history.MustValue("isolated"), 30)},
			[]string{"power-loss n1@10-35", "n1 power lost@10-35"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ops []history.Op
			for _, p := range tc.ops {
				ops = append(ops, p...)
			}
			a, err := analyze(feed(ops), []string{"n1", "n2", "n3"})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range a.faults {
				got = append(got, fmt.Sprintf("%s@%d-%d", f.Label, f.Start, f.End))
			}
			for _, s := range a.nodeSpans {
				got = append(got, fmt.Sprintf("%s %s@%d-%d", s.Node, s.text(), s.Start, s.End))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestNodeLaneLabelRunsOn checks that a state too short for its label
// (a 1 s power loss in a 60 s run) is still named on the timeline, the
// label running on to the right; and that it stops before the next bar
// in the same row.
func TestNodeLaneLabelRunsOn(t *testing.T) {
	pl := history.EncodeFault(history.FPowerLoss, history.Fault{Kind: "power-loss", Targets: []string{"n1"}})
	start := history.EncodeFault(history.FStart, history.Fault{Targets: []string{"n1"}})
	ops := func(next int64) []history.Op {
		return []history.Op{
			{Type: history.Invoke, Process: history.NemesisProcess, F: history.FPowerLoss, Value: pl, Time: 10 * sec},
			{Type: history.Info, Process: history.NemesisProcess, F: history.FPowerLoss, Value: pl, Time: 10*sec + 1},
			{Type: history.Invoke, Process: history.NemesisProcess, F: history.FStart, Value: start, Time: 11 * sec},
			{Type: history.Info, Process: history.NemesisProcess, F: history.FStart, Value: start, Time: 11*sec + 1},
			{Type: history.Invoke, Process: history.NemesisProcess, F: history.FKill, Value: history.MustValue([]string{"n1"}), Time: next},
			{Type: history.Info, Process: history.NemesisProcess, F: history.FKill, Value: history.MustValue([]string{"n1"}), Time: next + 1},
			{Type: history.Invoke, Process: history.Client(0), F: history.FRead, Key: "k", Node: "n2", Time: 59 * sec},
			{Type: history.OK, Process: history.Client(0), F: history.FRead, Key: "k", Node: "n2", Time: 60 * sec},
		}
	}
	for _, tc := range []struct {
		name  string
		next  int64 // when the next bar in n1's process row starts
		label bool
	}{
		{"room to the right", 40 * sec, true},
		{"the next bar too close", 11*sec + 100*int64(time.Millisecond), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := analyze(feed(ops(tc.next)), []string{"n1", "n2"})
			if err != nil {
				t.Fatal(err)
			}
			b, err := nodesPlot(a)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(b), ">power lost</text>"); got != tc.label {
				t.Errorf("label drawn: %v, want %v", got, tc.label)
			}
		})
	}
}
