package history

import (
	"encoding/json"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestFaultValues checks the value each nemesis op gets from a Fault (the
// JSON the nemesis has always written for the older ops) and what
// DecodeFault reads back.
func TestFaultValues(t *testing.T) {
	cases := []struct {
		f     string
		fault Fault
		want  string
		back  *Fault // what DecodeFault gives, if not fault
	}{
		{FStartPartition, Fault{Kind: "partition", Targets: []string{"n1", "n2", "n3"}, Topology: "one",
			Grudge: map[string][]string{"n1": {"n2", "n3"}, "n2": {"n1"}, "n3": {"n1"}}},
			`{"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]}`,
			&Fault{Kind: "partition", Targets: []string{"n1", "n2", "n3"}, Grudge: map[string][]string{"n1": {"n2", "n3"}, "n2": {"n1"}, "n3": {"n1"}}}},
		{FStopPartition, Fault{Kind: "partition", Grudge: map[string][]string{"n1": {"n2"}, "n2": {}}},
			`{"n1":["n2"],"n2":[]}`,
			&Fault{Kind: "partition", Targets: []string{"n1"}, Grudge: map[string][]string{"n1": {"n2"}, "n2": {}}}},
		{FStartPacket, Fault{Kind: "packet", Packet: &Packet{Delay: 100 * time.Millisecond, Jitter: 50 * time.Millisecond,
			Loss: 20, Duplicate: 10, Reorder: 20, Corrupt: 5}},
			`{"loss":20,"duplicate":10,"reorder":20,"corrupt":5,"delay":"100ms","jitter":"50ms"}`, nil},
		{FStopPacket, Fault{Kind: "packet", Targets: []string{"n2"}, Packet: &Packet{Nodes: []string{"n2"}, Loss: 1.5}},
			`{"nodes":["n2"],"loss":1.5}`, nil},
		{FKill, Fault{Kind: "kill", Targets: []string{"n1", "n3"}}, `["n1","n3"]`, nil},
		{FKill, Fault{Kind: "kill", Targets: []string{}}, `[]`, nil},
		{FStart, Fault{Targets: []string{"n1"}}, `["n1"]`, nil},
		{FPause, Fault{Kind: "pause", Targets: []string{"n4"}}, `["n4"]`, nil},
		{FResume, Fault{Kind: "pause", Targets: []string{"n4"}}, `["n4"]`, nil},
		{FBumpClock, Fault{Kind: "clock", Targets: []string{"n1", "n4"}, Offsets: map[string]int64{"n1": int64(-5 * time.Second), "n4": int64(1500 * time.Millisecond)}},
			`{"n1":"-5s","n4":"1.5s"}`, nil},
		{FStrobeClock, Fault{Kind: "clock", Targets: []string{"n2"}, Strobe: &Strobe{Delta: -12 * time.Second, Period: 10 * time.Millisecond, Duration: 10 * time.Second}},
			`{"delta":"-12s","duration":"10s","nodes":["n2"],"period":"10ms"}`, nil},
		{FResetClock, Fault{Kind: "clock", Targets: []string{"n1", "n2"}}, `["n1","n2"]`, nil},
		{FPowerLoss, Fault{Kind: "power-loss", Targets: []string{"n1", "n5"}}, `{"kind":"power-loss","nodes":["n1","n5"]}`, nil},
		{FCorrupt, Fault{Kind: "corrupt", Targets: []string{"n2"}, Corruption: &Corruption{File: "wal/1.log", Kind: CorruptTruncate, Length: 10}},
			`{"kind":"corrupt","nodes":["n2"],"corruption":{"file":"wal/1.log","offset":0,"kind":"truncate","length":10}}`, nil},
		{"start-flood", Fault{Kind: "flood", Targets: []string{"n1"}, Topology: "x", Offsets: map[string]int64{"n1": 7},
			Strobe: &Strobe{Delta: time.Second}, Packet: &Packet{Delay: time.Millisecond}, Grudge: map[string][]string{"n1": {"n2"}}},
			`{"kind":"flood","nodes":["n1"],"grudge":{"n1":["n2"]},"topology":"x","packet":{"delay":"1ms"},"offsets":{"n1":7},"strobe":{"delta":"1s","duration":"0s","period":"0s"}}`, nil},
	}
	for _, tc := range cases {
		got := EncodeFault(tc.f, tc.fault)
		if string(got) != tc.want {
			t.Errorf("%s: value %s, want %s", tc.f, got, tc.want)
		}
		back, err := DecodeFault(Op{F: tc.f, Value: got})
		want := tc.fault
		if tc.back != nil {
			want = *tc.back
		}
		if err != nil || !reflect.DeepEqual(back, want) {
			t.Errorf("%s: %s decodes as %+v, %v; want %+v", tc.f, got, back, err, want)
		}
	}
}

// TestFaultValuesOfOldHistories reads nemesis ops as the nemesis wrote
// them before Fault existed: each decodes, and encodes to the same bytes.
func TestFaultValuesOfOldHistories(t *testing.T) {
	f, err := os.Open("testdata/nemesis-v1.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := NewReader(f, "nemesis-v1.jsonl")
	fs := map[string]bool{}
	for {
		op, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		fault, err := DecodeFault(op)
		if err != nil {
			t.Errorf("op %d: %v", op.Index, err)
			continue
		}
		if len(fault.Targets) == 0 && fault.Packet == nil { // a packet fault without nodes shapes every node
			t.Errorf("op %d: %s %s has no targets: %+v", op.Index, op.F, op.Value, fault)
		}
		if got := EncodeFault(op.F, fault); string(got) != string(op.Value) {
			t.Errorf("op %d: %s re-encodes as %s, was %s", op.Index, op.F, got, op.Value)
		}
		fs[op.F] = true
	}
	for f := range legacy {
		if !fs[f] {
			t.Errorf("no %s op in testdata/nemesis-v1.jsonl", f)
		}
	}
}

func TestDecodeFaultErrors(t *testing.T) {
	cases := []struct{ f, value, want string }{
		{FKill, `{"n1":1}`, "kill value {\"n1\":1} is not a node list"},
		{FStartPartition, `["n1"]`, "is not a grudge"},
		{FBumpClock, `{"n1":"soon"}`, `n1: bad duration "soon"`},
		{FStartPacket, `{"delay":"x"}`, `delay: bad duration "x"`},
		{FStrobeClock, `{"delta":"1s","period":"fast"}`, `period: bad duration "fast"`},
		{FCorrupt, `["n1"]`, "is not a fault object"},
	}
	for _, tc := range cases {
		_, err := DecodeFault(Op{F: tc.f, Value: json.RawMessage(tc.value)})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s %s: error %v, want one line containing %q", tc.f, tc.value, err, tc.want)
		}
	}
	for _, f := range []string{FKill, FCorrupt, "anything"} {
		got, err := DecodeFault(Op{F: f, Value: json.RawMessage("null")})
		if err != nil || len(got.Targets) != 0 {
			t.Errorf("%s null: %+v, %v", f, got, err)
		}
	}
}

// FuzzDecodeFault feeds arbitrary values to DecodeFault: it never panics,
// its errors are one line, and what it reads encodes to a value that
// reads the same again.
func FuzzDecodeFault(f *testing.F) {
	for _, s := range []struct{ f, v string }{
		{FStartPartition, `{"n1":["n2"],"n2":["n1"]}`},
		{FKill, `["n1","n3"]`},
		{FStartPacket, `{"loss":20,"delay":"100ms","jitter":"50ms"}`},
		{FBumpClock, `{"n1":"-5s"}`},
		{FStrobeClock, `{"delta":"-12s","duration":"10s","nodes":["n2"],"period":"10ms"}`},
		{FCorrupt, `{"kind":"corrupt","nodes":["n2"],"corruption":{"file":"a","offset":3,"kind":"bitflip","length":1}}`},
		{FPowerLoss, `{"kind":"power-loss","nodes":["n1"]}`},
	} {
		f.Add(s.f, []byte(s.v))
	}
	f.Fuzz(func(t *testing.T, name string, value []byte) {
		if !json.Valid(value) {
			return // a history line with a bad value does not parse
		}
		fault, err := DecodeFault(Op{F: name, Value: value})
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		again, err := DecodeFault(Op{F: name, Value: EncodeFault(name, fault)})
		if err != nil {
			t.Fatalf("%s %s: re-encoded value does not decode: %v", name, value, err)
		}
		if a, b := MustValue(fault), MustValue(again); string(a) != string(b) {
			t.Fatalf("%s %s: decodes as %s, then as %s", name, value, a, b)
		}
	})
}
