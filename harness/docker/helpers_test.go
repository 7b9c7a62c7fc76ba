package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"github.com/jepsen-go/jepsen/targets"
	_ "github.com/jepsen-go/jepsen/targets/httpkv" // the http protocol, for httpReady
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// dockerAvailable reports whether a Docker daemon answers.
func dockerAvailable() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return Available(ctx) == nil
}

// requireDocker skips the test without Docker, unless CI is set, where a
// missing daemon is a failure.
func requireDocker(tb testing.TB) {
	tb.Helper()
	if !dockerAvailable() {
		if os.Getenv("CI") != "" {
			tb.Fatal("Docker daemon not reachable and CI is set")
		}
		tb.Skip("Docker daemon not reachable")
	}
}

// newRunID returns a unique run id for a test and registers a cleanup,
// run after every other cleanup of the test, that fails the test if any
// object of the run is left and then removes it.
func newRunID(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := "test-" + hex.EncodeToString(b)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if left := runObjects(tb, ctx, id); len(left) > 0 {
			tb.Errorf("run %s left objects behind: %v", id, left)
		}
		c, _ := dockerClient()
		_, _ = removeRun(ctx, c, id)
	})
	return id
}

// runObjects lists the containers, networks and volumes labelled with run.
func runObjects(tb testing.TB, ctx context.Context, run string) []string {
	tb.Helper()
	c, err := dockerClient()
	if err != nil {
		tb.Fatal(err)
	}
	f := make(client.Filters).Add("label", LabelRun+"="+run)
	var out []string
	ctrs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		tb.Fatal(err)
	}
	for _, x := range ctrs.Items {
		out = append(out, "container "+strings.Join(x.Names, ","))
	}
	nets, err := c.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		tb.Fatal(err)
	}
	for _, x := range nets.Items {
		out = append(out, "network "+x.Name)
	}
	vols, err := c.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		tb.Fatal(err)
	}
	for _, x := range vols.Items {
		out = append(out, "volume "+x.Name)
	}
	return out
}

var (
	echoOnce sync.Once
	echoRef  string
	echoErr  error
)

// echoImage builds (once per test binary) the echonode test target.
func echoImage(tb testing.TB) string {
	tb.Helper()
	echoOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		echoRef, echoErr = BuildGo(ctx, "testdata/echonode", ".")
	})
	if echoErr != nil {
		tb.Fatalf("build echonode: %v", echoErr)
	}
	return echoRef
}

// echoConfig is a cluster of echonode nodes.
func echoConfig(tb testing.TB, runID string, nodes []string, extra ...string) Config {
	tb.Helper()
	return Config{
		RunID: runID,
		Image: echoImage(tb),
		Nodes: nodes,
		Command: func(node string) []string {
			return append([]string{"/target", "--id", node, "--port", "8080", "--data", "/data"}, extra...)
		},
		Env: func(node string) []string {
			return []string{"JEPSEN_NODE=" + node, "JEPSEN_NODES=" + strings.Join(nodes, ",")}
		},
		Port:         8080,
		DataDir:      "/data",
		Ready:        httpReady,
		ReadyTimeout: 10 * time.Second,
		LogDir:       tb.TempDir(),
		Log:          testLogger(tb),
	}
}

// plainClient never uses a proxy from the environment.
var plainClient = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// httpDo performs a request against endpoint with a timeout and returns
// the status and body.
func httpDo(ctx context.Context, method, endpoint, path, body string, timeout time.Duration) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+endpoint+path, r)
	if err != nil {
		return 0, "", err
	}
	resp, err := plainClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// httpReady probes /health with the http protocol's readiness check.
func httpReady(ctx context.Context, node, endpoint string) error {
	proto, _ := targets.Lookup("http")
	c, err := proto.Dial(targets.DialConfig{Node: node, Addr: endpoint, Port: 8080, Ready: "/health"})
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Ready(ctx)
}

// testLogger writes the cluster's log lines to the test's log.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, nil))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
