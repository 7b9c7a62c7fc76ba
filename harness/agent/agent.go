// Package agent keeps one helper container, an agent, beside each node of
// a cluster and runs commands in it. The fault agents share it: the
// network one (harness/netfault) joins a node's network namespace, the
// clock one (harness/clockfault) its PID namespace. An agent runs the
// jepsen binary's agent subcommand with "serve"; each command is an exec of
// the same subcommand in it, which talks to the serving process over a unix
// socket (Call and ServeSocket).
package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/jepsen-go/jepsen/harness/backend"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jepsen-go/jepsen/harness/docker"
)

// Cluster is what a Pool needs from the cluster. *docker.Cluster satisfies
// it.
type Cluster interface {
	RunSidecar(ctx context.Context, node string, s backend.Sidecar) (string, error)
	Exec(ctx context.Context, containerID string, cmd []string) ([]byte, error)
	RemoveContainer(ctx context.Context, id string) error
	// Running reports whether node's container runs.
	Running(ctx context.Context, node string) (bool, error)
}

// ErrNodeDown is returned by Exec when the node's container does not run
// (it was killed): its namespaces are gone, so there is nothing to act on.
// The fault controllers install their state again when it restarts.
var ErrNodeDown = errors.New("node is down")

// Config describes the agents of a Pool.
type Config struct {
	// Name names the agents' containers and prefixes errors: "netfault".
	Name string
	// Image holds the agent binary (docker.SelfImage).
	Image string
	// Command is the agent subcommand, e.g. /jepsen netfault; "serve"
	// starts an agent, other arguments are its commands.
	Command []string
	// CapAdd are the capabilities an agent needs, e.g. NET_ADMIN.
	CapAdd []string
	// SharePID also joins the node's PID namespace.
	SharePID bool
	// Log receives a line when a stale agent cannot be removed, and the fallbacks to docker exec; nil discards them.
	Log *slog.Logger
	// Local, if set, runs the commands named in LocalOps in this process
	// instead of through docker exec, which costs from half a second to
	// seconds on a loaded host. The agent then serves on a socket in a
	// host directory bind-mounted into its container, and Local gets the
	// command with --socket naming the host side. It must be the function
	// the agent's container runs (netfault.Main, clockfault.Main), and
	// LocalOps only commands that do nothing but talk to the serving
	// agent. Where the socket cannot be reached from here (a remote
	// Docker host), commands go through docker exec as without Local.
	Local func(args []string, stdout io.Writer) error
	// LocalOps are the commands that Local may run.
	LocalOps []string
}

// agentDir is where an agent with a Local config serves, in its container.
const agentDir = "/run/jepsen-agent"

// socketName is the agent's socket file in agentDir and in the host
// directory bind-mounted there.
const socketName = "agent.sock"

// socketDirPrefix starts the name of every pool's socket directory, in
// the system's temporary directory (see SweepSocketDirs).
const socketDirPrefix = "jepsen-agents-"

// ownerFile, in a socket directory, names the process that made it (the
// owner labels of harness/docker, as JSON), so that a sweep can tell a
// crashed run's directory from a live one's at any age.
const ownerFile = "owner.json"

// localWait is how long a local command waits for a fresh agent to listen.
const localWait = 3 * time.Second

// RefusedError is an agent's refusal: it ran and exited 2 with a message
// (a rule it cannot install, a process it cannot trace). Trying again
// would not help.
type RefusedError struct {
	Node   string
	Output string
}

func (e *RefusedError) Error() string { return e.Node + ": " + e.Output }

// Pool runs one agent per node, started on first use. Commands on one node
// are serialised; different nodes proceed in parallel. It is safe for
// concurrent use.
type Pool struct {
	c   Cluster
	cfg Config

	mu      sync.Mutex
	ids     map[string]string // node -> agent container id
	started map[string]time.Time
	nodeMu  map[string]*sync.Mutex
	closed  bool
	hostDir string         // holds NODE/agent.sock of each agent, with Local
	noLocal bool           // the sockets are unreachable from here: exec only
	bg      sync.WaitGroup // StartSoon's starts, awaited by Close
}

// New returns a pool of agents described by cfg on c.
func New(c Cluster, cfg Config) *Pool {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Pool{c: c, cfg: cfg, ids: map[string]string{}, started: map[string]time.Time{}, nodeMu: map[string]*sync.Mutex{}}
}

func (p *Pool) lockNode(node string) func() {
	p.mu.Lock()
	m, ok := p.nodeMu[node]
	if !ok {
		m = &sync.Mutex{}
		p.nodeMu[node] = m
	}
	p.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// ID returns the container id of node's agent, if it runs.
func (p *Pool) ID(node string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.ids[node]
	return id, ok
}

// Running returns the nodes that have an agent, sorted.
func (p *Pool) Running() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	nodes := make([]string, 0, len(p.ids))
	for n := range p.ids {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	return nodes
}

// Start starts node's agent if it does not run yet.
func (p *Pool) Start(ctx context.Context, node string) error {
	defer p.lockNode(node)()
	_, err := p.start(ctx, node)
	return err
}

// StartSoon starts node's agent in the background, so that the next
// command need not wait for it; a failure is only logged (the next
// command tries again). Close waits for it.
func (p *Pool) StartSoon(ctx context.Context, node string) {
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		if err := p.Start(context.WithoutCancel(ctx), node); err != nil {
			p.cfg.Log.Info(fmt.Sprintf("%s %s: start agent: %v (started with the next command)", p.cfg.Name, node, err))
		}
	}()
}

// start returns node's agent, starting it; the node's lock is held.
func (p *Pool) start(ctx context.Context, node string) (string, error) {
	p.mu.Lock()
	id, ok := p.ids[node]
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return "", fmt.Errorf("%s %s: closed", p.cfg.Name, node)
	}
	if ok {
		return id, nil
	}
	if p.cfg.Image == "" {
		return "", fmt.Errorf("%s %s: no agent image configured", p.cfg.Name, node)
	}
	sc := backend.Sidecar{
		Name:     fmt.Sprintf("%s-%d", p.cfg.Name, time.Now().UnixNano()%1e9),
		Image:    p.cfg.Image,
		Cmd:      p.command("serve"),
		CapAdd:   p.cfg.CapAdd,
		SharePID: p.cfg.SharePID,
	}
	if dir := p.nodeDir(node); dir != "" {
		sc.Binds = []string{dir + ":" + agentDir}
	}
	id, err := p.c.RunSidecar(ctx, node, sc)
	if err != nil && len(sc.Binds) > 0 && ctx.Err() == nil {
		// The daemon may refuse the bind mount (a confined or remote
		// Docker): do without it, through docker exec.
		if up, rerr := p.c.Running(ctx, node); rerr == nil && up {
			p.mu.Lock()
			p.noLocal = true
			p.mu.Unlock()
			p.cfg.Log.Info(fmt.Sprintf("%s %s: agent with a bind-mounted socket failed to start, using docker exec: %v", p.cfg.Name, node, err))
			sc.Binds = nil
			id, err = p.c.RunSidecar(ctx, node, sc)
		}
	}
	if err != nil {
		return "", fmt.Errorf("%s %s: start agent: %w", p.cfg.Name, node, err)
	}
	p.mu.Lock()
	p.ids[node] = id
	p.started[node] = time.Now()
	p.mu.Unlock()
	return id, nil
}

// command returns the agent command line for args: with Local, the
// agent's socket is in agentDir.
func (p *Pool) command(args ...string) []string {
	cmd := slices.Clone(p.cfg.Command)
	if p.cfg.Local == nil || len(args) == 0 {
		return append(cmd, args...)
	}
	return append(append(cmd, args[0], "--socket", agentDir+"/"+socketName), args[1:]...)
}

// nodeDir returns the host directory bind-mounted into node's agent,
// creating it, or "" if commands go through docker exec only.
func (p *Pool) nodeDir(node string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg.Local == nil || p.noLocal {
		return ""
	}
	if p.hostDir == "" {
		dir, err := os.MkdirTemp("", socketDirPrefix+p.cfg.Name+"-")
		if err != nil {
			p.noLocal = true
			p.cfg.Log.Info(fmt.Sprintf("%s: no directory for the agents' sockets, using docker exec: %v", p.cfg.Name, err))
			return ""
		}
		p.hostDir = dir
		if b, err := json.Marshal(docker.OwnerLabels()); err == nil {
			_ = os.WriteFile(filepath.Join(dir, ownerFile), b, 0o600) // without it, age decides
		}
	}
	dir := filepath.Join(p.hostDir, node)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ""
	}
	return dir
}

// local runs args in this process if Local may and node's agent listens
// on its host socket; ok is false if the command must go through docker
// exec instead. err is the command's failure, as the agent's exit 2
// would report it.
func (p *Pool) local(ctx context.Context, node string, args []string) (out []byte, ok bool, err error) {
	p.mu.Lock()
	dir, started, noLocal := p.hostDir, p.started[node], p.noLocal
	p.mu.Unlock()
	if p.cfg.Local == nil || noLocal || dir == "" || len(args) == 0 || !slices.Contains(p.cfg.LocalOps, args[0]) {
		return nil, false, nil
	}
	sock := filepath.Join(dir, node, socketName)
	// A fresh agent may not listen yet; an older one that does not is
	// gone (its node was killed): docker exec finds out and replaces it.
	deadline := started.Add(localWait)
	for {
		derr := dialSocket(sock)
		if derr == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, false, nil // docker exec reports it
		}
		if time.Now().After(deadline) {
			if up, rerr := p.c.Running(ctx, node); rerr == nil && up && time.Since(started) < 2*localWait {
				// A fresh agent of a running node never showed its
				// socket here: the bind mount does not reach this
				// process (remote Docker).
				p.mu.Lock()
				p.noLocal = true
				p.mu.Unlock()
				p.cfg.Log.Info(fmt.Sprintf("%s %s: agent socket not reachable from here, using docker exec: %v", p.cfg.Name, node, derr))
			}
			return nil, false, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	var buf bytes.Buffer
	err = p.cfg.Local(append([]string{args[0], "--socket", sock}, args[1:]...), &buf)
	return buf.Bytes(), true, err
}

// Exec runs the agent command args on node, starting its agent if needed:
// in this process if Config.Local may run it and the agent's socket is
// reachable, else through docker exec. If the exec fails for another
// reason than a refusal (the agent's container is gone, say), it starts a
// fresh agent and tries once more. It returns the command's output and the
// id of the agent that ran it.
func (p *Pool) Exec(ctx context.Context, node string, args ...string) ([]byte, string, error) {
	defer p.lockNode(node)()
	if p.cfg.Local != nil && slices.Contains(p.cfg.LocalOps, firstArg(args)) {
		id, err := p.start(ctx, node)
		if err != nil {
			return nil, "", p.whyFailed(ctx, node, err)
		}
		if out, ok, err := p.local(ctx, node, args); ok {
			if err != nil {
				return out, id, &RefusedError{Node: node, Output: err.Error()}
			}
			return out, id, nil
		}
	}
	cmd := p.command(args...)
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var id string
		if id, err = p.start(ctx, node); err != nil {
			return nil, "", p.whyFailed(ctx, node, err)
		}
		var out []byte
		if out, err = p.c.Exec(ctx, id, cmd); err == nil {
			return out, id, nil
		}
		var ee *docker.ExecError
		if errors.As(err, &ee) && ee.ExitCode == 2 && len(out) > 0 {
			return out, id, &RefusedError{Node: node, Output: Trim(out)}
		}
		if ctx.Err() != nil {
			break
		}
		p.drop(ctx, node, id)
	}
	return nil, "", p.whyFailed(ctx, node, fmt.Errorf("%s %s: %w", p.cfg.Name, node, err))
}

// whyFailed returns err, marked with ErrNodeDown if node's container does
// not run.
func (p *Pool) whyFailed(ctx context.Context, node string, err error) error {
	if ctx.Err() != nil {
		return err
	}
	if up, rerr := p.c.Running(ctx, node); rerr == nil && !up {
		return fmt.Errorf("%w: %w", ErrNodeDown, err)
	}
	return err
}

func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// Drop removes node's agent: after a node restarts, its agent is in the
// old namespaces and useless. The next Exec starts a fresh one.
func (p *Pool) Drop(ctx context.Context, node string) {
	defer p.lockNode(node)()
	if id, ok := p.ID(node); ok {
		p.drop(ctx, node, id)
	}
}

// drop forgets and removes agent id of node; the node's lock is held.
func (p *Pool) drop(ctx context.Context, node, id string) {
	p.mu.Lock()
	if p.ids[node] == id {
		delete(p.ids, node)
	}
	p.mu.Unlock()
	if err := p.c.RemoveContainer(context.WithoutCancel(ctx), id); err != nil {
		p.cfg.Log.Info(fmt.Sprintf("%s %s: remove stale agent: %v", p.cfg.Name, node, err))
	}
}

// Close removes every agent; later calls fail. It is safe to call more
// than once.
func (p *Pool) Close(ctx context.Context) error {
	p.bg.Wait()
	p.mu.Lock()
	p.closed = true
	ids := p.ids
	p.ids = map[string]string{}
	p.mu.Unlock()
	var errs []error
	for n, id := range ids {
		if err := p.c.RemoveContainer(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: remove agent: %w", p.cfg.Name, n, err))
		}
	}
	p.mu.Lock()
	dir := p.hostDir
	p.hostDir = ""
	p.mu.Unlock()
	if dir != "" {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("%s: remove the agents' socket directory: %w", p.cfg.Name, err))
		}
	}
	return errors.Join(errs...)
}

// SocketDirMinAge is the age below which SweepSocketDirs keeps a socket
// directory without an owner file whatever its sockets say: its run may be
// starting its agents.
// Removing a live run's directory is harmless anyway: its pool recreates
// it when it next starts an agent.
const SocketDirMinAge = time.Minute

// SweepSocketDirs removes the socket directories that pools of crashed
// runs left in the system's temporary directory: those whose owner file
// says their process has gone (at any age), and those older than minAge in
// which no agent socket accepts a connection. It returns how many it
// removed. A live run's directory always has a listening agent, and a
// pool whose directory vanished recreates it or falls back to docker
// exec.
func SweepSocketDirs(minAge time.Duration) (int, error) {
	tmp := os.TempDir()
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return 0, fmt.Errorf("sweep agent socket directories: %w", err)
	}
	removed := 0
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), socketDirPrefix) {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		if !ownerGone(dir) {
			if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < minAge {
				continue
			}
		}
		socks, _ := filepath.Glob(filepath.Join(dir, "*", socketName))
		if slices.ContainsFunc(socks, func(sock string) bool { return dialSocket(sock) == nil }) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// dialSocket reports whether an agent accepts connections on sock: nil if
// one does.
func dialSocket(sock string) error {
	conn, err := net.DialTimeout("unix", sock, 200*time.Millisecond)
	if err == nil {
		conn.Close()
	}
	return err
}

// ownerGone reports whether dir's owner file names a process that has
// gone; false if there is no readable owner file.
func ownerGone(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return false
	}
	var l map[string]string
	if json.Unmarshal(b, &l) != nil {
		return false
	}
	return docker.OwnerGone(l)
}

// Each runs f for every node concurrently and joins the errors.
func Each(ctx context.Context, nodes []string, f func(context.Context, string) error) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(ctx, n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Trim shortens an agent's output for an error message.
func Trim(b []byte) string {
	s := strings.TrimRight(string(b), "\n ")
	if len(s) > 500 {
		s = s[:500] + "..."
	}
	return s
}
