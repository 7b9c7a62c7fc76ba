package checkers

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jepsen-go/jepsen/history"
)

// gen builds a register history: n reads and n writes on key k, each read
// completing as readType (ok or fail) with readErr, each write ok.
func gen(n int, readType history.Type, readErr string) []history.Op {
	var ops []history.Op
	t := int64(0)
	add := func(op history.Op) {
		t += 1000
		op.Time, op.Index = t, int64(len(ops))
		ops = append(ops, op)
	}
	for i := 0; i < n; i++ {
		add(history.Op{Type: history.Invoke, Process: history.Client(0), F: history.FWrite, Key: "k", Value: json.RawMessage("1")})
		add(history.Op{Type: history.OK, Process: history.Client(0), F: history.FWrite, Key: "k", Value: json.RawMessage("1")})
		add(history.Op{Type: history.Invoke, Process: history.Client(1), F: history.FRead, Key: "k"})
		c := history.Op{Type: readType, Process: history.Client(1), F: history.FRead, Key: "k", Error: readErr}
		if readType == history.OK {
			c.Value = json.RawMessage("1")
		}
		add(c)
	}
	return ops
}

func TestUntested(t *testing.T) {
	tests := []struct {
		name      string
		ops       []history.Op
		wantValid Validity
		wantKind  string
		wantMsg   string
	}{
		{"healthy", gen(20, history.OK, ""), Valid, "", ""},
		{"reads time out under faults", gen(20, history.Fail, "timeout after 1s before a connection was made"), Unknown, ProblemNeverOK, "none of 20 reads succeeded"},
		{"malformed bodies", gen(20, history.Fail, `malformed body: expected a JSON object {"value": V}, got a JSON number`), Unknown, ProblemStoreError,
			`20 of 20 reads: malformed body: expected a JSON object {"value": V}, got a JSON number`},
		{"too few to judge", gen(5, history.Fail, "status 500"), Valid, "", ""},
		{"a fail without an error is an answer (Knossos's failed cas)", gen(20, history.Fail, ""), Valid, "", ""},
		{"refused connections are faults", append(gen(20, history.OK, ""), gen(30, history.Fail, "connection refused")[2:]...), Valid, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.ops {
				tt.ops[i].Index = int64(i)
			}
			res := Check(context.Background(), tt.ops, Options{Checker: Linearizable})
			if res.Valid != tt.wantValid {
				t.Errorf("valid = %v, want %v (problems %+v)", res.Valid, tt.wantValid, res.Problems)
			}
			if tt.wantKind == "" {
				if len(res.Problems) != 0 {
					t.Errorf("problems = %+v, want none", res.Problems)
				}
				return
			}
			if len(res.Problems) != 1 || res.Problems[0].Kind != tt.wantKind || !strings.Contains(res.Problems[0].Message, tt.wantMsg) {
				t.Fatalf("problems = %+v, want one %s saying %q", res.Problems, tt.wantKind, tt.wantMsg)
			}
			if ex := res.Problems[0].Example; ex < 0 || tt.ops[ex].F != history.FRead || tt.ops[ex].Type == history.Invoke {
				t.Errorf("example %d is not a read's completion", ex)
			}
		})
	}
}

func TestProblemsKeepInvalid(t *testing.T) {
	res := &Result{Valid: Invalid}
	res.AddProblems(Problem{Kind: ProblemNodeExit, Node: "n1"})
	if res.Valid != Invalid {
		t.Errorf("a problem turned invalid into %v", res.Valid)
	}
}

func TestFaultLike(t *testing.T) {
	for _, e := range []string{"timeout after 1s", "connection reset by the node", "unavailable", "node n1 is down (no address to send to)",
		"etcdserver: request timed out", "context deadline exceeded", "READONLY You can't write against a read only replica."} {
		if !faultLike(e) {
			t.Errorf("%q is not taken for a fault's error", e)
		}
	}
	for _, e := range []string{"malformed body: expected a JSON object", "status 201 (expected 200, 204 or 503)", "response body larger than 64 KiB"} {
		if faultLike(e) {
			t.Errorf("%q is taken for a fault's error", e)
		}
	}
}
