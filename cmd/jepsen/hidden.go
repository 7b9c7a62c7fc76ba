package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/jepsen-go/jepsen/harness/clockfault"
	"github.com/jepsen-go/jepsen/harness/durafs"
	"github.com/jepsen-go/jepsen/harness/netfault"
	"github.com/jepsen-go/jepsen/targets/raftkv/server"
)

// The jepsen binary doubles as the programs it runs inside containers, so
// that a single static executable is all a run needs: the reference store
// (the default target) and the fault agent that joins a node's network
// namespace, and the clock fault agent that joins its PID namespace. These
// commands are hidden from help.

func newRaftkvCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "raftkv [flags]",
		Short:              "Run a node of the reference Raft key-value store (used inside containers)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := server.Main(args, os.Getenv); err != nil {
				return withCode(exitTrouble, err)
			}
			return nil
		},
	}
}

func newNetfaultCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "netfault serve|apply|clear|status",
		Short:              "Network fault agent, run inside a node's network namespace (used inside containers)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := netfault.Main(args, cmd.OutOrStdout()); err != nil {
				return withCode(exitTrouble, err)
			}
			return nil
		},
	}
}

func newClockfaultCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "clockfault serve|set|reset|strobe|status|check",
		Short:              "Clock fault agent, run in a node's PID namespace (used inside containers)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := clockfault.Main(args, cmd.OutOrStdout()); err != nil {
				return withCode(exitTrouble, err)
			}
			return nil
		},
	}
}

func newDurafsCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "durafs serve|exec|status|probe",
		Short:              "Filesystem that loses unsynced writes on power loss: its helper and node wrapper (used inside containers)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := durafs.Main(args, cmd.OutOrStdout()); err != nil {
				return withCode(exitTrouble, err)
			}
			return nil
		},
	}
}
