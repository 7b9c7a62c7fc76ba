// Package dockertest holds what the tests that drive real Docker
// containers through harness/docker share: skipping without a daemon,
// a client, the target and agent images, a throwaway cluster, and the
// check that a test's run left nothing behind. It is imported by tests only. (harness/docker's own
// tests cannot import it, since it imports harness/docker.)
package dockertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"github.com/jepsen-go/jepsen/targets"
	_ "github.com/jepsen-go/jepsen/targets/httpkv" // the http protocol, for HTTPReady
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/jepsen-go/jepsen/harness/docker"
)

// RequireDocker skips the test when no Docker daemon answers within 5 s,
// unless the CI environment variable is set: there a missing daemon fails
// the test.
func RequireDocker(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := docker.Available(ctx); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("Docker daemon not reachable and CI is set: %v", err)
		}
		tb.Skipf("Docker daemon not reachable: %v", err)
	}
}

// Client returns a Docker client configured from the environment, closed
// when the test ends.
func Client(tb testing.TB) *client.Client {
	tb.Helper()
	c, err := client.New(client.FromEnv)
	if err != nil {
		tb.Fatalf("docker client: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// Images builds, once per test binary, a target image from a Go main
// package and the agent image: the running test binary, whose TestMain
// serves as the fault agent. Declare one as a package variable.
type Images struct {
	// Dir is the target's Go main package directory, e.g.
	// "testdata/probenode".
	Dir string
	// Name names the target in errors, e.g. "probe node".
	Name string

	once                sync.Once
	target, agent       string
	targetErr, agentErr error
}

// Get returns the target and agent images, building them (within 5
// minutes) on the first call; a failure to build either fails the test.
func (im *Images) Get(tb testing.TB) (target, agent string) {
	tb.Helper()
	im.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		im.target, im.targetErr = docker.BuildGo(ctx, im.Dir, ".")
		im.agent, im.agentErr = docker.SelfImage(ctx, "")
	})
	if im.targetErr != nil || im.agentErr != nil {
		tb.Fatalf("images: %s: %v; agent: %v", im.Name, im.targetErr, im.agentErr)
	}
	return im.target, im.agent
}

// Leftovers lists the containers, networks and volumes labelled
// docker.LabelRun=run, as "container NAME", "network NAME" and
// "volume NAME".
func Leftovers(tb testing.TB, run string) []string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(client.FromEnv)
	if err != nil {
		tb.Fatalf("docker client: %v", err)
	}
	defer c.Close()
	f := make(client.Filters).Add("label", docker.LabelRun+"="+run)
	var out []string
	ctrs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		tb.Fatalf("list containers of run %s: %v", run, err)
	}
	for _, x := range ctrs.Items {
		out = append(out, "container "+strings.Join(x.Names, ","))
	}
	nets, err := c.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		tb.Fatalf("list networks of run %s: %v", run, err)
	}
	for _, x := range nets.Items {
		out = append(out, "network "+x.Name)
	}
	vols, err := c.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		tb.Fatalf("list volumes of run %s: %v", run, err)
	}
	for _, x := range vols.Items {
		out = append(out, "volume "+x.Name)
	}
	return out
}

// NewRun returns a fresh run id, prefix followed by "-" and 8 random hex
// digits, and registers a cleanup that fails the test if anything of the
// run is left when the test's later cleanups have run, and then sweeps it.
func NewRun(tb testing.TB, prefix string) string {
	tb.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	run := prefix + "-" + hex.EncodeToString(b)
	tb.Cleanup(func() {
		if left := Leftovers(tb, run); len(left) > 0 {
			tb.Errorf("run %s left behind: %v", run, left)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, _ = docker.Sweep(ctx, docker.SweepOptions{RunPrefix: run, All: true})
		}
	})
	return run
}

// StartCluster starts n nodes, n1 to nN, of image in a new run named
// after runPrefix (see NewRun). Each runs command(node), serves on port
// 8080, keeps /data and is ready once /health answers, within 20 s. The
// cluster is closed when the test ends, after the cleanups registered
// later; then the test fails if the run left anything behind.
func StartCluster(ctx context.Context, tb testing.TB, runPrefix, image string, n int, command func(node string) []string) *docker.Cluster {
	tb.Helper()
	RequireDocker(tb)
	run := NewRun(tb, runPrefix)
	var nodes []string
	for i := 1; i <= n; i++ {
		nodes = append(nodes, "n"+strconv.Itoa(i))
	}
	cl, err := docker.Start(ctx, docker.Config{
		RunID: run, Image: image, Nodes: nodes,
		Command: command,
		Port:    8080,
		DataDir: "/data",
		Ready:   HTTPReady("/health"), ReadyTimeout: 20 * time.Second,
		Log: Logger(tb),
	})
	if err != nil {
		tb.Fatalf("start cluster: %v", err)
	}
	tb.Cleanup(func() {
		if err := cl.Close(context.Background()); err != nil {
			tb.Errorf("close cluster: %v", err)
		}
	})
	return cl
}

// HTTPReady is the readiness probe of the http protocol on path, as a
// docker.Config.Ready.
func HTTPReady(path string) func(ctx context.Context, node, endpoint string) error {
	proto, _ := targets.Lookup("http")
	return func(ctx context.Context, node, endpoint string) error {
		c, err := proto.Dial(targets.DialConfig{Node: node, Addr: endpoint, Port: 8080, Ready: path})
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Ready(ctx)
	}
}

// Logger returns a logger that writes to the test's log.
func Logger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tbWriter writes each record as a line of the test's log.
type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// StartSpec starts n nodes of the target spec from image, with the spec's
// command line, environment, port and data directory, under a run named
// after runPrefix (see NewRun). The cluster is closed when the test ends.
// Readiness is left to the caller's protocol client.
func StartSpec(tb testing.TB, runPrefix, image string, spec *targets.Spec, n int) *docker.Cluster {
	tb.Helper()
	nodes := spec.NodeNames(n)
	cmds := map[string][]string{}
	for _, node := range nodes {
		cmd, err := spec.CommandFor(node, nodes)
		if err != nil {
			tb.Fatalf("%s: %v", spec.Name, err)
		}
		cmds[node] = cmd
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := docker.Start(ctx, docker.Config{
		RunID: NewRun(tb, runPrefix), Image: image, Nodes: nodes,
		Command: func(node string) []string { return cmds[node] },
		Env:     func(node string) []string { return spec.EnvFor(node, nodes, nil) },
		Port:    spec.Port,
		DataDir: spec.DataDir,
		Log:     Logger(tb),
	})
	if err != nil {
		tb.Fatalf("start %s: %v", spec.Name, err)
	}
	tb.Cleanup(func() {
		if err := cl.Close(context.Background()); err != nil {
			tb.Errorf("close cluster: %v", err)
		}
	})
	return cl
}
