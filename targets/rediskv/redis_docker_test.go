package rediskv

import (
	"context"
	"github.com/jepsen-go/jepsen/targets/protocoltest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/harness/docker"
	"github.com/jepsen-go/jepsen/harness/docker/dockertest"
	"github.com/jepsen-go/jepsen/history"
	"github.com/jepsen-go/jepsen/targets"
)

// The real Redis of targets/redis (Debian's redis-server in a scratch
// image; its Dockerfile's prepare step installs the package when it is
// missing and this runs as root), built once per test binary.
var redisImage struct {
	once sync.Once
	ref  string
	err  error
}

// startRedis builds targets/redis (the first time) and starts n nodes with
// the command line of its jepsen.yaml (n1 primary, the others replicas of
// n1); it returns the cluster and one ready client per node.
func startRedis(tb testing.TB, n int) (*docker.Cluster, map[string]*Client) {
	tb.Helper()
	dockertest.RequireDocker(tb)
	spec, err := targets.Load("../redis")
	if err != nil {
		tb.Fatalf("load targets/redis: %v", err)
	}
	redisImage.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		redisImage.ref, redisImage.err = docker.BuildDockerfile(ctx, spec.Dir, spec.Build.Dockerfile)
	})
	if redisImage.err != nil {
		tb.Fatalf("build targets/redis: %v", redisImage.err)
	}
	cl := dockertest.StartSpec(tb, "rediskv", redisImage.ref, spec, n)
	nodes := cl.Nodes()
	clients := map[string]*Client{}
	for _, node := range nodes {
		c := New(cl.Endpoint(node), Options{Node: node, Port: spec.Port, Concurrency: 10})
		tb.Cleanup(func() { c.Close() })
		clients[node] = c
		waitReady(tb, c, 30*time.Second)
	}
	return cl, clients
}

func TestRedisSingleNode(t *testing.T) {
	cl, clients := startRedis(t, 1)
	c := clients["n1"]
	expect(t, "read absent", invoke(c, op("read", "k", nil)), history.OK, "", "")
	expect(t, "cas absent", invoke(c, op("cas", "k", []int{1, 2})), history.Fail, history.ErrNotFound, "")
	expect(t, "write 1", invoke(c, op("write", "k", 1)), history.OK, "", "")
	expect(t, "read 1", invoke(c, op("read", "k", nil)), history.OK, "", "1")
	expect(t, "cas 2->3 (holds 1)", invoke(c, op("cas", "k", []int{2, 3})), history.Fail, history.ErrPreconditionFailed, "")
	expect(t, "cas 1->4", invoke(c, op("cas", "k", []int{1, 4})), history.OK, "", "")
	expect(t, "read 4", invoke(c, op("read", "k", nil)), history.OK, "", "4")
	// The script cache is empty after a restart: EVALSHA's NOSCRIPT is
	// followed by EVAL.
	if err := c.rdb.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	expect(t, "cas after SCRIPT FLUSH", invoke(c, op("cas", "k", []int{4, 5})), history.OK, "", "")
	expect(t, "write object", invoke(c, op("write", "k", map[string]any{"a": []int{1, 2}})), history.OK, "", "")
	expect(t, "read object", invoke(c, op("read", "k", nil)), history.OK, "", `{"a":[1,2]}`)
	if l, ok := c.Leader(context.Background()); !ok || l != "n1" {
		t.Errorf("Leader = %q, %v; want n1", l, ok)
	}
	// A paused server: the command is sent and never answered.
	ctx := context.Background()
	if err := cl.Pause(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	got := func() history.Op {
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		return c.Invoke(ctx, op("write", "k", 9))
	}()
	if err := cl.Resume(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	expect(t, "write to a paused server", got, history.Info, "timeout after 300ms", "")
	// A killed server restarts on its append-only file.
	if err := cl.Kill(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	got = invoke(c, op("write", "k", 10))
	if got.Type != history.Fail && got.Type != history.Info {
		t.Fatalf("write to a killed server: %s %q", got.Type, got.Error)
	}
	t.Logf("write to a killed server: %s %q", got.Type, got.Error)
	if err := cl.Start(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	restarted := New(cl.Endpoint("n1"), Options{Node: "n1"})
	defer restarted.Close()
	waitReady(t, restarted, 30*time.Second)
	got = invoke(restarted, op("read", "k", nil))
	if got.Type != history.OK || (string(got.Value) != "9" && string(got.Value) != `{"a":[1,2]}`) {
		t.Fatalf("read after restart: %s %s %q", got.Type, got.Value, got.Error)
	}
}

// A primary and two replicas: replicas name n1 as leader, refuse writes
// (READONLY: fail) and serve reads of what they have replicated.
func TestRedisReplicas(t *testing.T) {
	_, clients := startRedis(t, 3)
	for _, n := range []string{"n1", "n2", "n3"} {
		if l, ok := clients[n].Leader(context.Background()); !ok || l != "n1" {
			t.Errorf("%s: Leader = %q, %v; want n1", n, l, ok)
		}
	}
	expect(t, "write on the primary", invoke(clients["n1"], op("write", "r", 1)), history.OK, "", "")
	got := invoke(clients["n2"], op("write", "r", 2))
	if got.Type != history.Fail || !strings.HasPrefix(got.Error, "READONLY") {
		t.Fatalf("write on a replica: %s %q; want fail READONLY", got.Type, got.Error)
	}
	// Wait for replication, then a cas on the replica reaches its SET and
	// is refused there: nothing was written.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got = invoke(clients["n3"], op("read", "r", nil))
		if got.Type == history.OK && string(got.Value) == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica n3 never read 1: %s %s %q", got.Type, got.Value, got.Error)
		}
		time.Sleep(50 * time.Millisecond)
	}
	got = invoke(clients["n3"], op("cas", "r", []int{1, 3}))
	if got.Type != history.Fail || !strings.HasPrefix(got.Error, "READONLY") {
		t.Fatalf("cas on a replica: %s %q; want fail READONLY", got.Type, got.Error)
	}
	expect(t, "cas on a replica, value differs", invoke(clients["n3"], op("cas", "r", []int{7, 3})), history.Fail, history.ErrPreconditionFailed, "")
	expect(t, "primary unchanged", invoke(clients["n1"], op("read", "r", nil)), history.OK, "", "1")
}

// BenchmarkRedis measures the redis client against the real single Redis
// server at concurrency 10 (a read/write/cas mix on 10 keys) and reports
// ops/s.
func BenchmarkRedis(b *testing.B) {
	_, clients := startRedis(b, 1)
	c := clients["n1"]
	var next, bad atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for g := 0; g < 10; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				key := "b" + strconv.Itoa(int(i%10))
				var o history.Op
				switch i % 3 {
				case 0:
					o = op("read", key, nil)
				case 1:
					o = op("write", key, int(i%5))
				default:
					o = op("cas", key, []int{int(i % 5), int(i%5 + 1)})
				}
				got := invoke(c, o)
				if got.Type != history.OK && got.Error != history.ErrPreconditionFailed && got.Error != history.ErrNotFound {
					if bad.Add(1) == 1 {
						b.Errorf("op %s: %s %q", o.F, got.Type, got.Error)
					}
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

// Shared helpers of the protocols' real-server tests.
var (
	op     = protocoltest.Op
	expect = protocoltest.Expect
)

func invoke(c *Client, o history.Op) history.Op { return protocoltest.Invoke(c, o) }

func waitReady(tb testing.TB, c *Client, limit time.Duration) {
	tb.Helper()
	protocoltest.WaitReady(tb, c.opts.Node, c, limit)
}
