package checkers

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/history"
)

// FuzzCanonical: Canonical never panics, its output is valid JSON, and it
// is idempotent; the interner gives a value and its canonical form the
// same id.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`1`, `1.0`, `-0`, `1e3`, `"a\u0041"`, `{"b":1,"a":[1,2,{"c":null}]}`, `null`, `[1, 2]`, `123456789012345678901234567890`, `1e400`, `{`, `"`, `tru`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := Canonical(raw)
		if err != nil {
			return
		}
		if !json.Valid(c) {
			t.Fatalf("Canonical(%q) = %q, not JSON", raw, c)
		}
		c2, err := Canonical(c)
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", raw, c, c2, err)
		}
		in := newInterner()
		a, err1 := in.id(raw)
		b, err2 := in.id(c)
		if err1 != nil || err2 != nil || a != b {
			t.Fatalf("ids %d (%v) and %d (%v) for %q and %q", a, err1, b, err2, raw, c)
		}
	})
}

// FuzzCheck: whatever history the reader accepts, Check returns a verdict
// without panicking, and the result encodes as JSON.
func FuzzCheck(f *testing.F) {
	seeds := []string{
		`{"index":0,"type":"invoke","process":0,"f":"write","key":"k","value":1,"time":1}
{"index":1,"type":"ok","process":0,"f":"write","key":"k","value":1,"time":2}
{"index":2,"type":"invoke","process":1,"f":"read","key":"k","value":null,"time":3}
{"index":3,"type":"ok","process":1,"f":"read","key":"k","value":2,"time":4}`,
		`{"index":0,"type":"invoke","process":0,"f":"cas","key":"k","value":[1,2],"time":1}
{"index":1,"type":"fail","process":0,"f":"cas","key":"k","value":[1,2],"time":2,"error":"precondition-failed"}
{"index":2,"type":"invoke","process":1,"f":"cas","key":"k","value":[null,{"a":1}],"time":3}
{"index":3,"type":"info","process":1,"f":"cas","key":"k","value":[null,{"a":1}],"time":4}
{"index":4,"type":"invoke","process":"nemesis","f":"kill","value":"n1","time":5}`,
		`{"index":0,"type":"invoke","process":0,"f":"add","key":"s1","value":1,"time":1}
{"index":1,"type":"ok","process":0,"f":"add","key":"s1","value":1,"time":2}
{"index":2,"type":"invoke","process":1,"f":"read","key":"s1","value":null,"time":3}
{"index":3,"type":"ok","process":1,"f":"read","key":"s1","value":null,"time":4}`,
		`{"index":0,"type":"invoke","process":0,"f":"add","key":"s1","value":1,"time":1,"node":"n1"}
{"index":1,"type":"ok","process":0,"f":"add","key":"s1","value":1,"time":2,"node":"n1"}
{"index":2,"type":"invoke","process":"nemesis","f":"power-loss","value":{"kind":"power-loss","nodes":["n1"]},"time":3}
{"index":3,"type":"info","process":"nemesis","f":"power-loss","value":{"kind":"power-loss","nodes":["n1"]},"time":4}
{"index":4,"type":"invoke","process":"nemesis","f":"corrupt","value":{"kind":"corrupt","nodes":["n1"]},"time":5}
{"index":5,"type":"info","process":"nemesis","f":"corrupt","value":{"kind":"corrupt","nodes":["n1"],"corruption":{"file":"wal","offset":1,"kind":"bitflip","length":1}},"time":6}
{"index":6,"type":"invoke","process":1,"f":"read","key":"s1","value":null,"time":7}
{"index":7,"type":"ok","process":1,"f":"read","key":"s1","value":null,"time":8}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(seeds[2]), "register")
	f.Fuzz(func(t *testing.T, data []byte, workload string) {
		ops, err := history.Read(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		res := Check(context.Background(), ops, Options{Workload: workload, Timeout: 2 * time.Second})
		if res == nil {
			t.Fatal("nil result")
		}
		if _, err := json.Marshal(res); err != nil {
			t.Fatalf("result does not encode: %v", err)
		}
		if strings.HasPrefix(res.Error, "internal error") {
			t.Fatal(res.Error)
		}
		if res.Error == "" && res.Linear == nil && res.Set == nil {
			t.Fatalf("no result for workload %q", workload)
		}
	})
}
