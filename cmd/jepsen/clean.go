package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/jepsen-go/jepsen/harness/agent"
	"github.com/jepsen-go/jepsen/harness/docker"
	"github.com/jepsen-go/jepsen/harness/durafs"
)

func newCleanCmd() *cobra.Command {
	var opts docker.SweepOptions
	cmd := &cobra.Command{
		Use:   "clean",
		Short: "Remove the containers, networks and volumes that crashed runs left behind",
		Long: `Remove what crashed or killed runs left in Docker.

Everything jepsen creates is labelled with its run and its owner process.
clean removes the objects of runs whose owner process is gone; runs still in
progress are left alone. It also removes the fault agents' socket
directories (jepsen-agents-* in the temporary directory) and power-loss
filesystem directories (jepsen-durafs-*) of runs whose
process is gone, and older ones that no agent answers on any more. Every
jepsen run does this sweep before it starts.
Images are a build cache and are kept.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := docker.Available(cmd.Context()); err != nil {
				return withCode(exitTrouble, fmt.Errorf("docker: %w", err))
			}
			rep, err := docker.Sweep(cmd.Context(), opts)
			if err != nil {
				return withCode(exitTrouble, fmt.Errorf("clean: %w", err))
			}
			dirs, err := agent.SweepSocketDirs(agent.SocketDirMinAge)
			if err != nil {
				return withCode(exitTrouble, fmt.Errorf("clean: %w", err))
			}
			fsDirs, err := durafs.SweepDirs(agent.SocketDirMinAge)
			if err != nil {
				return withCode(exitTrouble, fmt.Errorf("clean: %w", err))
			}
			out := cmd.OutOrStdout()
			if rep.Empty() && dirs == 0 && fsDirs == 0 {
				fmt.Fprintln(out, "Nothing to clean: no leftovers of finished runs.")
				return nil
			}
			if !rep.Empty() {
				fmt.Fprintf(out, "Cleaned: %s\n", rep)
			}
			if dirs > 0 {
				fmt.Fprintf(out, "Cleaned: %d agent socket directories of crashed runs in %s\n", dirs, os.TempDir())
			}
			if fsDirs > 0 {
				fmt.Fprintf(out, "Cleaned: %d power-loss filesystem directories of crashed runs in %s\n", fsDirs, os.TempDir())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "also remove objects whose owner cannot be checked from here (another host, missing labels)")
	return cmd
}
