package httpkv

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jepsen-go/jepsen/targets/httpkv/httpkvtest"
)

// FuzzDecodeResponse feeds arbitrary bodies to the parsing of a read's
// answer and to the error text of an unexpected status: neither panics, a
// decoded value is valid compact JSON, and every error is one short line of
// valid UTF-8.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{
		`{"value":1}`, `{"value":null}`, `{"value": [1, 2]}`, `{"value":"x","term":3}`,
		`{}`, `[]`, `{"value":`, `{"value":1}x`, "", "\x00\xff\xfe", `"value"`,
		string(httpkvtest.GarbageBody), `{"value":"` + strings.Repeat("a", 200),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, problem := decodeValue(body)
		if problem == "" {
			if v != nil && !json.Valid(v) {
				t.Fatalf("decoded value %q is not JSON", v)
			}
			if v != nil && string(v) == "null" {
				t.Fatalf("null decoded as %q, want nil", v)
			}
		} else {
			if v != nil {
				t.Fatalf("value %q with problem %q", v, problem)
			}
			checkLine(t, problem)
		}
		for _, f := range []string{"read", "write", "cas"} {
			checkLine(t, unexpected(f, 500, body))
		}
	})
}

func checkLine(t *testing.T, s string) {
	t.Helper()
	if strings.ContainsAny(s, "\n\r\x00") || !utf8.ValidString(s) || len(s) > 400 {
		t.Fatalf("message is not one short clean line: %q", s)
	}
}
