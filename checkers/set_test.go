package checkers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jepsen-go/jepsen/history"
)

func add(p int, key string, v int, outcome history.Type) []history.Op {
	i := inv(p, "add", key, v)
	if outcome == "" {
		return []history.Op{i} // never completes
	}
	c := history.Op{Type: outcome, Process: history.Client(p), F: "add", Key: key, Value: val(v)}
	if outcome == history.Fail {
		c.Error = history.ErrUnavailable
	}
	return []history.Op{i, c}
}

func finalRead(p int, key string, v any) []history.Op { return r(p, key, v) }

func failedRead(p int, key string) []history.Op {
	return []history.Op{inv(p, "read", key, nil), fail(p, "read", key, nil, history.ErrUnavailable)}
}

func TestSet(t *testing.T) {
	type counts struct{ attempted, acked, lost, unexpected, recovered, corrupted, neverRead int }
	tests := []struct {
		name string
		ops  []history.Op
		want Validity
		c    counts
		says string // part of the first listed element's explanation
	}{
		{"all acknowledged adds survive", cat(
			add(1, "s1", 1, history.OK), add(2, "s2", 2, history.OK),
			finalRead(3, "s1", 1), finalRead(3, "s2", 2)), Valid,
			counts{attempted: 2, acked: 2}, ""},
		{"lost: acknowledged, absent at the end", cat(
			add(1, "s1", 1, history.OK), add(2, "s2", 2, history.OK),
			finalRead(3, "s1", 1), finalRead(3, "s2", nil)), Invalid,
			counts{attempted: 2, acked: 2, lost: 1}, "add of 2 (key s2) by process 2 was acknowledged"},
		{"lost: the last successful read decides", cat(
			add(1, "s1", 1, history.OK), finalRead(3, "s1", 1), failedRead(3, "s1"), finalRead(3, "s1", nil), failedRead(4, "s1")), Invalid,
			counts{attempted: 1, acked: 1, lost: 1}, "found it absent"},
		{"not lost: absent first, present at the end", cat(
			add(1, "s1", 1, history.OK), finalRead(3, "s1", nil), finalRead(3, "s1", 1)), Valid,
			counts{attempted: 1, acked: 1}, ""},
		{"unexpected: failed add present", cat(
			add(1, "s1", 1, history.Fail), finalRead(3, "s1", 1)), Invalid,
			counts{attempted: 1, unexpected: 1}, "failed at"},
		{"failed add absent is fine", cat(
			add(1, "s1", 1, history.Fail), finalRead(3, "s1", nil)), Valid,
			counts{attempted: 1}, ""},
		{"unexpected: never added, present", cat(
			add(1, "s1", 1, history.OK), finalRead(3, "s1", 1), finalRead(3, "s9", 9)), Invalid,
			counts{attempted: 1, acked: 1, unexpected: 1}, "no add of s9 was ever invoked"},
		{"recovered: info add present", cat(
			add(1, "s1", 1, history.Info), add(2, "s2", 2, ""), finalRead(3, "s1", 1), finalRead(3, "s2", 2)), Valid,
			counts{attempted: 2, recovered: 2}, ""},
		{"info add absent is fine", cat(
			add(1, "s1", 1, history.Info), finalRead(3, "s1", nil)), Valid,
			counts{attempted: 1}, ""},
		{"corrupted: read a value nobody added", cat(
			add(1, "s1", 1, history.OK), finalRead(3, "s1", 5)), Invalid,
			counts{attempted: 1, acked: 1, corrupted: 1}, "returned 5"},
		{"acknowledged never read: unknown", cat(
			add(1, "s1", 1, history.OK), add(2, "s2", 2, history.OK), finalRead(3, "s1", 1), failedRead(3, "s2")), Unknown,
			counts{attempted: 2, acked: 2, neverRead: 1}, ""},
		{"failed add never read: valid", cat(
			add(1, "s1", 1, history.OK), add(2, "s2", 2, history.Fail), finalRead(3, "s1", 1)), Valid,
			counts{attempted: 2, acked: 1, neverRead: 1}, ""},
		{"lost beats unknown", cat(
			add(1, "s1", 1, history.OK), add(2, "s2", 2, history.OK), finalRead(3, "s1", nil)), Invalid,
			counts{attempted: 2, acked: 2, lost: 1, neverRead: 1}, ""},
		{"nemesis ops ignored", cat(
			nem(history.Invoke, "kill", "n1"), add(1, "s1", 1, history.OK), nem(history.Info, "kill", "n1"), finalRead(3, "s1", 1)), Valid,
			counts{attempted: 1, acked: 1}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := Check(context.Background(), tc.ops, Options{})
			if res.Workload != WorkloadSet || res.Set == nil {
				t.Fatalf("workload %q, set %v", res.Workload, res.Set)
			}
			s := res.Set
			if res.Valid != tc.want || s.Valid != tc.want {
				t.Errorf("verdict %s, want %s: %s", res.Valid, tc.want, s.Explanation)
			}
			got := counts{s.Attempted, s.Acknowledged, s.Lost, s.Unexpected, s.Recovered, s.Corrupted, s.NeverRead}
			if got != tc.c {
				t.Errorf("counts %+v, want %+v", got, tc.c)
			}
			if tc.says != "" {
				var all []SetElement
				all = append(append(append(all, s.LostElements...), s.UnexpectedElements...), s.CorruptedElements...)
				if len(all) == 0 || !strings.Contains(all[0].Explanation, tc.says) {
					t.Errorf("explanation %v does not say %q", all, tc.says)
				}
			}
		})
	}
}

func TestSetListsCapped(t *testing.T) {
	var parts []any
	for i := range MaxSetElements + 50 {
		parts = append(parts, add(i, fmt.Sprintf("s%d", i), i, history.OK))
	}
	for i := range MaxSetElements + 50 {
		parts = append(parts, finalRead(1000, fmt.Sprintf("s%d", i), nil))
	}
	res := Check(context.Background(), cat(parts...), Options{Workload: WorkloadSet})
	if res.Set.Lost != MaxSetElements+50 || len(res.Set.LostElements) != MaxSetElements {
		t.Errorf("lost %d, listed %d", res.Set.Lost, len(res.Set.LostElements))
	}
}

// onNode sets the node of ops (an add's invocation and completion).
func onNode(node string, ops []history.Op) []history.Op {
	for i := range ops {
		ops[i].Node = node
	}
	return ops
}

// TestSetLostExplanationNamesPowerLoss checks that the explanation of a
// lost element names the power loss (or corruption) that hit the node that
// acknowledged the add, after it did and before the final read, and no
// other.
func TestSetLostExplanationNamesPowerLoss(t *testing.T) {
	pl := func(typ history.Type, nodes ...string) history.Op {
		return nem(typ, history.FPowerLoss, history.Fault{Kind: "power-loss", Targets: nodes})
	}
	start := func(typ history.Type, nodes ...string) history.Op { return nem(typ, history.FStart, nodes) }
	corrupt := history.Fault{Kind: "corrupt", Targets: []string{"n1"}, Corruption: &history.Corruption{File: "wal/1.log", Offset: 4096, Kind: history.CorruptBitFlip, Length: 1}}
	// cat spaces events 1 ms apart: the add is acknowledged at 0.002s.
	tests := []struct {
		name string
		ops  []history.Op
		want string // the whole explanation of the lost element
	}{
		{"power loss of the acknowledging node", cat(
			onNode("n1", add(1, "s1", 1, history.OK)), pl(history.Invoke, "n1"), pl(history.Info, "n1"),
			start(history.Invoke, "n1"), start(history.Info, "n1"), finalRead(3, "s1", nil)),
			"add of 1 (key s1) by process 1 was acknowledged by n1 at 0.002s, but the final read of s1 by process 3 at 0.008s found it absent; n1 lost power at 0.003s, before syncing it."},
		{"power loss of another node", cat(
			onNode("n1", add(1, "s1", 1, history.OK)), pl(history.Invoke, "n2"), pl(history.Info, "n2"), finalRead(3, "s1", nil)),
			"add of 1 (key s1) by process 1 was acknowledged by n1 at 0.002s, but the final read of s1 by process 3 at 0.006s found it absent; n1 kept its power, but n2 lost power at 0.003s, after the acknowledgement."},
		{"power loss of three other nodes", cat(
			onNode("n1", add(1, "s1", 1, history.OK)), pl(history.Invoke, "n2", "n3", "n4"), pl(history.Info, "n2", "n3", "n4"), finalRead(3, "s1", nil)),
			"add of 1 (key s1) by process 1 was acknowledged by n1 at 0.002s, but the final read of s1 by process 3 at 0.006s found it absent; n1 kept its power, but n2, n3 and n4 lost power at 0.003s, after the acknowledgement."},
		{"acknowledging node unknown", cat(
			add(1, "s1", 1, history.OK), pl(history.Invoke, "n2"), pl(history.Info, "n2"), finalRead(3, "s1", nil)),
			"add of 1 (key s1) by process 1 was acknowledged at 0.002s, but the final read of s1 by process 3 at 0.006s found it absent; n2 lost power at 0.003s, after the acknowledgement."},
		{"a corruption of another node is not named", cat(
			onNode("n1", add(1, "s1", 1, history.OK)), nem(history.Invoke, history.FCorrupt, history.Fault{Kind: "corrupt", Targets: []string{"n2"}}),
			nem(history.Info, history.FCorrupt, history.Fault{Kind: "corrupt", Targets: []string{"n2"}}), finalRead(3, "s1", nil)),
			"add of 1 (key s1) by process 1 was acknowledged by n1 at 0.002s, but the final read of s1 by process 3 at 0.006s found it absent."},
		{"power loss over before the acknowledgement", cat(
			pl(history.Invoke, "n1"), pl(history.Info, "n1"), onNode("n1", add(1, "s1", 1, history.OK)), finalRead(3, "s1", nil)),
			"add of 1 (key s1) by process 1 was acknowledged by n1 at 0.004s, but the final read of s1 by process 3 at 0.006s found it absent."},
		{"acknowledged while the power went", cat(
			inv(1, "add", "s1", 1), pl(history.Invoke, "n1"), ok(1, "add", "s1", 1), pl(history.Info, "n1"), finalRead(3, "s1", nil)),
			"add of 1 (key s1) by process 1 was acknowledged at 0.003s, but the final read of s1 by process 3 at 0.006s found it absent; n1 lost power between 0.002s and 0.004s, after the acknowledgement."},
		{"acknowledged by n1 while the power went", cat(
			onNode("n1", []history.Op{inv(1, "add", "s1", 1)}), pl(history.Invoke, "n1"), onNode("n1", []history.Op{ok(1, "add", "s1", 1)}), pl(history.Info, "n1"), finalRead(3, "s1", nil)),
			"add of 1 (key s1) by process 1 was acknowledged by n1 at 0.003s, but the final read of s1 by process 3 at 0.006s found it absent; n1 lost power between 0.002s and 0.004s, before syncing it."},
		{"power loss that failed", cat(
			onNode("n1", add(1, "s1", 1, history.OK)), pl(history.Invoke, "n1"),
			history.Op{Type: history.Info, Process: history.NemesisProcess, F: history.FPowerLoss, Value: val(history.Fault{Kind: "power-loss", Targets: []string{}}), Error: "no such container"},
			finalRead(3, "s1", nil)),
			"add of 1 (key s1) by process 1 was acknowledged by n1 at 0.002s, but the final read of s1 by process 3 at 0.006s found it absent."},
		{"power loss that never completed", cat(
			onNode("n1", add(1, "s1", 1, history.OK)), finalRead(3, "s1", nil), pl(history.Invoke, "n1")),
			"add of 1 (key s1) by process 1 was acknowledged by n1 at 0.002s, but the final read of s1 by process 3 at 0.004s found it absent."},
		{"power loss of every node, never completed", cat(
			onNode("n1", add(1, "s1", 1, history.OK)), pl(history.Invoke, "n1", "n2", "n3"), finalRead(3, "s1", nil)),
			"add of 1 (key s1) by process 1 was acknowledged by n1 at 0.002s, but the final read of s1 by process 3 at 0.005s found it absent; n1 lost power at 0.003s, before syncing it."},
		{"corruption of the acknowledging node", cat(
			onNode("n1", add(1, "s1", 1, history.OK)), nem(history.Invoke, history.FCorrupt, history.Fault{Kind: "corrupt", Targets: []string{"n1"}}),
			nem(history.Info, history.FCorrupt, corrupt), finalRead(3, "s1", nil)),
			"add of 1 (key s1) by process 1 was acknowledged by n1 at 0.002s, but the final read of s1 by process 3 at 0.006s found it absent; n1 was stopped and its file wal/1.log was corrupted (bitflip at 4096) at 0.003s."},
		{"the first of two power losses", cat(
			onNode("n1", add(1, "s1", 1, history.OK)), pl(history.Invoke, "n1"), pl(history.Info, "n1"),
			start(history.Invoke, "n1"), start(history.Info, "n1"), pl(history.Invoke, "n1"), pl(history.Info, "n1"), finalRead(3, "s1", nil)),
			"add of 1 (key s1) by process 1 was acknowledged by n1 at 0.002s, but the final read of s1 by process 3 at 0.010s found it absent; n1 lost power at 0.003s, before syncing it."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := Check(context.Background(), tc.ops, Options{})
			if res.Set == nil || res.Set.Lost != 1 || len(res.Set.LostElements) != 1 {
				t.Fatalf("set %+v, want one lost element", res.Set)
			}
			if got := res.Set.LostElements[0].Explanation; got != tc.want {
				t.Errorf("explanation\n %q\nwant\n %q", got, tc.want)
			}
			wantPL := 0
			if strings.Contains(tc.want, " lost power ") {
				wantPL = 1
			}
			if res.Set.LostAfterPowerLoss != wantPL || strings.Contains(res.Set.Explanation, "1 of the lost elements was acknowledged before a power loss") != (wantPL == 1) {
				t.Errorf("lost after power loss %d, want %d; %s", res.Set.LostAfterPowerLoss, wantPL, res.Set.Explanation)
			}
		})
	}
}
