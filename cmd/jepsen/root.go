package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it comes from the module's build info.
var version = ""

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "jepsen",
		Short: "Find consistency bugs in distributed key-value stores",
		Long: `jepsen tests a distributed key-value store for linearizability under faults.

It builds your store, starts N nodes in Docker containers, runs concurrent
clients against them while it partitions the network, kills, freezes and
restarts processes, records every operation, checks the history with the
porcupine linearizability checker and writes an HTML report.

Exit codes: 0 valid, 1 invalid (a violation was found), 2 trouble (no
verdict: bad input, Docker unreachable, the target failed to start),
3 unknown (the checker ran out of time), 130 interrupted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newRunCmd(), newCheckCmd(), newCleanCmd(), newVersionCmd(),
		newRaftkvCmd(), newNetfaultCmd(), newClockfaultCmd(), newDurafsCmd(), newReportCmd(), newServeCmd())
	return root
}

func versionString() string {
	v := version
	if v == "" {
		v = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	return fmt.Sprintf("jepsen %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of jepsen and of the Go toolchain that built it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), versionString())
			return nil
		},
	}
}
