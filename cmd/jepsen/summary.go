package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/jepsen-go/jepsen/checkers"
	"github.com/jepsen-go/jepsen/history"
)

// verdictSentence says the verdict in one line a learner understands,
// followed by the lines of printProblems.
func verdictSentence(res *checkers.Result) string {
	var b strings.Builder
	b.WriteString(verdictLine(res))
	printProblems(&b, res)
	return strings.TrimSuffix(b.String(), "\n")
}

// verdictLine says the verdict in one line.
func verdictLine(res *checkers.Result) string {
	switch res.Valid {
	case checkers.Valid:
		if res.Workload == "set" {
			return "VALID: every acknowledged write was still there at the end, and nothing that failed appeared."
		}
		return "VALID: every operation fits some single order consistent with real time (linearizable)."
	case checkers.Invalid:
		if res.Workload == "set" {
			return "INVALID: the store lost acknowledged writes or kept writes it said had failed."
		}
		return "INVALID: the store is not linearizable: some operations saw results no single order could produce."
	}
	if len(res.Problems) > 0 {
		return "UNKNOWN: this run could not really test the store; fix what is listed below and run it again."
	}
	if res.Workload == "set" {
		return "UNKNOWN: no write was seen lost, but some acknowledged writes could not be read back at the end, so whether they survived is unknown."
	}
	return "UNKNOWN: the checker could not decide within its time budget (give it more: --check-timeout for run, --timeout for check)."
}

func printSetSummary(w io.Writer, s *checkers.SetResult) {
	fmt.Fprintf(w, "  adds: %d attempted, %d acknowledged, %d failed, %d unknown outcome\n",
		s.Attempted, s.Acknowledged, s.Failed, s.Indeterminate)
	fmt.Fprintf(w, "  lost %d, unexpected %d, recovered %d, never read %d\n", s.Lost, s.Unexpected, s.Recovered, s.NeverRead)
	if s.Explanation != "" {
		fmt.Fprintf(w, "  %s\n", s.Explanation)
	}
	list := func(name string, els []checkers.SetElement, total int) {
		if total == 0 {
			return
		}
		keys := make([]string, 0, 10)
		for i, e := range els {
			if i == 10 {
				break
			}
			keys = append(keys, e.Key)
		}
		more := ""
		if total > len(keys) {
			more = fmt.Sprintf(" and %d more", total-len(keys))
		}
		fmt.Fprintf(w, "  ✗ %s: %s%s\n", name, strings.Join(keys, ", "), more)
	}
	list("lost", s.LostElements, s.Lost)
	list("unexpected", s.UnexpectedElements, s.Unexpected)
	list("corrupted", s.CorruptedElements, s.Corrupted)
}

// printProblems lists, each on a new line, what kept the run from testing
// the store, and says when no fault was injected.
func printProblems(w io.Writer, res *checkers.Result) {
	fmt.Fprintln(w)
	for _, p := range res.Problems {
		fmt.Fprintf(w, "  ! %s\n", p.Message)
		for _, l := range p.Log {
			fmt.Fprintf(w, "      %s\n", l)
		}
	}
	if f := faultCounts(res); f != "" {
		fmt.Fprintf(w, "  faults injected: %s\n", f)
	}
	if res.Valid == checkers.Valid && res.Stats.Nemesis == 0 {
		fmt.Fprintln(w, "  note: no faults were injected: this run says nothing about fault tolerance (try --nemesis partition,kill,pause,clock).")
	}
}

// healFs are the nemesis actions that end a fault rather than start one.
var healFs = map[string]bool{
	"stop-partition": true, "stop-packet": true, "resume": true, "start": true, "reset-clock": true,
	history.FRead: true, history.FWrite: true, history.FCAS: true, history.FAdd: true,
}

// faultCounts names the faults a history holds with their counts, e.g.
// "bump-clock 2, kill 1, start-partition 2"; "" if none.
func faultCounts(res *checkers.Result) string {
	if res.Stats.Nemesis == 0 {
		return ""
	}
	var parts []string
	for f, byType := range res.Stats.ByF {
		if n := byType[history.Invoke]; n > 0 && !healFs[f] {
			parts = append(parts, fmt.Sprintf("%s %d", f, n))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
