package checkers

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/anishathalye/porcupine"
	"github.com/jepsen-go/jepsen/history"
)

// The direct baseline: porcupine on the same operations with a plain
// model in the style of porcupine's own etcd test, the history converted
// outside the timed loop.

type directInput struct {
	f        uint8 // 0 read, 1 write, 2 cas
	from, to int
}

type directOutput struct {
	ok, unknown bool // cas succeeded; outcome unknown
	exists      bool // read found a value
	value       int
}

var directModel = porcupine.Model{
	Init: func() any { return -1 }, // -1: absent
	Step: func(state, input, output any) (bool, any) {
		st := state.(int)
		in := input.(directInput)
		out := output.(directOutput)
		switch in.f {
		case 0:
			return (!out.exists && st == -1) || (out.exists && st == out.value), st
		case 1:
			return true, in.from
		}
		if in.from == st {
			return out.ok || out.unknown, in.to
		}
		return !out.ok || out.unknown, st
	},
}

// directOperations converts a single-key register history of small integer
// values to porcupine operations: failed and info reads and failures other
// than precondition-failed are dropped, info ops return after every other
// op.
func directOperations(tb testing.TB, ops []history.Op) []porcupine.Operation {
	num := func(raw json.RawMessage) (int, bool) {
		if history.IsNull(raw) {
			return -1, false
		}
		var n int
		if err := json.Unmarshal(raw, &n); err != nil {
			tb.Fatalf("value %s: %v", raw, err)
		}
		return n, true
	}
	var end int64
	for _, op := range ops {
		end = max(end, op.Time+1)
	}
	pending := map[history.Process]history.Op{}
	var out []porcupine.Operation
	add := func(inv history.Op, comp *history.Op) {
		ret, typ := end, history.Info
		if comp != nil && comp.Type != history.Info {
			ret, typ = comp.Time, comp.Type
		}
		var in directInput
		var o directOutput
		switch inv.F {
		case history.FRead:
			if typ != history.OK {
				return
			}
			o.value, o.exists = num(comp.Value)
		case history.FWrite:
			if typ == history.Fail {
				return
			}
			in.f = 1
			in.from, _ = num(inv.Value)
			o.unknown = typ == history.Info
		case history.FCAS:
			if typ == history.Fail && comp.Error != history.ErrPreconditionFailed {
				return
			}
			var pair [2]int
			if err := json.Unmarshal(inv.Value, &pair); err != nil {
				tb.Fatalf("cas value %s: %v", inv.Value, err)
			}
			in = directInput{f: 2, from: pair[0], to: pair[1]}
			o.ok, o.unknown = typ == history.OK, typ == history.Info
		}
		out = append(out, porcupine.Operation{ClientId: inv.Process.ID, Input: in, Call: inv.Time, Output: o, Return: ret})
	}
	for _, op := range ops {
		if op.Process.Nemesis {
			continue
		}
		if op.Type == history.Invoke {
			pending[op.Process] = op
			continue
		}
		inv := pending[op.Process]
		delete(pending, op.Process)
		add(inv, &op)
	}
	for _, inv := range pending {
		add(inv, nil)
	}
	return out
}

// BenchmarkEtcdPorcupineDirect is the baseline of BenchmarkEtcdJepsen:
// porcupine alone on the same 102 histories. Both report CPU seconds per
// run (cpu-s/op), which unlike wall time do not grow when other processes
// load the machine.
func BenchmarkEtcdPorcupineDirect(b *testing.B) {
	cases := loadEtcd(b)
	hs := make([][]porcupine.Operation, len(cases))
	for i, c := range cases {
		hs[i] = directOperations(b, c.ops)
	}
	c0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		for i, h := range hs {
			ok := porcupine.CheckOperations(directModel, h)
			if ok != (cases[i].want == Valid) {
				b.Fatalf("%s: porcupine says linearizable=%v, want %s", cases[i].name, ok, cases[i].want)
			}
		}
	}
	b.ReportMetric((cpuTime()-c0).Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkEtcdJepsen checks the 102 etcd histories with Check: verdict,
// witness, explanation and visualization for each of the 79 invalid ones.
// Target: at most 1.5 times BenchmarkEtcdPorcupineDirect.
func BenchmarkEtcdJepsen(b *testing.B) {
	cases := loadEtcd(b)
	c0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		for _, c := range cases {
			if res := Check(context.Background(), c.ops, Options{}); res.Valid != c.want {
				b.Fatalf("%s: verdict %s, want %s", c.name, res.Valid, c.want)
			}
		}
	}
	b.ReportMetric((cpuTime()-c0).Seconds()/float64(b.N), "cpu-s/op")
}
