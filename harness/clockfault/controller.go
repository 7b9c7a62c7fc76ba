package clockfault

import (
	"context"
	"errors"
	"fmt"
	"github.com/jepsen-go/jepsen/harness/backend"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jepsen-go/jepsen/harness/agent"
)

// Cluster is what the Controller needs from the cluster: sidecars in a
// node's PID namespace, exec in them, whether a node runs, and a hook
// after a node restarts.
// *docker.Cluster satisfies it.
type Cluster interface {
	Nodes() []string
	RunSidecar(ctx context.Context, node string, s backend.Sidecar) (string, error)
	Exec(ctx context.Context, containerID string, cmd []string) ([]byte, error)
	RemoveContainer(ctx context.Context, id string) error
	Running(ctx context.Context, node string) (bool, error)
	OnRestart(hook func(ctx context.Context, node string) error)
}

// ControllerOptions configure a Controller.
type ControllerOptions struct {
	// Image is the agent image, from docker.SelfImage: it holds a binary
	// whose `clockfault` subcommand calls Main.
	Image string
	// Command is the agent command prefix (default /jepsen clockfault); the
	// controller appends serve, set, reset, strobe or check.
	Command []string
	// Monotonic makes every shift move the monotonic clocks too.
	Monotonic bool
	// Log receives one line per action with its latency; nil discards them.
	Log *slog.Logger
}

// Controller shifts the clocks of the nodes of a cluster through one agent
// sidecar per node (sharing the node's PID namespace, with CAP_SYS_PTRACE
// only), and shifts them again when a node restarts. It is safe for
// concurrent use.
type Controller struct {
	c      Cluster
	opts   ControllerOptions
	agents *agent.Pool

	mu      sync.Mutex
	offsets map[string]time.Duration // desired; absent = 0
	closed  bool
}

// NewController returns a controller for c and registers its restart hook.
// No sidecar runs until Check, Prepare or the first shift.
func NewController(c Cluster, opts ControllerOptions) *Controller {
	if len(opts.Command) == 0 {
		opts.Command = []string{"/jepsen", "clockfault"}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	ctl := &Controller{c: c, opts: opts, offsets: map[string]time.Duration{},
		agents: agent.New(c, agent.Config{Name: "clockfault", Image: opts.Image, Command: opts.Command,
			CapAdd: []string{"SYS_PTRACE"}, SharePID: true, Log: opts.Log,
			// check inspects the node's process, so it runs in the agent.
			Local: Main, LocalOps: []string{"set", "reset", "strobe", "status"}})}
	c.OnRestart(ctl.restarted)
	return ctl
}

// Check starts the agent of the first node and asks it whether the node's
// process can be patched (architecture, ptrace permission, vDSO). Call it
// before a run starts: its error says why clock faults cannot work here.
func (ctl *Controller) Check(ctx context.Context) error {
	nodes := ctl.c.Nodes()
	if len(nodes) == 0 {
		return errors.New("clockfault: no nodes")
	}
	return ctl.check(ctx, nodes[0])
}

func (ctl *Controller) check(ctx context.Context, node string) error {
	_, _, err := ctl.agents.Exec(ctx, node, "check")
	var refused *agent.RefusedError
	if errors.As(err, &refused) {
		return fmt.Errorf("clock faults cannot work on this host: %s", refused.Output)
	}
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	return nil
}

// Prepare starts the agents of every node and checks each, in parallel.
func (ctl *Controller) Prepare(ctx context.Context) error {
	t0 := time.Now()
	err := agent.Each(ctx, ctl.c.Nodes(), ctl.check)
	ctl.opts.Log.Info(fmt.Sprintf("clockfault: agents ready on %d nodes in %v", len(ctl.c.Nodes()), time.Since(t0).Round(time.Millisecond)))
	return err
}

// SetClock shifts the clock of each node in offsets to that offset from
// true time (not relative to its current shift); nodes not named keep
// theirs. An offset of 0 resets a node.
func (ctl *Controller) SetClock(ctx context.Context, offsets map[string]time.Duration) error {
	var nodes []string
	for n := range offsets {
		if !slices.Contains(ctl.c.Nodes(), n) {
			return fmt.Errorf("clock: unknown node %q", n)
		}
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	ctl.mu.Lock()
	for n, d := range offsets {
		if d == 0 {
			delete(ctl.offsets, n)
		} else {
			ctl.offsets[n] = d
		}
	}
	ctl.mu.Unlock()
	t0 := time.Now()
	err := agent.Each(ctx, nodes, ctl.apply)
	ctl.opts.Log.Info(fmt.Sprintf("clockfault: set %v in %v", offsets, time.Since(t0).Round(time.Millisecond)))
	return err
}

// StrobeClock makes each of nodes flip between its current offset and its
// current offset plus delta every period, for duration. It returns once
// the strobes run; they end by themselves (back to the node's offset) or
// with the next SetClock or ResetClock.
func (ctl *Controller) StrobeClock(ctx context.Context, nodes []string, delta, period, duration time.Duration) error {
	st := Strobe{Delta: delta, Period: period, Duration: duration}
	if err := st.Validate(); err != nil {
		return fmt.Errorf("clock: %w", err)
	}
	for _, n := range nodes {
		if !slices.Contains(ctl.c.Nodes(), n) {
			return fmt.Errorf("clock: unknown node %q", n)
		}
	}
	t0 := time.Now()
	err := agent.Each(ctx, nodes, func(ctx context.Context, node string) error {
		if err := ctl.apply(ctx, node); err != nil { // the base offset first
			return err
		}
		return ctl.exec(ctx, node, "strobe", "--delta="+delta.String(), "--period="+period.String(),
			"--duration="+duration.String())
	})
	ctl.opts.Log.Info(fmt.Sprintf("clockfault: strobe %v by %v every %v for %v started in %v", nodes, delta, period, duration,
		time.Since(t0).Round(time.Millisecond)))
	return err
}

// ResetClock shifts every node back to true time and ends every strobe.
func (ctl *Controller) ResetClock(ctx context.Context) error {
	ctl.mu.Lock()
	ctl.offsets = map[string]time.Duration{}
	ctl.mu.Unlock()
	nodes := ctl.agents.Running() // a node without an agent was never shifted
	t0 := time.Now()
	err := agent.Each(ctx, nodes, ctl.apply)
	ctl.opts.Log.Info(fmt.Sprintf("clockfault: reset %d nodes in %v", len(nodes), time.Since(t0).Round(time.Millisecond)))
	return err
}

// Offsets returns the offset of every shifted node.
func (ctl *Controller) Offsets() map[string]time.Duration {
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	out := make(map[string]time.Duration, len(ctl.offsets))
	for n, d := range ctl.offsets {
		out[n] = d
	}
	return out
}

// apply sends node its desired offset.
func (ctl *Controller) apply(ctx context.Context, node string) error {
	ctl.mu.Lock()
	d := ctl.offsets[node]
	closed := ctl.closed
	ctl.mu.Unlock()
	_, running := ctl.agents.ID(node)
	if closed {
		return fmt.Errorf("clockfault %s: controller is closed", node)
	}
	if d == 0 && !running {
		return nil // never shifted
	}
	args := []string{"reset"}
	if d != 0 {
		args = []string{"set", "--offset=" + d.String()}
		if ctl.opts.Monotonic {
			args = append(args, "--monotonic")
		}
	}
	return ctl.exec(ctx, node, args...)
}

// exec runs an agent command on node's sidecar (starting a fresh one if
// it is gone).
func (ctl *Controller) exec(ctx context.Context, node string, args ...string) error {
	_, _, err := ctl.agents.Exec(ctx, node, args...)
	if errors.Is(err, agent.ErrNodeDown) {
		// Killed: its processes are gone; the restart hook shifts the
		// new ones.
		ctl.opts.Log.Info(fmt.Sprintf("clockfault: %s is down; its offset follows when it restarts", node))
		return nil
	}
	if err != nil {
		return fmt.Errorf("clockfault: %w", err)
	}
	return nil
}

// restarted is the cluster's restart hook: the node's process (and PID
// namespace) are new, so its agent died with the old ones and the new
// process sees true time. Start a fresh agent and shift it again.
func (ctl *Controller) restarted(ctx context.Context, node string) error {
	ctl.mu.Lock()
	d := ctl.offsets[node]
	closed := ctl.closed
	ctl.mu.Unlock()
	if closed {
		return nil
	}
	ctl.agents.Drop(ctx, node)
	if d == 0 {
		// Start the fresh agent now, in the background (the node's
		// start must not wait for it), so that the next clock fault acts
		// at once rather than after an agent start.
		ctl.agents.StartSoon(ctx, node)
		return nil
	}
	t0 := time.Now()
	err := ctl.apply(ctx, node)
	ctl.opts.Log.Info(fmt.Sprintf("clockfault: %s restarted, shifted by %v again in %v", node, d, time.Since(t0).Round(time.Millisecond)))
	return err
}

// Close resets every clock and removes every agent sidecar. It uses its
// own timeout, so it works even when ctx is already cancelled.
func (ctl *Controller) Close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := ctl.ResetClock(ctx)
	ctl.mu.Lock()
	ctl.closed = true
	ctl.mu.Unlock()
	return errors.Join(err, ctl.agents.Close(ctx))
}
