package main

import (
	"strings"
	"testing"
	"time"
)

// TestRunDefaultsAreTheFlagDefaults: the settings the reproduce command
// leaves out are the defaults of the flags of `jepsen run`, so that the
// shortened command repeats the run.
func TestRunDefaultsAreTheFlagDefaults(t *testing.T) {
	flags := newRunCmd().Flags()
	for name, want := range map[string]time.Duration{
		"nemesis-interval": runDefaults.NemesisInterval,
		"clock-max":        runDefaults.ClockMax,
		"op-timeout":       runDefaults.OpTimeout,
		"recovery":         runDefaults.Recovery,
	} {
		if got := flags.Lookup(name).DefValue; got != want.String() {
			t.Errorf("--%s defaults to %s; the reproduce command takes %s as its default", name, got, want)
		}
	}
	if got, err := flags.GetInt("ops-per-key"); err != nil || got != runDefaults.OpsPerKey {
		t.Errorf("--ops-per-key defaults to %d (%v), the reproduce command takes %d", got, err, runDefaults.OpsPerKey)
	}
	for _, name := range []string{"nodes", "concurrency", "rate"} {
		if got := flags.Lookup(name).DefValue; got != "0" {
			t.Errorf("--%s defaults to %s; the reproduce command leaves out only 0", name, got)
		}
	}
}

// TestReproduceParses: the command reproduce prints is accepted by `jepsen
// run`'s flags and gives back the same settings.
func TestReproduceParses(t *testing.T) {
	cmd := newRunCmd()
	args := []string{"--workload", "register", "--ops", "read,write", "--nemesis", "clock,partition", "--time-limit", "12s", "--seed", "42",
		"--nemesis-interval", "3s", "--clock-max", "2s", "--nodes", "3", "--concurrency", "4", "--rate", "50", "--ops-per-key", "20",
		"--op-timeout", "2s", "--recovery", "0s", "--protocol-option", "reads=serializable", "--env", "A=b"}
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatal(err)
	}
	// newRunCmd keeps its settings to itself: read them back from the flags.
	f := cmd.Flags()
	s := runDefaults
	s.Workload, _ = f.GetString("workload")
	s.Ops, _ = f.GetString("ops")
	s.Nemesis, _ = f.GetString("nemesis")
	s.TimeLimit, _ = f.GetDuration("time-limit")
	seed, _ := f.GetInt64("seed")
	s.Seed = uint64(seed)
	s.NemesisInterval, _ = f.GetDuration("nemesis-interval")
	s.ClockMax, _ = f.GetDuration("clock-max")
	s.Nodes, _ = f.GetInt("nodes")
	s.Concurrency, _ = f.GetInt("concurrency")
	s.Rate, _ = f.GetFloat64("rate")
	s.OpsPerKey, _ = f.GetInt("ops-per-key")
	s.OpTimeout, _ = f.GetDuration("op-timeout")
	s.Recovery, _ = f.GetDuration("recovery")
	s.ProtocolOptions, _ = f.GetStringArray("protocol-option")
	s.Env, _ = f.GetStringArray("env")
	got := s.Reproduce(runDefaults)
	want := "jepsen run " + strings.Join(args, " ")
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
