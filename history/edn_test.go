package history

import (
	"strings"
	"testing"
)

func TestReadEDNIndependent(t *testing.T) {
	ops, err := ReadEDNFile("testdata/independent.edn")
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 8 {
		t.Fatalf("got %d ops, want 8", len(ops))
	}
	want := []struct {
		typ     Type
		f, key  string
		value   string
		process string
		err     string
	}{
		{Invoke, "write", "0", "3", "0", ""},
		{Invoke, "read", "1", "", "1", ""},
		{OK, "write", "0", "3", "0", ""},
		{Invoke, "start", "", "", "nemesis", ""},
		{Info, "start", "", `"Cut off {:n1 #{:n2}}"`, "nemesis", ""},
		{OK, "read", "1", "", "1", ""},
		{Invoke, "cas", "0", "[3,4]", "0", ""},
		{Fail, "cas", "0", "[3,4]", "0", ErrPreconditionFailed},
	}
	for i, w := range want {
		op := ops[i]
		if op.Type != w.typ || op.F != w.f || op.Key != w.key || string(op.Value) != w.value || op.Process.String() != w.process || op.Error != w.err {
			t.Errorf("op %d = %+v (value %s), want %+v", i, op, op.Value, w)
		}
	}
}

func TestReadEDNSingleRegisterTagged(t *testing.T) {
	ops, err := ReadEDNFile("testdata/register.edn")
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 6 {
		t.Fatalf("got %d ops, want 6", len(ops))
	}
	for _, op := range ops {
		if op.Key != EDNKey {
			t.Errorf("op %+v: key %q, want %q", op, op.Key, EDNKey)
		}
	}
	if string(ops[3].Value) != "1" || ops[5].Error != "timeout" {
		t.Errorf("ops = %+v", ops)
	}
}

func TestReadEDNErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"bad edn", "{:type :invoke, :f", "h.edn:1: bad EDN"},
		{"not a map", "[1 2 3]", "h.edn:1: not an EDN map"},
		{"missing type", "{:f :read, :process 0, :time 1}", "h.edn:1: missing :type"},
		{"string process", `{:type :invoke, :f :read, :process "x", :time 1}`, "h.edn:1: :process must be"},
		{"missing time", "{:type :invoke, :f :read, :process 0}", "h.edn:1: missing :time"},
		{"validated like JSONL", "\n{:type :ok, :f :read, :value 1, :process 0, :time 1}", "h.edn:2: ok of read by process 0 has no invocation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadEDN(strings.NewReader(tt.in), "h.edn")
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestLooksLikeEDN(t *testing.T) {
	for in, want := range map[string]bool{
		"{:type :invoke}":     true,
		"#jepsen.history.Op{": true,
		`{"type":"invoke"}`:   false,
		"\n  {:index 0":       true,
		"\x00\x01":            false,
	} {
		if got := LooksLikeEDN([]byte(in)); got != want {
			t.Errorf("LooksLikeEDN(%q) = %v", in, got)
		}
	}
}

// FuzzReadEDN: arbitrary input must give ops or a one-line error, never a
// panic.
func FuzzReadEDN(f *testing.F) {
	f.Add([]byte("{:type :invoke, :f :write, :value [0 3], :process 0, :time 100}\n"))
	f.Add([]byte("#jepsen.history.Op{:index 0, :time 10, :type :invoke, :process 0, :f :write, :value 1}"))
	f.Add([]byte("{:type :invoke, :f :cas, :value [1 [2 3]], :process 0, :time 1}\n{:type :fail, :f :cas, :value [1 [2 3]], :process 0, :time 2, :error :precondition-failed}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ReadEDN(strings.NewReader(string(data)), "fuzz.edn")
		if err != nil && strings.ContainsAny(err.Error(), "\n") {
			t.Fatalf("multi-line error: %q", err)
		}
	})
}
