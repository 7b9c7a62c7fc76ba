package checkers

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/jepsen-go/jepsen/history"
)

// etcdDir holds 102 etcd histories from Jepsen, as shipped with
// porcupine, with their known verdicts (see its README).
const etcdDir = "../testdata/etcd-jepsen"

var (
	processRE = regexp.MustCompile(`process \d+`)
	timeRE    = regexp.MustCompile(`\d+\.\d+s`)
)

type etcdCase struct {
	name string
	ops  []history.Op
	want Validity
}

// loadEtcd reads every etcd history and its expected verdict.
func loadEtcd(tb testing.TB) []etcdCase {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(etcdDir, "expected.json"))
	if err != nil {
		tb.Fatalf("read expected verdicts: %v", err)
	}
	var expected map[string]string
	if err := json.Unmarshal(data, &expected); err != nil {
		tb.Fatalf("parse %s/expected.json: %v", etcdDir, err)
	}
	names := make([]string, 0, len(expected))
	for name := range expected {
		names = append(names, name)
	}
	sort.Strings(names)
	var cases []etcdCase
	for _, name := range names {
		ops, err := history.ReadFile(filepath.Join(etcdDir, name))
		if err != nil {
			tb.Fatalf("read %s: %v", name, err)
		}
		want := Valid
		switch expected[name] {
		case "valid":
		case "invalid":
			want = Invalid
		default:
			tb.Fatalf("%s: unknown expected verdict %q", name, expected[name])
		}
		cases = append(cases, etcdCase{name: name, ops: ops, want: want})
	}
	return cases
}

func TestEtcdJepsen(t *testing.T) {
	cases := loadEtcd(t)
	if len(cases) != 102 {
		t.Fatalf("found %d etcd histories, want 102", len(cases))
	}
	var valid, invalid, minimal int
	sizes := map[int]int{}
	for _, c := range cases {
		res := Check(context.Background(), c.ops, Options{})
		if res.Valid != c.want {
			t.Errorf("%s: verdict %s, want %s (error %q)", c.name, res.Valid, c.want, res.Error)
			continue
		}
		if res.Valid == Valid {
			valid++
			continue
		}
		invalid++
		if len(res.Linear.Failures) != 1 {
			t.Errorf("%s: %d failures, want 1", c.name, len(res.Linear.Failures))
			continue
		}
		f := res.Linear.Failures[0]
		sizes[f.WitnessOps]++
		if f.Minimal {
			minimal++
		}
		if !strings.Contains(f.Explanation, " r ") || !processRE.MatchString(f.Explanation) || !timeRE.MatchString(f.Explanation) {
			t.Errorf("%s: explanation does not name key r, a process and a time: %s", c.name, f.Explanation)
		}
		if len(f.Visualization) == 0 {
			t.Errorf("%s: no visualization (%s)", c.name, f.VisualizationNote)
		}
		// The witness must itself be a non-linearizable history.
		w := Check(context.Background(), f.Witness, Options{})
		if w.Valid != Invalid {
			t.Errorf("%s: witness re-checks as %s", c.name, w.Valid)
		}
		t.Logf("%s: %d ops: %s", c.name, f.WitnessOps, f.Explanation)
	}
	if valid != 23 || invalid != 79 {
		t.Errorf("got %d valid and %d invalid, want 23 and 79", valid, invalid)
	}
	small := 0
	for n, count := range sizes {
		if n <= 6 {
			small += count
		}
	}
	// 68 of 79 on the reference machine; leave room for a slow machine,
	// where shrinking budgets run out sooner.
	if small < 60 {
		t.Errorf("only %d of %d witnesses have at most 6 operations: %v", small, invalid, sizes)
	}
	t.Logf("witness size distribution (ops: histories): %v; %d of %d 1-minimal", sizes, minimal, invalid)
}
