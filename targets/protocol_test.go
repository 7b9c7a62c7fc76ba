package targets

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jepsen-go/jepsen/history"
)

// The protocol packages import targets, so its own tests register
// stand-ins under the names the spec tests use: "http" (no options) and
// "kv" (one option, reads, with two values).
func init() {
	dial := func(DialConfig) (Conn, error) { return nil, errors.New("a stand-in for spec tests: nothing to dial") }
	Register(Protocol{Name: "http", Dial: dial})
	Register(Protocol{
		Name:    "kv",
		Options: map[string]string{"reads": "linearizable or serializable"},
		Check:   func(o map[string]string) error { return OneOf(o, "reads", "linearizable", "serializable") },
		Dial:    dial,
	})
}

type nopConn struct{}

func (nopConn) Invoke(_ context.Context, op history.Op) history.Op { return op }
func (nopConn) Ready(context.Context) error                        { return nil }
func (nopConn) Close() error                                       { return nil }

func TestProtocolOptions(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       string // a problem's text; "" = valid
		opts       map[string]string
	}{
		{"none", "protocol: kv\n", "", nil},
		{"known", "protocol: kv\nprotocol_options:\n  reads: serializable\n", "", map[string]string{"reads": "serializable"}},
		{"unknown key", "protocol: kv\nprotocol_options:\n  raeds: serializable\n",
			`jepsen.yaml:5: protocol_options.raeds: protocol kv has no option "raeds"; it knows: reads`, nil},
		{"bad value", "protocol: kv\nprotocol_options:\n  reads: stale\n",
			`jepsen.yaml:5: protocol_options.reads: option reads="stale": expected one of linearizable, serializable`, nil},
		{"http takes none", "protocol_options:\n  reads: x\n",
			`jepsen.yaml:4: protocol_options.reads: protocol http has no option "reads"; it takes no options`, nil},
		{"not a map", "protocol_options: [a]\n", "protocol_options: expected a mapping", nil},
		{"unregistered", "protocol: grpc\n", `protocol: "grpc" is not supported; supported: http, kv`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "build: {image: x:y}\ncommand: [/t]\n" + tt.yaml
			s, err := Parse([]byte(src), "jepsen.yaml")
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if len(s.ProtocolOptions) != len(tt.opts) || s.ProtocolOptions["reads"] != tt.opts["reads"] {
					t.Errorf("options = %v, want %v", s.ProtocolOptions, tt.opts)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMergeOptions(t *testing.T) {
	got, err := MergeOptions(map[string]string{"reads": "linearizable", "a": "1"}, []string{"reads=serializable", "b=x=y"})
	if err != nil {
		t.Fatal(err)
	}
	if got["reads"] != "serializable" || got["a"] != "1" || got["b"] != "x=y" {
		t.Errorf("MergeOptions = %v", got)
	}
	if _, err := MergeOptions(nil, []string{"reads"}); err == nil || !strings.Contains(err.Error(), "expected KEY=VALUE") {
		t.Errorf("a flag without =: %v", err)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("registering http twice did not panic")
		}
	}()
	Register(Protocol{Name: "http", Dial: func(DialConfig) (Conn, error) { return nopConn{}, nil }})
}
