package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/harness/docker"
)

// fakeCluster records sidecars and answers execs: a container in gone
// fails like a removed one; refuse makes the agent exit 2 with a message.
type fakeCluster struct {
	// serve, if set, plays the agent of a sidecar with a bind mount: it
	// serves on the host side of the mount.
	serve   func(hostDir string)
	noBinds bool // refuse sidecars with bind mounts

	mu      sync.Mutex
	n       int
	running map[string]docker.Sidecar
	gone    map[string]bool
	refuse  bool
	down    map[string]bool // nodes whose container does not run
	execs   []string
}

func newFake() *fakeCluster {
	return &fakeCluster{running: map[string]docker.Sidecar{}, gone: map[string]bool{}, down: map[string]bool{}}
}

func (f *fakeCluster) RunSidecar(_ context.Context, node string, s docker.Sidecar) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down[node] {
		return "", errors.New("cannot join network namespace of a non running container")
	}
	if f.noBinds && len(s.Binds) > 0 {
		return "", errors.New("invalid mount config: bind source path does not exist")
	}
	f.n++
	id := fmt.Sprintf("%s-agent-%d", node, f.n)
	f.running[id] = s
	if f.serve != nil && len(s.Binds) == 1 {
		host, _, _ := strings.Cut(s.Binds[0], ":")
		f.serve(host)
	}
	return id, nil
}

func (f *fakeCluster) Exec(_ context.Context, id string, cmd []string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execs = append(f.execs, id+" "+strings.Join(cmd, " "))
	node, _, _ := strings.Cut(id, "-")
	if f.gone[id] || f.down[node] {
		return nil, errors.New("no such container")
	}
	if f.refuse {
		out := []byte("cannot trace pid 1\n")
		return out, &docker.ExecError{Cmd: cmd, ExitCode: 2, Output: out}
	}
	return []byte("ok"), nil
}

func (f *fakeCluster) Running(_ context.Context, node string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.down[node], nil
}

func (f *fakeCluster) RemoveContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.running, id)
	return nil
}

func TestPoolStartsOneAgentPerNodeWithItsConfig(t *testing.T) {
	f := newFake()
	p := New(f, Config{Name: "x", Image: "img", Command: []string{"/jepsen", "x"}, CapAdd: []string{"NET_ADMIN"}, SharePID: true})
	ctx := context.Background()
	if err := Each(ctx, []string{"n1", "n2", "n1"}, func(ctx context.Context, n string) error {
		_, _, err := p.Exec(ctx, n, "apply", "{}")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(f.running) != 2 {
		t.Fatalf("%d agents for 2 nodes", len(f.running))
	}
	for id, s := range f.running {
		if s.Image != "img" || strings.Join(s.Cmd, " ") != "/jepsen x serve" || s.CapAdd[0] != "NET_ADMIN" || !s.SharePID {
			t.Errorf("agent %s started as %+v", id, s)
		}
	}
	if got := p.Running(); len(got) != 2 || got[0] != "n1" || got[1] != "n2" {
		t.Errorf("Running() = %v", got)
	}
}

func TestPoolReplacesAGoneAgentOnce(t *testing.T) {
	f := newFake()
	p := New(f, Config{Name: "x", Image: "img", Command: []string{"a"}})
	ctx := context.Background()
	_, first, err := p.Exec(ctx, "n1", "status")
	if err != nil {
		t.Fatal(err)
	}
	f.gone[first] = true // the node restarted: its agent went with it
	_, second, err := p.Exec(ctx, "n1", "status")
	if err != nil || second == first {
		t.Fatalf("Exec after the agent vanished: id %s (was %s), err %v", second, first, err)
	}
	if _, ok := f.running[first]; ok {
		t.Error("the stale agent was not removed")
	}
}

// TestPoolSaysWhenTheNodeIsDown checks that a failure on a killed node is
// marked ErrNodeDown, whether its agent was running or not, and that other
// failures are not.
func TestPoolSaysWhenTheNodeIsDown(t *testing.T) {
	f := newFake()
	p := New(f, Config{Name: "x", Image: "img", Command: []string{"a"}})
	ctx := context.Background()
	if _, _, err := p.Exec(ctx, "n1", "status"); err != nil {
		t.Fatal(err)
	}
	f.down["n1"], f.down["n2"] = true, true
	for _, node := range []string{"n1", "n2"} { // with and without an agent
		if _, _, err := p.Exec(ctx, node, "status"); !errors.Is(err, ErrNodeDown) || !strings.Contains(err.Error(), node) {
			t.Errorf("%s down: err = %v, want ErrNodeDown naming the node", node, err)
		}
	}
	f.down["n1"] = false
	if _, _, err := p.Exec(ctx, "n1", "status"); err != nil {
		t.Errorf("n1 back up: %v", err)
	}
	f.refuse = true
	if _, _, err := p.Exec(ctx, "n1", "status"); err == nil || errors.Is(err, ErrNodeDown) {
		t.Errorf("refusal on a running node: err = %v, want an error that is not ErrNodeDown", err)
	}
}

// TestPoolRunsLocalOpsInProcess checks that, with Config.Local, commands
// in LocalOps reach the agent through its bind-mounted socket without a
// docker exec, that other commands still use docker exec with the socket
// named, and that Close removes the socket directory.
func TestPoolRunsLocalOpsInProcess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFake()
	f.serve = func(host string) {
		go ServeSocket(ctx, filepath.Join(host, socketName), nil, func(req map[string]string) (any, error) {
			if req["op"] == "refuse" {
				return nil, errors.New("cannot do that")
			}
			return map[string]string{"answer": "from the agent"}, nil
		})
	}
	local := func(args []string, stdout io.Writer) error {
		if len(args) < 3 || args[1] != "--socket" {
			return fmt.Errorf("local command without its socket: %q", args)
		}
		var resp map[string]string
		if err := Call("x", args[0], args[2], map[string]string{"op": args[0]}, &resp); err != nil {
			return err
		}
		_, err := fmt.Fprint(stdout, resp["answer"])
		return err
	}
	p := New(f, Config{Name: "x", Image: "img", Command: []string{"/j", "x"}, Local: local, LocalOps: []string{"status", "refuse"}})
	out, _, err := p.Exec(ctx, "n1", "status")
	if err != nil || string(out) != "from the agent" {
		t.Fatalf("local status: %q, %v", out, err)
	}
	var r *RefusedError
	if _, _, err := p.Exec(ctx, "n1", "refuse"); !errors.As(err, &r) || !strings.Contains(r.Output, "cannot do that") {
		t.Errorf("local refusal: err = %v, want a RefusedError with the agent's words", err)
	}
	if len(f.execs) != 0 {
		t.Errorf("local commands went through docker exec: %v", f.execs)
	}
	if _, _, err := p.Exec(ctx, "n1", "check", "--x"); err != nil {
		t.Fatal(err)
	}
	if len(f.execs) != 1 || !strings.HasSuffix(f.execs[0], "/j x check --socket "+agentDir+"/"+socketName+" --x") {
		t.Errorf("check: execs %q, want one naming the agent's socket", f.execs)
	}
	var serve []string
	var bind string
	for _, sc := range f.running {
		serve, bind = sc.Cmd, sc.Binds[0]
	}
	if strings.Join(serve, " ") != "/j x serve --socket "+agentDir+"/"+socketName || !strings.HasSuffix(bind, ":"+agentDir) {
		t.Errorf("agent started as %q with bind %q", serve, bind)
	}
	host, _, _ := strings.Cut(bind, ":")
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(host); !os.IsNotExist(err) {
		t.Errorf("socket directory %s left after Close: %v", host, err)
	}
}

// TestPoolFallsBackToExec checks that when an agent's socket never shows
// on the host side (a remote Docker host), local commands go through
// docker exec, and keep doing so without waiting again; and that an agent
// whose bind mount the daemon refuses starts without it.
func TestPoolFallsBackToExec(t *testing.T) {
	f := newFake() // serves nothing on the host side
	p := New(f, Config{Name: "x", Image: "img", Command: []string{"a"}, LocalOps: []string{"status"},
		Local: func([]string, io.Writer) error { return errors.New("must not run") }})
	defer p.Close(context.Background())
	for i := 0; i < 2; i++ {
		t0 := time.Now()
		if _, _, err := p.Exec(context.Background(), "n1", "status"); err != nil {
			t.Fatal(err)
		}
		if i == 1 && time.Since(t0) > time.Second {
			t.Errorf("the second command waited %v for a socket known to be unreachable", time.Since(t0))
		}
	}
	if len(f.execs) != 2 {
		t.Errorf("execs %q, want both commands through docker exec", f.execs)
	}
	// A daemon that refuses the bind mount: the agent starts without it.
	f2 := newFake()
	f2.noBinds = true
	p2 := New(f2, Config{Name: "x", Image: "img", Command: []string{"a"}, LocalOps: []string{"status"},
		Local: func([]string, io.Writer) error { return errors.New("must not run") }})
	defer p2.Close(context.Background())
	if _, _, err := p2.Exec(context.Background(), "n1", "status"); err != nil || len(f2.execs) != 1 {
		t.Errorf("with the bind mount refused: err %v, execs %q; want one docker exec", err, f2.execs)
	}
}

// TestSweepSocketDirs checks that a crashed run's socket directory is
// removed, and that a live one (an agent listening) and a fresh one are
// kept.
func TestSweepSocketDirs(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	old := time.Now().Add(-time.Hour)
	mk := func(name string) string {
		dir := filepath.Join(os.TempDir(), socketDirPrefix+name)
		if err := os.MkdirAll(filepath.Join(dir, "n1"), 0o700); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dead, live, fresh := mk("dead"), mk("live"), mk("fresh")
	// Fresh directories with owner files: one of this process, one of a
	// process that has exited (a run killed seconds ago).
	mine, orphan := mk("mine"), mk("orphan")
	writeOwner := func(dir string, l map[string]string) {
		b, _ := json.Marshal(l)
		if err := os.WriteFile(filepath.Join(dir, ownerFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeOwner(mine, docker.OwnerLabels())
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	gone := docker.OwnerLabels()
	gone[docker.LabelOwnerPID] = strconv.Itoa(exited.Process.Pid)
	writeOwner(orphan, gone)
	// A stale socket file nobody listens on, as a killed agent leaves.
	ln, err := net.Listen("unix", filepath.Join(dead, "n1", socketName))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ServeSocket(ctx, filepath.Join(live, "n1", socketName), nil, func(map[string]string) (any, error) { return nil, nil })
	if err := Call("x", "ping", filepath.Join(live, "n1", socketName), map[string]string{}, nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dead, live} {
		if err := os.Chtimes(d, old, old); err != nil {
			t.Fatal(err)
		}
	}
	n, err := SweepSocketDirs(time.Minute)
	if err != nil || n != 2 {
		t.Fatalf("SweepSocketDirs = %d, %v; want 2 removed", n, err)
	}
	for dir, want := range map[string]bool{dead: false, live: true, fresh: true, mine: true, orphan: false} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(dir), err == nil, want)
		}
	}
}

// TestPoolStartSoon checks that a background start leaves a running agent
// for the next command, and that Close waits for it and removes it.
func TestPoolStartSoon(t *testing.T) {
	f := newFake()
	p := New(f, Config{Name: "x", Image: "img", Command: []string{"a"}})
	p.StartSoon(context.Background(), "n1")
	_, id, err := p.Exec(context.Background(), "n1", "status")
	if err != nil || f.n != 1 {
		t.Fatalf("exec after StartSoon: agent %s, %d agents started, err %v; want the one started in the background", id, f.n, err)
	}
	p.StartSoon(context.Background(), "n2")
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.running) != 0 {
		t.Errorf("agents left after Close: %v", f.running)
	}
}

func TestPoolDoesNotRetryARefusal(t *testing.T) {
	f := newFake()
	f.refuse = true
	p := New(f, Config{Name: "x", Image: "img", Command: []string{"a"}})
	_, _, err := p.Exec(context.Background(), "n1", "check")
	var r *RefusedError
	if !errors.As(err, &r) || r.Output != "cannot trace pid 1" || r.Node != "n1" {
		t.Fatalf("err = %v, want a RefusedError with the agent's words", err)
	}
	if len(f.execs) != 1 || len(f.running) != 1 {
		t.Errorf("a refusal was retried: %d execs, %d agents", len(f.execs), len(f.running))
	}
}

func TestPoolCloseAndDrop(t *testing.T) {
	f := newFake()
	p := New(f, Config{Name: "x", Image: "img", Command: []string{"a"}})
	ctx := context.Background()
	for _, n := range []string{"n1", "n2"} {
		if err := p.Start(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	p.Drop(ctx, "n1")
	if _, ok := p.ID("n1"); ok || len(f.running) != 1 {
		t.Fatalf("after Drop(n1): %d agents running", len(f.running))
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if len(f.running) != 0 {
		t.Fatalf("%d agents left after Close", len(f.running))
	}
	if _, _, err := p.Exec(ctx, "n1", "status"); err == nil {
		t.Fatal("Exec after Close succeeded")
	}
}

func TestPoolNeedsAnImage(t *testing.T) {
	p := New(newFake(), Config{Name: "x", Command: []string{"a"}})
	if err := p.Start(context.Background(), "n1"); err == nil || !strings.Contains(err.Error(), "no agent image") {
		t.Fatalf("err = %v", err)
	}
}
