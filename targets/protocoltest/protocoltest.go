// Package protocoltest holds the test helpers the client protocols'
// real-server tests share: building invocations, invoking them with a
// deadline, waiting for readiness as the harness does, and checking
// completions.
package protocoltest

import (
	"context"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/history"
)

// Conn is what the helpers need of a protocol's connection.
type Conn interface {
	Invoke(ctx context.Context, op history.Op) history.Op
	Ready(ctx context.Context) error
}

// WaitReady polls c.Ready, as the harness does, until it answers nil or
// limit passes (then the test fails, naming node).
func WaitReady(tb testing.TB, node string, c Conn, limit time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := c.Ready(context.Background())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s not ready after %s: %v", node, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Op returns an invocation of f on key by process 1, with value v (nil
// for none) encoded as JSON.
func Op(f, key string, v any) history.Op {
	o := history.Op{Type: history.Invoke, Process: history.Client(1), F: f, Key: key}
	if v != nil {
		o.Value = history.MustValue(v)
	}
	return o
}

// Invoke performs o on c with a 2 s deadline.
func Invoke(c Conn, o history.Op) history.Op {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Invoke(ctx, o)
}

// Expect checks a completion's type, error (when errText is not empty)
// and, for an ok read, its value.
func Expect(tb testing.TB, what string, got history.Op, typ history.Type, errText, value string) {
	tb.Helper()
	if got.Type != typ || (errText != "" && got.Error != errText) {
		tb.Fatalf("%s: got %s %q (value %s), want %s %q", what, got.Type, got.Error, got.Value, typ, errText)
	}
	if got.F == history.FRead && typ == history.OK && string(got.Value) != value {
		tb.Fatalf("%s: read %s, want %s", what, got.Value, value)
	}
}
