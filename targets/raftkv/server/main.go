// Package server is raftkv, the reference key-value store of jepsen: a
// Raft-replicated map (hashicorp/raft, fsync'd bolt storage) that speaks
// the harness's `http` target protocol, with selectable bugs (see Bug) that
// a test run must detect.
//
// Main is the command-line entry point (used by targets/raftkv and by the
// hidden `jepsen raftkv` subcommand); Start and Run run a node in-process.
package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
)

// Main parses args (without the program name), falling back to the
// environment read through getenv (JEPSEN_NODE, JEPSEN_NODES, JEPSEN_PORT,
// JEPSEN_DATA_DIR, RAFTKV_BUG, RAFTKV_RAFT_PORT, RAFTKV_LOG_LEVEL), and
// runs a node until SIGINT or SIGTERM. Logs go to stderr.
func Main(args []string, getenv func(string) string) error {
	cfg, level, err := parseArgs(args, getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stderr, usage)
			return nil
		}
		return err
	}
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "raftkv", Level: level, Output: os.Stderr})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, cfg); err != nil {
		return fmt.Errorf("raftkv %s: %w", cfg.ID, err)
	}
	return nil
}

const usage = `usage: raftkv --id n1 --nodes n1,n2,n3 --data DIR [--port 8080] [--raft-port 7000] [--bug NAME] [--log-level info]
  --id         this node's name (env JEPSEN_NODE)
  --nodes      all node names, comma-separated (env JEPSEN_NODES)
  --port       client HTTP port (env JEPSEN_PORT, default 8080)
  --raft-port  Raft TCP port (env RAFTKV_RAFT_PORT, default 7000)
  --data       data directory (env JEPSEN_DATA_DIR)
  --bug        none, stale-read, early-ack, racy-cas or no-fsync (env RAFTKV_BUG)
  --log-level  debug, info, warn or error (env RAFTKV_LOG_LEVEL, default info)
`

// parseArgs turns flags and environment into a Config and a log level.
func parseArgs(args []string, getenv func(string) string) (Config, hclog.Level, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	fs := flag.NewFlagSet("raftkv", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	id := fs.String("id", getenv("JEPSEN_NODE"), "this node's name, e.g. n1 (env JEPSEN_NODE)")
	nodes := fs.String("nodes", getenv("JEPSEN_NODES"), "all node names, comma-separated (env JEPSEN_NODES)")
	port := fs.String("port", getenv("JEPSEN_PORT"), "client HTTP port (env JEPSEN_PORT, default 8080)")
	raftPort := fs.String("raft-port", getenv("RAFTKV_RAFT_PORT"), "Raft TCP port (env RAFTKV_RAFT_PORT, default 7000)")
	data := fs.String("data", getenv("JEPSEN_DATA_DIR"), "data directory (env JEPSEN_DATA_DIR)")
	bug := fs.String("bug", getenv("RAFTKV_BUG"), "deliberate bug: none, stale-read, early-ack, racy-cas, no-fsync, lease-read (env RAFTKV_BUG)")
	logLevel := fs.String("log-level", getenv("RAFTKV_LOG_LEVEL"), "log level: debug, info, warn, error (env RAFTKV_LOG_LEVEL, default info)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, 0, err
		}
		return Config{}, 0, fmt.Errorf("raftkv: %w", err)
	}
	if fs.NArg() > 0 {
		return Config{}, 0, fmt.Errorf("raftkv: unexpected argument %q", fs.Arg(0))
	}
	cfg := Config{ID: strings.TrimSpace(*id), DataDir: *data}
	for _, n := range strings.Split(*nodes, ",") {
		if n = strings.TrimSpace(n); n != "" {
			cfg.Nodes = append(cfg.Nodes, n)
		}
	}
	var err error
	if cfg.Port, err = parsePort("--port", *port); err != nil {
		return Config{}, 0, err
	}
	if cfg.RaftPort, err = parsePort("--raft-port", *raftPort); err != nil {
		return Config{}, 0, err
	}
	if cfg.Bug, err = ParseBug(*bug); err != nil {
		return Config{}, 0, fmt.Errorf("raftkv: --bug / RAFTKV_BUG: %w", err)
	}
	level := hclog.Info
	if *logLevel != "" {
		level = hclog.LevelFromString(*logLevel)
		if level == hclog.NoLevel {
			return Config{}, 0, fmt.Errorf("raftkv: --log-level %q: want debug, info, warn or error", *logLevel)
		}
	}
	if _, err := cfg.withDefaults(); err != nil {
		return Config{}, 0, fmt.Errorf("raftkv: %w", err)
	}
	return cfg, level, nil
}

func parsePort(flagName, s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("raftkv: %s %q: want a port number in 1..65535", flagName, s)
	}
	return p, nil
}
