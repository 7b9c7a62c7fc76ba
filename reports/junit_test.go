package reports

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jepsen-go/jepsen/checkers"
	"github.com/jepsen-go/jepsen/history"
)

func TestWriteJUnit(t *testing.T) {
	invalid := &checkers.Result{Valid: checkers.Invalid, Workload: "register", Seconds: 1.5, Linear: &checkers.LinearResult{
		Valid: checkers.Invalid, Keys: 3, ValidKeys: 2, InvalidKeys: 1, Operations: 40,
		Failures: []checkers.KeyFailure{{Key: "k1", WitnessOps: 2, Explanation: "read of k1 by process 2 returned <1> & more"}},
	}}
	tests := []struct {
		name                string
		res                 *checkers.Result
		cases               []string
		failures, errors    int
		wantText, wantError string
	}{
		{"valid register", &checkers.Result{Valid: checkers.Valid, Workload: "register", Linear: &checkers.LinearResult{Valid: checkers.Valid, Keys: 3, ValidKeys: 3}},
			[]string{"linearizability"}, 0, 0, "", ""},
		{"invalid register", invalid, []string{"linearizability"}, 1, 0, "read of k1 by process 2 returned <1> & more", ""},
		{"unknown register", &checkers.Result{Valid: checkers.Unknown, Workload: "register", Linear: &checkers.LinearResult{Valid: checkers.Unknown, Keys: 1, UnknownKeys: 1,
			Unknown: []checkers.UnknownKey{{Key: "k9", Reason: "timed out after 1s"}}}}, []string{"linearizability"}, 0, 1, "key k9 undecided: timed out after 1s", ""},
		{"invalid set", &checkers.Result{Valid: checkers.Invalid, Workload: "set", Set: &checkers.SetResult{Valid: checkers.Invalid, Attempted: 3, Acknowledged: 3, Lost: 1,
			Explanation: "1 acknowledged add is lost", LostElements: []checkers.SetElement{{Key: "s1", Value: history.MustValue(1), Add: history.OK, Explanation: "added at 1s, absent at the end"}}}},
			[]string{"set"}, 1, 0, "s1: added at 1s, absent at the end", ""},
		{"check error", &checkers.Result{Valid: checkers.Unknown, Workload: "bogus", Error: "unknown workload \"bogus\""}, []string{"bogus"}, 0, 1, "", "the check could not run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out", "jepsen.xml")
			if err := WriteJUnit(path, tt.res, "jepsen raftkv"); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// Well-formed XML all through.
			d := xml.NewDecoder(strings.NewReader(string(b)))
			for {
				if _, err := d.Token(); err != nil {
					if err.Error() != "EOF" {
						t.Fatalf("not well-formed: %v\n%s", err, b)
					}
					break
				}
			}
			var doc struct {
				XMLName xml.Name `xml:"testsuites"`
				Suites  []struct {
					Name     string `xml:"name,attr"`
					Tests    int    `xml:"tests,attr"`
					Failures int    `xml:"failures,attr"`
					Errors   int    `xml:"errors,attr"`
					Cases    []struct {
						Name    string `xml:"name,attr"`
						Failure *struct {
							Message string `xml:"message,attr"`
							Text    string `xml:",chardata"`
						} `xml:"failure"`
						Error *struct {
							Message string `xml:"message,attr"`
							Text    string `xml:",chardata"`
						} `xml:"error"`
					} `xml:"testcase"`
				} `xml:"testsuite"`
			}
			if err := xml.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Suites) != 1 || doc.Suites[0].Name != "jepsen raftkv" {
				t.Fatalf("suites: %+v", doc.Suites)
			}
			s := doc.Suites[0]
			if s.Tests != len(tt.cases) || s.Failures != tt.failures || s.Errors != tt.errors || len(s.Cases) != len(tt.cases) {
				t.Fatalf("suite counts tests=%d failures=%d errors=%d cases=%d, want %d/%d/%d", s.Tests, s.Failures, s.Errors, len(s.Cases), len(tt.cases), tt.failures, tt.errors)
			}
			var texts []string
			for i, c := range s.Cases {
				if c.Name != tt.cases[i] {
					t.Errorf("case %d is %q, want %q", i, c.Name, tt.cases[i])
				}
				if c.Failure != nil {
					texts = append(texts, c.Failure.Message, c.Failure.Text)
				}
				if c.Error != nil {
					texts = append(texts, c.Error.Message, c.Error.Text)
				}
			}
			all := strings.Join(texts, "\n")
			for _, w := range []string{tt.wantText, tt.wantError} {
				if w != "" && !strings.Contains(all, w) {
					t.Errorf("failure/error text lacks %q:\n%s", w, all)
				}
			}
		})
	}
	if err := WriteJUnit(filepath.Join(t.TempDir(), "x.xml"), nil, "x"); err == nil {
		t.Error("WriteJUnit(nil result) succeeded")
	}
}
