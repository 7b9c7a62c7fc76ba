package durafs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/harness/docker"
	"github.com/jepsen-go/jepsen/harness/docker/dockertest"
)

// *docker.Cluster is what the controller needs.
var _ Nodes = (*docker.Cluster)(nil)

var (
	imagesOnce             sync.Once
	writerImage, selfImage string
	imagesErr              error
)

// images builds the writer target and the helper image (this test
// binary, whose TestMain runs Main) once.
func images(t *testing.T) (target, helper string) {
	t.Helper()
	imagesOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var err1, err2 error
		writerImage, err1 = docker.BuildGo(ctx, "testdata/writer", ".")
		selfImage, err2 = docker.SelfImage(ctx, "")
		if err1 != nil || err2 != nil {
			imagesErr = fmt.Errorf("writer: %v; helper: %v", err1, err2)
		}
	})
	if imagesErr != nil {
		t.Fatalf("images: %v", imagesErr)
	}
	return writerImage, selfImage
}

// writerCluster starts one writer node, n1, whose data directory the
// controller serves; everything is removed when the test ends, and the
// test fails if anything is left (containers, mounts).
func writerCluster(t *testing.T, n int) (*docker.Cluster, *Controller) {
	t.Helper()
	dockertest.RequireDocker(t)
	if _, err := os.Stat("/dev/fuse"); err != nil && os.Getenv("CI") == "" {
		t.Skipf("no /dev/fuse: %v", err)
	}
	target, helper := images(t)
	run := dockertest.NewRun(t, "durafs")
	t.Cleanup(func() { checkNoMounts(t) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctl := NewController(DockerRuntime(run), ControllerOptions{Image: helper, DataDir: "/data", Log: dockertest.Logger(t)})
	t0 := time.Now()
	if err := ctl.Prepare(ctx); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	t.Logf("prepare (helper started, probe mounted) in %v", time.Since(t0).Round(time.Millisecond))
	dir := filepath.Dir(ctl.socket())
	t.Cleanup(func() {
		if err := ctl.Close(context.Background()); err != nil {
			t.Errorf("close controller: %v", err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("host directory %s left after Close (%v)", dir, err)
		}
	})
	w := ctl.Wrap()
	t0 = time.Now()
	var nodes []string
	for i := 1; i <= n; i++ {
		nodes = append(nodes, fmt.Sprintf("n%d", i))
	}
	cl, err := docker.Start(ctx, docker.Config{
		RunID: run, Image: target, Nodes: nodes,
		Command: func(string) []string { return []string{"/target", "--dir", "/data"} },
		Port:    8080, DataDir: "/data", Wrap: &w, Log: dockertest.Logger(t),
	})
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := cl.Close(context.Background()); err != nil {
			t.Errorf("close cluster: %v", err)
		}
	})
	ctl.Attach(cl)
	for _, node := range nodes {
		waitHealth(t, cl, node)
	}
	t.Logf("%d nodes started through their mounts and healthy in %v", n, time.Since(t0).Round(time.Millisecond))
	return cl, ctl
}

// checkNoMounts fails the test if this host's mount table shows a durafs
// mount.
func checkNoMounts(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatalf("mount table: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "durafs") {
			t.Errorf("left in the mount table: %s", l)
		}
	}
}

// waitHealth waits up to 20 s for node to answer /health.
func waitHealth(t *testing.T, cl *docker.Cluster, node string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ep := cl.Endpoint(node); ep != "" {
			resp, err := http.Get("http://" + ep + "/health")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy after 20 s", node)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// do sends one request to node and returns the body; status 404 gives
// (nil, false).
func do(t *testing.T, cl *docker.Cluster, node, method, pathQuery, body string) ([]byte, bool) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+cl.Endpoint(node)+pathQuery, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, pathQuery, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		return nil, false
	}
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %s: %s", method, pathQuery, resp.Status, b)
	}
	return b, true
}

// TestDockerPowerLoss runs an unmodified store in a scratch container on
// the filesystem, cuts its power, and checks what survived against the
// model; then a plain kill, which loses nothing.
func TestDockerPowerLoss(t *testing.T) {
	cl, ctl := writerCluster(t, 1)
	ctx := context.Background()
	// sync and syncfs make everything before them durable: first.
	steps := []struct{ method, path, body string }{
		{"POST", "/append?file=syncfs&sync=syncfs", "kept"},
		{"POST", "/append?file=sync&sync=sync", "kept"},
		{"POST", "/append?file=none&sync=none", "lost"},
		{"POST", "/append?file=fsync&sync=fsync", "kept"},
		{"POST", "/append?file=fdatasync&sync=fdatasync", "kept"},
		{"POST", "/append?file=dsync&sync=dsync", "kept"},
		{"POST", "/append?file=partial&sync=fsync", "kept"},
		{"POST", "/append?file=partial&sync=none", "+lost"},
		{"POST", "/append?file=renamed-synced&sync=fsync", "kept"},
		{"POST", "/rename?from=renamed-synced&to=renamed-synced2", ""},
		{"POST", "/append?file=renamed-unsynced&sync=none", "lost"},
		{"POST", "/rename?from=renamed-unsynced&to=renamed-unsynced2", ""},
		{"POST", "/append?file=cut&sync=fsync", "0123456789"},
		{"POST", "/truncate?file=cut&size=3&sync=none", ""},
		{"POST", "/append?file=cut-synced&sync=fsync", "0123456789"},
		{"POST", "/truncate?file=cut-synced&size=3&sync=fsync", ""},
	}
	for _, s := range steps {
		do(t, cl, "n1", s.method, s.path, s.body)
	}
	// Before the power loss the node reads its own writes.
	if b, _ := do(t, cl, "n1", "GET", "/read?file=none", ""); string(b) != "lost" {
		t.Fatalf("before the power loss, none reads %q", b)
	}
	t0 := time.Now()
	st, err := ctl.PowerLossStats(ctx, "n1")
	if err != nil {
		t.Fatalf("power loss: %v", err)
	}
	t.Logf("power loss in %v: %+v", time.Since(t0).Round(time.Millisecond), st)
	if st.Dropped == 0 {
		t.Errorf("power loss dropped nothing: %+v", st)
	}
	t0 = time.Now()
	if err := cl.Start(ctx, "n1"); err != nil {
		t.Fatalf("restart: %v", err)
	}
	waitHealth(t, cl, "n1")
	t.Logf("restarted, mounted again and healthy in %v", time.Since(t0).Round(time.Millisecond))
	want := map[string]string{
		"none":               "", // created (durable), its data lost
		"fsync":              "kept",
		"fdatasync":          "kept",
		"dsync":              "kept",
		"syncfs":             "kept",
		"sync":               "kept",
		"partial":            "kept",
		"renamed-synced2":    "kept",
		"renamed-unsynced2":  "",
		"cut":                "0123456789",
		"cut-synced":         "012",
		"renamed-synced":     "<absent>",
		"renamed-unsynced":   "<absent>",
		"never-created-file": "<absent>",
	}
	for file, w := range want {
		b, ok := do(t, cl, "n1", "GET", "/read?file="+file, "")
		got := string(b)
		if !ok {
			got = "<absent>"
		}
		if got != w {
			t.Errorf("after the power loss %s holds %q, want %q", file, got, w)
		}
	}

	// A plain kill (a crash of the process, not of the machine) loses
	// nothing: the mount writes back what it held.
	do(t, cl, "n1", "POST", "/append?file=crash&sync=none", "kept")
	if err := cl.Kill(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(ctx, "n1"); err != nil {
		t.Fatalf("restart: %v", err)
	}
	waitHealth(t, cl, "n1")
	if b, _ := do(t, cl, "n1", "GET", "/read?file=crash", ""); string(b) != "kept" {
		t.Errorf("after a kill, crash holds %q, want %q", b, "kept")
	}
	// The relays of the dead processes end with them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, err := ctl.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st := status["n1"]; st.Relays == 1 && st.Mounts == 3 {
			t.Logf("status: %+v", status)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status 10 s after the last restart: %+v; want 3 mounts and 1 relay", status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDockerCorrupt corrupts a file of a stopped node and sees it changed.
func TestDockerCorrupt(t *testing.T) {
	cl, ctl := writerCluster(t, 1)
	ctx := context.Background()
	content := strings.Repeat("0123456789abcdef", 64)
	do(t, cl, "n1", "POST", "/append?file=log&sync=fsync", content)
	if _, err := ctl.Corrupt(ctx, "n1", rand.New(rand.NewSource(1))); err == nil {
		t.Fatal("corrupt of a running node did not fail")
	}
	if err := cl.Kill(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	cor, err := ctl.CorruptDetail(ctx, "n1", rand.New(rand.NewSource(1)))
	if err != nil {
		t.Fatalf("corrupt: %v", err)
	}
	t.Logf("corruption: %+v", cor)
	if cor.File != "log" || cor.Size != int64(len(content)) {
		t.Errorf("corrupted %q of %d bytes, want log of %d", cor.File, cor.Size, len(content))
	}
	if err := cl.Start(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, cl, "n1")
	b, _ := do(t, cl, "n1", "GET", "/read?file=log", "")
	switch cor.Kind {
	case KindTruncate:
		if string(b) != content[:cor.Offset] {
			t.Errorf("after truncation to %d the file holds %d bytes", cor.Offset, len(b))
		}
	case KindBitflip:
		want := []byte(content)
		want[cor.Offset] ^= cor.Mask
		if !bytes.Equal(b, want) {
			t.Errorf("after a bit flip at %d the file differs elsewhere or not there", cor.Offset)
		}
	}
}

// TestDockerThreeNodes cuts the power of two of three nodes at once: the
// third keeps its unsynced writes, the two lose theirs.
func TestDockerThreeNodes(t *testing.T) {
	cl, ctl := writerCluster(t, 3)
	ctx := context.Background()
	for _, node := range cl.Nodes() {
		do(t, cl, node, "POST", "/append?file=a&sync=fsync", "kept")
		do(t, cl, node, "POST", "/append?file=a&sync=none", "+lost")
	}
	errs := make(chan error, 2)
	for _, node := range []string{"n1", "n2"} {
		go func() { errs <- ctl.PowerLoss(ctx, node) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("power loss: %v", err)
		}
	}
	for _, node := range []string{"n1", "n2"} {
		if err := cl.Start(ctx, node); err != nil {
			t.Fatal(err)
		}
		waitHealth(t, cl, node)
	}
	want := map[string]string{"n1": "kept", "n2": "kept", "n3": "kept+lost"}
	for node, w := range want {
		if b, _ := do(t, cl, node, "GET", "/read?file=a", ""); string(b) != w {
			t.Errorf("%s: a holds %q, want %q", node, b, w)
		}
	}
	st, err := ctl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for node, x := range st {
		t.Logf("%s: %d mounts, last mounted in %v", node, x.Mounts, time.Duration(x.LastMountMicros)*time.Microsecond)
	}
}
