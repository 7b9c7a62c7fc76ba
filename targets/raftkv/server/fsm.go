package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/raft"
)

// Operation names carried in the Raft log.
const (
	opGet = "get"
	opPut = "put"
	opCAS = "cas"
)

// command is one entry of the Raft log.
type command struct {
	Op    string          `json:"op"`
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value,omitempty"`
	From  json.RawMessage `json:"from,omitempty"`
	To    json.RawMessage `json:"to,omitempty"`
}

// result is what the state machine answers to a command.
type result struct {
	Found   bool            // the key existed (before the command)
	Value   json.RawMessage // get: the value; cas: the value before
	Swapped bool            // cas: the swap happened
}

// fsm is the replicated key-value map. Values are kept as compact raw JSON.
type fsm struct {
	mu   sync.RWMutex
	data map[string]json.RawMessage
}

func newFSM() *fsm {
	return &fsm{data: map[string]json.RawMessage{}}
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any {
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return fmt.Errorf("decode log entry %d: %w", l.Index, err)
	}
	return f.apply(c)
}

func (f *fsm) apply(c command) any {
	switch c.Op {
	case opGet:
		v, ok := f.get(c.Key)
		return &result{Found: ok, Value: v}
	case opPut:
		f.mu.Lock()
		defer f.mu.Unlock()
		old, ok := f.data[c.Key]
		f.data[c.Key] = c.Value
		return &result{Found: ok, Value: old}
	case opCAS:
		f.mu.Lock()
		defer f.mu.Unlock()
		old, ok := f.data[c.Key]
		if !ok {
			return &result{}
		}
		if !valuesEqual(old, c.From) {
			return &result{Found: true, Value: old}
		}
		f.data[c.Key] = c.To
		return &result{Found: true, Value: old, Swapped: true}
	default:
		return fmt.Errorf("unknown operation %q in log entry", c.Op)
	}
}

// get reads the local state, whatever its staleness.
func (f *fsm) get(key string) (json.RawMessage, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	v, ok := f.data[key]
	return v, ok
}

// Snapshot implements raft.FSM.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	cp := make(map[string]json.RawMessage, len(f.data))
	for k, v := range f.data {
		cp[k] = v // values are never mutated in place
	}
	return &snapshot{data: cp}, nil
}

// Restore implements raft.FSM.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data := map[string]json.RawMessage{}
	if err := json.NewDecoder(rc).Decode(&data); err != nil {
		return fmt.Errorf("decode snapshot: %w", err)
	}
	f.mu.Lock()
	f.data = data
	f.mu.Unlock()
	return nil
}

type snapshot struct {
	data map[string]json.RawMessage
}

// Persist implements raft.FSMSnapshot.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.data); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("close snapshot: %w", err)
	}
	return nil
}

// Release implements raft.FSMSnapshot.
func (s *snapshot) Release() {}

// valuesEqual compares two JSON values canonically: object key order and
// whitespace do not matter, and numbers compare by numeric value (1 == 1.0).
func valuesEqual(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	va, err := decodeValue(a)
	if err != nil {
		return false
	}
	vb, err := decodeValue(b)
	if err != nil {
		return false
	}
	return jsonEqual(va, vb)
}

func decodeValue(raw json.RawMessage) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		return ok && numbersEqual(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !jsonEqual(xv, yv) {
				return false
			}
		}
		return true
	default:
		return false
	}
}

// numbersEqual compares two JSON numbers exactly, falling back to float64
// for numbers with huge exponents (which big.Rat would expand in memory).
func numbersEqual(x, y json.Number) bool {
	if x == y {
		return true
	}
	if hugeExponent(string(x)) || hugeExponent(string(y)) {
		fx, err1 := strconv.ParseFloat(string(x), 64)
		fy, err2 := strconv.ParseFloat(string(y), 64)
		return err1 == nil && err2 == nil && fx == fy
	}
	rx, ok1 := new(big.Rat).SetString(string(x))
	ry, ok2 := new(big.Rat).SetString(string(y))
	return ok1 && ok2 && rx.Cmp(ry) == 0
}

func hugeExponent(s string) bool {
	i := strings.IndexAny(s, "eE")
	if i < 0 {
		return false
	}
	e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
	return err != nil || e > 400 || e < -400
}
