package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/jepsen-go/jepsen/checkers"
	"github.com/jepsen-go/jepsen/harness"
	"github.com/jepsen-go/jepsen/history"
	"github.com/jepsen-go/jepsen/reports"
	"github.com/jepsen-go/jepsen/workloads"
)

func newCheckCmd() *cobra.Command {
	var (
		opts  checkers.Options
		junit string
	)
	cmd := &cobra.Command{
		Use:   "check HISTORY.jsonl | HISTORY.edn | RUN_DIR",
		Short: "Check a recorded history for linearizability or lost writes",
		Long: `Check a recorded history again, without running anything.

The argument is a history in JSONL v1 (one op per line, as jepsen run writes
it), a Jepsen history.edn of a register test, or a run directory
(store/<target>/<time>, or store/latest), in which case its history.jsonl is
checked and results.json is written next to it.

The workload is detected from the operations (read/write/cas: register,
add: set) unless --workload says otherwise.

Exit codes: 0 valid, 1 invalid, 2 trouble (e.g. a malformed history),
3 unknown (the checker ran out of time).`,
		Example: `  jepsen check store/latest
  jepsen check examples/histories/stale-read.jsonl
  jepsen check --timeout 5m history.edn`,
		Args: exactArgs(1, "a history file or a run directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return check(cmd, args[0], opts, junit)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Workload, "workload", "", "register or set (default: detected from the history)")
	f.DurationVar(&opts.Timeout, "timeout", checkers.DefaultTimeout, "time budget of the whole check; keys not decided in time are unknown (exit 3)")
	f.StringVar(&junit, "junit", "", "also write the verdict as JUnit XML to this file, for CI systems to display")
	return cmd
}

func check(cmd *cobra.Command, path string, opts checkers.Options, junit string) error {
	if opts.Workload != "" && opts.Workload != workloads.Register && opts.Workload != workloads.Set {
		return withCode(exitTrouble, fmt.Errorf("--workload %q: choose register or set", opts.Workload))
	}
	runDir := ""
	fi, err := os.Stat(path)
	if err != nil {
		return withCode(exitTrouble, noFile(path, err))
	}
	if fi.IsDir() {
		runDir = path
		path = filepath.Join(path, "history.jsonl")
	}
	ops, _, err := readHistory(path)
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
	printSummary(out, res, runDir)
	if runDir != "" {
		if err := harness.WriteResults(runDir, res); err != nil {
			return withCode(exitTrouble, err)
		}
		fmt.Fprintf(out, "Wrote %s\n", filepath.Join(runDir, "results.json"))
	}
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
	fmt.Fprintf(w, "\n%s\n", verdictSentence(res))
	fmt.Fprintf(w, "  workload %s, %d events, %d keys, checked in %.2fs\n", res.Workload, res.Ops, res.Keys, res.Seconds)
	if l := res.Linear; l != nil {
		fmt.Fprintf(w, "  keys: %d valid, %d invalid, %d unknown\n", l.ValidKeys, l.InvalidKeys, l.UnknownKeys)
		// The smallest proofs are the easiest to read: show those first.
		fails := slices.Clone(l.Failures)
		slices.SortStableFunc(fails, func(a, b checkers.KeyFailure) int { return a.WitnessOps - b.WitnessOps })
		for i, f := range fails {
			if i == maxSummaryKeys {
				fmt.Fprintf(w, "  ... and %d more invalid keys (all of them are in results.json)\n", len(fails)-i)
				break
			}
			fmt.Fprintf(w, "  ✗ key %s (%d ops in the smallest proof of %d checked): %s\n", f.Key, f.WitnessOps, f.Operations, f.Explanation)
		}
		for i, u := range l.Unknown {
			if i == maxSummaryKeys {
				fmt.Fprintf(w, "  ... and %d more undecided keys\n", len(l.Unknown)-i)
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
