package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jepsen-go/jepsen/harness/docker"
)

// fakeCluster records sidecars and answers execs: a container in gone
// fails like a removed one; refuse makes the agent exit 2 with a message.
type fakeCluster struct {
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
	f.n++
	id := fmt.Sprintf("%s-agent-%d", node, f.n)
	f.running[id] = s
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
