package netfault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/jepsen-go/jepsen/harness/backend"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/jepsen-go/jepsen/harness/agent"
	"github.com/jepsen-go/jepsen/nemesis"
)

// Cluster is what the Controller needs from the cluster: node addresses,
// sidecar containers in a node's network namespace, exec in them, whether
// a node runs, and a hook after a node restarts. *docker.Cluster satisfies
// it.
type Cluster interface {
	Nodes() []string
	IP(node string) netip.Addr
	RunSidecar(ctx context.Context, node string, s backend.Sidecar) (string, error)
	Exec(ctx context.Context, containerID string, cmd []string) ([]byte, error)
	RemoveContainer(ctx context.Context, id string) error
	Running(ctx context.Context, node string) (bool, error)
	OnRestart(hook func(ctx context.Context, node string) error)
}

// ControllerOptions configure a Controller.
type ControllerOptions struct {
	// Image is the agent image, from docker.SelfImage: it holds a binary
	// whose `netfault` subcommand calls Main.
	Image string
	// Command is the agent command prefix (default /jepsen netfault); the
	// controller appends serve, apply JSON or clear.
	Command []string
	// Log receives one line per action with its latency; nil discards them.
	Log *slog.Logger
}

// Controller installs network faults on every node of a cluster through
// one agent sidecar per node (NET_ADMIN only), in parallel, and installs
// them again when a node restarts with a fresh network namespace. It
// implements nemesis.Network. It is safe for concurrent use.
type Controller struct {
	c      Cluster
	opts   ControllerOptions
	agents *agent.Pool

	// nodeMu orders the applies of one node, so that an older rule set
	// never lands after a newer one. Read-only after NewController.
	nodeMu map[string]*sync.Mutex

	mu      sync.Mutex
	grudge  nemesis.Grudge
	packet  nemesis.Packet
	applied map[string]applied // what each node's agent confirmed
	closed  bool
}

// applied is the rule set an agent confirmed it installed.
type applied struct {
	agent string // container id of the agent
	spec  Spec
}

var _ nemesis.Network = (*Controller)(nil)

// NewController returns a controller for c and registers its restart hook.
// No sidecar runs until Prepare or the first fault.
func NewController(c Cluster, opts ControllerOptions) *Controller {
	if len(opts.Command) == 0 {
		opts.Command = []string{"/jepsen", "netfault"}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	ctl := &Controller{c: c, opts: opts, applied: map[string]applied{}, nodeMu: map[string]*sync.Mutex{},
		agents: agent.New(c, agent.Config{Name: "netfault", Image: opts.Image, Command: opts.Command,
			CapAdd: []string{"NET_ADMIN"}, Log: opts.Log,
			Local: Main, LocalOps: []string{"apply", "clear", "status"}})}
	for _, n := range c.Nodes() {
		ctl.nodeMu[n] = &sync.Mutex{}
	}
	c.OnRestart(ctl.restarted)
	return ctl
}

// Prepare starts the agent sidecars of every node, in parallel, so that
// the first fault is installed quickly.
func (ctl *Controller) Prepare(ctx context.Context) error {
	t0 := time.Now()
	err := agent.Each(ctx, ctl.c.Nodes(), ctl.agents.Start)
	ctl.opts.Log.Info(fmt.Sprintf("netfault: agents ready on %d nodes in %v", len(ctl.c.Nodes()), time.Since(t0).Round(time.Millisecond)))
	return err
}

// Partition installs g: every node drops the packets of the nodes in its
// grudge, and nothing else. An empty grudge heals the partition.
func (ctl *Controller) Partition(ctx context.Context, g nemesis.Grudge) error {
	for n, from := range g {
		if !slices.Contains(ctl.c.Nodes(), n) {
			return fmt.Errorf("partition: unknown node %q", n)
		}
		for _, f := range from {
			if !slices.Contains(ctl.c.Nodes(), f) {
				return fmt.Errorf("partition: %s: unknown node %q", n, f)
			}
		}
	}
	ctl.mu.Lock()
	ctl.grudge = g.Normalize()
	ctl.mu.Unlock()
	return ctl.push(ctx, "partition")
}

// Shape applies p to the packets each of p.Nodes (all if empty) sends to
// the other nodes. The zero Packet heals packet faults.
func (ctl *Controller) Shape(ctx context.Context, p nemesis.Packet) error {
	for _, n := range p.Nodes {
		if !slices.Contains(ctl.c.Nodes(), n) {
			return fmt.Errorf("packet: unknown node %q", n)
		}
	}
	ctl.mu.Lock()
	ctl.packet = p
	ctl.mu.Unlock()
	return ctl.push(ctx, "packet")
}

// HealNetwork removes every network fault from every node.
func (ctl *Controller) HealNetwork(ctx context.Context) error {
	ctl.mu.Lock()
	ctl.grudge, ctl.packet = nil, nemesis.Packet{}
	ctl.mu.Unlock()
	return ctl.push(ctx, "heal")
}

// Specs returns the rule set each node should have now.
func (ctl *Controller) Specs() map[string]Spec {
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	out := map[string]Spec{}
	for _, n := range ctl.c.Nodes() {
		out[n] = ctl.specLocked(n)
	}
	return out
}

func (ctl *Controller) specLocked(node string) Spec {
	var s Spec
	for _, f := range ctl.grudge[node] {
		s.DropFrom = append(s.DropFrom, ctl.c.IP(f))
	}
	p := ctl.packet
	if !p.IsZero() && (len(p.Nodes) == 0 || slices.Contains(p.Nodes, node)) {
		pk := &Packet{Delay: Duration(p.Delay), Jitter: Duration(p.Jitter), Loss: p.Loss,
			Duplicate: p.Duplicate, Reorder: p.Reorder, Corrupt: p.Corrupt}
		for _, o := range ctl.c.Nodes() {
			if o != node {
				pk.Targets = append(pk.Targets, ctl.c.IP(o))
			}
		}
		s.Packet = pk
	}
	return s
}

// push sends every node its current rule set, in parallel.
func (ctl *Controller) push(ctx context.Context, what string) error {
	t0 := time.Now()
	err := agent.Each(ctx, ctl.c.Nodes(), ctl.apply)
	ctl.opts.Log.Info(fmt.Sprintf("netfault: %s installed on %d nodes in %v", what, len(ctl.c.Nodes()), time.Since(t0).Round(time.Millisecond)))
	return err
}

// apply sends node its current rule set, unless its agent already
// confirmed these very rules. A fresh agent starts by clearing the table.
func (ctl *Controller) apply(ctx context.Context, node string) error {
	mu := ctl.nodeMu[node]
	if mu == nil {
		return fmt.Errorf("netfault: unknown node %q", node)
	}
	mu.Lock()
	defer mu.Unlock()
	ctl.mu.Lock()
	spec := ctl.specLocked(node)
	closed := ctl.closed
	last, known := ctl.applied[node]
	ctl.mu.Unlock()
	if closed {
		return fmt.Errorf("netfault %s: controller is closed", node)
	}
	id, running := ctl.agents.ID(node)
	if spec.IsZero() && !running {
		return nil // no agent, so no rule to remove
	}
	if known && running && last.agent == id && last.spec.Equal(spec) {
		return nil
	}
	args := []string{"clear"}
	if !spec.IsZero() {
		b, err := json.Marshal(spec)
		if err != nil {
			return fmt.Errorf("netfault %s: %w", node, err)
		}
		args = []string{"apply", string(b)}
	}
	_, id, err := ctl.agents.Exec(ctx, node, args...)
	ctl.mu.Lock()
	if err == nil {
		ctl.applied[node] = applied{agent: id, spec: spec}
	} else {
		delete(ctl.applied, node) // unknown now: send it again next time
	}
	ctl.mu.Unlock()
	if errors.Is(err, agent.ErrNodeDown) {
		// Killed: its network namespace is gone; the restart hook
		// installs the rules in the new one.
		ctl.opts.Log.Info(fmt.Sprintf("netfault: %s is down; its rules follow when it restarts", node))
		return nil
	}
	if err != nil {
		return fmt.Errorf("netfault: %w", err)
	}
	return nil
}

// restarted is the cluster's restart hook: the node has a new network
// namespace, so its old agent is stale. Start a fresh one and install the
// node's current rules again.
func (ctl *Controller) restarted(ctx context.Context, node string) error {
	ctl.mu.Lock()
	spec := ctl.specLocked(node)
	closed := ctl.closed
	delete(ctl.applied, node)
	ctl.mu.Unlock()
	if closed {
		return nil
	}
	ctl.agents.Drop(ctx, node)
	if spec.IsZero() {
		// Start the fresh agent now, in the background (the node's
		// start must not wait for it), so that the next fault is installed
		// at once rather than after an agent start.
		ctl.agents.StartSoon(ctx, node)
		return nil
	}
	t0 := time.Now()
	err := ctl.apply(ctx, node)
	ctl.opts.Log.Info(fmt.Sprintf("netfault: rules of restarted %s installed again in %v", node, time.Since(t0).Round(time.Millisecond)))
	return err
}

// Close removes every fault and every agent sidecar. It uses its own
// timeout, so it works even when ctx is already cancelled.
func (ctl *Controller) Close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := ctl.HealNetwork(ctx)
	ctl.mu.Lock()
	ctl.closed = true
	ctl.applied = map[string]applied{}
	ctl.mu.Unlock()
	return errors.Join(err, ctl.agents.Close(ctx))
}

// Status asks node's agent what it has installed, with the packet counters
// of its rules. A node without an agent has nothing installed.
func (ctl *Controller) Status(ctx context.Context, node string) (Status, error) {
	if _, ok := ctl.agents.ID(node); !ok {
		return Status{}, nil
	}
	out, _, err := ctl.agents.Exec(ctx, node, "status")
	if err != nil {
		return Status{}, fmt.Errorf("netfault %s: status: %w", node, err)
	}
	var st Status
	if err := json.Unmarshal(out, &st); err != nil {
		return Status{}, fmt.Errorf("netfault %s: status: %w (output %.200q)", node, err, out)
	}
	return st, nil
}
