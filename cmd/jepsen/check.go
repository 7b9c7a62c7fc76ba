package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/jepsen-go/jepsen/checkers"
	"github.com/jepsen-go/jepsen/harness"
	"github.com/jepsen-go/jepsen/history"
	"github.com/jepsen-go/jepsen/reports"
	"github.com/jepsen-go/jepsen/workloads"
)

func newCheckCmd() *cobra.Command {
	var (
		opts       checkers.Options
		junit, out string
	)
	cmd := &cobra.Command{
		Use:   "check HISTORY.jsonl | HISTORY.edn | DIR",
		Short: "Check a recorded history for linearizability or lost writes, and write its report",
		Long: `Check a recorded history again, without running anything, and write its
report.html next to it (or into --out DIR).

The argument is a history file or a directory holding one (history.jsonl or
history.edn): a run directory (store/<target>/<time>, or store/latest), or
any directory. A history is JSONL v1 (one op per line, as jepsen run writes
it) or EDN as Jepsen and Knossos write it: one op map per line or one vector
or list of maps, maps over several lines, #jepsen.history.Op{...} records,
keyword or string values. Ops without :time are placed by their order in the
file, which is the real-time order; the report then counts in positions.
Nemesis :info ops without an :invoke are given one at their own time.

For a directory (or with --out), results.json is written as well. Without
test.json beside the history, the report shows what the history tells
(verdict, counterexamples, plots, the faults it records) and says which
settings are unknown.

The workload is detected from the operations (read/write/cas: register,
add: set) unless --workload says otherwise.

Exit codes: 0 valid, 1 invalid, 2 trouble (e.g. a malformed history:
FILE:LINE: what), 3 unknown (the checker ran out of time).`,
		Example: `  jepsen check store/latest
  jepsen check examples/histories/stale-read.jsonl --out /tmp/stale
  jepsen check --timeout 5m history.edn`,
		Args: exactArgs(1, "a history file or a directory holding one"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return check(cmd, args[0], opts, junit, out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Workload, "workload", "", "register or set (default: detected from the history)")
	f.DurationVar(&opts.Timeout, "timeout", checkers.DefaultTimeout, "time budget of the whole check; keys not decided in time are unknown (exit 3)")
	f.StringVar(&junit, "junit", "", "also write the verdict as JUnit XML to this file, for CI systems to display")
	f.StringVar(&out, "out", "", "write report.html (and results.json) into this directory instead of next to the history")
	return cmd
}

func check(cmd *cobra.Command, path string, opts checkers.Options, junit, outDir string) error {
	if opts.Workload != "" && opts.Workload != workloads.Register && opts.Workload != workloads.Set {
		return withCode(exitTrouble, fmt.Errorf("--workload %q: choose register or set", opts.Workload))
	}
	fi, err := os.Stat(path)
	if err != nil {
		return withCode(exitTrouble, noFile(path, err))
	}
	dir := "" // where results.json goes
	if fi.IsDir() {
		dir = path
		if path, err = reports.FindHistory(path); err != nil {
			return withCode(exitTrouble, err)
		}
	}
	if outDir != "" {
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return withCode(exitTrouble, fmt.Errorf("--out: %w", err))
		}
		dir = outDir
	}
	ops, info, err := readHistory(path)
	if err != nil {
		return withCode(exitTrouble, err)
	}
	if len(ops) == 0 {
		return withCode(exitTrouble, fmt.Errorf("%s:1: the history is empty: it has no operations to check", path))
	}
	res := checkers.Check(cmd.Context(), ops, opts)
	if res.Error != "" {
		return withCode(exitTrouble, fmt.Errorf("%s: %s", path, res.Error))
	}
	out := cmd.OutOrStdout()
	printHistorySummary(out, res, dir, info)
	if dir != "" {
		if err := harness.WriteResults(dir, res); err != nil {
			return withCode(exitTrouble, err)
		}
		fmt.Fprintf(out, "Wrote %s\n", filepath.Join(dir, "results.json"))
	}
	reportDir := dir
	if reportDir == "" {
		reportDir = filepath.Dir(path)
	}
	report, err := reports.WriteHistory(cmd.Context(), reports.History{Out: reportDir, Path: path, Ops: ops, Info: info}, res)
	if err != nil {
		return withCode(exitTrouble, fmt.Errorf("%w (the verdict above stands; --out DIR writes the report elsewhere)", err))
	}
	fmt.Fprintf(out, "Wrote %s\n", report)
	if junit != "" {
		if err := reports.WriteJUnit(junit, res, "jepsen check "+filepath.Base(path)); err != nil {
			return withCode(exitTrouble, fmt.Errorf("--junit: %w", err))
		}
	}
	return verdictExit(res)
}

func noFile(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: no such file or directory", path)
	}
	return err
}

// readHistory reads a JSONL or EDN history, telling them apart by the file
// name and, failing that, by the first bytes.
func readHistory(path string) ([]history.Op, history.FileInfo, error) {
	ops, info, err := history.ReadFileInfo(path)
	if err != nil {
		return nil, info, noFile(path, err)
	}
	return ops, info, nil
}

// exactArgs is cobra.ExactArgs with a message that says what is expected.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %s (got %d arguments); see jepsen %s --help", cmd.Name(), what, len(args), cmd.Name())
		}
		return nil
	}
}

// maxSummaryKeys caps the keys listed in a summary.
const maxSummaryKeys = 5

// printSummary writes the verdict and what supports it.
func printSummary(w io.Writer, res *checkers.Result, dir string) {
	printHistorySummary(w, res, dir, history.FileInfo{})
}

// printHistorySummary writes the verdict and what supports it, saying
// how the history was read when that matters.
func printHistorySummary(w io.Writer, res *checkers.Result, dir string, info history.FileInfo) {
	text := func(s string) string { return s }
	if info.Timeless {
		text = reports.TimelessText
	}
	fmt.Fprintf(w, "\n%s\n", verdictSentence(res))
	fmt.Fprintf(w, "  workload %s, %d events, %d keys, checked in %.2fs\n", res.Workload, res.Ops, res.Keys, res.Seconds)
	if info.Timeless {
		fmt.Fprintf(w, "  the history has no times: the order of the file is the real-time order; \"op N\" is the N-th operation, from 0\n")
	}
	if l := res.Linear; l != nil {
		fmt.Fprintf(w, "  keys: %d valid, %d invalid, %d unknown\n", l.ValidKeys, l.InvalidKeys, l.UnknownKeys)
		if kinds := reports.ViolationKinds(l.Failures); len(kinds) > 0 {
			parts := make([]string, len(kinds))
			for i, k := range kinds {
				parts[i] = k.Plural()
			}
			fmt.Fprintf(w, "  violations by kind: %s\n", strings.Join(parts, ", "))
		}
		// The smallest proofs are the easiest to read: show those first.
		fails := slices.Clone(l.Failures)
		slices.SortStableFunc(fails, func(a, b checkers.KeyFailure) int {
			if a.WitnessOps != b.WitnessOps {
				return a.WitnessOps - b.WitnessOps
			}
			return reports.CompareKeys(a.Key, b.Key)
		})
		for i, f := range fails {
			if i == maxSummaryKeys {
				fmt.Fprintf(w, "  ... and %d more invalid keys (all of them are in results.json and the report)\n", len(fails)-i)
				break
			}
			fmt.Fprintf(w, "  ✗ key %s, %s: %s (of %d on this key): %s\n", f.Key, reports.ViolationKind(f), proves(f.WitnessOps), f.Operations, text(f.Explanation))
		}
		unknown := slices.Clone(l.Unknown)
		slices.SortStableFunc(unknown, func(a, b checkers.UnknownKey) int { return reports.CompareKeys(a.Key, b.Key) })
		for i, u := range unknown {
			if i == maxSummaryKeys {
				fmt.Fprintf(w, "  ... and %d more undecided keys\n", len(unknown)-i)
				break
			}
			fmt.Fprintf(w, "  ? key %s: %s\n", u.Key, u.Reason)
		}
	}
	if s := res.Set; s != nil {
		printSetSummary(w, s)
	}
	if dir != "" {
		fmt.Fprintf(w, "  run directory: %s\n", dir)
	}
}

// proves says how many operations prove a violation: "2 operations prove it".
func proves(n int) string {
	if n == 1 {
		return "1 operation proves it"
	}
	return fmt.Sprintf("%d operations prove it", n)
}
