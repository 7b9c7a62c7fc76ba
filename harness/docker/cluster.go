package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/jepsen-go/jepsen/harness/backend"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// Defaults applied by Start to a zero Config field.
const (
	// DefaultReadyTimeout is used when Config.ReadyTimeout is zero.
	DefaultReadyTimeout = 30 * time.Second
	// DefaultStopTimeout is used when Config.StopTimeout is zero.
	DefaultStopTimeout = 10 * time.Second
	// closeTimeout bounds Close, which runs even when the caller's context
	// is already cancelled.
	closeTimeout = 60 * time.Second
)

// Config describes the cluster Start brings up.
type Config struct {
	// RunID names the run; it appears in every object's name and in the
	// LabelRun label. Letters, digits, '.', '_' and '-' only.
	RunID string
	// Image is a local image reference (see BuildGo, BuildDockerfile,
	// EnsureImage); it is never pulled.
	Image string
	// Nodes are the node names, e.g. n1..n5; each is the container's host
	// name and its alias on the run's network.
	Nodes []string
	// Command returns the command of a node; nil runs the image's default.
	Command func(node string) []string
	// Env returns a node's environment (KEY=VALUE); nil means none.
	Env func(node string) []string
	// Wrap, if set, runs a program of the harness before each node's
	// command (see Wrap); nil runs the command as it is.
	Wrap *Wrap
	// Port is the client API port inside each container; it is published
	// on 127.0.0.1 with an ephemeral host port.
	Port int
	// DataDir is where each node's named volume is mounted ("" = no volume).
	DataDir string
	// Ready asks once whether node, reached at endpoint (host:port of the
	// published client port), serves clients: nil when it does. It is
	// called until it returns nil, the container exits or ReadyTimeout
	// passes; an error with a method Permanent() bool that returns true
	// ends the wait at once. nil means ready once the container runs.
	// The client protocol provides it: the backend knows no protocol.
	Ready func(ctx context.Context, node, endpoint string) error
	// ReadyTimeout bounds the wait for readiness (default 30s).
	ReadyTimeout time.Duration
	// StopTimeout is the grace period of Stop before SIGKILL (default 10s).
	StopTimeout time.Duration
	// LogDir receives nX.log for every node, appended across restarts
	// ("" = logs are kept in memory only, for error messages).
	LogDir string
	// Log receives progress lines (timings); nil discards them.
	Log *slog.Logger
}

// Sidecar describes a helper container that shares a node's network
// namespace (and optionally its PID namespace), e.g. a fault agent; the
// container is named jepsen-RUN-NODE-NAME.
type Sidecar = backend.Sidecar

// Cluster is a running set of nodes of one run. Its methods are safe for
// concurrent use.
type Cluster struct {
	cfg      Config
	cli      *client.Client
	tc       *testcontainers.DockerProvider
	netName  string
	netID    string
	subnet   netip.Prefix
	nodes    map[string]*node
	order    []string
	bg       context.Context // lives until Close; log followers use it
	bgCancel context.CancelFunc

	mu        sync.Mutex
	hooks     []func(ctx context.Context, node string) error
	exits     []Exit
	sidecarN  int
	closeOnce sync.Once
	closeErr  error
}

// node is one container of the cluster.
type node struct {
	name   string
	ip     netip.Addr
	volume string
	ctr    *testcontainers.DockerContainer
	log    *nodeLog

	op         sync.Mutex // serialises lifecycle operations on this node
	mu         sync.RWMutex
	endpoint   string
	expectStop bool // a Kill, Stop or Close is ending the current lifetime
}

var runIDRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)
var nodeRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validate checks cfg and fills defaults.
func (cfg *Config) validate() error {
	if !runIDRe.MatchString(cfg.RunID) {
		return fmt.Errorf("docker config: RunID %q: want 1-63 letters, digits, '.', '_' or '-'", cfg.RunID)
	}
	if cfg.Image == "" {
		return errors.New("docker config: Image is empty")
	}
	if len(cfg.Nodes) == 0 || len(cfg.Nodes) > maxNodes {
		return fmt.Errorf("docker config: %d nodes: want 1 to %d", len(cfg.Nodes), maxNodes)
	}
	seen := map[string]bool{}
	for _, n := range cfg.Nodes {
		if !nodeRe.MatchString(n) {
			return fmt.Errorf("docker config: node name %q: want a lower-case host name", n)
		}
		if seen[n] {
			return fmt.Errorf("docker config: node %q listed twice", n)
		}
		seen[n] = true
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return fmt.Errorf("docker config: Port %d: want 1 to 65535", cfg.Port)
	}
	if cfg.DataDir != "" && !strings.HasPrefix(cfg.DataDir, "/") {
		return fmt.Errorf("docker config: DataDir %q: want an absolute path", cfg.DataDir)
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Start creates the run's network, one volume and one container per node,
// starts all nodes in parallel and waits until every one is ready. On any
// error everything it created is removed before it returns.
func Start(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t0 := time.Now()
	c, err := dockerClient()
	if err != nil {
		return nil, err
	}
	if err := EnsureImage(ctx, cfg.Image); err != nil {
		return nil, err
	}
	tcInit()
	prov, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(tclog.NewNoopLogger()))
	if err != nil {
		return nil, fmt.Errorf("docker provider: %w", err)
	}
	if cfg.LogDir != "" {
		if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
			return nil, fmt.Errorf("log dir: %w", err)
		}
	}
	bg, bgCancel := context.WithCancel(context.Background())
	cl := &Cluster{
		cfg: cfg, cli: c, tc: prov, netName: "jepsen-" + cfg.RunID,
		nodes: map[string]*node{}, order: append([]string(nil), cfg.Nodes...),
		bg: bg, bgCancel: bgCancel,
	}
	defer func() {
		if err != nil {
			_ = cl.Close(context.WithoutCancel(ctx))
		}
	}()
	if cl.netID, cl.subnet, err = createNetwork(ctx, c, cl.netName, cfg.RunID); err != nil {
		return nil, err
	}
	for i, name := range cfg.Nodes {
		n := &node{name: name, ip: nodeIP(cl.subnet, i)}
		var path string
		if cfg.LogDir != "" {
			path = filepath.Join(cfg.LogDir, name+".log")
		}
		if n.log, err = newNodeLog(path); err != nil {
			return nil, fmt.Errorf("node %s: %w", name, err)
		}
		cl.nodes[name] = n
	}
	tNet := time.Now()
	errs := make([]error, len(cfg.Nodes))
	var wg sync.WaitGroup
	for i, name := range cfg.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = cl.createNode(ctx, cl.nodes[name])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	tCreated := time.Now()
	for i, name := range cfg.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = cl.waitReady(ctx, cl.nodes[name])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.Log.Info(fmt.Sprintf("docker: %d nodes ready in %.1fs (network %s %s in %.2fs, containers created and started in %.2fs, ready after %.2fs more)",
		len(cfg.Nodes), time.Since(t0).Seconds(), cl.netName, cl.subnet, tNet.Sub(t0).Seconds(),
		tCreated.Sub(tNet).Seconds(), time.Since(tCreated).Seconds()))
	return cl, nil
}

// containerName returns the container name of node.
func (c *Cluster) containerName(node string) string {
	return "jepsen-" + c.cfg.RunID + "-" + node
}

// createNode creates the volume and container of n and starts it.
func (c *Cluster) createNode(ctx context.Context, n *node) error {
	cfg := c.cfg
	lbl := labels(cfg.RunID, "node", n.name)
	var mounts []mount.Mount
	if cfg.DataDir != "" {
		n.volume = c.containerName(n.name)
		if _, err := c.cli.VolumeCreate(ctx, client.VolumeCreateOptions{
			Name: n.volume, Labels: labels(cfg.RunID, "volume", n.name),
		}); err != nil {
			return fmt.Errorf("node %s: create volume: %w", n.name, err)
		}
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: n.volume, Target: cfg.DataDir})
	}
	var cmd, env []string
	if cfg.Command != nil {
		cmd = cfg.Command(n.name)
	}
	if cfg.Env != nil {
		env = cfg.Env(n.name)
	}
	var entrypoint, binds []string
	if cfg.Wrap != nil {
		var err error
		if entrypoint, cmd, err = wrapped(ctx, c.cli, cfg.Image, cfg.Wrap, n.name, cmd); err != nil {
			return fmt.Errorf("node %s: %w", n.name, err)
		}
		binds = cfg.Wrap.Binds
	}
	port := network.MustParsePort(strconv.Itoa(cfg.Port) + "/tcp")
	req := testcontainers.ContainerRequest{
		Image:          cfg.Image,
		Name:           c.containerName(n.name),
		Labels:         lbl,
		ExposedPorts:   []string{port.String()},
		Networks:       []string{c.netName},
		NetworkAliases: map[string][]string{c.netName: {n.name}},
		ConfigModifier: func(cc *container.Config) {
			cc.Hostname = n.name
			cc.Cmd = cmd
			cc.Env = env
			if entrypoint != nil {
				cc.Entrypoint = entrypoint
			}
		},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.Mounts = append(hc.Mounts, mounts...)
			hc.Binds = append(hc.Binds, binds...)
			hc.PortBindings = network.PortMap{port: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "0"}}}
			hc.LogConfig = container.LogConfig{Type: "json-file"}
		},
		EndpointSettingsModifier: func(es map[string]*network.EndpointSettings) {
			if s := es[c.netName]; s != nil {
				s.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: n.ip}
			}
		},
	}
	ctr, err := c.tc.CreateContainer(ctx, req)
	if dc, ok := ctr.(*testcontainers.DockerContainer); ok {
		n.ctr = dc
	}
	if err != nil {
		return fmt.Errorf("node %s: create container: %w", n.name, err)
	}
	if n.ctr == nil {
		return fmt.Errorf("node %s: create container: unexpected type %T", n.name, ctr)
	}
	if err := n.ctr.Start(ctx); err != nil {
		return fmt.Errorf("node %s: start container: %w", n.name, err)
	}
	n.log.follow(c.bg, c.cli, n.ctr.ID)
	c.watchExit(n)
	return c.refreshEndpoint(ctx, n)
}

// Exit is a node's process ending when no Kill, Stop or Close asked it to.
type Exit = backend.Exit

// watchExit records the end of n's current lifetime as an Exit unless a
// Kill, Stop or Close expected it. Call it after each start of n.
func (c *Cluster) watchExit(n *node) {
	n.mu.Lock()
	n.expectStop = false
	n.mu.Unlock()
	w := c.cli.ContainerWait(c.bg, n.ctr.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	go func() {
		var code int64
		select {
		case r := <-w.Result:
			code = r.StatusCode
		case <-w.Error:
			return // the cluster is closing, or the daemon went away
		}
		at := time.Now()
		n.mu.Lock()
		expected := n.expectStop
		n.mu.Unlock()
		if expected || c.bg.Err() != nil {
			return
		}
		n.log.wait(time.Second) // the last lines say why
		c.mu.Lock()
		c.exits = append(c.exits, Exit{Node: n.name, Code: code, At: at, Log: n.log.tail()})
		c.mu.Unlock()
		c.cfg.Log.Info(fmt.Sprintf("docker: %s exited with status %d on its own", n.name, code))
	}()
}

// markStopping marks n's coming stop as asked for (Kill, Stop, Close).
func (n *node) markStopping() {
	n.mu.Lock()
	n.expectStop = true
	n.mu.Unlock()
}

// Exits returns the nodes' ends that no Kill, Stop or Close asked for, in
// the order they happened.
func (c *Cluster) Exits() []Exit {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Exit(nil), c.exits...)
}

// refreshEndpoint reads the host port currently published for n.
func (c *Cluster) refreshEndpoint(ctx context.Context, n *node) error {
	res, err := c.cli.ContainerInspect(ctx, n.ctr.ID, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("node %s: inspect: %w", n.name, err)
	}
	ep := ""
	if ns := res.Container.NetworkSettings; ns != nil {
		port := network.MustParsePort(strconv.Itoa(c.cfg.Port) + "/tcp")
		for _, b := range ns.Ports[port] {
			if b.HostPort != "" && b.HostPort != "0" {
				ep = "127.0.0.1:" + b.HostPort
				break
			}
		}
	}
	n.mu.Lock()
	n.endpoint = ep
	n.mu.Unlock()
	return nil
}

// permanent reports whether err says that waiting cannot help.
func permanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// waitReady calls cfg.Ready for n until it answers nil, the container
// exits, Ready's error is permanent or ReadyTimeout passes.
func (c *Cluster) waitReady(ctx context.Context, n *node) error {
	deadline := time.Now().Add(c.cfg.ReadyTimeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var lastErr error
	lastInspect := time.Time{}
	for {
		if time.Since(lastInspect) >= 200*time.Millisecond || c.cfg.Ready == nil {
			lastInspect = time.Now()
			res, err := c.cli.ContainerInspect(ctx, n.ctr.ID, client.ContainerInspectOptions{})
			if err == nil && res.Container.State != nil && !res.Container.State.Running {
				n.log.wait(2 * time.Second)
				return fmt.Errorf("node %s exited with code %d before it was ready%s", n.name, res.Container.State.ExitCode, c.logTail(n))
			}
			if err == nil && c.cfg.Ready == nil {
				return c.refreshEndpoint(ctx, n)
			}
			if n.Endpoint() == "" && err == nil {
				if err := c.refreshEndpoint(ctx, n); err != nil {
					lastErr = err
				}
			}
		}
		if ep := n.Endpoint(); ep != "" && c.cfg.Ready != nil {
			err := c.cfg.Ready(ctx, n.name, ep)
			switch {
			case err == nil:
				return nil
			case permanent(err):
				return fmt.Errorf("node %s: %w%s", n.name, err, c.logTail(n))
			case ctx.Err() == nil || lastErr == nil:
				// A probe cut short by the deadline says less than the
				// answer before it.
				lastErr = err
			}
		}
		select {
		case <-ctx.Done():
			if time.Now().Before(deadline) {
				return fmt.Errorf("node %s: wait ready: %w", n.name, context.Cause(ctx))
			}
			return fmt.Errorf("node %s not ready after %s (last answer: %v)%s", n.name, c.cfg.ReadyTimeout, lastErr, c.logTail(n))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logTail formats the node's last log lines for an error message.
func (c *Cluster) logTail(n *node) string {
	lines := n.log.tail()
	if len(lines) == 0 {
		return "; it wrote no log lines"
	}
	return fmt.Sprintf("; last %d log lines:\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// Nodes returns the node names in configuration order.
func (c *Cluster) Nodes() []string { return append([]string(nil), c.order...) }

// RunID returns the run id of the cluster.
func (c *Cluster) RunID() string { return c.cfg.RunID }

// Network returns the name of the run's Docker network.
func (c *Cluster) Network() string { return c.netName }

// Subnet returns the run network's subnet.
func (c *Cluster) Subnet() netip.Prefix { return c.subnet }

// Endpoint returns "127.0.0.1:PORT", where the node's API port is
// published now (it may change after a restart), or "" if the node is
// unknown or not running.
func (c *Cluster) Endpoint(node string) string {
	n := c.nodes[node]
	if n == nil {
		return ""
	}
	return n.Endpoint()
}

// Endpoint returns the node's current published endpoint.
func (n *node) Endpoint() string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.endpoint
}

// IP returns the node's fixed address on the run's network (the zero
// Addr for an unknown node).
func (c *Cluster) IP(node string) netip.Addr {
	if n := c.nodes[node]; n != nil {
		return n.ip
	}
	return netip.Addr{}
}

// ContainerID returns the id of the node's container ("" if unknown).
func (c *Cluster) ContainerID(node string) string {
	if n := c.nodes[node]; n != nil && n.ctr != nil {
		return n.ctr.ID
	}
	return ""
}

// node looks up name.
func (c *Cluster) node(name string) (*node, error) {
	n := c.nodes[name]
	if n == nil || n.ctr == nil {
		return nil, fmt.Errorf("unknown node %q", name)
	}
	return n, nil
}

// Kill sends SIGKILL to the node's process and waits until the container
// has stopped. The volume is kept.
func (c *Cluster) Kill(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	n.op.Lock()
	defer n.op.Unlock()
	st, err := c.state(ctx, n)
	if err != nil {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	if !st.Running {
		return nil
	}
	n.markStopping()
	if _, err := c.cli.ContainerKill(ctx, n.ctr.ID, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	if st.Paused {
		// A frozen process only dies once thawed.
		_, _ = c.cli.ContainerUnpause(ctx, n.ctr.ID, client.ContainerUnpauseOptions{})
	}
	if err := c.waitStopped(ctx, n); err != nil {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	return nil
}

// waitStopped waits until the container is not running.
func (c *Cluster) waitStopped(ctx context.Context, n *node) error {
	w := c.cli.ContainerWait(ctx, n.ctr.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case <-w.Result:
	case err := <-w.Error:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
	n.mu.Lock()
	n.endpoint = ""
	n.mu.Unlock()
	return nil
}

// state inspects the node's container.
func (c *Cluster) state(ctx context.Context, n *node) (*container.State, error) {
	res, err := c.cli.ContainerInspect(ctx, n.ctr.ID, client.ContainerInspectOptions{})
	if err != nil {
		return nil, err
	}
	if res.Container.State == nil {
		return nil, errors.New("no container state")
	}
	return res.Container.State, nil
}

// Running reports whether the node's container runs (paused counts as
// running: its namespaces exist).
func (c *Cluster) Running(ctx context.Context, name string) (bool, error) {
	n, err := c.node(name)
	if err != nil {
		return false, fmt.Errorf("running: %w", err)
	}
	st, err := c.state(ctx, n)
	if err != nil {
		return false, fmt.Errorf("inspect %s: %w", name, err)
	}
	return st.Running, nil
}

// Stop stops the node gracefully (SIGTERM, then SIGKILL after
// Config.StopTimeout). A paused node is resumed first.
func (c *Cluster) Stop(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	n.op.Lock()
	defer n.op.Unlock()
	st, err := c.state(ctx, n)
	if err != nil {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	if st.Paused {
		if _, err := c.cli.ContainerUnpause(ctx, n.ctr.ID, client.ContainerUnpauseOptions{}); err != nil {
			return fmt.Errorf("stop %s: unpause: %w", name, err)
		}
	}
	timeout := c.cfg.StopTimeout
	n.markStopping()
	if err := n.ctr.Stop(ctx, &timeout); err != nil {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	n.mu.Lock()
	n.endpoint = ""
	n.mu.Unlock()
	return nil
}

// Start starts a stopped or killed node again with the same volume, waits
// until it is ready and then runs the OnRestart hooks. Starting a running
// node only waits for readiness.
func (c *Cluster) Start(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	n.op.Lock()
	defer n.op.Unlock()
	t0 := time.Now()
	st, err := c.state(ctx, n)
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	if st.Paused {
		return fmt.Errorf("start %s: node is paused; resume it instead", name)
	}
	if !st.Running {
		if err := n.ctr.Start(ctx); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		n.log.follow(c.bg, c.cli, n.ctr.ID)
		c.watchExit(n)
		if err := c.refreshEndpoint(ctx, n); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
	}
	if err := c.waitReady(ctx, n); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	c.cfg.Log.Info(fmt.Sprintf("docker: %s started and ready in %.2fs at %s", name, time.Since(t0).Seconds(), n.Endpoint()))
	c.mu.Lock()
	hooks := append([]func(context.Context, string) error(nil), c.hooks...)
	c.mu.Unlock()
	var errs []error
	for _, h := range hooks {
		if err := h(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("start %s: restart hook: %w", name, err)
	}
	return nil
}

// Pause freezes every process of the node (cgroup freezer).
func (c *Cluster) Pause(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	n.op.Lock()
	defer n.op.Unlock()
	if _, err := c.cli.ContainerPause(ctx, n.ctr.ID, client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("pause %s: %w", name, err)
	}
	return nil
}

// Resume thaws a paused node.
func (c *Cluster) Resume(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	n.op.Lock()
	defer n.op.Unlock()
	if _, err := c.cli.ContainerUnpause(ctx, n.ctr.ID, client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("resume %s: %w", name, err)
	}
	return nil
}

// OnRestart registers a hook that Start runs after a node came back and is
// ready (its network namespace is new: faults installed in it are gone).
func (c *Cluster) OnRestart(hook func(ctx context.Context, node string) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hooks = append(c.hooks, hook)
}

// RunSidecar starts a labelled container from s.Image that shares node's
// network namespace (and its PID namespace if s.SharePID). It is removed
// by Close or RemoveContainer. It returns the container id.
func (c *Cluster) RunSidecar(ctx context.Context, nodeName string, s Sidecar) (string, error) {
	n, err := c.node(nodeName)
	if err != nil {
		return "", fmt.Errorf("sidecar: %w", err)
	}
	if err := EnsureImage(ctx, s.Image); err != nil {
		return "", fmt.Errorf("sidecar on %s: %w", nodeName, err)
	}
	name := s.Name
	c.mu.Lock()
	c.sidecarN++
	if name == "" {
		name = "sidecar" + strconv.Itoa(c.sidecarN)
	}
	c.mu.Unlock()
	req := testcontainers.ContainerRequest{
		Image:  s.Image,
		Name:   c.containerName(nodeName) + "-" + name,
		Labels: labels(c.cfg.RunID, "sidecar", nodeName),
		ConfigModifier: func(cc *container.Config) {
			cc.Cmd = s.Cmd
			cc.Env = s.Env
		},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.NetworkMode = container.NetworkMode("container:" + n.ctr.ID)
			if s.SharePID {
				hc.PidMode = container.PidMode("container:" + n.ctr.ID)
			}
			hc.CapAdd = s.CapAdd
			hc.Binds = s.Binds
			hc.LogConfig = container.LogConfig{Type: "json-file"}
		},
	}
	ctr, err := c.tc.CreateContainer(ctx, req)
	if err != nil {
		if ctr != nil {
			_ = c.RemoveContainer(context.WithoutCancel(ctx), ctr.GetContainerID())
		}
		return "", fmt.Errorf("sidecar %s on %s: create: %w", name, nodeName, err)
	}
	if err := ctr.Start(ctx); err != nil {
		_ = c.RemoveContainer(context.WithoutCancel(ctx), ctr.GetContainerID())
		return "", fmt.Errorf("sidecar %s on %s: start: %w", name, nodeName, err)
	}
	return ctr.GetContainerID(), nil
}

// ExecError is returned by Exec when the command exits non-zero.
type ExecError struct {
	Cmd      []string // the command run
	ExitCode int      // its exit code, not zero
	Output   []byte   // its combined stdout and stderr
}

// Error implements error.
func (e *ExecError) Error() string {
	return fmt.Sprintf("%s: exit code %d: %s", strings.Join(e.Cmd, " "), e.ExitCode, strings.TrimSpace(string(e.Output)))
}

// Exec runs cmd in the container (a node or a sidecar) and returns its
// combined stdout and stderr. A non-zero exit gives an *ExecError carrying
// the exit code and the output.
func (c *Cluster) Exec(ctx context.Context, containerID string, cmd []string) ([]byte, error) {
	return execIn(ctx, c.cli, containerID, cmd)
}

// execIn implements Exec.
func execIn(ctx context.Context, cli *client.Client, id string, cmd []string) ([]byte, error) {
	ex, err := cli.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return nil, fmt.Errorf("exec %q in %.12s: %w", cmd, id, err)
	}
	att, err := cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return nil, fmt.Errorf("exec %q in %.12s: attach: %w", cmd, id, err)
	}
	defer att.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, att.Reader); err != nil {
		return out.Bytes(), fmt.Errorf("exec %q in %.12s: read output: %w", cmd, id, err)
	}
	for {
		ins, err := cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			return out.Bytes(), fmt.Errorf("exec %q in %.12s: inspect: %w", cmd, id, err)
		}
		if !ins.Running {
			if ins.ExitCode != 0 {
				return out.Bytes(), &ExecError{Cmd: cmd, ExitCode: ins.ExitCode, Output: out.Bytes()}
			}
			return out.Bytes(), nil
		}
		select {
		case <-ctx.Done():
			return out.Bytes(), fmt.Errorf("exec %q in %.12s: %w", cmd, id, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// RemoveContainer force-removes a container (e.g. a sidecar); a container
// that is already gone is not an error.
func (c *Cluster) RemoveContainer(ctx context.Context, id string) error {
	return removeContainer(ctx, c.cli, id)
}

// removeContainer unpauses (a frozen container may not die) and
// force-removes id.
func removeContainer(ctx context.Context, cli *client.Client, id string) error {
	_, _ = cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
	_, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %.12s: %w", id, err)
	}
	return nil
}

// Close removes every container (nodes and sidecars), the network and the
// volumes of the run, and closes the node logs. It works even if ctx is
// already cancelled (it uses its own deadline) and is idempotent.
func (c *Cluster) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		// Kill the nodes first so that their log streams end and drain
		// before the containers (and their logs) are removed.
		var wg sync.WaitGroup
		for _, name := range c.order {
			if n := c.nodes[name]; n != nil && n.ctr != nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n.markStopping()
					_, _ = c.cli.ContainerKill(ctx, n.ctr.ID, client.ContainerKillOptions{Signal: "KILL"})
					_, _ = c.cli.ContainerUnpause(ctx, n.ctr.ID, client.ContainerUnpauseOptions{})
					n.log.wait(2 * time.Second)
				}()
			}
		}
		wg.Wait()
		rep, err := removeRun(ctx, c.cli, c.cfg.RunID)
		var errs []error
		if err != nil {
			errs = append(errs, err)
		}
		for _, name := range c.order {
			if n := c.nodes[name]; n != nil && n.log != nil {
				if err := n.log.close(time.Second); err != nil {
					errs = append(errs, fmt.Errorf("node %s log: %w", name, err))
				}
			}
		}
		c.bgCancel()
		c.closeErr = errors.Join(errs...)
		c.cfg.Log.Info(fmt.Sprintf("docker: teardown of run %s in %.2fs (%d containers, %d networks, %d volumes removed)",
			c.cfg.RunID, time.Since(t0).Seconds(), len(rep.Containers), len(rep.Networks), len(rep.Volumes)))
	})
	return c.closeErr
}
