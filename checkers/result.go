package checkers

import (
	"fmt"
	"time"

	"github.com/jepsen-go/jepsen/history"
)

// Validity is a checker's verdict. It encodes in JSON as true (valid),
// false (invalid) or the string "unknown". The zero value is Unknown, so a
// verdict that was never set is never mistaken for valid.
type Validity int

// The three verdicts.
const (
	// Unknown means the checker could not decide: it ran out of time, was
	// cancelled, or lacks the observations it needs.
	Unknown Validity = iota
	// Valid means no violation exists in the history.
	Valid
	// Invalid means the history proves a violation.
	Invalid
)

// String returns "valid", "invalid" or "unknown".
func (v Validity) String() string {
	switch v {
	case Valid:
		return "valid"
	case Invalid:
		return "invalid"
	}
	return "unknown"
}

// MarshalJSON encodes Valid as true, Invalid as false and Unknown as
// "unknown".
func (v Validity) MarshalJSON() ([]byte, error) {
	switch v {
	case Valid:
		return []byte("true"), nil
	case Invalid:
		return []byte("false"), nil
	}
	return []byte(`"unknown"`), nil
}

// UnmarshalJSON accepts true, false and "unknown".
func (v *Validity) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true":
		*v = Valid
	case "false":
		*v = Invalid
	case `"unknown"`:
		*v = Unknown
	default:
		return fmt.Errorf(`validity must be true, false or "unknown", got %s`, clip(b, 20))
	}
	return nil
}

// combine returns the overall verdict of two parts: invalid if either is
// invalid, else unknown if either is unknown, else valid.
func combine(a, b Validity) Validity {
	switch {
	case a == Invalid || b == Invalid:
		return Invalid
	case a == Unknown || b == Unknown:
		return Unknown
	}
	return Valid
}

// Options configures Check. The zero value is usable.
type Options struct {
	// Checker judges the history; nil means the checker named Workload.
	Checker *Checker
	// Workload names the checker when Checker is nil ("register", "set");
	// "" detects it from the ops (Detect).
	Workload string
	// Timeout is the time budget of the whole check, counterexample
	// shrinking included. A key whose check does not finish in time is
	// unknown. 0 means DefaultTimeout.
	Timeout time.Duration
	// Workers is how many keys are checked in parallel. 0 means
	// runtime.GOMAXPROCS(0).
	Workers int
}

// DefaultTimeout is the time budget of a check when Options.Timeout is 0.
const DefaultTimeout = 60 * time.Second

// Result is the outcome of Check. It encodes as the results.json of a run
// (see the package documentation for the schema).
type Result struct {
	// Valid is the overall verdict.
	Valid Validity `json:"valid"`
	// Workload is the workload that was checked: "register" or "set".
	Workload string `json:"workload"`
	// Ops is the number of events (history lines) given to Check.
	Ops int `json:"ops"`
	// Keys is the number of distinct keys client operations touched.
	Keys int `json:"keys"`
	// Error is set when the check could not run at all (for example an
	// unknown workload); Valid is then Unknown. Callers should treat it as
	// trouble rather than as an unknown verdict.
	Error string `json:"error,omitempty"`
	// Linear is the linearizability result of a register workload.
	Linear *LinearResult `json:"linear,omitempty"`
	// Set is the result of a set workload.
	Set *SetResult `json:"set,omitempty"`
	// Stats counts the history's events.
	Stats Stats `json:"stats"`
	// Interrupted says when the run was interrupted ("interrupted at
	// 23.4 s"): the history is a prefix of the planned one.
	Interrupted string `json:"interrupted,omitempty"`
	// Problems are what kept the run from testing the store (see
	// Problem); with any, the verdict is not valid.
	Problems []Problem `json:"problems,omitempty"`
	// Seconds is how long the check took.
	Seconds float64 `json:"seconds"`
}

// Stats counts a history's events.
type Stats struct {
	// ByF counts events by f, then by type: {"read": {"invoke": 10, "ok": 9, "info": 1}}.
	ByF map[string]map[history.Type]int `json:"by_f"`
	// Nemesis is the number of nemesis events.
	Nemesis int `json:"nemesis"`
	// Dangling is the number of invocations with no completion (treated as info).
	Dangling int `json:"dangling"`
	// Unmatched is the number of completions with no matching invocation
	// (ignored; the history reader rejects them, so this is 0 for read files).
	Unmatched int `json:"unmatched"`
	// Ignored is the number of client events whose f does not belong to the
	// workload (for example an add in a register history); they are ignored.
	Ignored int `json:"ignored"`
}

// LinearResult is the linearizability verdict of a register history, key by
// key.
type LinearResult struct {
	// Valid is invalid if any key is, else unknown if any key is, else valid.
	Valid Validity `json:"valid"`
	// Keys is the number of keys checked.
	Keys int `json:"keys"`
	// ValidKeys, InvalidKeys and UnknownKeys count keys by verdict.
	ValidKeys   int `json:"valid_keys"`
	InvalidKeys int `json:"invalid_keys"`
	UnknownKeys int `json:"unknown_keys"`
	// Operations is the number of operations checked (after dropping failed
	// and info reads and failures that are not observations).
	Operations int `json:"operations"`
	// Dropped counts operations that have no effect and were not checked,
	// by reason: "failed-read", "info-read", "failed" (a fail that is not an
	// observation).
	Dropped map[string]int `json:"dropped"`
	// Failures has one entry per invalid key, sorted by key.
	Failures []KeyFailure `json:"failures"`
	// Unknown has one entry per key with no verdict, sorted by key.
	Unknown []UnknownKey `json:"unknown"`
}

// KeyFailure explains why one key is not linearizable.
type KeyFailure struct {
	// Key is the key.
	Key string `json:"key"`
	// Operations is the number of the key's operations that were checked.
	Operations int `json:"operations"`
	// Witness is a small sub-history that is not linearizable by itself and
	// proves the violation: the invocation and completion events of its
	// operations, in history order (a dangling invocation has no
	// completion). It is itself a valid history JSONL v1 fragment.
	Witness []history.Op `json:"witness"`
	// WitnessOps is the number of operations in Witness.
	WitnessOps int `json:"witness_ops"`
	// Minimal is true when no single operation can be removed from the
	// witness with the rest still proving the violation; false when
	// shrinking ran out of its budget first.
	Minimal bool `json:"minimal"`
	// Explanation says in one or two sentences why the witness is
	// impossible, naming the key, the processes and the times (seconds
	// since the start of the test).
	Explanation string `json:"explanation"`
	// ImpossibleIndex is the history index of the completion event of the
	// witness operation the explanation says cannot be explained (the
	// stale read, the cas that could not have failed); nil when the
	// explanation lists the witness instead.
	ImpossibleIndex *int64 `json:"impossible_index,omitempty"`
	// Visualization is porcupine's interactive HTML view of the key's
	// operations (or of a window of them around the witness, see
	// VisualizationNote), with the witness marked. Nil if it could not be
	// made in time. Not part of results.json; reports write it to a file.
	Visualization []byte `json:"-"`
	// VisualizedOps is the number of operations shown in Visualization.
	VisualizedOps int `json:"visualized_ops"`
	// VisualizationNote says what Visualization shows when it is not the
	// whole key, or why it is missing.
	VisualizationNote string `json:"visualization_note,omitempty"`
}

// UnknownKey is a key with no verdict.
type UnknownKey struct {
	// Key is the key.
	Key string `json:"key"`
	// Operations is the number of the key's operations.
	Operations int `json:"operations"`
	// Reason says why there is no verdict, e.g. "timed out after 1.2s".
	Reason string `json:"reason"`
}
