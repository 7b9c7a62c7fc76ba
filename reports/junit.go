package reports

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jepsen-go/jepsen/checkers"
)

// maxJUnitFailures caps the violations spelled out in one <failure>.
const maxJUnitFailures = 20

// JUnit XML, the dialect every CI system reads (Jenkins, GitLab, GitHub
// Actions reporters): testsuites > testsuite > testcase > failure | error.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     float64      `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     float64     `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes res as a JUnit XML file at path: one test suite named
// testName (e.g. "jepsen raftkv register partition") with one test case
// per checker that ran: "linearizability" for a register workload, "set"
// for a set workload. An invalid verdict is a <failure> whose message is
// the verdict and whose text holds each violation's explanation; an
// unknown verdict, or a check that could not run, is an <error>.
func WriteJUnit(path string, res *checkers.Result, testName string) error {
	if res == nil {
		return fmt.Errorf("write JUnit %s: no checker result", path)
	}
	if testName == "" {
		testName = "jepsen"
	}
	var cases []junitCase
	add := func(name string, valid checkers.Validity, summary, details string) {
		c := junitCase{Name: name, Classname: testName, Time: res.Seconds, SystemOut: summary}
		switch valid {
		case checkers.Invalid:
			c.Failure = &junitProblem{Message: summary, Type: "invalid", Text: details}
		case checkers.Unknown:
			c.Error = &junitProblem{Message: summary, Type: "unknown", Text: details}
		}
		cases = append(cases, c)
	}
	switch {
	case res.Error != "":
		cases = append(cases, junitCase{Name: orDash(res.Workload, "check"), Classname: testName, Time: res.Seconds,
			Error: &junitProblem{Message: "the check could not run: " + res.Error, Type: "trouble"}})
	case res.Linear != nil:
		l := res.Linear
		summary := fmt.Sprintf("%d keys: %d valid, %d invalid, %d unknown; %d operations checked", l.Keys, l.ValidKeys, l.InvalidKeys, l.UnknownKeys, l.Operations)
		var b strings.Builder
		for i, f := range failureOrder(l.Failures) {
			if i == maxJUnitFailures {
				fmt.Fprintf(&b, "... and %d more invalid keys (see results.json and report.html)\n", len(l.Failures)-i)
				break
			}
			fmt.Fprintf(&b, "key %s (%d ops prove it): %s\n", f.Key, f.WitnessOps, f.Explanation)
		}
		for i, u := range l.Unknown {
			if i == maxJUnitFailures {
				fmt.Fprintf(&b, "... and %d more undecided keys\n", len(l.Unknown)-i)
				break
			}
			fmt.Fprintf(&b, "key %s undecided: %s\n", u.Key, u.Reason)
		}
		add("linearizability", l.Valid, summary, b.String())
	case res.Set != nil:
		s := res.Set
		summary := fmt.Sprintf("%d adds (%d ok, %d failed, %d unknown): %d lost, %d unexpected, %d corrupted, %d recovered, %d never read",
			s.Attempted, s.Acknowledged, s.Failed, s.Indeterminate, s.Lost, s.Unexpected, s.Corrupted, s.Recovered, s.NeverRead)
		var b strings.Builder
		if s.Explanation != "" {
			b.WriteString(s.Explanation + "\n")
		}
		for _, list := range [][]checkers.SetElement{s.LostElements, s.UnexpectedElements, s.CorruptedElements} {
			for i, e := range list {
				if i == maxJUnitFailures {
					break
				}
				fmt.Fprintf(&b, "%s: %s\n", e.Key, e.Explanation)
			}
		}
		add("set", s.Valid, summary, b.String())
	default:
		cases = append(cases, junitCase{Name: "check", Classname: testName, Time: res.Seconds,
			Error: &junitProblem{Message: "no checker result for workload " + res.Workload, Type: "trouble"}})
	}
	suite := junitSuite{Name: testName, Tests: len(cases), Time: res.Seconds, Cases: cases}
	for _, c := range cases {
		if c.Failure != nil {
			suite.Failures++
		}
		if c.Error != nil {
			suite.Errors++
		}
	}
	doc := junitSuites{Name: "jepsen", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors, Time: suite.Time, Suites: []junitSuite{suite}}
	b, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("write JUnit %s: %w", path, err)
	}
	b = append([]byte(xml.Header), append(b, '\n')...)
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("write JUnit %s: %w", path, err)
		}
	}
	if err := WriteFileAtomic(path, b); err != nil {
		return fmt.Errorf("write JUnit %s: %w", path, err)
	}
	return nil
}
