package reports

import (
	"fmt"
	"strings"
	"time"
)

// Reproduce returns the `jepsen run` command line that repeats a run with
// these settings: the target, workload, ops, faults, time limit, seed,
// the fault timing, the cluster and client shape, the protocol options and
// the nodes' environment, each value quoted for a POSIX shell where it
// needs it. A setting equal to its value in defaults (what `jepsen run`
// takes when the flag is not given) is left out, and so is a zero one
// (but for --recovery, where 0 means none); with zero defaults, every
// setting that was set appears. Fault timing
// that cannot matter (the interval under --nemesis none, the clock bound
// without clock faults) is left out too.
func (s Settings) Reproduce(defaults Settings) string {
	args := []string{"jepsen", "run"}
	flag := func(name, value string) { args = append(args, "--"+name, ShellQuote(value)) }
	dur := func(name string, d, def time.Duration) {
		if d > 0 && d != def {
			flag(name, d.String())
		}
	}
	if s.TargetDir != "" {
		flag("target", s.TargetDir)
	}
	if s.Workload != "" {
		flag("workload", s.Workload)
	}
	if s.Ops != "" {
		flag("ops", s.Ops)
	}
	if s.Nemesis != "" {
		flag("nemesis", s.Nemesis)
	}
	if s.TimeLimit > 0 {
		flag("time-limit", s.TimeLimit.String())
	}
	flag("seed", fmt.Sprint(s.Seed))
	if s.Nemesis != "none" {
		dur("nemesis-interval", s.NemesisInterval, defaults.NemesisInterval)
	}
	if s.Nemesis == "" || strings.Contains(s.Nemesis, "clock") {
		dur("clock-max", s.ClockMax, defaults.ClockMax)
	}
	if s.Nodes > 0 && s.Nodes != defaults.Nodes {
		flag("nodes", fmt.Sprint(s.Nodes))
	}
	if s.Concurrency > 0 && s.Concurrency != defaults.Concurrency {
		flag("concurrency", fmt.Sprint(s.Concurrency))
	}
	if s.Rate > 0 && s.Rate != defaults.Rate {
		flag("rate", fmt.Sprint(s.Rate))
	}
	if s.OpsPerKey > 0 && s.OpsPerKey != defaults.OpsPerKey {
		flag("ops-per-key", fmt.Sprint(s.OpsPerKey))
	}
	dur("op-timeout", s.OpTimeout, defaults.OpTimeout)
	if s.Recovery >= 0 && s.Recovery != defaults.Recovery {
		flag("recovery", s.Recovery.String()) // 0 is a setting: no recovery
	}
	for _, o := range s.ProtocolOptions {
		flag("protocol-option", o)
	}
	for _, e := range s.Env {
		flag("env", e)
	}
	return strings.Join(args, " ")
}

// ShellQuote returns s as one word of a POSIX shell command: unchanged
// when it holds only characters no shell treats specially, else in single
// quotes.
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '_' || r == '-' || r == '=' || r == ',' || r == ':' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
