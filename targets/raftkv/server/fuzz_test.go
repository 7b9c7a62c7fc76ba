package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParseBodies: request bodies never panic, and whatever parses is
// valid compact JSON that compares equal to itself.
func FuzzParseBodies(f *testing.F) {
	for _, s := range []string{
		`{"value":1}`, `{"value":{"a":[1,2.5e3,null,true,"x"]}}`, `{"from":1,"to":2}`,
		`{"from":{"b":1,"a":2},"to":[]}`, `{"value":`, `[]`, `{"value":1}{}`, "\x00\xff",
		`{"value":1e99999999}`, `{"from":-0,"to":0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := parsePutBody(b); err == nil {
			checkCompact(t, v)
		}
		if from, to, err := parseCASBody(b); err == nil {
			checkCompact(t, from)
			checkCompact(t, to)
			_ = valuesEqual(from, to)
		}
	})
}

func checkCompact(t *testing.T, v json.RawMessage) {
	t.Helper()
	if !json.Valid(v) {
		t.Fatalf("parsed value %q is not valid JSON", v)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil || !bytes.Equal(buf.Bytes(), v) {
		t.Fatalf("parsed value %q is not compact", v)
	}
	if !valuesEqual(v, v) {
		t.Fatalf("value %q is not equal to itself", v)
	}
}

// FuzzValuesEqual: comparison never panics and is symmetric.
func FuzzValuesEqual(f *testing.F) {
	for _, p := range [][2]string{
		{`1`, `1.0`}, {`{"a":1}`, `{"a":1.0}`}, {`[1,"a"]`, `[1,"a"]`}, {`1e400`, `1e401`},
		{`0.1`, `1e-1`}, {`null`, `false`}, {`"\u00e9"`, `"é"`}, {`1e-99999`, `0`},
	} {
		f.Add([]byte(p[0]), []byte(p[1]))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if valuesEqual(a, b) != valuesEqual(b, a) {
			t.Fatalf("valuesEqual(%q, %q) is not symmetric", a, b)
		}
	})
}

// FuzzParseArgs: command lines never panic and errors are one line.
func FuzzParseArgs(f *testing.F) {
	f.Add("--id\x00n1\x00--nodes\x00n1,n2\x00--data\x00/d", "racy-cas")
	f.Add("--port\x0099999", "")
	f.Add("--id=n1\x00--nodes=,,,", "none")
	f.Fuzz(func(t *testing.T, args, bug string) {
		_, _, err := parseArgs(strings.Split(args, "\x00"), envOf(map[string]string{"RAFTKV_BUG": bug}))
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error %q", err)
		}
	})
}
