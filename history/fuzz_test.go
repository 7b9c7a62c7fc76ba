package history

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the reader: it must never panic, and
// every error must be a one-line ParseError or an I/O error.
func FuzzReader(f *testing.F) {
	f.Add([]byte(`{"index":0,"type":"invoke","process":0,"f":"write","key":"k1","value":3,"time":1}` + "\n" +
		`{"index":1,"type":"ok","process":0,"f":"write","key":"k1","value":3,"time":2}` + "\n"))
	f.Add([]byte(`{"type":"invoke","process":"nemesis","f":"kill","value":["n1"],"time":0}`))
	f.Add([]byte(`{"type":"invoke","process":1,"f":"cas","key":"a","value":[1,2],"time":0}`))
	f.Add([]byte("\x00\x01\x02"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), "fuzz")
		for i := 0; ; i++ {
			op, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("error of type %T: %v", err, err)
				}
				if strings.ContainsAny(pe.Msg, "\n\r") {
					t.Fatalf("multi-line error: %q", err)
				}
				return
			}
			if !op.Type.Valid() || op.F == "" {
				t.Fatalf("accepted an op without a valid type or f: %+v", op)
			}
			if i > len(data) {
				t.Fatal("more ops than bytes")
			}
		}
	})
}
