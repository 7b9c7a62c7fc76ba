package checkers

import (
	"fmt"
	"sort"
	"strings"

	"github.com/jepsen-go/jepsen/history"
)

// Problem is something that kept a run from testing the store as it meant
// to: a kind of operation that never succeeded, one that mostly got the
// same answer the protocol does not allow, a node that died on its own. A
// result with a problem is never valid: Check makes a valid verdict
// unknown (exit 3), since the history says little about consistency. An
// invalid verdict stays invalid: what was checked still proves a
// violation.
type Problem struct {
	// Kind is ProblemNeverOK, ProblemStoreError or ProblemNodeExit.
	Kind string `json:"kind"`
	// F is the operation concerned (read, write, cas, add), if any.
	F string `json:"f,omitempty"`
	// Node is the node concerned, if any.
	Node string `json:"node,omitempty"`
	// Count of Total operations of F had the problem.
	Count int `json:"count,omitempty"`
	Total int `json:"total,omitempty"`
	// Error is the shared error, or one example.
	Error string `json:"error,omitempty"`
	// Example is the history index of one completion with the problem
	// (-1 if none).
	Example int64 `json:"example"`
	// Time is when it happened, in ns since the test started (node exits).
	Time int64 `json:"time,omitempty"`
	// Log holds a dead node's last log lines.
	Log []string `json:"log,omitempty"`
	// Message says it in one line, with what to fix.
	Message string `json:"message"`
}

// Problem kinds.
const (
	// ProblemNeverOK is an operation kind invoked at least minOps times
	// that never once got an answer from the store.
	ProblemNeverOK = "never-ok"
	// ProblemStoreError is an operation kind most of whose completions
	// carry one same error that no fault explains (a malformed body, an
	// unexpected status): the store and the protocol disagree.
	ProblemStoreError = "store-error"
	// ProblemNodeExit is a node whose process ended when no fault killed
	// it (the harness adds these; the history does not show them).
	ProblemNodeExit = "node-exit"
)

// Thresholds of the problems. A correct store under any fault mix never
// meets them: faults cause timeouts, refused connections and
// unavailability, which faultLike excludes, and a healed cluster answers
// most operations in every run.
const (
	// minOps is the fewest completions of an f that are judged.
	minOps = 10
	// storeErrorShare is the share of an f's completions one store-side
	// error must exceed.
	storeErrorShare = 0.5
)

// faultWords mark errors that faults (partitions, kills, pauses, slow
// nodes) cause in a correct store: they never make a problem.
var faultWords = []string{
	"timeout", "timed out", "deadline", "refused", "reset", "closed", "canceled", "cancelled",
	"unavailable", "is down", "cannot connect", "cannot reach", "broken connection", "eof",
	"no route", "unreachable", "leader", "not ready", "loading", "readonly", "masterdown",
	"clusterdown", "noreplicas", "tryagain", "busy", "i/o",
}

// faultLike reports whether err is the kind of error faults cause.
func faultLike(err string) bool {
	e := strings.ToLower(err)
	for _, w := range faultWords {
		if strings.Contains(e, w) {
			return true
		}
	}
	return false
}

// answered reports whether a completion shows the store evaluated the op:
// ok, a cas that found another value or no value, or a fail with no error
// at all (a definite "it did not happen", as Knossos histories write a cas
// that found another value; the protocols here always say why).
func answered(op *history.Op) bool {
	return op.Type == history.OK || op.Type == history.Fail && (op.Error == "" || op.Error == history.ErrPreconditionFailed || op.Error == history.ErrNotFound)
}

// untested finds the ops that never succeeded, or mostly got one same
// store-side error, among the client completions of fs.
func untested(ops []history.Op, fs []string) []Problem {
	type tally struct {
		total, answered int
		errs            map[string]int
		first           map[string]int64
		lastErr         string
		lastIdx         int64
	}
	by := map[string]*tally{}
	for i := range ops {
		op := &ops[i]
		if !op.IsClient() || op.Type == history.Invoke {
			continue
		}
		t := by[op.F]
		if t == nil {
			t = &tally{errs: map[string]int{}, first: map[string]int64{}, lastIdx: -1}
			by[op.F] = t
		}
		t.total++
		if answered(op) {
			t.answered++
			continue
		}
		if op.Error != "" {
			t.lastErr, t.lastIdx = op.Error, int64(i)
		}
		if op.Error == "" || faultLike(op.Error) {
			continue
		}
		// Details after "; " (the body's first bytes) differ from op to
		// op; the cause before them is what repeats.
		cause, _, _ := strings.Cut(op.Error, "; ")
		t.errs[cause]++
		if _, ok := t.first[cause]; !ok {
			t.first[cause] = int64(i)
		}
	}
	var out []Problem
	for _, f := range fs {
		t := by[f]
		if t == nil || t.total < minOps {
			continue
		}
		var top string
		for e, n := range t.errs {
			if top == "" || n > t.errs[top] || n == t.errs[top] && e < top {
				top = e
			}
		}
		switch {
		case top != "" && float64(t.errs[top]) > storeErrorShare*float64(t.total):
			ex := t.first[top]
			msg := fmt.Sprintf("%d of %d %s: %s", t.errs[top], t.total, plural(f), top)
			if full := ops[ex].Error; full != top {
				msg += " (for example: " + strings.TrimPrefix(full, top+"; ") + ")"
			}
			out = append(out, Problem{Kind: ProblemStoreError, F: f, Count: t.errs[top], Total: t.total, Error: ops[ex].Error, Example: ex,
				Message: msg + "; the store's answers break the protocol: see docs/protocol.md"})
		case t.answered == 0:
			msg := fmt.Sprintf("none of %d %s succeeded", t.total, plural(f))
			if t.lastErr != "" {
				msg += "; the last error: " + t.lastErr
			}
			out = append(out, Problem{Kind: ProblemNeverOK, F: f, Count: t.total, Total: t.total, Error: t.lastErr, Example: t.lastIdx, Message: msg})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].F < out[j].F })
	return out
}

// plural names a number of ops of f: "reads", "writes", "cas ops".
func plural(f string) string {
	switch f {
	case history.FCAS:
		return "cas ops"
	case history.FAdd:
		return "adds"
	}
	return f + "s"
}

// AddProblems appends problems to res and makes a valid verdict unknown.
func (res *Result) AddProblems(ps ...Problem) {
	res.Problems = append(res.Problems, ps...)
	if len(res.Problems) > 0 && res.Valid == Valid {
		res.Valid = Unknown
	}
}
