package rediskv

import (
	"encoding/json"
	"testing"
)

// FuzzDecode: a stored value is either read back as compact JSON (nil for
// null) or reported as not JSON; it never panics.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, stored []byte) {
		v, problem := decode(stored)
		if problem != "" {
			if v != nil {
				t.Fatalf("decode(%q) = %s with problem %q", stored, v, problem)
			}
			return
		}
		if v != nil && !json.Valid(v) {
			t.Fatalf("decode(%q) = %q, not JSON", stored, v)
		}
	})
}
