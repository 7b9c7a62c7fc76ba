package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/jepsen-go/jepsen/reports"
)

func newReportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "report RUN_DIR | DIR | HISTORY",
		Short: "Regenerate the HTML report of a run or of any history",
		Long: `Regenerate report.html of a run directory (store/<target>/<time>, or
store/latest) from its files: test.json, history.jsonl and the node logs.

The argument may also be any directory holding a history.jsonl or
history.edn, or a history file (JSONL or EDN, as jepsen check reads them):
the report is written next to the history. test.json is optional: without
it the report shows what the history tells (verdict, counterexamples,
plots, the faults it records) and says which settings are unknown.

The history is checked again to rebuild the counterexamples and porcupine's
visualizations (results.json is left as it is). The report is one
self-contained file that opens offline; porcupine's views of each violation
are written next to it, in porcupine/.

Exit codes: 0 the report was written, 2 trouble (no history there, or the
history is malformed: FILE:LINE: what).`,
		Example: `  jepsen report store/latest
  jepsen report store/raftkv/20260101T120000
  jepsen report history.edn`,
		Args: exactArgs(1, "a run directory, a directory holding a history, or a history file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, res, err := reports.Rebuild(cmd.Context(), args[0])
			if err != nil {
				if errors.Is(err, reports.ErrNotRunDir) {
					return withCode(exitTrouble, err)
				}
				return withCode(exitTrouble, fmt.Errorf("report %s: %w", args[0], err))
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s\n", verdictSentence(res))
			fmt.Fprintf(out, "Wrote %s\n", path)
			return nil
		},
	}
}
