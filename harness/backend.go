package harness

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/jepsen-go/jepsen/harness/backend"
	"github.com/jepsen-go/jepsen/nemesis"
	"github.com/jepsen-go/jepsen/targets"
)

// Backend runs the nodes of a run: Docker today (cmd/jepsen chooses it),
// Kubernetes or SSH to machines later. docs/architecture.md says what a
// new backend implements.
type Backend interface {
	// Available returns why the backend cannot run nodes here, or nil.
	Available(ctx context.Context) error
	// Sweep removes what crashed runs left behind and says what it
	// removed in a few words ("" if nothing).
	Sweep(ctx context.Context) (string, error)
	// Image returns the node image of a target, building it as b says;
	// dir is the target directory.
	Image(ctx context.Context, dir string, b targets.Build) (string, error)
	// SelfImage returns an image that holds the jepsen binary at path as
	// /jepsen: the reference store and the fault agents run from it.
	SelfImage(ctx context.Context, binary string) (string, error)
	// Start starts the nodes and returns once every one is ready; on an
	// error nothing it created is left.
	Start(ctx context.Context, cfg ClusterConfig) (Cluster, error)
}

// ClusterConfig is what a backend needs to start the nodes of a run.
type ClusterConfig struct {
	// RunID names the run in every object the backend creates.
	RunID string
	// Image is the node image (Backend.Image).
	Image string
	// Nodes are the node names, n1..nN: each node reaches the others by
	// these names.
	Nodes []string
	// Command and Env are each node's command line and environment.
	Command, Env map[string][]string
	// Port is the client port inside each node; the backend makes it
	// reachable from this process (Cluster.Endpoint).
	Port int
	// DataDir is the directory kept across kill and restart ("" = none).
	DataDir string
	// Ready asks once whether node, at endpoint, serves clients: nil when
	// it does; an error wrapping targets.ErrNeverReady stops the wait.
	Ready func(ctx context.Context, node, endpoint string) error
	// ReadyTimeout bounds the wait for each node.
	ReadyTimeout time.Duration
	// LogDir receives nX.log for every node, across restarts.
	LogDir string
	// Log receives the backend's progress lines.
	Log *slog.Logger
	// Wrap, if set, starts every node's command through a program of the
	// harness (the durability faults' filesystem); nil runs it as it is.
	Wrap *backend.Wrap
}

// Cluster is a running set of nodes: what the run, the nemesis and the
// fault agents' controllers (harness/netfault, harness/clockfault) need.
type Cluster interface {
	nemesis.Cluster
	// Endpoint returns where this process reaches node's client port
	// ("127.0.0.1:49153"), or "" while the node is down.
	Endpoint(node string) string
	// Running reports whether node's process runs (paused counts).
	Running(ctx context.Context, node string) (bool, error)
	// Exits returns the nodes' ends that no Kill, Stop or Close caused.
	Exits() []backend.Exit
	// Close removes everything the cluster created; safe to call twice.
	Close(ctx context.Context) error

	// IP returns node's address on the nodes' network.
	IP(node string) netip.Addr
	// RunSidecar starts s next to node and returns its id.
	RunSidecar(ctx context.Context, node string, s backend.Sidecar) (string, error)
	// Exec runs cmd in the sidecar or node id and returns its output.
	Exec(ctx context.Context, id string, cmd []string) ([]byte, error)
	// RemoveContainer removes a sidecar.
	RemoveContainer(ctx context.Context, id string) error
	// OnRestart registers a hook run after a node restarted and is ready.
	OnRestart(hook func(ctx context.Context, node string) error)
}
