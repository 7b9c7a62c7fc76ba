package harness

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/checkers"
	"github.com/jepsen-go/jepsen/harness/backend"
	"github.com/jepsen-go/jepsen/history"
	"github.com/jepsen-go/jepsen/reports"
	"github.com/jepsen-go/jepsen/targets"
)

// memStore is a linearizable in-memory register store: one map behind a
// lock, shared by every node.
type memStore struct {
	mu sync.Mutex
	kv map[string]json.RawMessage
}

// memConn is a throwaway protocol's connection: it is all a protocol
// needs, registered from this test file alone.
type memConn struct{ s *memStore }

func (c memConn) Invoke(_ context.Context, op history.Op) history.Op {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	op.Type = history.OK
	switch op.F {
	case history.FRead:
		op.Value = c.s.kv[op.Key]
	case history.FWrite, history.FAdd:
		c.s.kv[op.Key] = op.Value
	case history.FCAS:
		var ft [2]json.RawMessage
		if json.Unmarshal(op.Value, &ft) != nil {
			op.Type, op.Error = history.Fail, "bad cas value"
			break
		}
		cur, ok := c.s.kv[op.Key]
		switch {
		case !ok:
			op.Type, op.Error = history.Fail, history.ErrNotFound
		case string(cur) != string(ft[0]):
			op.Type, op.Error = history.Fail, history.ErrPreconditionFailed
		default:
			c.s.kv[op.Key] = ft[1]
		}
	}
	return op
}
func (memConn) Ready(context.Context) error { return nil }
func (memConn) Close() error                { return nil }

var mem = &memStore{kv: map[string]json.RawMessage{}}

func init() {
	targets.Register(targets.Protocol{Name: "mem-test", Dial: func(targets.DialConfig) (targets.Conn, error) { return memConn{mem}, nil }})
}

// memBackend runs "nodes" that are nothing but names: enough for a run
// without faults, and proof that the harness needs no Docker.
type memBackend struct{}

func (memBackend) Available(context.Context) error                              { return nil }
func (memBackend) Sweep(context.Context) (string, error)                        { return "", nil }
func (memBackend) Image(context.Context, string, targets.Build) (string, error) { return "mem", nil }
func (memBackend) SelfImage(context.Context, string) (string, error)            { return "mem", nil }
func (memBackend) Start(ctx context.Context, cfg ClusterConfig) (Cluster, error) {
	for _, n := range cfg.Nodes {
		if err := cfg.Ready(ctx, n, "mem:"+n); err != nil {
			return nil, err
		}
	}
	return &memCluster{nodes: cfg.Nodes}, nil
}

type memCluster struct{ nodes []string }

var errNoFaults = errors.New("the in-memory backend has no faults")

func (c *memCluster) Nodes() []string                                        { return c.nodes }
func (c *memCluster) Kill(context.Context, string) error                     { return errNoFaults }
func (c *memCluster) Start(context.Context, string) error                    { return errNoFaults }
func (c *memCluster) Pause(context.Context, string) error                    { return errNoFaults }
func (c *memCluster) Resume(context.Context, string) error                   { return errNoFaults }
func (c *memCluster) Endpoint(n string) string                               { return "mem:" + n }
func (c *memCluster) Running(context.Context, string) (bool, error)          { return true, nil }
func (c *memCluster) Exits() []backend.Exit                                  { return nil }
func (c *memCluster) Close(context.Context) error                            { return nil }
func (c *memCluster) IP(string) netip.Addr                                   { return netip.Addr{} }
func (c *memCluster) Exec(context.Context, string, []string) ([]byte, error) { return nil, errNoFaults }
func (c *memCluster) RemoveContainer(context.Context, string) error          { return nil }
func (c *memCluster) OnRestart(func(context.Context, string) error)          {}
func (c *memCluster) RunSidecar(context.Context, string, backend.Sidecar) (string, error) {
	return "", errNoFaults
}

// TestThrowawayProtocol runs a short register run through a protocol and a
// backend defined in this file only: a protocol is one Register call.
func TestThrowawayProtocol(t *testing.T) {
	dir := t.TempDir()
	spec := "build: {image: mem}\ncommand: [/t]\nnodes: 3\nprotocol: mem-test\n"
	if err := os.WriteFile(filepath.Join(dir, "jepsen.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := Run(context.Background(), Config{Backend: memBackend{}, Settings: reports.Settings{
		TargetDir: dir, Nemesis: "none", TimeLimit: 500 * time.Millisecond,
		Store: filepath.Join(dir, "store"), Seed: 1,
	}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	res := out.Result
	if res.Valid != checkers.Valid || res.Workload != "register" || res.Stats.ByF["cas"][history.Invoke] == 0 {
		t.Fatalf("result %+v, want a valid register run with cas ops", res)
	}
	for _, f := range []string{"history.jsonl", "results.json", "test.json", "report.html"} {
		if _, err := os.Stat(filepath.Join(out.Dir, f)); err != nil {
			t.Errorf("the run directory lacks %s: %v", f, err)
		}
	}
	// test.json is reports.Meta, with the run's settings.
	m, err := reports.ReadMeta(out.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Config; c.TargetDir != dir || c.Nemesis != "none" || c.Seed != 1 || c.Nodes != 3 || c.TimeLimit != 500*time.Millisecond || !m.Completed || len(m.Phases) == 0 {
		t.Errorf("test.json: %+v", m)
	}
	// --protocol-option reaches the protocol, which has none.
	_, err = Run(context.Background(), Config{Backend: memBackend{}, Settings: reports.Settings{
		TargetDir: dir, Nemesis: "none", ProtocolOptions: []string{"reads=x"}, Store: filepath.Join(dir, "store"),
	}})
	if err == nil || err.Error() != `--protocol-option: protocol mem-test has no option "reads"; it takes no options` {
		t.Errorf("unknown option: %v", err)
	}
}

// TestCorruptExitIsNotAProblem: a node that will not start on the file the
// corrupt fault damaged has answered that fault; any other exit is a
// problem of the run.
func TestCorruptExitIsNotAProblem(t *testing.T) {
	val := history.EncodeFault(history.FCorrupt, history.Fault{Kind: "corrupt", Targets: []string{"n1"},
		Corruption: &history.Corruption{File: "raft.db", Offset: 4096, Kind: "truncate"}})
	start := time.Now()
	r := &run{cfg: Config{Progress: io.Discard}, meta: &testMeta{}, cluster: &exitCluster{exits: []backend.Exit{
		{Node: "n1", Code: 1, At: start.Add(20 * time.Second)},
		{Node: "n2", Code: 1, At: start.Add(20 * time.Second)},
	}}}
	r.meta.Start = start
	r.meta.Nemesis = []reports.Action{{F: history.FCorrupt, Value: val, Start: int64(10 * time.Second)}}
	got := r.nodeExits()
	if len(got) != 1 || got[0].Node != "n2" {
		t.Fatalf("problems %+v, want n2's exit only", got)
	}
}

type exitCluster struct {
	memCluster
	exits []backend.Exit
}

func (c *exitCluster) Exits() []backend.Exit { return c.exits }
