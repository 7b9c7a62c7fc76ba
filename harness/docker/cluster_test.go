package docker

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCluster brings up five echonode nodes and exercises every operation
// on them; the subtests share the cluster and run in order.
func TestCluster(t *testing.T) {
	requireDocker(t)
	ctx := context.Background()
	run := newRunID(t)
	nodes := []string{"n1", "n2", "n3", "n4", "n5"}
	cfg := echoConfig(t, run, nodes)
	cl, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := cl.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	var hookMu sync.Mutex
	var restarted []string
	cl.OnRestart(func(ctx context.Context, node string) error {
		hookMu.Lock()
		defer hookMu.Unlock()
		restarted = append(restarted, node)
		return nil
	})

	t.Run("all nodes up with fixed addresses", func(t *testing.T) {
		if got := cl.Nodes(); strings.Join(got, ",") != strings.Join(nodes, ",") {
			t.Fatalf("Nodes() = %v", got)
		}
		seen := map[string]bool{}
		for i, n := range nodes {
			ep := cl.Endpoint(n)
			if !strings.HasPrefix(ep, "127.0.0.1:") || seen[ep] {
				t.Errorf("Endpoint(%s) = %q", n, ep)
			}
			seen[ep] = true
			st, body, err := httpDo(ctx, "GET", ep, "/whoami", "", 2*time.Second)
			if err != nil || st != 200 || strings.TrimSpace(body) != n {
				t.Errorf("%s /whoami = %d %q %v", n, st, body, err)
			}
			ip := cl.IP(n)
			if !cl.Subnet().Contains(ip) || ip.As4()[3] != byte(11+i) {
				t.Errorf("IP(%s) = %s, subnet %s", n, ip, cl.Subnet())
			}
			if cl.ContainerID(n) == "" {
				t.Errorf("ContainerID(%s) empty", n)
			}
		}
		if cl.Endpoint("n9") != "" || cl.IP("n9") != (netip.Addr{}) {
			t.Errorf("unknown node has an endpoint or IP")
		}
	})

	t.Run("nodes reach each other by name", func(t *testing.T) {
		for _, tc := range []struct{ from, to string }{{"n1", "n5"}, {"n5", "n1"}, {"n3", "n2"}, {"n2", "n2"}} {
			st, body, err := httpDo(ctx, "GET", cl.Endpoint(tc.from), "/peer/"+tc.to, "", 3*time.Second)
			if err != nil || st != 200 || strings.TrimSpace(body) != tc.to {
				t.Errorf("%s -> %s: %d %q %v", tc.from, tc.to, st, body, err)
			}
		}
	})

	t.Run("kill and start keep the volume and move the endpoint", func(t *testing.T) {
		if st, _, err := httpDo(ctx, "PUT", cl.Endpoint("n2"), "/kv/a", `{"value": 42}`, 2*time.Second); err != nil || st != 204 {
			t.Fatalf("PUT: %d %v", st, err)
		}
		old := cl.Endpoint("n2")
		if err := cl.Kill(ctx, "n2"); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		if ep := cl.Endpoint("n2"); ep != "" {
			t.Errorf("Endpoint after kill = %q, want empty", ep)
		}
		if _, _, err := httpDo(ctx, "GET", old, "/kv/a", "", time.Second); err == nil {
			t.Errorf("killed node still answers")
		}
		if err := cl.Start(ctx, "n2"); err != nil {
			t.Fatalf("Start: %v", err)
		}
		st, body, err := httpDo(ctx, "GET", cl.Endpoint("n2"), "/kv/a", "", 2*time.Second)
		if err != nil || st != 200 || strings.TrimSpace(body) != `{"value":42}` {
			t.Errorf("GET after restart: %d %q %v", st, body, err)
		}
		hookMu.Lock()
		defer hookMu.Unlock()
		if strings.Join(restarted, ",") != "n2" {
			t.Errorf("OnRestart hooks ran for %v, want [n2]", restarted)
		}
	})

	t.Run("logs are appended across restarts without loss or duplicates", func(t *testing.T) {
		ep := cl.Endpoint("n3")
		if _, _, err := httpDo(ctx, "POST", ep, "/log", "marker-before", time.Second); err != nil {
			t.Fatal(err)
		}
		if err := cl.Stop(ctx, "n3"); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if err := cl.Start(ctx, "n3"); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if _, _, err := httpDo(ctx, "POST", cl.Endpoint("n3"), "/log", "marker-after", time.Second); err != nil {
			t.Fatal(err)
		}
		if err := cl.Kill(ctx, "n3"); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		if err := cl.Start(ctx, "n3"); err != nil {
			t.Fatalf("Start: %v", err)
		}
		want := []string{
			"n3: boot 1,", "n3: log marker-before", "n3: stopping on terminated",
			"n3: boot 2,", "n3: log marker-after", "n3: boot 3,",
		}
		var text string
		deadline := time.Now().Add(5 * time.Second)
		for {
			b, err := os.ReadFile(filepath.Join(cfg.LogDir, "n3.log"))
			if err != nil {
				t.Fatal(err)
			}
			text = string(b)
			if strings.Contains(text, want[len(want)-1]) || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		lines := strings.Split(strings.TrimSpace(text), "\n")
		if len(lines) != len(want) {
			t.Errorf("n3.log has %d lines, want %d:\n%s", len(lines), len(want), text)
		}
		for i, w := range want {
			if i >= len(lines) || !strings.HasPrefix(lines[i], w) {
				t.Errorf("n3.log line %d: want prefix %q\n%s", i+1, w, text)
				break
			}
		}
	})

	t.Run("pause makes requests time out and resume serves again", func(t *testing.T) {
		ep := cl.Endpoint("n4")
		if err := cl.Pause(ctx, "n4"); err != nil {
			t.Fatalf("Pause: %v", err)
		}
		_, _, err := httpDo(ctx, "GET", ep, "/whoami", "", 500*time.Millisecond)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("request to paused node: err = %v, want a deadline error", err)
		}
		if err := cl.Resume(ctx, "n4"); err != nil {
			t.Fatalf("Resume: %v", err)
		}
		st, body, err := httpDo(ctx, "GET", ep, "/whoami", "", 2*time.Second)
		if err != nil || st != 200 || strings.TrimSpace(body) != "n4" {
			t.Errorf("after resume: %d %q %v", st, body, err)
		}
	})

	t.Run("kill of a paused node, then start", func(t *testing.T) {
		if err := cl.Pause(ctx, "n5"); err != nil {
			t.Fatal(err)
		}
		if err := cl.Kill(ctx, "n5"); err != nil {
			t.Fatalf("Kill paused: %v", err)
		}
		if err := cl.Start(ctx, "n5"); err != nil {
			t.Fatalf("Start: %v", err)
		}
		st, body, err := httpDo(ctx, "GET", cl.Endpoint("n1"), "/peer/n5", "", 3*time.Second)
		if err != nil || st != 200 || strings.TrimSpace(body) != "n5" {
			t.Errorf("n1 -> n5 after restart: %d %q %v", st, body, err)
		}
	})

	t.Run("exec returns output and exit code", func(t *testing.T) {
		out, err := cl.Exec(ctx, cl.ContainerID("n1"), []string{"/target", "--id", "x", "--exit-at-start"})
		var ee *ExecError
		if !errors.As(err, &ee) || ee.ExitCode != 3 || !strings.Contains(string(out), "x: fatal line 25") ||
			!strings.Contains(string(out), "frobnicator") {
			t.Errorf("Exec failing command: out %q err %v", out, err)
		}
		out, err = cl.Exec(ctx, cl.ContainerID("n1"), []string{"/target", "--ps"})
		if err != nil || !strings.Contains(string(out), "--id n1") {
			t.Errorf("Exec --ps: out %q err %v", out, err)
		}
	})

	t.Run("sidecar shares the node's network and pid namespaces", func(t *testing.T) {
		id, err := cl.RunSidecar(ctx, "n1", Sidecar{
			Name:     "agent",
			Image:    cfg.Image,
			Cmd:      []string{"/target", "--id", "side", "--port", "9090", "--data", "/"},
			CapAdd:   []string{"NET_ADMIN"},
			SharePID: true,
		})
		if err != nil {
			t.Fatalf("RunSidecar: %v", err)
		}
		var body string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if _, body, err = httpDo(ctx, "GET", cl.Endpoint("n2"), "/peer/n1?port=9090", "", 2*time.Second); err == nil && strings.TrimSpace(body) == "side" {
				break
			}
		}
		if strings.TrimSpace(body) != "side" {
			t.Errorf("n2 -> n1:9090 = %q %v, want the sidecar", body, err)
		}
		out, err := cl.Exec(ctx, id, []string{"/target", "--ps"})
		if err != nil || !strings.Contains(string(out), "--id n1") || !strings.Contains(string(out), "--id side") {
			t.Errorf("sidecar --ps: %q %v", out, err)
		}
		if err := cl.RemoveContainer(ctx, id); err != nil {
			t.Errorf("RemoveContainer: %v", err)
		}
		if err := cl.RemoveContainer(ctx, id); err != nil {
			t.Errorf("RemoveContainer twice: %v", err)
		}
		// A second sidecar is left for Close to remove.
		if _, err := cl.RunSidecar(ctx, "n2", Sidecar{Image: cfg.Image, Cmd: []string{"/target", "--port", "9091", "--data", "/"}}); err != nil {
			t.Fatalf("RunSidecar: %v", err)
		}
	})

	t.Run("close removes everything and is idempotent", func(t *testing.T) {
		if err := cl.Pause(ctx, "n3"); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel() // Close must work with a cancelled context.
		t0 := time.Now()
		if err := cl.Close(cctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		t.Logf("teardown of 5 nodes (one paused) and a sidecar: %v", time.Since(t0))
		if left := runObjects(t, ctx, run); len(left) > 0 {
			t.Errorf("left after Close: %v", left)
		}
		if err := cl.Close(ctx); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

// TestStartFailure checks that a node that exits at start, or never gets
// ready, makes Start fail with its log and leaves nothing behind.
func TestStartFailure(t *testing.T) {
	requireDocker(t)
	for _, tc := range []struct {
		name    string
		extra   []string
		timeout time.Duration
		want    []string
	}{
		{"exits at start", []string{"--exit-at-start"}, 10 * time.Second,
			[]string{"node n2 exited with code 3", "n2: fatal line 25", "giving up: cannot open the frobnicator"}},
		{"never ready", []string{"--never-ready"}, 2 * time.Second,
			[]string{"not ready after 2s", "503 Service Unavailable", "boot 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			run := newRunID(t)
			cfg := echoConfig(t, run, []string{"n1", "n2"}, tc.extra...)
			cfg.ReadyTimeout = tc.timeout
			cl, err := Start(ctx, cfg)
			if err == nil {
				cl.Close(ctx)
				t.Fatal("Start succeeded")
			}
			t.Logf("Start error:\n%v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if left := runObjects(t, ctx, run); len(left) > 0 {
				t.Errorf("Start left objects behind: %v", left)
			}
		})
	}
}

// TestConfigValidation checks bad configurations are refused with one line.
func TestConfigValidation(t *testing.T) {
	ok := Config{RunID: "r1", Image: "x:y", Nodes: []string{"n1"}, Port: 8080, DataDir: "/data", Ready: httpReady}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"run id", func(c *Config) { c.RunID = "bad id" }, "RunID"},
		{"no image", func(c *Config) { c.Image = "" }, "Image is empty"},
		{"no nodes", func(c *Config) { c.Nodes = nil }, "0 nodes"},
		{"dup node", func(c *Config) { c.Nodes = []string{"n1", "n1"} }, "listed twice"},
		{"bad node", func(c *Config) { c.Nodes = []string{"N_1"} }, "node name"},
		{"port", func(c *Config) { c.Port = 70000 }, "Port 70000"},
		{"data dir", func(c *Config) { c.DataDir = "data" }, "DataDir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			_, err := Start(context.Background(), c)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %v, want one line with %q", err, tc.want)
			}
		})
	}
}

// BenchmarkClusterStartClose measures bringing up five ready nodes (image
// already built) and tearing them down.
func BenchmarkClusterStartClose(b *testing.B) {
	requireDocker(b)
	ctx := context.Background()
	img := echoImage(b)
	var start, stop time.Duration
	for i := 0; i < b.N; i++ {
		run := newRunID(b)
		cfg := echoConfig(b, run, []string{"n1", "n2", "n3", "n4", "n5"})
		cfg.Image = img
		cfg.Log = nil
		t0 := time.Now()
		cl, err := Start(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := cl.Close(ctx); err != nil {
			b.Fatal(err)
		}
		start += t1.Sub(t0)
		stop += time.Since(t1)
	}
	b.ReportMetric(start.Seconds()/float64(b.N), "start-s/op")
	b.ReportMetric(stop.Seconds()/float64(b.N), "close-s/op")
}

// TestExits checks that a node ending on its own is reported with its
// status and last log lines, and that Kill, Stop and Close are not.
func TestExits(t *testing.T) {
	requireDocker(t)
	ctx := context.Background()
	cfg := echoConfig(t, newRunID(t), []string{"n1", "n2"})
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.Kill(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	_, _, _ = httpDo(ctx, "POST", c.Endpoint("n2"), "/exit", "", 2*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for len(c.Exits()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a wrongly reported kill of n1 would show by now
	exits := c.Exits()
	if len(exits) != 1 || exits[0].Node != "n2" || exits[0].Code != 4 {
		t.Fatalf("Exits = %+v, want n2 with status 4 only", exits)
	}
	if !strings.Contains(strings.Join(exits[0].Log, "\n"), "exiting with status 4 as asked") {
		t.Errorf("the exit's log lines %q lack the node's last line", exits[0].Log)
	}
}
