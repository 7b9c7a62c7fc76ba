package netfault

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/harness/docker"
	"github.com/jepsen-go/jepsen/harness/docker/dockertest"
	"github.com/jepsen-go/jepsen/history"
	"github.com/jepsen-go/jepsen/nemesis"
)

// *docker.Cluster is what the agent controller and the nemesis need.
var (
	_ Cluster         = (*docker.Cluster)(nil)
	_ nemesis.Cluster = (*docker.Cluster)(nil)
)

// TestMain lets the test binary double as the fault agent: the sidecars
// run this very binary (docker.SelfImage) as `/jepsen netfault serve`.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "netfault" {
		if err := Main(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testImages are the probe node target and the agent image (this test
// binary, which dispatches `netfault ...` to Main in TestMain).
var testImages = dockertest.Images{Dir: "testdata/probenode", Name: "probe node"}

// startCluster starts n probe nodes and an agent controller; both are torn
// down when the test ends, and the test fails if anything is left.
func startCluster(t *testing.T, n int) (*docker.Cluster, *Controller) {
	t.Helper()
	return startClusterTB(t, n)
}

func startClusterTB(t testing.TB, n int) (*docker.Cluster, *Controller) {
	t.Helper()
	dockertest.RequireDocker(t)
	probe, agent := testImages.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := dockertest.StartCluster(ctx, t, "nftest", probe, n,
		func(node string) []string { return []string{"/target", "--id", node, "--port", "8080"} })
	ctl := NewController(cl, ControllerOptions{Image: agent, Log: dockertest.Logger(t)})
	t.Cleanup(func() {
		if err := ctl.Close(context.Background()); err != nil {
			t.Errorf("close controller: %v", err)
		}
	})
	if err := ctl.Prepare(ctx); err != nil {
		t.Fatalf("prepare agents: %v", err)
	}
	return cl, ctl
}

func get(t *testing.T, cl *docker.Cluster, node, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+cl.Endpoint(node)+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

var tagN int

// udp makes from send 20 datagrams to to and returns how many arrived. When
// they should arrive it waits for all 20 (up to 5 s: a loaded machine or a
// first ARP exchange can hold them back); when they should not, it waits
// 300 ms for any that slip through.
func udp(t *testing.T, cl *docker.Cluster, from, to string, want bool) int {
	t.Helper()
	tagN++
	tag := fmt.Sprintf("t%d", tagN)
	if st, body := get(t, cl, from, "/udp/send?n=20&to="+to+"&tag="+tag); st != 200 {
		t.Fatalf("%s /udp/send: %d %s", from, st, body)
	}
	wait := 300 * time.Millisecond
	if want {
		wait = 5 * time.Second
	}
	for deadline := time.Now().Add(wait); ; {
		time.Sleep(50 * time.Millisecond)
		st, body := get(t, cl, to, "/udp/seen?tag="+tag)
		n, err := strconv.Atoi(body)
		if st != 200 || err != nil {
			t.Fatalf("%s /udp/seen: %d %s", to, st, body)
		}
		if want && n >= 20 || time.Now().After(deadline) {
			return n
		}
	}
}

// rttOf returns the median TCP round trip from -> to, or false if no
// connection could be made.
func rttOf(t *testing.T, cl *docker.Cluster, from, to string) (time.Duration, bool) {
	t.Helper()
	st, body := get(t, cl, from, "/tcp/rtt?n=9&to="+to)
	if st != 200 {
		return 0, false
	}
	us, err := strconv.Atoi(body)
	if err != nil {
		t.Fatalf("%s /tcp/rtt: %q", from, body)
	}
	return time.Duration(us) * time.Microsecond, true
}

// TestDockerPartitionOneWay cuts n1 from n2 one way (n1 drops what comes
// from n2) in real containers and checks exactly which traffic still
// flows, also after n1 is killed and restarted with the partition in force,
// and when the partition changes while n1 is down.
func TestDockerPartitionOneWay(t *testing.T) {
	cl, ctl := startCluster(t, 3)
	ctx := context.Background()
	type flow struct {
		from, to string
		want     bool
	}
	check := func(t *testing.T, flows []flow) {
		t.Helper()
		for _, f := range flows {
			got := udp(t, cl, f.from, f.to, f.want)
			if f.want && got != 20 || !f.want && got != 0 {
				t.Errorf("%s -> %s: %d of 20 datagrams arrived, want %v", f.from, f.to, got, f.want)
			}
		}
		if st, body := get(t, cl, "n1", "/health"); st != 200 || body != "n1" {
			t.Errorf("harness -> n1: %d %q", st, body)
		}
	}
	allFlow := []flow{{"n2", "n1", true}, {"n1", "n2", true}, {"n1", "n3", true}, {"n3", "n1", true}, {"n2", "n3", true}}
	cut := []flow{{"n2", "n1", false}, {"n1", "n2", true}, {"n1", "n3", true}, {"n3", "n1", true}, {"n2", "n3", true}}

	t.Run("before", func(t *testing.T) { check(t, allFlow) })
	t.Run("n1 drops from n2", func(t *testing.T) {
		if err := ctl.Partition(ctx, nemesis.Grudge{"n1": {"n2"}}); err != nil {
			t.Fatal(err)
		}
		check(t, cut)
		if _, ok := rttOf(t, cl, "n2", "n1"); ok {
			t.Errorf("n2 opened a TCP connection to n1 through the partition")
		}
		if _, ok := rttOf(t, cl, "n1", "n3"); !ok {
			t.Errorf("n1 -> n3 TCP failed")
		}
		st, err := ctl.Status(ctx, "n1")
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Rules) != 1 || st.Rules[0].Addr != cl.IP("n2") || st.Rules[0].Packets < 20 {
			t.Errorf("n1 agent status: %+v", st.Rules)
		}
		t.Logf("n1 agent: rule drops from %s, %d packets dropped", st.Rules[0].Addr, st.Rules[0].Packets)
	})
	t.Run("restarted node gets its rules back", func(t *testing.T) {
		kctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := cl.Kill(kctx, "n1"); err != nil {
			t.Fatal(err)
		}
		if err := cl.Start(kctx, "n1"); err != nil {
			t.Fatal(err)
		}
		check(t, cut)
	})
	t.Run("rules changed while the node is down follow it", func(t *testing.T) {
		kctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := cl.Kill(kctx, "n1"); err != nil {
			t.Fatal(err)
		}
		if err := ctl.Partition(kctx, nemesis.Grudge{"n1": {"n3"}}); err != nil {
			t.Fatalf("partition with n1 down: %v", err)
		}
		if err := cl.Start(kctx, "n1"); err != nil {
			t.Fatal(err)
		}
		check(t, []flow{{"n2", "n1", true}, {"n3", "n1", false}, {"n1", "n2", true}, {"n1", "n3", true}, {"n2", "n3", true}})
	})
	t.Run("healed", func(t *testing.T) {
		if err := ctl.HealNetwork(ctx); err != nil {
			t.Fatal(err)
		}
		check(t, allFlow)
		for _, n := range cl.Nodes() {
			st, err := ctl.Status(ctx, n)
			if err != nil || len(st.Rules) != 0 {
				t.Errorf("%s after heal: rules %+v, %v", n, st.Rules, err)
			}
		}
	})
}

// TestDockerPacketDelay delays what n1 sends to the other nodes and checks
// that the n1 -> n2 round trip grows by the delay, within 20%.
func TestDockerPacketDelay(t *testing.T) {
	cl, ctl := startCluster(t, 3)
	ctx := context.Background()
	base, ok := rttOf(t, cl, "n1", "n2")
	if !ok {
		t.Fatal("no baseline round trip")
	}
	const delay = 100 * time.Millisecond
	if err := ctl.Shape(ctx, nemesis.Packet{Nodes: []string{"n1"}, Delay: delay}); err != nil {
		t.Fatal(err)
	}
	got, ok := rttOf(t, cl, "n1", "n2")
	if !ok {
		t.Fatal("no round trip with the delay")
	}
	t.Logf("n1 -> n2 round trip: %v without, %v with a %v delay", base, got, delay)
	if extra := got - base; extra < delay*8/10 || extra > delay*12/10 {
		t.Errorf("round trip grew by %v, want %v within 20%%", extra, delay)
	}
	// n2 -> n3 is not shaped. (Half the delay is the bound, not a few ms:
	// a loaded CI machine stretches round trips, never by 50 ms at the
	// median.)
	if d, ok := rttOf(t, cl, "n2", "n3"); !ok || d > delay/2 {
		t.Errorf("n2 -> n3 round trip %v (%v), want unshaped", d, ok)
	}
	if err := ctl.Shape(ctx, nemesis.Packet{}); err != nil {
		t.Fatal(err)
	}
	if d, ok := rttOf(t, cl, "n1", "n2"); !ok || d > base+delay/2 {
		t.Errorf("after heal round trip %v (%v), baseline %v", d, ok, base)
	}
}

// TestDockerNemesisFiveNodes drives the real nemesis against five real
// nodes: each kind of fault is injected and healed, partitions repeatedly
// so that their install and heal latency can be measured.
func TestDockerNemesisFiveNodes(t *testing.T) {
	cl, ctl := startCluster(t, 5)
	ctx := context.Background()
	var mu sync.Mutex
	var ops []history.Op
	n, err := nemesis.New(cl, ctl, nemesis.Options{Kinds: nonClockKinds, Seed: 5, Logf: t.Logf,
		Packet: nemesis.Packet{Delay: 50 * time.Millisecond, Loss: 10}})
	if err != nil {
		t.Fatal(err)
	}
	sink := func(op history.Op) { mu.Lock(); ops = append(ops, op); mu.Unlock() }
	t.Cleanup(func() {
		if err := n.Heal(context.Background()); err != nil {
			t.Errorf("heal: %v", err)
		}
	})
	for round := 0; round < 5; round++ {
		if err := n.Inject(ctx, nemesis.KindPartition); err != nil {
			t.Fatal(err)
		}
		if err := n.Heal(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []nemesis.Kind{nemesis.KindKill, nemesis.KindPause, nemesis.KindPacket} {
		if err := n.Inject(ctx, k); err != nil {
			t.Fatalf("inject %s: %v", k, err)
		}
		if act := n.Active(); len(act) != 1 {
			t.Errorf("active after %s: %v", k, act)
		}
		if err := n.Heal(ctx); err != nil {
			t.Fatalf("heal %s: %v", k, err)
		}
	}
	// A short scheduled run, recorded into the sink, ends healed.
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	sched, err := nemesis.New(cl, ctl, nemesis.Options{Kinds: nonClockKinds, Seed: 9, Interval: 700 * time.Millisecond, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if err := sched.Run(rctx, sink); err != nil {
		t.Fatalf("scheduled run: %v", err)
	}
	if len(ops) < 4 || len(ops)%2 != 0 {
		t.Errorf("scheduled run recorded %d ops", len(ops))
	}
	for i, op := range ops {
		if !op.Process.Nemesis || (i%2 == 0) != (op.Type == history.Invoke) {
			t.Errorf("op %d: %+v", i, op)
		}
		if op.Error != "" {
			t.Errorf("op %d %s failed: %s", i, op.F, op.Error)
		}
	}
	if len(sched.Active()) != 0 {
		t.Errorf("active after the scheduled run: %v", sched.Active())
	}
	var install, heal []time.Duration
	for _, a := range n.Actions() {
		if a.Error != "" {
			t.Errorf("action %s failed: %s", a.F, a.Error)
		}
		switch a.F {
		case nemesis.FStartPartition:
			install = append(install, a.Duration)
		case nemesis.FStopPartition:
			heal = append(heal, a.Duration)
		}
	}
	// The latency target (1 s each) is shown by BenchmarkPartitionFiveNodes.
	t.Logf("five-node partition: install %v, heal %v", install, heal)
	// Everything healed: every node answers and sees every other.
	for _, a := range cl.Nodes() {
		if st, _ := get(t, cl, a, "/health"); st != 200 {
			t.Errorf("%s not healthy after heal", a)
		}
		for _, b := range cl.Nodes() {
			if a != b {
				if _, ok := rttOf(t, cl, a, b); !ok {
					t.Errorf("%s -> %s unreachable after heal", a, b)
				}
			}
		}
	}
	if len(n.Active()) != 0 {
		t.Errorf("active after heal: %v", n.Active())
	}
}

// BenchmarkPartitionFiveNodes measures installing and healing a random
// partition of five real nodes through the agents (target: 1 s each).
func BenchmarkPartitionFiveNodes(b *testing.B) {
	cl, ctl := startClusterTB(b, 5)
	ctx := context.Background()
	n, err := nemesis.New(cl, ctl, nemesis.Options{Kinds: []nemesis.Kind{nemesis.KindPartition}, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	var install, heal time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := n.Inject(ctx, nemesis.KindPartition); err != nil {
			b.Fatal(err)
		}
		if err := n.Heal(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	for _, a := range n.Actions() {
		switch a.F {
		case nemesis.FStartPartition:
			install += a.Duration
		case nemesis.FStopPartition:
			heal += a.Duration
		}
	}
	b.ReportMetric(float64(install.Milliseconds())/float64(b.N), "install-ms/op")
	b.ReportMetric(float64(heal.Milliseconds())/float64(b.N), "heal-ms/op")
}

// nonClockKinds are the fault kinds this package's tests can drive: clock
// faults need the clock agent (harness/clockfault), tested there.
var nonClockKinds = []nemesis.Kind{nemesis.KindPartition, nemesis.KindKill, nemesis.KindPause, nemesis.KindPacket}
