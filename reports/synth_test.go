package reports

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/history"
)

// synth describes a synthetic run directory: a register history that is
// linearizable by construction (every op takes effect at one instant
// inside its interval, applied in time order), with partitions, failures,
// timeouts, and optional injected violations.
type synth struct {
	ops        int      // client operations (each is two events)
	seed       uint64   //
	violations []string // keys that get a stale read (a proven violation)
	hostile    bool     // the violations use hostile values and log lines
	nemesis    bool     // two partitions and a kill
	target     string
}

var hostileValues = []string{"<script>alert(1)</script>", "<img src=x onerror=alert(1)>"}

type simEvent struct {
	t     int64
	seq   int
	op    history.Op
	apply func() // the op's effect, at its linearization point
}

type simQueue []*simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if q[i].t != q[j].t {
		return q[i].t < q[j].t
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(*simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// write creates the run directory in dir and returns the wall time of
// history time 0.
func (s synth) write(t testing.TB, dir string) time.Time {
	t.Helper()
	rng := rand.New(rand.NewPCG(s.seed, 7))
	nodes := []string{"n1", "n2", "n3", "n4", "n5"}
	const workers = 10
	const perKey = 200
	q := &simQueue{}
	seq := 0
	push := func(e *simEvent) {
		seq++
		e.seq = seq
		heap.Push(q, e)
	}
	// Faults, as fractions of the run's approximate length.
	approx := int64(s.ops) * 4_000_000 / workers // ~4ms per op per worker
	type window struct{ from, to int64 }
	var parts []window
	if s.nemesis {
		parts = []window{{approx / 10, approx / 4}, {approx / 2, approx * 13 / 20}}
		lag := min(200_000_000, approx/50)
		for _, w := range parts {
			g := history.MustValue(map[string][]string{"n1": {"n3", "n4", "n5"}, "n2": {"n3", "n4", "n5"}, "n3": {"n1", "n2"}, "n4": {"n1", "n2"}, "n5": {"n1", "n2"}})
			push(&simEvent{t: w.from, op: history.Op{Type: history.Invoke, Process: history.NemesisProcess, F: "start-partition", Value: g}})
			push(&simEvent{t: w.from + lag, op: history.Op{Type: history.Info, Process: history.NemesisProcess, F: "start-partition", Value: g}})
			push(&simEvent{t: w.to, op: history.Op{Type: history.Invoke, Process: history.NemesisProcess, F: "stop-partition", Value: g}})
			push(&simEvent{t: w.to + lag, op: history.Op{Type: history.Info, Process: history.NemesisProcess, F: "stop-partition", Value: g}})
		}
		k := approx * 3 / 4
		push(&simEvent{t: k, op: history.Op{Type: history.Invoke, Process: history.NemesisProcess, F: "kill", Value: history.MustValue([]string{"n4"})}})
		push(&simEvent{t: k + lag, op: history.Op{Type: history.Info, Process: history.NemesisProcess, F: "kill", Value: history.MustValue([]string{"n4"})}})
		push(&simEvent{t: k + approx/20, op: history.Op{Type: history.Invoke, Process: history.NemesisProcess, F: "start", Value: history.MustValue([]string{"n4"})}})
		push(&simEvent{t: k + approx/20 + lag, op: history.Op{Type: history.Info, Process: history.NemesisProcess, F: "start", Value: history.MustValue([]string{"n4"})}})
	}
	inPartition := func(t int64) bool {
		for _, w := range parts {
			if t >= w.from && t < w.to {
				return true
			}
		}
		return false
	}
	// Injected violations: process A writes 1 then 2, then process B
	// reads 1 (or hostile values: the read returns a value never written).
	for i, key := range s.violations {
		at := approx*3/20 + int64(i)*300_000_000
		a, b := history.Client(9000+2*i), history.Client(9001+2*i)
		v1, v2 := history.MustValue(1), history.MustValue(2)
		if s.hostile {
			v1, v2 = history.MustValue(hostileValues[0]), history.MustValue(hostileValues[1])
		}
		evs := []history.Op{
			{Type: history.Invoke, Process: a, F: history.FWrite, Key: key, Value: v1, Node: "n1"},
			{Type: history.OK, Process: a, F: history.FWrite, Key: key, Value: v1, Node: "n1"},
			{Type: history.Invoke, Process: a, F: history.FWrite, Key: key, Value: v2, Node: "n1"},
			{Type: history.OK, Process: a, F: history.FWrite, Key: key, Value: v2, Node: "n1"},
			{Type: history.Invoke, Process: b, F: history.FRead, Key: key, Node: "n2"},
			{Type: history.OK, Process: b, F: history.FRead, Key: key, Value: v1, Node: "n2"},
		}
		if s.hostile {
			evs[5].Value = v2 // hostile: reads the second value, then a value nobody wrote
			evs = append(evs,
				history.Op{Type: history.Invoke, Process: b, F: history.FRead, Key: key, Node: "n2"},
				history.Op{Type: history.OK, Process: b, F: history.FRead, Key: key, Value: history.MustValue(hostileValues[1] + hostileValues[0]), Node: "n2"})
		}
		for j, e := range evs {
			push(&simEvent{t: at + int64(j)*1_000_000, op: e})
		}
	}

	// Client workers.
	type worker struct{ proc int }
	ws := make([]worker, workers)
	for i := range ws {
		ws[i].proc = i
	}
	nextProc := workers
	keyOps := map[string]int{}
	state := map[string]int{} // -1 = absent
	active := []string{}
	nextKey := 0
	pickKey := func() string {
		for len(active) < 5 {
			active = append(active, fmt.Sprintf("k%d", nextKey))
			nextKey++
		}
		i := rng.IntN(len(active))
		k := active[i]
		keyOps[k]++
		if keyOps[k] >= perKey {
			active = append(active[:i], active[i+1:]...)
		}
		return k
	}
	issued := 0
	var startOp func(w int, t int64)
	startOp = func(w int, t int64) {
		if issued >= s.ops {
			return
		}
		issued++
		key := pickKey()
		proc := history.Client(ws[w].proc)
		node := nodes[rng.IntN(len(nodes))]
		inv := history.Op{Type: history.Invoke, Process: proc, Key: key, Node: node}
		var f string
		var a, b int
		switch r := rng.IntN(10); {
		case r < 5:
			f = history.FRead
		case r < 8:
			f, a = history.FWrite, rng.IntN(5)
			inv.Value = history.MustValue(a)
		default:
			f, a, b = history.FCAS, rng.IntN(5), rng.IntN(5)
			inv.Value = history.MustValue([]int{a, b})
		}
		inv.F = f
		push(&simEvent{t: t, op: inv})
		effect := t + 200_000 + rng.Int64N(2_500_000)
		done := effect + 200_000 + rng.Int64N(2_500_000)
		comp := history.Op{Process: proc, F: f, Key: key, Value: inv.Value, Node: node}
		outcome := rng.IntN(100)
		if inPartition(t) && node != "n3" && node != "n4" && node != "n5" {
			outcome = 80 + outcome/5 // minority side: mostly failures and timeouts
		}
		switch {
		case outcome >= 97: // timeout: info, may or may not take effect
			comp.Type, comp.Error = history.Info, "timeout"
			done = t + 1_000_000_000
			if f == history.FRead {
				comp.Value = nil
			}
			if rng.IntN(2) == 0 && f != history.FRead {
				push(&simEvent{t: effect, apply: func() {
					if v, ok := state[key]; f == history.FWrite || (ok && v == a) {
						state[key] = map[bool]int{true: a, false: b}[f == history.FWrite]
					}
				}})
			}
			ws[w].proc = nextProc
			nextProc++
			push(&simEvent{t: done, op: comp})
			push(&simEvent{t: done + 100_000, apply: func() { startOp(w, done+100_000) }})
			return
		case outcome >= 90: // refused: fail, no effect
			comp.Type, comp.Error = history.Fail, history.ErrUnavailable
			if f == history.FRead {
				comp.Value = nil
			}
			push(&simEvent{t: done, op: comp})
		default:
			ce := &simEvent{t: done, op: comp}
			push(&simEvent{t: effect, apply: func() {
				v, ok := state[key]
				if !ok {
					v = -1
				}
				ce.op.Type = history.OK
				switch f {
				case history.FRead:
					if v < 0 {
						ce.op.Value = nil
					} else {
						ce.op.Value = history.MustValue(v)
					}
				case history.FWrite:
					state[key] = a
				case history.FCAS:
					switch {
					case v < 0:
						ce.op.Type, ce.op.Error = history.Fail, history.ErrNotFound
					case v != a:
						ce.op.Type, ce.op.Error = history.Fail, history.ErrPreconditionFailed
					default:
						state[key] = b
					}
				}
				push(ce)
			}})
		}
		next := done + 50_000 + rng.Int64N(500_000)
		push(&simEvent{t: next, apply: func() { startOp(w, next) }})
	}
	for w := range ws {
		startOp(w, 1_000_000+int64(w)*100_000)
	}

	if err := os.MkdirAll(filepath.Join(dir, "nodes"), 0o755); err != nil {
		t.Fatal(err)
	}
	hf, err := os.Create(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	hw := history.NewWriter(hf)
	var end int64
	var actions []Action
	var nemStart int64
	for q.Len() > 0 {
		e := heap.Pop(q).(*simEvent)
		if e.apply != nil {
			e.apply()
			continue
		}
		e.op.Time = e.t
		end = e.t
		if e.op.Process.Nemesis {
			if e.op.Type == history.Invoke {
				nemStart = e.t
			} else {
				actions = append(actions, Action{F: e.op.F, Value: e.op.Value, Start: nemStart, Duration: time.Duration(e.t - nemStart)})
			}
		}
		if err := hw.Write(&e.op); err != nil {
			t.Fatal(err)
		}
	}
	if err := hf.Close(); err != nil {
		t.Fatal(err)
	}

	// test.json, as the harness writes it.
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	target := s.target
	if target == "" {
		target = "synthkv"
	}
	nem := "none"
	if s.nemesis {
		nem = "partition,kill"
	}
	m := Meta{
		RunID: target + "-20260102T030400-abcdef", Target: target, Seed: s.seed, Jepsen: "(test)", Go: "go1.26",
		Created: start.Add(-5 * time.Second), Start: start, End: start.Add(time.Duration(end) + 3*time.Second),
		Nemesis: actions, Verdict: "invalid", Completed: true,
		Config: Settings{Workload: "register", Nemesis: nem, NemesisInterval: 5 * time.Second, Nodes: 5, Concurrency: workers,
			TimeLimit: time.Duration(end), Seed: s.seed, OpTimeout: time.Second, OpsPerKey: perKey, CheckTimeout: time.Minute,
			Command: fmt.Sprintf("jepsen run --nemesis %s --seed %d --target ./%s", nem, s.seed, target)},
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	// Node logs: a line every 100ms of the run, in hashicorp/hclog's format.
	for _, n := range nodes {
		var sb strings.Builder
		for ts := int64(-2_000_000_000); ts < end+1_000_000_000; ts += 100_000_000 {
			w := start.Add(time.Duration(ts)).UTC().Format("2006-01-02T15:04:05.000Z")
			fmt.Fprintf(&sb, "%s [INFO]  raftkv: heartbeat: node=%s at=%d\n", w, n, ts)
			if s.hostile && ts%1_000_000_000 == 0 {
				fmt.Fprintf(&sb, "%s [WARN]  raftkv: client sent %s and %s\n", w, hostileValues[0], hostileValues[1])
			}
		}
		sb.WriteString("  a continuation line without a timestamp\n")
		if err := os.WriteFile(filepath.Join(dir, "nodes", n+".log"), []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	jl := fmt.Sprintf("time=%s level=INFO msg=\"testing %s\"\n", start.Format(time.RFC3339Nano), target)
	if err := os.WriteFile(filepath.Join(dir, "jepsen.log"), []byte(jl), 0o644); err != nil {
		t.Fatal(err)
	}
	return start
}
