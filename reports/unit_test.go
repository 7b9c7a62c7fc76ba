package reports

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/checkers"
	"github.com/jepsen-go/jepsen/history"
)

func TestParseLogTime(t *testing.T) {
	utc := func(s string) time.Time { tt, _ := time.Parse(time.RFC3339Nano, s); return tt }
	tests := []struct {
		line string
		want time.Time
		ok   bool
	}{
		{"2026-11-21T14:16:57.883Z [INFO]  raftkv: serving", utc("2026-11-21T14:16:57.883Z"), true},
		{"2026-11-21T14:16:57.883+0100 [INFO] x", utc("2026-11-21T13:16:57.883Z"), true},
		{"2026-11-21T14:16:57+01:00 x", utc("2026-11-21T13:16:57Z"), true},
		{"2026/11/21 14:16:57.123456 go log line", utc("2026-11-21T14:16:57.123456Z"), true},
		{"2026-11-21 14:16:57,250 python logging", utc("2026-11-21T14:16:57.25Z"), true},
		{`time=2026-11-21T14:16:51.969Z level=INFO msg="x"`, utc("2026-11-21T14:16:51.969Z"), true},
		{`{"time":"2026-11-21T14:16:51.969123Z","level":"info"}`, utc("2026-11-21T14:16:51.969123Z"), true},
		{"[2026-11-21 14:16:57] bracketed", utc("2026-11-21T14:16:57Z"), true},
		{"  a continuation line", time.Time{}, false},
		{"", time.Time{}, false},
		{"2026-13-45T99:99:99Z nonsense date", time.Time{}, false},
		{"panic: runtime error 2026-11-21T14:16:57Z", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := parseLogTime(tt.line)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("parseLogTime(%q) = %v, %v; want %v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

func TestDescribeGrudge(t *testing.T) {
	nodes := []string{"n1", "n2", "n3", "n4", "n5"}
	tests := []struct {
		name string
		g    map[string][]string
		want string
	}{
		{"majority", map[string][]string{"n1": {"n3", "n4", "n5"}, "n2": {"n3", "n4", "n5"}, "n3": {"n1", "n2"}, "n4": {"n1", "n2"}, "n5": {"n1", "n2"}}, "n1 n2 | n3 n4 n5"},
		{"one isolated", map[string][]string{"n2": {"n1", "n3", "n4", "n5"}, "n1": {"n2"}, "n3": {"n2"}, "n4": {"n2"}, "n5": {"n2"}}, "n1 n3 n4 n5 | n2"},
		{"one way still splits", map[string][]string{"n1": {"n2", "n3", "n4", "n5"}}, "n1 | n2 n3 n4 n5"},
		{"ring", map[string][]string{"n1": {"n2", "n5"}, "n2": {"n1", "n4"}, "n3": {"n4", "n5"}, "n4": {"n2", "n3"}, "n5": {"n1", "n3"}}, "partial: every node still reaches some others"},
		{"empty", nil, "partial: every node still reaches some others"},
	}
	for _, tt := range tests {
		if got := describeGrudge(tt.g, nodes); got != tt.want {
			t.Errorf("%s: describeGrudge = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// feed returns a next function over ops.
func feed(ops []history.Op) func() (history.Op, error) {
	i := 0
	return func() (history.Op, error) {
		if i == len(ops) {
			return history.Op{}, io.EOF
		}
		i++
		return ops[i-1], nil
	}
}

func nem(typ history.Type, f string, v any, ts int64) history.Op {
	return history.Op{Type: typ, Process: history.NemesisProcess, F: f, Value: history.MustValue(v), Time: ts}
}

func TestAnalyzeFaults(t *testing.T) {
	g := map[string][]string{"n1": {"n2", "n3"}, "n2": {"n1"}, "n3": {"n1"}}
	ops := []history.Op{
		{Type: history.Invoke, Process: history.Client(0), F: "read", Key: "k", Time: 1, Node: "n1"},
		nem(history.Invoke, "start-partition", g, 10), nem(history.Info, "start-partition", g, 20),
		{Type: history.OK, Process: history.Client(0), F: "read", Key: "k", Time: 30},
		nem(history.Invoke, "kill", []string{"n3"}, 40), nem(history.Info, "kill", []string{"n3"}, 45),
		nem(history.Invoke, "stop-partition", g, 50), nem(history.Info, "stop-partition", g, 60),
		nem(history.Invoke, "start", []string{"n3"}, 70), nem(history.Info, "start", []string{"n3"}, 80),
		nem(history.Invoke, "pause", []string{"n2"}, 90), nem(history.Info, "pause", []string{"n2"}, 95),
		nem(history.Invoke, "start-packet", map[string]any{"delay": "100ms", "loss": 20}, 96), nem(history.Info, "start-packet", map[string]any{"delay": "100ms", "loss": 20}, 97),
		{Type: history.Invoke, Process: history.Client(1), F: "write", Key: "k", Value: history.MustValue(1), Time: 100},
	}
	a, err := analyze(feed(ops), []string{"n1", "n2", "n3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.points) != 1 || a.points[0].done-a.points[0].call != 29 || a.dangling != 1 {
		t.Errorf("points %+v, dangling %d", a.points, a.dangling)
	}
	var faults []string
	for _, f := range a.faults {
		faults = append(faults, f.Label+"@"+itoa(f.Start)+"-"+itoa(f.End))
	}
	wantFaults := []string{"partition n1 | n2 n3@10-60", "kill n3@40-80", "pause n2@90-100", "packet delay 100ms, loss 20%@96-100"}
	if !slices.Equal(faults, wantFaults) {
		t.Errorf("faults %q, want %q", faults, wantFaults)
	}
	states := []struct {
		node string
		at   int64
		want string
	}{
		{"n1", 5, ""}, {"n1", 15, "cut off from n2 n3"}, {"n3", 42, "cut off from n1; killed"}, {"n3", 65, "killed"},
		{"n3", 85, ""}, {"n2", 99, "paused; packet"}, {"n1", 99, "packet"},
	}
	for _, s := range states {
		if got := a.nodeStateAt(s.node, s.at); got != s.want {
			t.Errorf("state of %s at %d = %q, want %q", s.node, s.at, got, s.want)
		}
	}
	if got := a.faultsDuring(41, 42); !slices.Equal(got, []string{"partition n1 | n2 n3", "kill n3"}) {
		t.Errorf("faultsDuring = %q", got)
	}
}

// TestAnalyzeClocks checks that clock offsets are node states from a bump
// until the node's next bump, a reset or the end, and strobes for their
// duration, so the report can say whose clock was off at a violation.
func TestAnalyzeClocks(t *testing.T) {
	const s = int64(time.Second)
	bump1 := map[string]string{"n1": "-12.3s", "n2": "1.5s"}
	bump2 := map[string]string{"n1": "20s"}
	strobe := map[string]any{"nodes": []string{"n3"}, "delta": "-28.9s", "period": "10ms", "duration": "2s"} // aimed at a leader: dips back
	ops := []history.Op{
		{Type: history.Invoke, Process: history.Client(0), F: "read", Key: "k", Time: 0, Node: "n1"},
		nem(history.Invoke, "bump-clock", bump1, 1*s), nem(history.Info, "bump-clock", bump1, 1*s+5),
		nem(history.Invoke, "bump-clock", bump2, 5*s), nem(history.Info, "bump-clock", bump2, 5*s+5),
		nem(history.Invoke, "strobe-clock", strobe, 6*s), nem(history.Info, "strobe-clock", strobe, 6*s+5),
		nem(history.Invoke, "reset-clock", []string{"n1", "n2", "n3"}, 10*s), nem(history.Info, "reset-clock", []string{"n1", "n2", "n3"}, 10*s+5),
		nem(history.Invoke, "bump-clock", bump2, 11*s), nem(history.Info, "bump-clock", bump2, 11*s+5),
		{Type: history.OK, Process: history.Client(0), F: "read", Key: "k", Time: 12 * s},
	}
	a, err := analyze(feed(ops), []string{"n1", "n2", "n3"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		node string
		at   int64
		want string
	}{
		{"n1", 0, ""}, {"n1", 2 * s, "clock -12.3s"}, {"n2", 2 * s, "clock +1.5s"}, {"n1", 5*s + 1, "clock +20.0s"},
		{"n2", 7 * s, "clock +1.5s"}, {"n3", 7 * s, "clock strobe -28.9s"}, {"n3", 9 * s, ""},
		{"n1", 10*s + 10, ""}, {"n2", 10*s + 10, ""}, {"n1", 11*s + 1, "clock +20.0s"},
	} {
		if got := a.nodeStateAt(tc.node, tc.at); got != tc.want {
			t.Errorf("state of %s at %.1fs = %q, want %q", tc.node, float64(tc.at)/1e9, got, tc.want)
		}
	}
	if got, want := a.clocksAt(7*s), "n1 +20.0s, n2 +1.5s, n3 strobe -28.9s"; got != want {
		t.Errorf("clocksAt(7s) = %q, want %q", got, want)
	}
	if got := a.clocksAt(10*s + 10); got != "" {
		t.Errorf("clocksAt after the reset = %q, want none", got)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestMarkImpossible(t *testing.T) {
	w := func(p int, f string, v any, typ history.Type, ts int64) history.Op {
		return history.Op{Type: typ, Process: history.Client(p), F: f, Key: "k", Value: history.MustValue(v), Time: ts}
	}
	tests := []struct {
		name        string
		witness     []history.Op
		explanation string
		want        string // process of the marked op
	}{
		{"stale read", []history.Op{w(1, "write", 1, history.Invoke, 1), w(1, "write", 1, history.OK, 2), w(2, "read", nil, history.Invoke, 3), w(2, "read", 0, history.OK, 4)},
			"read of k by process 2 returned 0 at 0.000s, but write 1 to k by process 1 had completed", "2"},
		{"named second", []history.Op{w(3, "read", nil, history.Invoke, 1), w(3, "read", 5, history.OK, 2), w(12, "read", nil, history.Invoke, 3), w(12, "read", 6, history.OK, 4)},
			"read of k by process 12 returned 6 at 0.000s, but process 3 had read 5", "12"},
		{"fallback: last observer", []history.Op{w(3, "read", nil, history.Invoke, 1), w(3, "read", 5, history.OK, 2), w(4, "read", nil, history.Invoke, 3), w(4, "read", 6, history.OK, 9)},
			"No order of these 2 operations agrees", "4"},
	}
	for _, tt := range tests {
		ops := pairWitness(tt.witness, clock{})
		markImpossible(ops, tt.explanation, nil)
		var marked []string
		for _, o := range ops {
			if o.Impossible {
				marked = append(marked, o.Process)
			}
		}
		if len(marked) != 1 || marked[0] != tt.want {
			t.Errorf("%s: marked %q, want [%s]", tt.name, marked, tt.want)
		}
	}
	// The checker's ImpossibleIndex wins over the sentence.
	ws := []history.Op{w(1, "read", nil, history.Invoke, 1), w(1, "read", 5, history.OK, 2), w(2, "read", nil, history.Invoke, 3), w(2, "read", 6, history.OK, 4)}
	for i := range ws {
		ws[i].Index = int64(10 + i)
	}
	ops := pairWitness(ws, clock{})
	idx := int64(11)
	markImpossible(ops, "read of k by process 2 returned 6", &idx)
	if !ops[0].Impossible || ops[1].Impossible {
		t.Errorf("ImpossibleIndex 11 marked %+v", ops)
	}
}

func TestDownsample(t *testing.T) {
	var pts []opPoint
	for i := range int64(10_000) {
		pts = append(pts, opPoint{call: i * 1000, done: i*1000 + 100 + i%7, typ: history.OK})
	}
	pts[5000].done = pts[5000].call + 1e9 // one outlier
	got := downsample(pts, 10_000_000, 1000)
	if len(got) > 1000 || len(got) < 900 {
		t.Fatalf("%d points kept, want about 1000", len(got))
	}
	found := false
	for _, p := range got {
		found = found || p.done-p.call == 1e9
	}
	if !found {
		t.Error("the outlier was dropped")
	}
	if small := downsample(pts[:10], 1e7, 1000); len(small) != 10 {
		t.Errorf("a small set was thinned to %d", len(small))
	}
}

func TestRebuildErrors(t *testing.T) {
	tmp := t.TempDir()
	noMeta := filepath.Join(tmp, "nometa")
	os.MkdirAll(noMeta, 0o755)
	os.WriteFile(filepath.Join(noMeta, "history.jsonl"), nil, 0o644)
	empty := filepath.Join(tmp, "empty")
	os.MkdirAll(empty, 0o755)
	os.WriteFile(filepath.Join(empty, "test.json"), []byte(`{}`), 0o644)
	os.WriteFile(filepath.Join(empty, "history.jsonl"), nil, 0o644)
	bad := filepath.Join(tmp, "bad")
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(bad, "test.json"), []byte(`{}`), 0o644)
	os.WriteFile(filepath.Join(bad, "history.jsonl"), []byte("{\"type\":\"ok\"}\n"), 0o644)
	badMeta := filepath.Join(tmp, "badmeta")
	os.MkdirAll(badMeta, 0o755)
	os.WriteFile(filepath.Join(badMeta, "test.json"), []byte(`{"seed": "x"}`), 0o644)
	os.WriteFile(filepath.Join(badMeta, "history.jsonl"), nil, 0o644)
	file := filepath.Join(tmp, "file")
	os.WriteFile(file, nil, 0o644)
	noHistory := filepath.Join(tmp, "nohistory")
	os.MkdirAll(noHistory, 0o755)
	os.WriteFile(filepath.Join(noHistory, "test.json"), []byte(`{}`), 0o644)
	badEDN := filepath.Join(tmp, "bad.edn")
	os.WriteFile(badEDN, []byte("[{:type :invoke, :f :read, :process 0}\n {:type :ok"), 0o644)
	tests := []struct {
		dir     string
		notRun  bool
		message string
	}{
		{filepath.Join(tmp, "missing"), true, "no such file or directory"},
		{noHistory, true, "has no history.jsonl or history.edn"},
		{file, false, "the history is empty"},
		{noMeta, false, "the history is empty"},
		{empty, false, "the history is empty"},
		{bad, false, `history.jsonl:1: missing field "process"`},
		{badMeta, false, `the history is empty`},
		{badEDN, false, `bad.edn:2: bad EDN: the map that starts here is never closed`},
	}
	for _, tt := range tests {
		_, _, err := Rebuild(context.Background(), tt.dir)
		if err == nil {
			t.Errorf("Rebuild(%s) succeeded", tt.dir)
			continue
		}
		if errors.Is(err, ErrNotRunDir) != tt.notRun || !strings.Contains(err.Error(), tt.message) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Rebuild(%s) = %v; want one line with %q (not a run dir: %v)", tt.dir, err, tt.message, tt.notRun)
		}
	}
}

func TestWriteWithoutTestJSON(t *testing.T) {
	dir := t.TempDir()
	synth{ops: 200, seed: 9}.write(t, dir)
	os.Remove(filepath.Join(dir, "test.json"))
	ops, err := history.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	res := checkers.Check(context.Background(), ops, checkers.Options{})
	path, err := Write(context.Background(), dir, res)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	for _, want := range []string{"This history came without test.json", "Valid: all", "test.json has no start time"} {
		if want == "test.json has no start time" {
			continue // no violation, so no excerpts
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// A report of an EDN history with nothing beside it: what the history
// tells, the settings it cannot, and positions for times.
func TestWriteHistoryEDN(t *testing.T) {
	tests := []struct {
		file string
		want []string
		not  []string
	}{
		{"../history/testdata/knossos-list-stale.edn",
			[]string{"This history has no times", "read of r by process 2 returned 1 at op 5", "<td>op 4</td>", "stale read", "positions of the history",
				"settings unknown: no test.json", "No fault is recorded in the history", `<a href="h.edn">h.edn</a>`},
			[]string{"0.000000", "Reproduce this run", `href="results.json"`, `href="test.json"`}},
		{"../history/testdata/jepsen-nemesis.edn",
			[]string{"start ×2, stop ×2 (the nemesis operations of the history)", "during nemesis", "impossible cas failure", "4 nemesis operations had no invocation", "cas 1→2 on r by process 1 failed at 0.007s"},
			[]string{"This history has no times"}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "h.edn")
			b, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(path, b, 0o644)
			ops, info, err := history.ReadFileInfo(path)
			if err != nil {
				t.Fatal(err)
			}
			res := checkers.Check(context.Background(), ops, checkers.Options{})
			out, err := WriteHistory(context.Background(), History{Out: dir, Path: path, Ops: ops, Info: info}, res)
			if err != nil {
				t.Fatal(err)
			}
			page, _ := os.ReadFile(out)
			for _, w := range tt.want {
				if !strings.Contains(string(page), w) {
					t.Errorf("report lacks %q", w)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(string(page), w) {
					t.Errorf("report has %q", w)
				}
			}
		})
	}
}

func TestCompareKeys(t *testing.T) {
	keys := []string{"k10", "k2", "k1", "a", "k02", "k100", "b3x10", "b3x9", "", "k2a", "10", "9"}
	slices.SortFunc(keys, CompareKeys)
	want := []string{"", "9", "10", "a", "b3x9", "b3x10", "k1", "k2", "k02", "k2a", "k10", "k100"}
	if !slices.Equal(keys, want) {
		t.Errorf("got %q, want %q", keys, want)
	}
}

func TestViolationKinds(t *testing.T) {
	idx := func(i int64) *int64 { return &i }
	read := func(v string) []history.Op {
		return []history.Op{{Index: 0, Type: history.Invoke, F: "read"}, {Index: 1, Type: history.OK, F: "read", Value: json.RawMessage(v)}}
	}
	cas := func(typ history.Type) []history.Op {
		return []history.Op{{Index: 0, Type: history.Invoke, F: "cas"}, {Index: 1, Type: typ, F: "cas"}}
	}
	fails := []checkers.KeyFailure{
		{Key: "k10", Witness: read("1"), ImpossibleIndex: idx(1), Explanation: "read ... returned 1, but write 2 had completed"},
		{Key: "k2", Witness: read("1"), ImpossibleIndex: idx(1)},
		{Key: "k3", Witness: read("null"), ImpossibleIndex: idx(1)},
		{Key: "k4", Witness: read("7"), ImpossibleIndex: idx(1), Explanation: "read of k4 returned 7 at 1s, but no operation had written 7 to k4 before then."},
		{Key: "k5", Witness: cas(history.OK), ImpossibleIndex: idx(1)},
		{Key: "k6", Witness: cas(history.Fail), ImpossibleIndex: idx(1)},
		{Key: "k7", Witness: read("1")},
	}
	got := ViolationKinds(fails)
	var parts []string
	for _, k := range got {
		parts = append(parts, k.Plural()+" "+strings.Join(k.Keys, ","))
	}
	want := "2 stale reads k2,k10|1 lost write k3|1 read of a value never written k4|1 impossible cas k5|1 impossible cas failure k6|1 no single order k7"
	if strings.Join(parts, "|") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(parts, "|"), want)
	}
}

// An interrupted run and a run with problems say so at the top.
func TestReportInterruptedAndProblems(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "history.jsonl")
	b, err := os.ReadFile("../examples/histories/valid.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, b, 0o644)
	ops, info, err := history.ReadFileInfo(path)
	if err != nil {
		t.Fatal(err)
	}
	res := checkers.Check(context.Background(), ops, checkers.Options{})
	res.Interrupted = "interrupted at 23.4 s"
	res.Valid = checkers.Unknown
	res.Problems = []checkers.Problem{{Kind: checkers.ProblemNodeExit, Node: "n1", Message: "n1 exited with status 1 at 0.1 s; no fault was acting on it", Log: []string{"panic: boom"}}}
	out, err := WriteHistory(context.Background(), History{Out: dir, Path: path, Ops: ops, Info: info}, res)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(out)
	for _, w := range []string{
		"Interrupted (interrupted at 23.4 s): this verdict covers the history recorded until then",
		"Unknown: this run could not really test the store: n1 exited with status 1 at 0.1 s; no fault was acting on it.",
		`<section id="problems">`, "panic: boom", "(interrupted)</title>",
	} {
		if !strings.Contains(string(page), w) {
			t.Errorf("report lacks %q", w)
		}
	}
}
