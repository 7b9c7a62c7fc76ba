package harness

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestAskLeader(t *testing.T) {
	nodes := []string{"n1", "n2", "n3", "n4", "n5"}
	const hang = "hang" // the node never answers, like a paused one
	cases := []struct {
		name    string
		answers []string // per node: a leader, "" (no answer), or hang
		want    string
		wantOK  bool
		// settled: every hanging ask was cancelled because a majority
		// answered, not because the lookup timed out.
		settled bool
	}{
		{"all agree", []string{"n3", "n3", "n3", "n3", "n3"}, "n3", true, true},
		{"a paused node does not stall it", []string{hang, "n3", "n3", "n3", "n3"}, "n3", true, true},
		{"two paused nodes", []string{hang, hang, "n3", "n3", "n3"}, "n3", true, true},
		{"isolated old leader outvoted", []string{"n1", "n4", "n4", "n4", ""}, "n4", true, true},
		{"election under way: the one claimant", []string{"n1", "", "", "", ""}, "n1", true, false},
		{"no majority: most named", []string{"n2", "n5", "n5", "", hang}, "n5", true, false},
		{"no majority, a tie: the earlier node's", []string{"", "n5", "n2", "n2", "n5"}, "n5", true, false},
		{"nobody knows", []string{"", "", "", "", ""}, "", false, false},
		{"all paused", []string{hang, hang, hang, hang, hang}, "", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var hangErrs []error
			ask := func(ctx context.Context, node string) (string, bool) {
				a := tc.answers[node[1]-'1']
				if a == hang {
					<-ctx.Done()
					mu.Lock()
					hangErrs = append(hangErrs, ctx.Err())
					mu.Unlock()
					return "", false
				}
				return a, a != ""
			}
			got, ok := askLeader(context.Background(), nodes, len(nodes), 200*time.Millisecond, ask)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("askLeader = %q, %v; want %q, %v", got, ok, tc.want, tc.wantOK)
			}
			if tc.settled {
				time.Sleep(10 * time.Millisecond) // let the hanging asks record why they ended
				mu.Lock()
				defer mu.Unlock()
				for _, err := range hangErrs {
					if !errors.Is(err, context.Canceled) {
						t.Errorf("a hanging node held the lookup until %v", err)
					}
				}
			}
		})
	}
}
