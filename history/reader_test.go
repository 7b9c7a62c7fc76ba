package history

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReaderAcceptsValidHistory(t *testing.T) {
	in := `{"index":0,"type":"invoke","process":0,"f":"write","key":"k1","value":3,"time":1200345}
{"index":1,"type":"invoke","process":1,"f":"read","key":"k1","value":null,"time":1300100}

{"index":2,"type":"ok","process":0,"f":"write","key":"k1","value":3,"time":2400007,"node":"n1"}
{"index":3,"type":"ok","process":1,"f":"read","value":3,"time":2500000,"node":"n4"}
{"index":4,"type":"invoke","process":"nemesis","f":"start-partition","value":{"n1":["n3"]},"time":3000000}
{"index":5,"type":"info","process":"nemesis","f":"start-partition","value":{"n1":["n3"]},"time":3000001}
{"index":6,"type":"invoke","process":2,"f":"cas","key":"k1","value":[3,4],"time":3000002}
{"index":7,"type":"info","process":2,"f":"cas","key":"k1","value":[3,4],"time":4000000,"error":"timeout"}
{"index":8,"type":"invoke","process":3,"f":"cas","key":"k1","value":[1,2],"time":4000000}
`
	ops, err := Read(strings.NewReader(in), "h.jsonl")
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if len(ops) != 9 {
		t.Fatalf("got %d ops, want 9", len(ops))
	}
	if ops[3].Key != "k1" {
		t.Errorf("completion without key should inherit the invocation's key, got %q", ops[3].Key)
	}
	if !ops[4].Process.Nemesis || ops[4].Process.String() != "nemesis" {
		t.Errorf("op 4 process = %+v, want nemesis", ops[4].Process)
	}
	if ops[1].Value != nil {
		t.Errorf("null value should read as nil, got %s", ops[1].Value)
	}
	if ops[7].Error != "timeout" || ops[7].Type != Info {
		t.Errorf("op 7 = %+v", ops[7])
	}
}

// inv0 is a valid first line for the cases of readerErrors.
const inv0 = `{"type":"invoke","process":0,"f":"write","key":"k","value":1,"time":10}` + "\n"

// readerErrors are malformed histories, each with the prefix of the error it
// must be refused with (the file name is "h").
var readerErrors = []struct {
	name, in, want string
}{
	{"bad json", `{"type":"invoke",`, "h:1: bad JSON"},
	{"not an object", `[1,2]`, "h:1: not a JSON object"},
	{"binary garbage", "\x00\xff\xfe\x01garbage", "h:1: not text"},
	{"unknown type", `{"type":"done","process":0,"f":"read","time":1}`, `h:1: unknown type "done"`},
	{"missing type", `{"process":0,"f":"read","time":1}`, `h:1: missing field "type"`},
	{"missing process", `{"type":"invoke","f":"read","time":1}`, `h:1: missing field "process"`},
	{"missing f", `{"type":"invoke","process":0,"time":1}`, `h:1: missing field "f"`},
	{"missing time", `{"type":"invoke","process":0,"f":"read"}`, `h:1: missing field "time"`},
	{"wrong type for time", `{"type":"invoke","process":0,"f":"read","time":"soon"}`, `h:1: field "time" has the wrong type`},
	{"bad process", `{"type":"invoke","process":"alice","f":"read","time":1}`, `h:1: process must be a non-negative integer or "nemesis"`},
	{"negative process", `{"type":"invoke","process":-1,"f":"read","time":1}`, `h:1: process must be`},
	{"no invocation", `{"type":"ok","process":0,"f":"read","time":1}`, "h:1: ok of read by process 0 has no invocation"},
	{"two in flight", inv0 + `{"type":"invoke","process":0,"f":"read","key":"k","time":11}`, "h:2: process 0 invokes read while its write from line 1 is still in flight"},
	{"completion of other f", inv0 + `{"type":"ok","process":0,"f":"read","key":"k","time":11}`, "h:2: ok of read by process 0 completes its invocation of write"},
	{"completion of other key", inv0 + `{"type":"ok","process":0,"f":"write","key":"j","value":1,"time":11}`, `h:2: ok of write on key "j"`},
	{"cas not a pair", `{"type":"invoke","process":0,"f":"cas","key":"k","value":[1],"time":1}`, "h:1: cas value must be a pair"},
	{"cas scalar", `{"type":"invoke","process":0,"f":"cas","key":"k","value":7,"time":1}`, "h:1: cas value must be a pair"},
	{"time backwards", inv0 + `{"type":"ok","process":0,"f":"write","key":"k","value":1,"time":9}`, "h:2: time goes backwards: 9 after 10"},
	{"negative time", `{"type":"invoke","process":0,"f":"read","time":-5}`, "h:1: time -5 is negative"},
	{"issue after info", inv0 + `{"type":"info","process":0,"f":"write","key":"k","time":11}` + "\n" +
		`{"type":"invoke","process":0,"f":"read","key":"k","time":12}`, "h:3: process 0 invokes read after its info at line 2"},
	{"truncated last line", inv0 + `{"type":"ok","process":0,"f":"wri`, "h:2: bad JSON"},
}

func TestReaderErrors(t *testing.T) {
	for _, tt := range readerErrors {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tt.in), "h")
			if err == nil {
				t.Fatalf("Read accepted %q", tt.in)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is %T, want *ParseError", err, err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q\nwant prefix %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}
}

func TestReaderRefusesHugeLineWithoutHoldingIt(t *testing.T) {
	// 100 MB on one line, streamed: the reader must stop at MaxLineBytes.
	huge := io.MultiReader(strings.NewReader(`{"type":"invoke","process":0,"f":"write","key":"`),
		io.LimitReader(repeatReader('a'), 100<<20))
	_, err := Read(huge, "big.jsonl")
	if err == nil || !strings.HasPrefix(err.Error(), "big.jsonl:1: line is longer than") {
		t.Fatalf("err = %v, want a line-too-long error at line 1", err)
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestReaderEmpty(t *testing.T) {
	ops, err := Read(strings.NewReader(""), "empty")
	if err != nil || len(ops) != 0 {
		t.Fatalf("Read(empty) = %v, %v; want no ops and no error (the caller decides whether empty is an error)", ops, err)
	}
}

func TestReaderStopsAtFirstError(t *testing.T) {
	r := NewReader(strings.NewReader("{bad\n"+`{"type":"invoke","process":0,"f":"read","time":1}`+"\n"), "h")
	_, err1 := r.Next()
	_, err2 := r.Next()
	if err1 == nil || err1 != err2 {
		t.Fatalf("errors %v then %v; want the same error twice", err1, err2)
	}
}

func TestWriterRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	ops := []Op{
		{Type: Invoke, Process: Client(0), F: FWrite, Key: "k", Value: MustValue(1), Time: 5},
		{Type: Invoke, Process: NemesisProcess, F: "kill", Value: MustValue([]string{"n1"}), Time: 6},
		{Type: OK, Process: Client(0), F: FWrite, Key: "k", Value: MustValue(1), Time: 7, Node: "n1"},
		{Type: Info, Process: NemesisProcess, F: "kill", Value: MustValue([]string{"n1"}), Time: 8},
		{Type: Invoke, Process: Client(1), F: FRead, Key: "k", Time: 9},
		{Type: Fail, Process: Client(1), F: FRead, Key: "k", Time: 10, Error: ErrUnavailable},
	}
	for i := range ops {
		if err := w.Write(&ops[i]); err != nil {
			t.Fatal(err)
		}
		if ops[i].Index != int64(i) {
			t.Fatalf("op %d got index %d", i, ops[i].Index)
		}
	}
	if n := strings.Count(buf.String(), "\n"); n != len(ops) {
		t.Fatalf("wrote %d lines, want %d", n, len(ops))
	}
	got, err := Read(&buf, "rt")
	if err != nil {
		t.Fatal(err)
	}
	for i := range ops {
		a, b := ops[i], got[i]
		if a.Index != b.Index || a.Type != b.Type || a.Process != b.Process || a.F != b.F || a.Key != b.Key ||
			!bytes.Equal(a.Value, b.Value) || a.Time != b.Time || a.Node != b.Node || a.Error != b.Error {
			t.Errorf("op %d: wrote %+v, read %+v", i, a, b)
		}
	}
}

// A SIGKILL can only cut the file between two Write calls; every prefix of
// whole lines must therefore be a readable history.
func TestEveryLinePrefixIsReadable(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for i := 0; i < 20; i++ {
		p := Client(i % 4)
		w.Write(&Op{Type: Invoke, Process: p, F: FWrite, Key: "k", Value: MustValue(i), Time: int64(2 * i)})
		w.Write(&Op{Type: OK, Process: p, F: FWrite, Key: "k", Value: MustValue(i), Time: int64(2*i + 1)})
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	for n := 0; n <= len(lines); n++ {
		if _, err := Read(strings.NewReader(strings.Join(lines[:n], "")), "prefix"); err != nil {
			t.Fatalf("prefix of %d lines: %v", n, err)
		}
	}
}
