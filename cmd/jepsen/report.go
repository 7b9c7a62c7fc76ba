package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/jepsen-go/jepsen/reports"
)

func newReportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "report RUN_DIR",
		Short: "Regenerate the HTML report of a run",
		Long: `Regenerate report.html of a run directory (store/<target>/<time>, or
store/latest) from its files: test.json, history.jsonl and the node logs.

The history is checked again to rebuild the counterexamples and porcupine's
visualizations (results.json is left as it is). The report is one
self-contained file that opens offline; porcupine's views of each violation
are written next to it, in porcupine/.

Exit codes: 0 the report was written, 2 trouble (RUN_DIR is not a run
directory, or the history is malformed).`,
		Example: `  jepsen report store/latest
  jepsen report store/raftkv/20260101T120000`,
		Args: exactArgs(1, "a run directory"),
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
