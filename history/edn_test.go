package history

import (
	"bytes"
	"encoding/json"
	"errors"
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
		{"bad edn", "{:type :invoke, :f", "h.edn:1: bad EDN: the map that starts here is never closed"},
		{"unclosed map over lines", "[{:type :invoke, :f :read, :process 0}\n {:type :ok,\n :f :read", "h.edn:2: bad EDN: the map that starts here is never closed"},
		{"unclosed vector", "[{:type :invoke, :f :read, :process 0}\n", "h.edn:1: bad EDN: the vector that starts here is never closed"},
		{"stray closer", "{:type :invoke, :f :read, :process 0}\n}", "h.edn:2: bad EDN: unexpected '}'"},
		{"odd map", "\n\n{:type :invoke :f}", "h.edn:3: bad EDN: the map that starts here has a key without a value"},
		{"unclosed string", "{:type :invoke, :f :read, :process 0, :error \"oops\n\n", "h.edn:1: bad EDN: the string that starts here is never closed"},
		{"bad number", "{:type :invoke, :f :read, :process 0, :time 12x}", `h.edn:1: bad EDN: "12x" is not a number`},
		{"too deep", strings.Repeat("[", 300), "h.edn:1: bad EDN: forms nest more than 200 deep"},
		{"too many discards", strings.Repeat("#_", 100000), "h.edn:1: bad EDN: forms nest more than 200 deep"},
		{"too many tags", "{:type " + strings.Repeat("#t ", 300) + ":invoke}", "h.edn:1: bad EDN: forms nest more than 200 deep"},
		{"not a map", "[1 2 3]", "h.edn:1: not an op map"},
		{"not a map in a vector", "[{:type :invoke, :f :read, :process 0}\n [1 2]]", "h.edn:2: not an op map"},
		{"missing type", "{:f :read, :process 0, :time 1}", "h.edn:1: missing :type"},
		{"unknown type", "{:type :done, :f :read, :process 0, :time 1}", "h.edn:1: unknown :type done"},
		{"numeric f", "{:type :invoke, :f 3, :process 0, :time 1}", "h.edn:1: :f must be a keyword or a string, got 3"},
		{"string process", `{:type :invoke, :f :read, :process "x", :time 1}`, "h.edn:1: :process must be"},
		{"negative process", `{:type :invoke, :f :read, :process -1, :time 1}`, "h.edn:1: :process must be a non-negative integer"},
		{"time then none", "{:type :invoke, :f :read, :process 0, :time 1}\n{:type :ok, :f :read, :process 0}", "h.edn:2: missing :time (the first op, line 1, has one"},
		{"none then time", "{:type :invoke, :f :read, :process 0}\n{:type :ok, :f :read, :process 0, :time 5}", "h.edn:2: this op has :time but the first op (line 1) has none"},
		{"float time", "{:type :invoke, :f :read, :process 0, :time 1.5}", "h.edn:1: :time must be an integer"},
		{"cas not a pair", "{:type :invoke, :f :cas, :value 5, :process 0}", "h.edn:1: cas value must be a pair"},
		{"validated like JSONL", "\n{:type :ok, :f :read, :value 1, :process 0, :time 1}", "h.edn:2: ok of read by process 0 has no invocation"},
		{"invoke after info", "[{:type :invoke, :f :write, :value 1, :process 0}\n{:type :info, :f :write, :value 1, :process 0}\n{:type :invoke, :f :read, :process 0}]", "h.edn:3: process 0 invokes read after its info at line 2"},
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
		"[{:process 4":        true,
		"({:type :invoke":     true,
		"; a comment":         true,
		"{ :type":             true,
		"":                    false,
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
	f.Add([]byte("[{:process 0, :type :invoke, :f :write, :value 1}\n {:process 0,\n  :type :ok, :f :write, :value 1}]"))
	f.Add([]byte("({:type \"invoke\", :f \"read\", :process 1} ; comment\n {:type \"ok\", :f \"read\", :value nil, :process 1})"))
	f.Add([]byte("{:type :info, :f :start, :process :nemesis, :time 5, :value #{\\a \"b\" 1N 2.5M 1/2}}\n#_{:x 1} {:type :info, :f :start, :process \"nemesis\", :time 6}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ops, info, err := ReadEDNInfo(strings.NewReader(string(data)), "fuzz.edn")
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") || pe.Line < 1 {
				t.Fatalf("bad error: %q", err)
			}
			return
		}
		// What is read is a valid history: it reads back as JSONL.
		var buf bytes.Buffer
		for _, op := range ops {
			b, err := json.Marshal(op)
			if err != nil {
				t.Fatalf("op %+v: %v", op, err)
			}
			buf.Write(append(b, '\n'))
		}
		back, err := Read(&buf, "back.jsonl")
		if err != nil || len(back) != len(ops) {
			t.Fatalf("the ops read (timeless %v) do not read back as JSONL: %v", info.Timeless, err)
		}
	})
}

// Histories as Jepsen and Knossos write them (test data written for this
// repository in their formats): what they read as.
func TestReadEDNFormats(t *testing.T) {
	tests := []struct {
		file           string
		ops            int
		timeless       bool
		addedInvokes   int
		reordered      int
		first, last    string // type f value of the first and last op
		lastTime       int64
		nemesisAt      int // index of the first nemesis op, or -1
		nemesisProcess bool
	}{
		{"knossos-vector.edn", 10, true, 0, 0, "invoke write 1", "ok read 3", 9 * TimelessStep, -1, false},
		{"knossos-list-stale.edn", 6, true, 0, 0, "invoke write 1", "ok read 1", 5 * TimelessStep, -1, false},
		{"jepsen-nemesis.edn", 14, false, 4, 1, "invoke write 1", "info stop \"network-healed\"", 9500000, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ops, info, err := ReadFileInfo("testdata/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if len(ops) != tt.ops || info.Timeless != tt.timeless || info.AddedInvokes != tt.addedInvokes || info.Reordered != tt.reordered || info.Format != "edn" {
				t.Fatalf("%d ops, info %+v", len(ops), info)
			}
			show := func(o Op) string { return strings.TrimSpace(string(o.Type) + " " + o.F + " " + string(o.Value)) }
			if show(ops[0]) != tt.first || show(ops[len(ops)-1]) != tt.last || ops[len(ops)-1].Time != tt.lastTime {
				t.Errorf("first %q, last %q at %d", show(ops[0]), show(ops[len(ops)-1]), ops[len(ops)-1].Time)
			}
			for i, o := range ops {
				if o.Index != int64(i) {
					t.Errorf("op %d has index %d", i, o.Index)
				}
				if i > 0 && o.Time < ops[i-1].Time {
					t.Errorf("op %d: time goes backwards", i)
				}
				if o.IsClient() && o.Key != EDNKey {
					t.Errorf("op %d: key %q", i, o.Key)
				}
			}
			if tt.nemesisAt >= 0 {
				n := ops[tt.nemesisAt]
				if !n.Process.Nemesis || n.Type != Invoke || n.F != "start" || ops[tt.nemesisAt+1].Type != Info || n.Time != ops[tt.nemesisAt+1].Time {
					t.Errorf("nemesis ops: %+v %+v", n, ops[tt.nemesisAt+1])
				}
			}
		})
	}
}

// A history read twice gives the same ops whether it is one op per line,
// one vector, or a list spread over lines.
func TestReadEDNLayouts(t *testing.T) {
	const a = "{:type :invoke, :f :write, :value 1, :process 0}"
	const b = "{:type :ok, :f :write, :value 1, :process 0}"
	const c = `#jepsen.history.Op{:type "invoke", :f "read", :process 1}`
	const d = "{:type :ok :f :read :value 1 :process 1 #_ :ignored #_ 5}"
	var want []Op
	for i, in := range []string{
		a + "\n" + b + "\n" + c + "\n" + d + "\n",
		"[" + a + " " + b + " " + c + " " + d + "]",
		"(" + a + ",\n" + b + ",\n;; comment\n" + c + "\n\n" + d + ")\n",
		"[" + a + " " + b + "]\n[" + c + " " + d + "]",
		"#_{:not :an-op}\n[" + a + " #_" + a + " " + b + " " + c + " " + d + "]\n#_ [1 2]\n",
		strings.ReplaceAll(a+b+c+d, ", ", "\n  "),
	} {
		ops, err := ReadEDN(strings.NewReader(in), "h.edn")
		if err != nil {
			t.Fatalf("layout %d: %v", i, err)
		}
		if i == 0 {
			want = ops
			continue
		}
		if len(ops) != len(want) {
			t.Fatalf("layout %d: %d ops, want %d", i, len(ops), len(want))
		}
		for j := range ops {
			if ops[j].Type != want[j].Type || ops[j].F != want[j].F || string(ops[j].Value) != string(want[j].Value) || ops[j].Time != want[j].Time || ops[j].Process != want[j].Process {
				t.Errorf("layout %d op %d = %+v, want %+v", i, j, ops[j], want[j])
			}
		}
	}
}

// EDN values become the JSON the checkers compare.
func TestEDNValues(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1", "1"},
		{"-7", "-7"},
		{"+7", "7"},
		{"123456789012345678901234567890", "123456789012345678901234567890"},
		{"5N", "5"},
		{"2.5", "2.5"},
		{"2.5M", "2.5"},
		{"1/2", "0.5"},
		{":a", `"a"`},
		{"sym", `"sym"`},
		{`"s\"q\n"`, `"s\"q\n"`},
		{`"\u00e9"`, `"é"`},
		{`\a`, `"a"`},
		{`\newline`, `"\n"`},
		{"[1 [2 3]]", "[1,[2,3]]"},
		{"(1 2)", "[1,2]"},
		{"#{3 1 2}", "[1,2,3]"},
		{`{:a 1, "b" 2, [1] 3}`, `{"[1]":3,"a":1,"b":2}`},
		{"#inst \"2020-01-01\"", `"2020-01-01"`},
		{"[1 #_2 3]", "[1,3]"},
		{"[1 #_ #_ 2 3 4]", "[1,4]"},
		{"[1 2 #_3]", "[1,2]"},
		{"#_ 5 6", "6"},
		{"true", "true"},
		{"nil", "null"},
	}
	for _, tt := range tests {
		in := "{:type :invoke, :f :start, :process :nemesis, :value " + tt.in + "}"
		ops, err := ReadEDN(strings.NewReader(in), "v.edn")
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		got := string(ops[0].Value)
		if got == "" {
			got = "null"
		}
		if got != tt.want {
			t.Errorf("%s read as %s, want %s", tt.in, got, tt.want)
		}
	}
}
