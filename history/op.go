// Package history defines the operation record of a test run and reads and
// writes it as history JSONL v1: one JSON object per line, in the order the
// events happened (see docs/history.md).
//
// An operation is recorded twice: once when a process invokes it (type
// invoke) and once when it completes (ok, fail or info). Nemesis actions use
// the pseudo-process "nemesis".
package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Type is the kind of event an Op records.
type Type string

// The four event types of history JSONL v1.
const (
	// Invoke marks the start of an operation.
	Invoke Type = "invoke"
	// OK means the operation happened, with the recorded result.
	OK Type = "ok"
	// Fail means the operation definitely did not take effect.
	Fail Type = "fail"
	// Info means the outcome is unknown: the operation may take effect at
	// any moment after its invocation, or never.
	Info Type = "info"
)

// Valid reports whether t is one of the four known types.
func (t Type) Valid() bool {
	switch t {
	case Invoke, OK, Fail, Info:
		return true
	}
	return false
}

// Function names used by the workloads. Nemesis actions use their own names
// (start-partition, kill, ...).
const (
	FRead  = "read"
	FWrite = "write"
	FCAS   = "cas"
	FAdd   = "add"
)

// Error strings with a meaning the checkers rely on.
const (
	// ErrPreconditionFailed is the error of a cas that found another value.
	ErrPreconditionFailed = "precondition-failed"
	// ErrNotFound is the error of a cas on an absent key.
	ErrNotFound = "not-found"
	// ErrUnavailable is the error of an op the store refused with 503.
	ErrUnavailable = "unavailable"
)

// Process identifies who performed an operation: a logical client process
// (a non-negative integer) or the nemesis. In JSON it is an integer or the
// string "nemesis".
type Process struct {
	// ID is the client process number; meaningless when Nemesis is set.
	ID int
	// Nemesis is true for fault-injection operations.
	Nemesis bool
}

// NemesisProcess is the process of every nemesis operation.
var NemesisProcess = Process{Nemesis: true}

// Client returns the client process with number id.
func Client(id int) Process { return Process{ID: id} }

// String returns the process number, or "nemesis".
func (p Process) String() string {
	if p.Nemesis {
		return "nemesis"
	}
	return strconv.Itoa(p.ID)
}

// MarshalJSON encodes a client process as a number and the nemesis as
// the string "nemesis".
func (p Process) MarshalJSON() ([]byte, error) {
	if p.Nemesis {
		return []byte(`"nemesis"`), nil
	}
	return strconv.AppendInt(nil, int64(p.ID), 10), nil
}

// UnmarshalJSON accepts a non-negative integer or the string "nemesis".
func (p *Process) UnmarshalJSON(b []byte) error {
	if string(b) == `"nemesis"` {
		*p = NemesisProcess
		return nil
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 {
		return fmt.Errorf(`process must be a non-negative integer or "nemesis", got %q`, truncate(b, 40))
	}
	*p = Process{ID: n}
	return nil
}

// Op is one event of a history: the invocation or the completion of an
// operation. Field meanings are those of history JSONL v1.
type Op struct {
	// Index is the position of the event in the history, from 0.
	Index int64 `json:"index"`
	// Type says whether this is an invocation or which kind of completion.
	Type Type `json:"type"`
	// Process is the logical process that performed the operation.
	Process Process `json:"process"`
	// F is the operation: read, write, cas, add, or a nemesis action.
	F string `json:"f"`
	// Key is the key a register or set op touched; empty for nemesis ops.
	Key string `json:"key,omitempty"`
	// Value is the op's argument or result as raw JSON: for write the value,
	// for cas [from, to], for read null on invoke and the value read (null =
	// absent) on ok. Nil means JSON null.
	Value json.RawMessage `json:"value"`
	// Time is nanoseconds since the test started, from a monotonic clock.
	Time int64 `json:"time"`
	// Node is the node the client talked to, if known.
	Node string `json:"node,omitempty"`
	// Error says why a fail or info happened.
	Error string `json:"error,omitempty"`
}

// IsNull reports whether v is absent or the JSON literal null.
func IsNull(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) == 0 || string(v) == "null"
}

// CASPair splits a cas value [from, to] into its two elements.
func CASPair(v json.RawMessage) (from, to json.RawMessage, err error) {
	var pair []json.RawMessage
	if err := json.Unmarshal(v, &pair); err != nil || len(pair) != 2 {
		return nil, nil, fmt.Errorf("cas value must be a pair [from, to], got %q", truncate(v, 40))
	}
	return pair[0], pair[1], nil
}

// MustValue encodes v as JSON for an Op's Value. It panics only if v cannot
// be encoded (a programming error, such as a channel).
func MustValue(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("history: value %v cannot be encoded: %v", v, err))
	}
	return b
}

// IsClient reports whether the op was performed by a client process.
func (o *Op) IsClient() bool { return !o.Process.Nemesis }

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
