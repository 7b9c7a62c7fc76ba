package reports

import (
	"testing"

	"github.com/jepsen-go/jepsen/history"
)

// TestAnalyzePairing: the report pairs by the rules of history.Pairing:
// latency points for paired client ops, a count of dangling ones, and a
// nemesis row per action, one that never completed marked so.
func TestAnalyzePairing(t *testing.T) {
	c := func(typ history.Type, p int, f string, ts int64) history.Op {
		return history.Op{Type: typ, Process: history.Client(p), F: f, Key: "k", Time: ts}
	}
	type row struct {
		f          string
		start, end int64
	}
	tests := []struct {
		name     string
		ops      []history.Op
		points   int
		dangling int
		rows     []row
	}{
		{"paired", []history.Op{c(history.Invoke, 0, "read", 1), c(history.OK, 0, "read", 2)}, 1, 0, nil},
		{"dangling by a second invoke", []history.Op{c(history.Invoke, 0, "write", 1), c(history.Invoke, 0, "read", 2), c(history.OK, 0, "read", 3)}, 1, 1, nil},
		{"dangling at the end", []history.Op{c(history.Invoke, 0, "write", 1), c(history.Invoke, 1, "write", 2)}, 0, 2, nil},
		{"unmatched completion", []history.Op{c(history.OK, 0, "read", 1)}, 0, 0, nil},
		{"f mismatch", []history.Op{c(history.Invoke, 0, "write", 1), c(history.OK, 0, "read", 2)}, 0, 1, nil},
		{"nemesis actions", []history.Op{nem(history.Invoke, "kill", []string{"n1"}, 1), c(history.Invoke, 0, "read", 2),
			nem(history.Info, "kill", []string{"n1"}, 3), c(history.OK, 0, "read", 4), nem(history.Invoke, "start", []string{"n1"}, 5)},
			1, 0, []row{{"kill", 1, 3}, {"start", 5, -1}}},
		{"a nemesis action cut short by the next", []history.Op{nem(history.Invoke, "kill", []string{"n1"}, 1), nem(history.Invoke, "pause", []string{"n2"}, 2),
			nem(history.Info, "pause", []string{"n2"}, 3)}, 0, 0, []row{{"kill", 1, -1}, {"pause", 2, 3}}},
		{"a nemesis completion of another action", []history.Op{nem(history.Invoke, "kill", []string{"n1"}, 1), nem(history.Info, "pause", []string{"n2"}, 2)},
			0, 0, []row{{"pause", 2, 2}, {"kill", 1, -1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := analyze(feed(tc.ops), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.points) != tc.points || a.dangling != tc.dangling {
				t.Errorf("%d points, %d dangling; want %d, %d", len(a.points), a.dangling, tc.points, tc.dangling)
			}
			var rows []row
			for _, r := range a.rows {
				rows = append(rows, row{r.F, r.Start, r.End})
			}
			if len(rows) != len(tc.rows) {
				t.Fatalf("rows %v, want %v", rows, tc.rows)
			}
			for i := range rows {
				if rows[i] != tc.rows[i] {
					t.Errorf("rows %v, want %v", rows, tc.rows)
					break
				}
			}
		})
	}
}
