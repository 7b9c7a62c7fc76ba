package checkers

import (
	"context"
	"testing"

	"github.com/jepsen-go/jepsen/history"
)

// TestStatsPairing: the stats count dangling invocations and unmatched
// completions by the rules of history.Pairing, on histories the reader
// would refuse (other sources might not).
func TestStatsPairing(t *testing.T) {
	tests := []struct {
		name                string
		ops                 []history.Op
		dangling, unmatched int
		operations          int // register operations the checker sees
	}{
		{"paired", cat(w(1, "k", 1), r(2, "k", 1)), 0, 0, 2},
		{"dangling by a second invoke", cat(inv(1, "write", "k", 1), w(1, "k", 2)), 1, 0, 2},
		{"dangling at the end", cat(w(1, "k", 1), inv(2, "write", "k", 2), inv(3, "write", "k", 3)), 2, 0, 3},
		{"unmatched completion", cat(ok(1, "write", "k", 1), w(2, "k", 1)), 0, 1, 1},
		{"f mismatch: unmatched, the invocation dangles", cat(inv(1, "write", "k", 1), ok(1, "read", "k", 1)), 1, 1, 1},
		{"f mismatch, then its completion", cat(inv(1, "write", "k", 1), ok(1, "read", "k", 1), ok(1, "write", "k", 1)), 0, 1, 1},
		{"nemesis ops are not counted", cat(nem(history.Invoke, "kill", []string{"n1"}), w(1, "k", 1), nem(history.Info, "kill", []string{"n1"}), nem(history.Invoke, "start", nil)), 0, 0, 1},
		{"interleaved processes", cat(inv(1, "write", "k", 1), inv(2, "read", "k", nil), ok(1, "write", "k", 1), ok(2, "read", "k", 1), inv(1, "write", "k", 2)), 1, 0, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := Check(context.Background(), tc.ops, Options{Checker: Linearizable})
			if res.Stats.Dangling != tc.dangling || res.Stats.Unmatched != tc.unmatched {
				t.Errorf("dangling %d, unmatched %d; want %d, %d", res.Stats.Dangling, res.Stats.Unmatched, tc.dangling, tc.unmatched)
			}
			if res.Linear == nil || res.Linear.Operations != tc.operations {
				t.Errorf("operations %+v, want %d", res.Linear, tc.operations)
			}
		})
	}
}
