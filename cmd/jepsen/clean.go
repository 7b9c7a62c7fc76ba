package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/jepsen-go/jepsen/harness/docker"
)

func newCleanCmd() *cobra.Command {
	var opts docker.SweepOptions
	cmd := &cobra.Command{
		Use:   "clean",
		Short: "Remove the containers, networks and volumes that crashed runs left behind",
		Long: `Remove what crashed or killed runs left in Docker.

Everything jepsen creates is labelled with its run and its owner process.
clean removes the objects of runs whose owner process is gone; runs still in
progress are left alone. Every jepsen run does this sweep before it starts.
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
			if rep.Empty() {
				fmt.Fprintln(cmd.OutOrStdout(), "Nothing to clean: no leftovers of finished runs.")
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Cleaned: %s\n", rep)
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "also remove objects whose owner cannot be checked from here (another host, missing labels)")
	return cmd
}
