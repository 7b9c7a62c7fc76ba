package targets

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/jepsen-go/jepsen/history"
)

// Helpers the protocols share to build completions and their messages.

// Failed returns op completed as fail (surely not applied) because of why.
func Failed(op history.Op, why string) history.Op {
	op.Type, op.Error = history.Fail, why
	return op
}

// Indeterminate returns op completed as info (outcome unknown) because of
// why.
func Indeterminate(op history.Op, why string) history.Op {
	op.Type, op.Error = history.Info, why
	return op
}

// CompactJSON returns v as compact JSON text (null for an empty value),
// and false if v is not JSON.
func CompactJSON(v json.RawMessage) ([]byte, bool) {
	if len(bytes.TrimSpace(v)) == 0 {
		return []byte("null"), true
	}
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return nil, false
	}
	return b.Bytes(), true
}

// DecodeStored returns a value a store holds as an op's value: nil for
// JSON null, or a problem when the stored bytes are not JSON (not written
// by this harness).
func DecodeStored(stored []byte) (json.RawMessage, string) {
	v, ok := CompactJSON(stored)
	if !ok {
		return nil, "the stored value is not JSON: " + Clip(stored, 40)
	}
	if history.IsNull(v) {
		return nil, ""
	}
	return v, ""
}

// RoundDuration formats d for a message: to 10ms from 100ms up ("1s",
// "250ms"), finer below.
func RoundDuration(d time.Duration) string {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(10 * time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

// Clip quotes up to n bytes of b for a message.
func Clip(b []byte, n int) string {
	if len(b) > n {
		return strconv.Quote(string(b[:n])) + "..."
	}
	return strconv.Quote(string(b))
}

// OneLine folds s's white space into single spaces and cuts it after n
// bytes, for a message.
func OneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}
