package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/jepsen-go/jepsen/checkers"
	"github.com/jepsen-go/jepsen/harness"
	"github.com/jepsen-go/jepsen/nemesis"
	"github.com/jepsen-go/jepsen/reports"
	"github.com/jepsen-go/jepsen/targets"
	"github.com/jepsen-go/jepsen/workloads"
)

func newRunCmd() *cobra.Command {
	var (
		cfg     harness.Config
		seed    int64
		runs    int
		envVals []string
		junit   string
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Test a store: start its nodes, run clients under faults, check the history",
		Long: `Run one test of a key-value store.

jepsen builds the target (a directory with a jepsen.yaml), starts its nodes
n1..nN in Docker containers on a private network, runs --concurrency client
threads against them for --time-limit while the nemesis injects faults, then
heals the cluster, checks the recorded history for linearizability (register
workload) or lost writes (set workload), and writes everything to
store/<target>/<time>/ (store/latest points at the newest run).

Faults: without --nemesis, every family acts: network (partition, packet),
process (kill, pause) and clock. A store is only as good as what it
survives, and a run without faults says nothing about fault tolerance.
Each family injects a fault every --nemesis-interval and heals it the
next; the first comes after a short warm-up (a fifth of the interval) and
the families start staggered, so a 20 s run at the default interval sees
all three. Clock faults need ptrace into the node's PID namespace; where
that is denied, the default mix goes on without them and says so. The
opt-in power-loss (unsynced writes lost) and corrupt (a stopped node's
file damaged) are named explicitly. --nemesis none is a fault-free
baseline.

Without --target it tests the reference Raft store carried inside jepsen
itself; --env RAFTKV_BUG=<name> switches on one of its deliberate bugs
to see a violation found: racy-cas (no faults needed), stale-read and
early-ack (--nemesis partition), no-fsync (--workload set --nemesis
power-loss: it never calls fsync, and only a power cut loses the page cache),
lease-read (--nemesis clock,partition: found in 9 of 10 60 s runs at
the default interval).

Exit codes: 0 valid, 1 invalid (a violation was found), 2 trouble (no
verdict), 3 unknown (the checker ran out of time), 130 interrupted.`,
		Example: `  jepsen run                                   # the reference store, 30 s, the default faults
  jepsen run --nemesis none                    # no faults: a baseline
  jepsen run --target ./mykv --nemesis partition
  jepsen run --env RAFTKV_BUG=racy-cas --time-limit 20s
  jepsen run --workload set --nemesis kill,pause --runs 5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkRunFlags(cmd, cfg, runs); err != nil {
				return withCode(exitTrouble, err)
			}
			for _, kv := range envVals {
				if err := targets.CheckEnv(kv); err != nil {
					return withCode(exitTrouble, fmt.Errorf("--env: %w", err))
				}
			}
			cfg.Env = envVals
			if !cmd.Flags().Changed("rate") && cfg.Workload == workloads.Set {
				cfg.Rate = harness.DefaultSetRate
			}
			if !cmd.Flags().Changed("seed") {
				seed = int64(rand.Uint32())
			}
			if seed < 0 {
				return withCode(exitTrouble, fmt.Errorf("--seed must not be negative, got %d", seed))
			}
			cfg.Progress = cmd.ErrOrStderr()
			if f, ok := cfg.Progress.(*os.File); ok {
				cfg.Terminal = term.IsTerminal(int(f.Fd()))
			}
			ctx, abort, stop := interrupts(cmd.Context())
			defer stop()
			cfg.Abort = abort
			cfg.Backend = dockerBackend{}
			return runMany(ctx, cmd.OutOrStdout(), cfg, uint64(seed), runs, junit)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.TargetDir, "target", "", "directory holding the store's jepsen.yaml, whose fields and wire contract docs/protocol.md describes (default: the reference Raft store built into jepsen)")
	f.StringVar(&cfg.Workload, "workload", workloads.Register, "what clients do: register (read/write/cas, checked for linearizability) or set (unique adds, checked for lost writes)")
	f.StringVar(&cfg.Ops, "ops", "", "register workload: the ops clients issue, a comma-separated subset of read,write,cas (default all); read,write for stores without compare-and-set")
	f.StringVar(&cfg.Nemesis, "nemesis", "", "faults to inject, comma-separated: partition, packet, kill, pause, clock, and the opt-in power-loss, corrupt; or none (default: partition,kill,pause,packet,clock, all three families; clock faults are left out, with a warning, where ptrace cannot reach the nodes)")
	f.DurationVar(&cfg.NemesisInterval, "nemesis-interval", harness.DefaultNemesisInterval, "time between a fault and its healing, and between healing and the next fault of the same family (network: partition, packet; process: kill, pause; clock); faults of different families overlap")
	f.DurationVar(&cfg.ClockMax, "clock-max", nemesis.DefaultClockMax, "clock nemesis: largest jump, forward or back (a bump's offset, a strobe's swing)")
	f.IntVar(&cfg.Nodes, "nodes", 0, "number of nodes (default: the target's nodes, 5 for the reference store)")
	f.IntVar(&cfg.Concurrency, "concurrency", 0, "client threads (default: 2 per node)")
	f.Float64Var(&cfg.Rate, "rate", 0, "total ops per second across all clients; 0 = as fast as they can go (default: 0 for register, 200 for set, whose final phase reads every added key back)")
	f.DurationVar(&cfg.TimeLimit, "time-limit", harness.DefaultTimeLimit, "how long clients run before the final phase")
	f.Int64Var(&seed, "seed", 0, "seed of the op sequence and fault schedule (default: random, printed at start)")
	f.StringVar(&cfg.Store, "store", "store", "directory where runs are written")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve Prometheus /metrics during the run at HOST:PORT (loopback when HOST is empty), e.g. 127.0.0.1:9464")
	f.StringArrayVar(&cfg.ProtocolOptions, "protocol-option", nil, "KEY=VALUE option of the target's client protocol (repeatable); overrides jepsen.yaml's protocol_options, e.g. reads=serializable for etcd")
	f.StringArrayVar(&envVals, "env", nil, "KEY=VALUE given to every node's environment (repeatable), e.g. RAFTKV_BUG=stale-read")
	f.DurationVar(&cfg.OpTimeout, "op-timeout", harness.DefaultOpTimeout, "deadline of one operation; past it the op is recorded as info (outcome unknown)")
	f.IntVar(&cfg.OpsPerKey, "ops-per-key", harness.DefaultOpsPerKey, "register workload: retire a key after this many ops, to keep each key's history quick to check")
	f.DurationVar(&cfg.Recovery, "recovery", harness.DefaultRecovery, "after healing, how long the cluster may settle before the final reads (set workload)")
	f.DurationVar(&cfg.CheckTimeout, "check-timeout", checkers.DefaultTimeout, "time budget of the checker; keys it cannot decide are unknown (exit 3)")
	f.DurationVar(&cfg.ReadyTimeout, "ready-timeout", 30*time.Second, "how long each node may take to answer its ready path")
	f.IntVar(&runs, "runs", 1, "repeat the test this many times with fresh seeds, stopping at the first invalid run")
	f.StringVar(&junit, "junit", "", "also write the verdict as JUnit XML to this file, for CI systems to display")
	return cmd
}

// checkRunFlags refuses numbers that make no sense, naming the flag,
// rather than silently running with a default instead.
func checkRunFlags(cmd *cobra.Command, cfg harness.Config, runs int) error {
	positive := []struct {
		flag string
		ok   bool
		val  any
	}{
		{"time-limit", cfg.TimeLimit > 0, cfg.TimeLimit},
		{"nemesis-interval", cfg.NemesisInterval > 0, cfg.NemesisInterval},
		{"clock-max", cfg.ClockMax > 0, cfg.ClockMax},
		{"op-timeout", cfg.OpTimeout > 0, cfg.OpTimeout},
		{"check-timeout", cfg.CheckTimeout > 0, cfg.CheckTimeout},
		{"ready-timeout", cfg.ReadyTimeout > 0, cfg.ReadyTimeout},
		{"ops-per-key", cfg.OpsPerKey > 0, cfg.OpsPerKey},
		{"runs", runs > 0, runs},
		// 0 is their documented default; only an explicit value is checked.
		{"nodes", !cmd.Flags().Changed("nodes") || cfg.Nodes > 0, cfg.Nodes},
		{"concurrency", !cmd.Flags().Changed("concurrency") || cfg.Concurrency > 0, cfg.Concurrency},
	}
	for _, p := range positive {
		if !p.ok {
			return fmt.Errorf("--%s must be greater than 0, got %v", p.flag, p.val)
		}
	}
	if cfg.Rate < 0 {
		return fmt.Errorf("--rate must not be negative (0 = as fast as the clients can go), got %v", cfg.Rate)
	}
	if cfg.Recovery < 0 {
		return fmt.Errorf("--recovery must not be negative, got %v", cfg.Recovery)
	}
	return nil
}

// runMany performs up to n runs and returns the exit error of the last one.
func runMany(ctx context.Context, out io.Writer, cfg harness.Config, seed uint64, n int, junit string) error {
	passed := 0
	var last *harness.Outcome
	for i := 0; i < n; i++ {
		c := cfg
		c.Seed = seed + uint64(i)
		c.Command = c.Reproduce(runDefaults)
		if n > 1 {
			fmt.Fprintf(cfg.Progress, "jepsen: run %d of %d\n", i+1, n)
		}
		o, err := harness.Run(ctx, c)
		if err != nil {
			if errors.Is(err, harness.ErrInterrupted) {
				if o != nil {
					printSummary(out, o.Result, o.Dir)
					if o.Report != "" {
						fmt.Fprintf(out, "  report: %s\n", o.Report)
					}
					return withCode(exitInterrupted, fmt.Errorf("%s: the verdict covers the history recorded until then; the cluster was torn down", o.Result.Interrupted))
				}
				return withCode(exitInterrupted, errors.New("interrupted; the cluster was torn down"))
			}
			return withCode(exitTrouble, err)
		}
		last = o
		printSummary(out, o.Result, o.Dir)
		if o.Report != "" {
			fmt.Fprintf(out, "  report: %s\n", o.Report)
		}
		fmt.Fprintf(out, "Reproduce: %s\n", c.Command)
		if o.Result.Valid != checkers.Valid {
			break
		}
		passed++
	}
	if n > 1 {
		fmt.Fprintf(out, "%d of %d runs passed\n", passed, n)
	}
	if junit != "" {
		if err := reports.WriteJUnit(junit, last.Result, "jepsen "+last.Result.Workload); err != nil {
			return withCode(exitTrouble, fmt.Errorf("--junit: %w", err))
		}
	}
	return verdictExit(last.Result)
}

// verdictExit maps a checker result to the command's exit.
func verdictExit(res *checkers.Result) error {
	if res.Error != "" {
		return withCode(exitTrouble, errors.New(res.Error))
	}
	switch res.Valid {
	case checkers.Valid:
		return nil
	case checkers.Invalid:
		return withCode(exitInvalid, nil)
	}
	return withCode(exitUnknown, nil)
}

// runDefaults are the settings `jepsen run` takes for the flags that are
// not given; the reproduce command leaves them out.
var runDefaults = reports.Settings{
	NemesisInterval: harness.DefaultNemesisInterval,
	ClockMax:        nemesis.DefaultClockMax,
	OpsPerKey:       harness.DefaultOpsPerKey,
	OpTimeout:       harness.DefaultOpTimeout,
	Recovery:        harness.DefaultRecovery,
}

// interrupts returns a context cancelled by the first SIGINT or SIGTERM
// and one cancelled by the second (which skips the check of the
// interrupted run); stop releases the signal handler.
func interrupts(parent context.Context) (first, second context.Context, stop func()) {
	first, cancel1 := context.WithCancel(parent)
	second, cancel2 := context.WithCancel(context.WithoutCancel(parent))
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for n := 0; n < 2; n++ {
			select {
			case <-ch:
			case <-done:
				return
			}
			if n == 0 {
				cancel1()
			} else {
				cancel2()
			}
		}
	}()
	return first, second, func() {
		signal.Stop(ch)
		close(done)
		cancel1()
		cancel2()
	}
}
