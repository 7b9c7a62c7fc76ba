package checkers

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/jepsen-go/jepsen/history"
)

// Event constructors for hand-written histories. hist numbers them and
// spaces them 1ms apart, in the order given.

func inv(p int, f, key string, v any) history.Op {
	return history.Op{Type: history.Invoke, Process: history.Client(p), F: f, Key: key, Value: val(v)}
}

func ok(p int, f, key string, v any) history.Op {
	return history.Op{Type: history.OK, Process: history.Client(p), F: f, Key: key, Value: val(v)}
}

func fail(p int, f, key string, v any, err string) history.Op {
	return history.Op{Type: history.Fail, Process: history.Client(p), F: f, Key: key, Value: val(v), Error: err}
}

func info(p int, f, key string, v any) history.Op {
	return history.Op{Type: history.Info, Process: history.Client(p), F: f, Key: key, Value: val(v), Error: "timeout"}
}

func nem(t history.Type, f string, v any) history.Op {
	return history.Op{Type: t, Process: history.NemesisProcess, F: f, Value: val(v)}
}

// val encodes v as JSON; a json.RawMessage or string starting with "raw:"
// is used as is.
func val(v any) json.RawMessage {
	switch x := v.(type) {
	case nil:
		return nil
	case json.RawMessage:
		return x
	case string:
		if raw, ok := strings.CutPrefix(x, "raw:"); ok {
			return json.RawMessage(raw)
		}
	}
	return history.MustValue(v)
}

func hist(evs ...history.Op) []history.Op {
	for i := range evs {
		evs[i].Index = int64(i)
		evs[i].Time = int64(i+1) * int64(time.Millisecond)
	}
	return evs
}

// read and write helpers for the common sequential case.
func w(p int, key string, v any) []history.Op {
	return []history.Op{inv(p, "write", key, v), ok(p, "write", key, v)}
}

func r(p int, key string, v any) []history.Op {
	return []history.Op{inv(p, "read", key, nil), ok(p, "read", key, v)}
}

func cat(parts ...any) []history.Op {
	var out []history.Op
	for _, p := range parts {
		switch x := p.(type) {
		case history.Op:
			out = append(out, x)
		case []history.Op:
			out = append(out, x...)
		default:
			panic(fmt.Sprintf("cat: %T", p))
		}
	}
	return hist(out...)
}

// TestRegisterSemantics has, for each rule of docs/history.md, a
// history that is valid only if the rule is implemented right and one that
// is invalid only if it is.
func TestRegisterSemantics(t *testing.T) {
	tests := []struct {
		name string
		ops  []history.Op
		want Validity
	}{
		// An info write may take effect long after its info completion.
		{"info write takes effect late", cat(
			w(1, "k", 1),
			inv(0, "write", "k", 2), info(0, "write", "k", 2),
			r(2, "k", 1), r(2, "k", 1), r(2, "k", 2)), Valid},
		// ...but only after its invocation, and only once.
		{"info write cannot take effect before invocation", cat(
			w(1, "k", 1), r(2, "k", 2),
			inv(0, "write", "k", 2), info(0, "write", "k", 2)), Invalid},
		{"info write takes effect at most once", cat(
			inv(0, "write", "k", 2), info(0, "write", "k", 2),
			r(2, "k", 2), w(1, "k", 1), r(2, "k", 2)), Invalid},
		// An info write may never take effect.
		{"info write never takes effect", cat(
			w(1, "k", 1),
			inv(0, "write", "k", 2), info(0, "write", "k", 2),
			r(2, "k", 1), r(3, "k", 1)), Valid},
		{"info write that took effect cannot be undone", cat(
			w(1, "k", 1),
			inv(0, "write", "k", 2), info(0, "write", "k", 2),
			r(2, "k", 2), r(3, "k", 1)), Invalid},
		// An invocation with no completion counts as info.
		{"dangling write may take effect", cat(
			w(1, "k", 1), inv(0, "write", "k", 2), r(2, "k", 2)), Valid},
		{"dangling write may not take effect before invocation", cat(
			w(1, "k", 1), r(2, "k", 2), inv(0, "write", "k", 2)), Invalid},
		{"dangling cas may take effect", cat(
			w(1, "k", 1), inv(0, "cas", "k", []int{1, 3}), r(2, "k", 3)), Valid},
		{"dangling cas takes effect only from its from value", cat(
			w(1, "k", 1), inv(0, "cas", "k", []int{2, 3}), r(2, "k", 3)), Invalid},
		// Failed and info reads are dropped, whatever value they carry.
		{"failed read dropped", cat(
			w(1, "k", 1), inv(2, "read", "k", nil), fail(2, "read", "k", 7, "unavailable"), r(3, "k", 1)), Valid},
		{"ok read after a failed read still checked", cat(
			w(1, "k", 1), inv(2, "read", "k", nil), fail(2, "read", "k", 1, "unavailable"), r(3, "k", 7)), Invalid},
		{"info read dropped", cat(
			w(1, "k", 1), inv(2, "read", "k", nil), info(2, "read", "k", 7), r(3, "k", 1)), Valid},
		{"ok read after an info read still checked", cat(
			w(1, "k", 1), inv(2, "read", "k", nil), info(2, "read", "k", 1), r(3, "k", 7)), Invalid},
		// A precondition-failed cas observes "not from".
		{"precondition-failed cas while register held another value", cat(
			w(1, "k", 1), inv(2, "cas", "k", []int{2, 3}), fail(2, "cas", "k", []int{2, 3}, history.ErrPreconditionFailed), r(3, "k", 1)), Valid},
		{"precondition-failed cas while register held from", cat(
			w(1, "k", 1), inv(2, "cas", "k", []int{1, 3}), fail(2, "cas", "k", []int{1, 3}, history.ErrPreconditionFailed)), Invalid},
		{"precondition-failed cas concurrent with a change", cat(
			w(1, "k", 2), inv(1, "write", "k", 1), inv(2, "cas", "k", []int{1, 3}),
			fail(2, "cas", "k", []int{1, 3}, history.ErrPreconditionFailed), ok(1, "write", "k", 1), r(3, "k", 1)), Valid},
		// A not-found cas observes "absent".
		{"not-found cas on an absent key", cat(
			inv(2, "cas", "k", []int{1, 3}), fail(2, "cas", "k", []int{1, 3}, history.ErrNotFound), w(1, "k", 1), r(3, "k", 1)), Valid},
		{"not-found cas on a present key", cat(
			w(1, "k", 5), inv(2, "cas", "k", []int{1, 3}), fail(2, "cas", "k", []int{1, 3}, history.ErrNotFound)), Invalid},
		// Any other fail definitely did not take effect and is dropped.
		{"unavailable cas dropped", cat(
			w(1, "k", 1), inv(2, "cas", "k", []int{1, 3}), fail(2, "cas", "k", []int{1, 3}, history.ErrUnavailable), r(3, "k", 1)), Valid},
		{"unavailable write did not take effect", cat(
			w(1, "k", 1), inv(2, "write", "k", 2), fail(2, "write", "k", 2, history.ErrUnavailable), r(3, "k", 2)), Invalid},
		{"unavailable write dropped", cat(
			w(1, "k", 1), inv(2, "write", "k", 2), fail(2, "write", "k", 2, history.ErrUnavailable), r(3, "k", 1)), Valid},
		// cas ok.
		{"cas ok changes the value", cat(
			w(1, "k", 1), inv(2, "cas", "k", []int{1, 2}), ok(2, "cas", "k", []int{1, 2}), r(3, "k", 2)), Valid},
		{"cas ok needs its from value", cat(
			w(1, "k", 1), inv(2, "cas", "k", []int{5, 2}), ok(2, "cas", "k", []int{5, 2})), Invalid},
		// Keys are independent registers.
		{"keys independent", cat(
			w(1, "x", 1), w(2, "y", 2), r(3, "x", 1), r(4, "y", 2)), Valid},
		{"a write to one key is not visible in another", cat(
			w(1, "x", 1), w(2, "y", 2), r(3, "x", 2)), Invalid},
		// Nemesis operations are ignored.
		{"nemesis ops ignored", cat(
			nem(history.Invoke, "start-partition", map[string][]string{"n1": {"n2"}}), w(1, "k", 1),
			nem(history.Info, "start-partition", nil), r(2, "k", 1), nem(history.Invoke, "kill", "n1"), nem(history.Info, "kill", "n1")), Valid},
		{"nemesis ops do not hide a violation", cat(
			nem(history.Invoke, "start-partition", nil), w(1, "k", 1), nem(history.Info, "start-partition", nil), r(2, "k", 2)), Invalid},
		// null means absent.
		{"read of null before any write", cat(r(1, "k", nil), w(2, "k", 1), r(1, "k", 1)), Valid},
		{"read of null after a write", cat(w(2, "k", 1), r(1, "k", nil)), Invalid},
		// Values compare by canonical JSON.
		{"equal JSON values", cat(
			w(1, "k", "raw:{\"a\": 1, \"b\": [1.0, \"x\"]}"), r(2, "k", "raw:{\"b\":[1,\"x\"],\"a\":1e0}")), Valid},
		{"different JSON values", cat(w(1, "k", 1), r(2, "k", "1")), Invalid},
		// Concurrent operations may be ordered either way.
		{"concurrent write and read", cat(
			w(1, "k", 1), inv(1, "write", "k", 2), inv(2, "read", "k", nil), ok(2, "read", "k", 1), ok(1, "write", "k", 2), r(2, "k", 2)), Valid},
		{"stale read", cat(w(1, "k", 1), w(1, "k", 2), r(2, "k", 1)), Invalid},
		{"empty history", nil, Valid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := Check(context.Background(), tc.ops, Options{Workload: WorkloadRegister})
			if res.Error != "" {
				t.Fatalf("error: %s", res.Error)
			}
			if res.Valid != tc.want {
				t.Fatalf("verdict %s, want %s; result %+v", res.Valid, tc.want, res.Linear)
			}
			if tc.want == Invalid {
				f := res.Linear.Failures[0]
				if f.WitnessOps == 0 || len(f.Witness) == 0 || f.Explanation == "" {
					t.Fatalf("failure without witness or explanation: %+v", f)
				}
				// The witness is a history of its own, and not linearizable.
				if again := Check(context.Background(), f.Witness, Options{Workload: WorkloadRegister}); again.Valid != Invalid {
					t.Errorf("witness %v re-checks as %s", f.Witness, again.Valid)
				}
			}
		})
	}
}

func TestDropCounts(t *testing.T) {
	ops := cat(
		w(1, "k", 1),
		inv(2, "read", "k", nil), fail(2, "read", "k", nil, "unavailable"),
		inv(3, "read", "k", nil), info(3, "read", "k", nil),
		inv(4, "write", "k", 3), fail(4, "write", "k", 3, "unavailable"),
		inv(5, "write", "k", 4))
	res := Check(context.Background(), ops, Options{})
	lr := res.Linear
	want := map[string]int{"failed-read": 1, "info-read": 1, "failed": 1}
	for k, n := range want {
		if lr.Dropped[k] != n {
			t.Errorf("dropped[%s] = %d, want %d (%v)", k, lr.Dropped[k], n, lr.Dropped)
		}
	}
	if lr.Operations != 2 {
		t.Errorf("operations = %d, want 2 (the write and the dangling write)", lr.Operations)
	}
	if res.Stats.Dangling != 1 {
		t.Errorf("dangling = %d, want 1", res.Stats.Dangling)
	}
	if got := res.Stats.ByF["read"][history.Invoke]; got != 2 {
		t.Errorf("read invocations = %d, want 2", got)
	}
}

// TestWitnessAndExplanation checks the counterexample of a stale read:
// the two operations that prove it, named in words.
func TestWitnessAndExplanation(t *testing.T) {
	ops := cat(w(1, "k3", 1), r(5, "k3", 1), w(1, "k3", 2), r(4, "k3", 1), r(4, "k3", 2))
	res := Check(context.Background(), ops, Options{})
	if res.Valid != Invalid {
		t.Fatalf("verdict %s, want invalid", res.Valid)
	}
	f := res.Linear.Failures[0]
	if f.WitnessOps != 2 || !f.Minimal {
		t.Errorf("witness has %d ops (minimal %v), want 2: %v", f.WitnessOps, f.Minimal, f.Witness)
	}
	want := "read of k3 by process 4 returned 1 at 0.008s, but write 2 to k3 by process 1 had completed at 0.006s, before the read began at 0.007s, and no operation could have written 1 after it."
	if f.Explanation != want {
		t.Errorf("explanation:\n got %s\nwant %s", f.Explanation, want)
	}
	if f.ImpossibleIndex == nil || *f.ImpossibleIndex != 7 {
		t.Errorf("impossible index %v, want 7 (the stale read's completion)", f.ImpossibleIndex)
	}
	if len(f.Visualization) == 0 || !strings.Contains(string(f.Visualization), "<html") {
		t.Errorf("no HTML visualization: %q", f.VisualizationNote)
	}
	if f.VisualizedOps != 5 {
		t.Errorf("visualized %d ops, want all 5", f.VisualizedOps)
	}
}

func TestExplanationNeverWritten(t *testing.T) {
	res := Check(context.Background(), cat(w(1, "a", 1), r(2, "a", 9)), Options{})
	f := res.Linear.Failures[0]
	if f.WitnessOps != 1 || !strings.Contains(f.Explanation, "no operation had written 9 to a") || !strings.Contains(f.Explanation, "process 2") {
		t.Errorf("witness %d ops, explanation %q", f.WitnessOps, f.Explanation)
	}
}

func TestTimeoutIsUnknown(t *testing.T) {
	// n concurrent writes of distinct values, then a read of a value none
	// wrote: porcupine must try every order of the writes before it can
	// say illegal (n * 2^n states), far more than the budget allows.
	const n = 28
	var ops []history.Op
	for p := range n {
		ops = append(ops, inv(p, "write", "hard", p+1))
	}
	for p := range n {
		ops = append(ops, ok(p, "write", "hard", p+1))
	}
	ops = append(ops, r(n, "hard", 1000)...)
	ops = append(ops, w(n+1, "easy", 1)...)
	ops = hist(ops...)
	start := time.Now()
	res := Check(context.Background(), ops, Options{Timeout: 300 * time.Millisecond})
	took := time.Since(start)
	if res.Valid != Unknown {
		t.Fatalf("verdict %s, want unknown", res.Valid)
	}
	if took > 5*time.Second {
		t.Errorf("a 300ms budget took %s", took)
	}
	lr := res.Linear
	if lr.UnknownKeys != 1 || lr.ValidKeys != 1 || lr.Unknown[0].Key != "hard" || !strings.Contains(lr.Unknown[0].Reason, "timed out") {
		t.Errorf("unknown keys %+v, valid keys %d", lr.Unknown, lr.ValidKeys)
	}
	// An invalid key elsewhere still makes the whole check invalid.
	ops = hist(append(ops, cat(w(1, "bad", 1), w(1, "bad", 2), r(2, "bad", 1))...)...)
	if res := Check(context.Background(), ops, Options{Timeout: 300 * time.Millisecond}); res.Valid != Invalid {
		t.Errorf("with an invalid key: verdict %s, want invalid", res.Valid)
	}
}

func TestCancelledIsUnknown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := Check(ctx, cat(w(1, "k", 1), r(2, "k", 1)), Options{})
	if res.Valid != Unknown || res.Linear.Unknown[0].Reason == "" {
		t.Errorf("verdict %s (%+v), want unknown", res.Valid, res.Linear)
	}
}

func TestWorkers(t *testing.T) {
	// Many keys, one worker or many: the same verdicts.
	var parts []any
	for k := range 200 {
		key := fmt.Sprintf("k%d", k)
		parts = append(parts, w(1, key, k), r(2, key, k))
	}
	parts = append(parts, w(1, "bad", 1), w(1, "bad", 2), r(2, "bad", 1))
	ops := cat(parts...)
	for _, workers := range []int{1, 2, 16} {
		res := Check(context.Background(), ops, Options{Workers: workers})
		if res.Valid != Invalid || res.Linear.ValidKeys != 200 || res.Linear.InvalidKeys != 1 || res.Keys != 201 {
			t.Errorf("workers %d: %s, %d valid, %d invalid keys", workers, res.Valid, res.Linear.ValidKeys, res.Linear.InvalidKeys)
		}
	}
}

func TestUnknownWorkload(t *testing.T) {
	res := Check(context.Background(), nil, Options{Workload: "bank"})
	if res.Error == "" || res.Valid != Unknown {
		t.Errorf("got %+v", res)
	}
}

func TestDetectWorkload(t *testing.T) {
	tests := []struct {
		ops  []history.Op
		want string
	}{
		{cat(w(1, "k", 1)), WorkloadRegister},
		{cat(inv(1, "add", "s1", 1), ok(1, "add", "s1", 1), r(2, "s1", 1)), WorkloadSet},
		{nil, WorkloadRegister},
		{cat(nem(history.Invoke, "add", nil)), WorkloadRegister},
	}
	for i, tc := range tests {
		if got := DetectWorkload(tc.ops); got != tc.want {
			t.Errorf("%d: %s, want %s", i, got, tc.want)
		}
	}
}

func TestResultJSON(t *testing.T) {
	res := Check(context.Background(), cat(w(1, "k", 1), w(1, "k", 2), r(2, "k", 1)), Options{})
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["valid"] != false || m["workload"] != "register" || m["ops"] != float64(6) || m["keys"] != float64(1) {
		t.Errorf("top level: %s", b)
	}
	lin := m["linear"].(map[string]any)
	f := lin["failures"].([]any)[0].(map[string]any)
	if f["key"] != "k" || f["witness_ops"] != float64(2) || f["explanation"] == "" || f["visualization"] != nil {
		t.Errorf("failure: %v", f)
	}
	for _, v := range []Validity{Valid, Invalid, Unknown} {
		b, _ := json.Marshal(v)
		var back Validity
		if err := json.Unmarshal(b, &back); err != nil || back != v {
			t.Errorf("%s: %s -> %s, %v", v, b, back, err)
		}
	}
	if string(must(json.Marshal(Unknown))) != `"unknown"` || string(must(json.Marshal(Valid))) != "true" {
		t.Error("validity encoding")
	}
	var bad Validity
	if err := json.Unmarshal([]byte(`"maybe"`), &bad); err == nil {
		t.Error("accepted \"maybe\"")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestBadValues(t *testing.T) {
	// A cas value that is not a pair (the reader rejects it; other sources
	// might not) makes the key unknown, never a panic.
	ops := cat(inv(1, "cas", "k", "raw:[1]"), ok(1, "cas", "k", "raw:[1]"), w(2, "j", 1))
	res := Check(context.Background(), ops, Options{})
	if res.Valid != Unknown || res.Linear.UnknownKeys != 1 || !strings.Contains(res.Linear.Unknown[0].Reason, "pair") {
		t.Errorf("got %s %+v", res.Valid, res.Linear)
	}
}

// TestVisualizationWindow: a key too large to show whole is shown as a
// window around its witness, within the size cap.
func TestVisualizationWindow(t *testing.T) {
	if raceEnabled {
		t.Skip("shrinking a 3,000-op key runs out of its time budget under the race detector; this test measures how far shrinking gets, and runs without -race in .ci/run")
	}
	var parts []any
	n := 3 * VisualizeMaxOps
	for i := range n {
		parts = append(parts, w(1, "big", i))
		if i == n/2 {
			parts = append(parts, r(2, "big", i-1)) // stale
		}
	}
	res := Check(context.Background(), cat(parts...), Options{})
	if res.Valid != Invalid {
		t.Fatalf("verdict %s", res.Valid)
	}
	f := res.Linear.Failures[0]
	if f.WitnessOps != 2 {
		t.Errorf("witness of %d ops, want 2", f.WitnessOps)
	}
	if f.VisualizedOps == 0 || f.VisualizedOps > VisualizeMaxOps || len(f.Visualization) > VisualizeMaxBytes {
		t.Errorf("visualized %d ops, %d bytes", f.VisualizedOps, len(f.Visualization))
	}
	if !strings.Contains(f.VisualizationNote, "window") {
		t.Errorf("note %q", f.VisualizationNote)
	}
	// The window holds the witness.
	for _, op := range f.Witness {
		if !strings.Contains(string(f.Visualization), fmt.Sprintf("%d", op.Time)) {
			t.Errorf("witness op at %d not in the visualization", op.Time)
		}
	}
}

// TestSmallSearchAgreesWithPorcupine: the shrinker's exhaustive search for
// tiny candidates decides exactly as porcupine does, in both modes, on
// random small histories of every kind of operation.
func TestSmallSearchAgreesWithPorcupine(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	kinds := []uint8{kRead, kWrite, kCAS, kCASFail, kCASNotFound}
	var stop atomic.Bool
	legal := 0
	for trial := range 3000 {
		n := 1 + rng.IntN(smallMax)
		kh := &keyHistory{key: "k", in: newInterner()}
		for range n {
			call := rng.Int64N(20)
			o := regOp{kind: kinds[rng.IntN(len(kinds))], a: rng.Int32N(3), b: rng.Int32N(3), call: call, ret: call + rng.Int64N(8)}
			if o.kind == kWrite || o.kind == kCAS {
				o.info = rng.IntN(4) == 0
			}
			if o.info {
				o.ret = 100
			}
			o.av, o.bv = o.a, o.b
			kh.ops = append(kh.ops, o)
		}
		for _, relaxed := range []bool{false, true} {
			s := newShrinker(context.Background(), kh, newRegisterModel(&stop, relaxed), relaxed, time.Now().Add(time.Minute))
			want := porcupine.CheckOperations(s.model, kh.operations(kh.all()))
			if got := s.smallLinearizable(kh.all()); got != want {
				t.Fatalf("trial %d relaxed %v: small search %v, porcupine %v: %+v", trial, relaxed, got, want, kh.ops)
			}
			if want {
				legal++
			}
		}
	}
	t.Logf("%d of 6000 legal", legal)
	if legal < 600 || legal > 5400 {
		t.Errorf("%d of 6000 random histories legal: the test needs both kinds", legal)
	}
}
