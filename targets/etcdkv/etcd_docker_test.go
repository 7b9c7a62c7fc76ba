package etcdkv

import (
	"context"
	"encoding/json"
	"github.com/jepsen-go/jepsen/targets/protocoltest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/harness/docker"
	"github.com/jepsen-go/jepsen/harness/docker/dockertest"
	"github.com/jepsen-go/jepsen/history"
	"github.com/jepsen-go/jepsen/targets"
)

// The real etcd of targets/etcd, built once per test binary.
var etcdImage struct {
	once sync.Once
	ref  string
	err  error
}

// startEtcd builds targets/etcd (the first time) and starts n members of
// it with the command line of its jepsen.yaml; it returns the cluster and
// one client per node, each ready. Everything is removed when the test
// ends.
func startEtcd(tb testing.TB, n int, opts Options) (*docker.Cluster, map[string]*Client) {
	tb.Helper()
	dockertest.RequireDocker(tb)
	spec, err := targets.Load("../etcd")
	if err != nil {
		tb.Fatalf("load targets/etcd: %v", err)
	}
	etcdImage.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		etcdImage.ref, etcdImage.err = docker.BuildGo(ctx, spec.Dir, spec.Build.Go)
	})
	if etcdImage.err != nil {
		tb.Fatalf("build targets/etcd: %v", etcdImage.err)
	}
	cl := dockertest.StartSpec(tb, "etcdkv", etcdImage.ref, spec, n)
	nodes := cl.Nodes()
	clients := map[string]*Client{}
	for _, node := range nodes {
		o := opts
		o.Node, o.Port = node, spec.Port
		c, err := New(cl.Endpoint(node), o)
		if err != nil {
			tb.Fatalf("dial %s: %v", node, err)
		}
		tb.Cleanup(func() { c.Close() })
		clients[node] = c
	}
	for _, node := range nodes {
		waitReady(tb, clients[node], 60*time.Second)
	}
	return cl, clients
}

// The single-node tests exercise the whole op model against a real etcd.
func TestEtcdSingleNode(t *testing.T) {
	_, clients := startEtcd(t, 1, Options{})
	c := clients["n1"]
	ser, err := New(c.endpoint, Options{Node: "n1", Serializable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ser.Close()

	expect(t, "read absent", invoke(c, op("read", "k", nil)), history.OK, "", "")
	expect(t, "cas absent", invoke(c, op("cas", "k", []int{1, 2})), history.Fail, history.ErrNotFound, "")
	expect(t, "write 1", invoke(c, op("write", "k", 1)), history.OK, "", "")
	expect(t, "read 1", invoke(c, op("read", "k", nil)), history.OK, "", "1")
	expect(t, "cas 2->3 (holds 1)", invoke(c, op("cas", "k", []int{2, 3})), history.Fail, history.ErrPreconditionFailed, "")
	expect(t, "read still 1", invoke(c, op("read", "k", nil)), history.OK, "", "1")
	expect(t, "cas 1->4", invoke(c, op("cas", "k", []int{1, 4})), history.OK, "", "")
	expect(t, "read 4", invoke(c, op("read", "k", nil)), history.OK, "", "4")
	expect(t, "serializable read 4", invoke(ser, op("read", "k", nil)), history.OK, "", "4")
	// JSON values are stored as compact JSON text: a spaced cas argument
	// still matches.
	casSpaced := op("cas", "k", nil)
	casSpaced.Value = json.RawMessage(`[ 4 , {"a": [1, 2]} ]`)
	expect(t, "cas spaced JSON", invoke(c, casSpaced), history.OK, "", "")
	expect(t, "read object", invoke(c, op("read", "k", nil)), history.OK, "", `{"a":[1,2]}`)
	expect(t, "write null", invoke(c, op("write", "k", nil)), history.OK, "", "")
	expect(t, "read null", invoke(c, op("read", "k", nil)), history.OK, "", "")
	expect(t, "add", invoke(c, op("add", "s1", 1)), history.OK, "", "")
	expect(t, "read add", invoke(c, op("read", "s1", nil)), history.OK, "", "1")
	bad := op("write", "k", nil)
	bad.Value = json.RawMessage("{not json")
	expect(t, "write non-JSON", invoke(c, bad), history.Fail, "", "")

	if got := invoke(c, op("read", "k", nil)); got.Node != "n1" {
		t.Errorf("completion node = %q, want n1", got.Node)
	}
	if l, ok := c.Leader(context.Background()); !ok || l != "n1" {
		t.Errorf("Leader = %q, %v; want n1", l, ok)
	}
}

// A three-member cluster: every member names the same leader, a write on
// one member is read linearizably on another, and the error mapping holds
// against a killed (fail: never sent) and a paused (info: timeout after
// sending) member.
func TestEtcdCluster(t *testing.T) {
	cl, clients := startEtcd(t, 3, Options{})
	var leader string
	deadline := time.Now().Add(10 * time.Second)
	for node, c := range clients {
		for {
			l, ok := c.Leader(context.Background())
			if ok && (leader == "" || l == leader) {
				leader = l
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: Leader = %q, %v; others said %q", node, l, ok, leader)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if _, ok := clients[leader]; !ok {
		t.Fatalf("leader %q is not a node name", leader)
	}
	expect(t, "write on n1", invoke(clients["n1"], op("write", "x", 7)), history.OK, "", "")
	expect(t, "read on n2", invoke(clients["n2"], op("read", "x", nil)), history.OK, "", "7")
	expect(t, "cas on n3", invoke(clients["n3"], op("cas", "x", []int{7, 8})), history.OK, "", "")
	expect(t, "read on n1", invoke(clients["n1"], op("read", "x", nil)), history.OK, "", "8")

	// A follower that is paused: the request is sent and never answered.
	follower := "n1"
	if leader == follower {
		follower = "n2"
	}
	ctx := context.Background()
	if err := cl.Pause(ctx, follower); err != nil {
		t.Fatal(err)
	}
	got := func() history.Op {
		ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		return clients[follower].Invoke(ctx, op("write", "x", 9))
	}()
	if err := cl.Resume(ctx, follower); err != nil {
		t.Fatal(err)
	}
	expect(t, "write to a paused node", got, history.Info, "timeout after 500ms", "")

	// A killed member: its published port is gone, nothing can be sent.
	if err := cl.Kill(ctx, follower); err != nil {
		t.Fatal(err)
	}
	got = invoke(clients[follower], op("write", "x", 10))
	if got.Type != history.Fail {
		t.Fatalf("write to a killed node: got %s %q, want fail", got.Type, got.Error)
	}
	t.Logf("write to a killed node: %s %q", got.Type, got.Error)
	if err := clients[follower].Ready(ctx); err == nil {
		t.Errorf("a killed node is ready")
	} else {
		t.Logf("killed node not ready: %v", err)
	}
	// The survivors still serve, and the killed member restarts on its data.
	expect(t, "write with one member down", invoke(clients[leader], op("write", "x", 11)), history.OK, "", "")
	if err := cl.Start(ctx, follower); err != nil {
		t.Fatal(err)
	}
	restarted, err := New(cl.Endpoint(follower), Options{Node: follower})
	if err != nil {
		t.Fatal(err)
	}
	defer restarted.Close()
	waitReady(t, restarted, 30*time.Second)
	expect(t, "read on the restarted member", invoke(restarted, op("read", "x", nil)), history.OK, "", "11")
}

// BenchmarkEtcd measures the etcd client against the real etcd at
// concurrency 10 (a read/write/cas mix on 10 keys, spread over the nodes)
// and reports ops/s.
//
// nodes=N/mix runs the register workload's read/write/cas mix, bound by
// etcd's WAL fsync of every write; nodes=1/serializable-reads only reads
// from the node's local state, which shows the client's own ceiling.
func BenchmarkEtcd(b *testing.B) {
	for _, tc := range []struct {
		name  string
		nodes int
		reads bool
	}{{"nodes=1/mix", 1, false}, {"nodes=3/mix", 3, false}, {"nodes=1/serializable-reads", 1, true}} {
		b.Run(tc.name, func(b *testing.B) {
			_, clients := startEtcd(b, tc.nodes, Options{Serializable: tc.reads})
			var list []*Client
			for i := 1; i <= tc.nodes; i++ {
				list = append(list, clients["n"+strconv.Itoa(i)])
			}
			benchConcurrent(b, 10, tc.reads, func(i int) *Client { return list[i%len(list)] })
		})
	}
}

// benchConcurrent runs b.N ops from conc goroutines and reports ops/s; an
// op that is not ok or an expected cas fail fails the benchmark.
func benchConcurrent(b *testing.B, conc int, readsOnly bool, client func(i int) *Client) {
	var next, bad atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client(g)
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				key := "b" + strconv.Itoa(int(i%10))
				var o history.Op
				switch {
				case readsOnly || i%3 == 0:
					o = op("read", key, nil)
				case i%3 == 1:
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
