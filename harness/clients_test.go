package harness

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/checkers"
	"github.com/jepsen-go/jepsen/history"
	"github.com/jepsen-go/jepsen/targets/httpkv"
	"github.com/jepsen-go/jepsen/targets/httpkv/httpkvtest"
	"github.com/jepsen-go/jepsen/workloads"
)

var fakeNodes = []string{"n1", "n2", "n3"}

// fakeDialer reaches the in-process fake nodes through the real http
// protocol client.
func fakeDialer(c *httpkvtest.Cluster, conc int) Dialer {
	clients := map[string]Client{}
	for _, n := range c.Nodes() {
		clients[n] = httpkv.New(c.Endpoint(n), httpkv.Options{Concurrency: conc})
	}
	return func(node string) Client { return clients[node] }
}

// runFake runs the workload for d against a fresh fake cluster and returns
// the recorded history.
func runFake(t testing.TB, workload string, seed uint64, conc int, d time.Duration, opTimeout time.Duration, setup func(*httpkvtest.Cluster)) []history.Op {
	t.Helper()
	c := httpkvtest.NewCluster(fakeNodes)
	defer c.Close()
	if setup != nil {
		setup(c)
	}
	w, err := workloads.New(workload, workloads.Options{Seed: seed, Concurrency: conc})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "history.jsonl")
	rec, err := NewRecorder(path, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	gen, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	dial := fakeDialer(c, conc)
	threads := runClients(gen, context.Background(), w, c.Nodes(), dial, rec, clientOptions{Concurrency: conc, OpTimeout: opTimeout})
	if fin, ok := w.(workloads.Finisher); ok {
		fin.Final(context.Background(), finalEnv(c.Nodes(), len(threads), nextProcess(threads), dial, rec, opTimeout, 10*time.Second))
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	ops, err := history.ReadFile(path)
	if err != nil {
		t.Fatalf("the recorded history does not read back: %v", err)
	}
	return ops
}

// finalEnv is the final phase's environment as Run makes it.
func finalEnv(nodes []string, threads, first int, dial Dialer, rec *Recorder, opTimeout, stall time.Duration) workloads.FinalEnv {
	return workloads.FinalEnv{
		Nodes: nodes, Threads: threads, FirstProcess: first, Stall: stall,
		Invoke: func(ctx context.Context, p int, node string, inv workloads.Invocation) history.Op {
			return invoke(ctx, rec, dial(node), node, p, inv, opTimeout)
		},
	}
}

type inv struct {
	F, Key, Value string
	Process       int
}

// invocations groups the invocations of a history by thread (process mod
// concurrency), in order.
func invocations(ops []history.Op, conc int) map[int][]inv {
	out := map[int][]inv{}
	for _, op := range ops {
		if op.Type != history.Invoke || !op.IsClient() {
			continue
		}
		// The set workload's final reads depend on how many adds the time
		// limit allowed; compare the main phase.
		if op.F == history.FRead && strings.HasPrefix(op.Key, "s") {
			continue
		}
		th := op.Process.ID % conc
		out[th] = append(out[th], inv{op.F, op.Key, string(op.Value), op.Process.ID})
	}
	return out
}

func TestSameSeedSameInvocations(t *testing.T) {
	const conc = 6
	d := 300 * time.Millisecond
	if raceEnabled {
		d *= 5 // enough ops per thread to compare under the race detector
	}
	for _, wl := range workloads.Names {
		t.Run(wl, func(t *testing.T) {
			a := invocations(runFake(t, wl, 7, conc, d, time.Second, nil), conc)
			b := invocations(runFake(t, wl, 7, conc, d, time.Second, nil), conc)
			c := invocations(runFake(t, wl, 8, conc, d, time.Second, nil), conc)
			compared, differ := 0, false
			for th := 0; th < conc; th++ {
				n := min(len(a[th]), len(b[th]))
				if n < 20 {
					t.Fatalf("thread %d issued only %d ops", th, n)
				}
				for i := 0; i < n; i++ {
					if a[th][i] != b[th][i] {
						t.Fatalf("seed 7, thread %d, op %d: %+v in one run, %+v in the other", th, i, a[th][i], b[th][i])
					}
				}
				compared += n
				for i := 0; i < min(n, len(c[th])); i++ {
					differ = differ || a[th][i] != c[th][i]
				}
			}
			if wl == workloads.Register && !differ {
				t.Error("seeds 7 and 8 gave the same invocations")
			}
			t.Logf("%d invocations identical across two runs", compared)
		})
	}
}

func TestFakeRunsAreValid(t *testing.T) {
	for _, wl := range workloads.Names {
		ops := runFake(t, wl, 1, 6, 300*time.Millisecond, time.Second, nil)
		res := checkers.Check(context.Background(), ops, checkers.Options{Workload: wl})
		if res.Valid != checkers.Valid {
			t.Errorf("%s against a linearizable fake: %s %+v", wl, res.Valid, res)
		}
	}
}

// Nodes that answer garbage, an endless body, or nothing: the run still
// finishes, their ops are info with a clear error, memory stays bounded.
func TestMisbehavingNodes(t *testing.T) {
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	opTimeout := 200 * time.Millisecond
	if raceEnabled {
		opTimeout = time.Second // reading 64 KiB of a huge body takes longer under the detector
	}
	ops := runFake(t, workloads.Register, 3, 6, time.Second, opTimeout, func(c *httpkvtest.Cluster) {
		c.Server("n1").SetMode(httpkvtest.Garbage)
		c.Server("n2").SetMode(httpkvtest.Huge)
		c.Server("n3").SetMode(httpkvtest.Hang)
	})
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("run took %s; hung nodes must not hold it up past the op timeout", el)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grow := int64(after.HeapAlloc) - int64(before.HeapAlloc); grow > 64<<20 {
		t.Errorf("heap grew by %d MiB talking to a node with an endless body", grow>>20)
	}
	want := map[string]*regexp.Regexp{
		"n1": regexp.MustCompile(`(?i)malformed|json|body`),
		"n2": regexp.MustCompile(`(?i)larger than|too large|body`),
		"n3": regexp.MustCompile(`(?i)timeout|deadline`),
	}
	byNode := map[string]int{}
	for _, op := range ops {
		if op.Type == history.Invoke || !op.IsClient() {
			continue
		}
		byNode[op.Node]++
		// A write or cas answered 200 is applied whatever the body says;
		// a read needs its body, and a hung node answers nothing.
		if op.Type == history.OK && (op.F == history.FRead || op.Node == "n3") {
			t.Fatalf("op on misbehaving node %s completed ok: %+v", op.Node, op)
		}
		if op.Type == history.Info && !want[op.Node].MatchString(op.Error) {
			t.Errorf("node %s: info with error %q, want it to say why", op.Node, op.Error)
		}
		if op.Type == history.Info && strings.ContainsAny(op.Error, "\n\x00") {
			t.Errorf("error is not one clean line: %q", op.Error)
		}
	}
	for _, n := range fakeNodes {
		if byNode[n] == 0 {
			t.Errorf("no completed ops on %s", n)
		}
	}
}

func TestMetricsCountOps(t *testing.T) {
	m, err := startMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	c := httpkvtest.NewCluster(fakeNodes)
	defer c.Close()
	w, _ := workloads.New(workloads.Register, workloads.Options{Seed: 1, Concurrency: 3})
	rec, err := NewRecorder(filepath.Join(t.TempDir(), "h.jsonl"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	rec.observe = m.observe
	scrape := func() int {
		resp, err := http.Get("http://" + m.addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		total := 0
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "jepsen_ops_total{") {
				f := strings.Fields(l)
				n, _ := strconv.ParseFloat(f[len(f)-1], 64)
				total += int(n)
			}
		}
		if !strings.Contains(string(b), "go_goroutines") || !strings.Contains(string(b), "jepsen_op_duration_seconds_bucket") {
			t.Fatalf("metrics lack the runtime or latency series:\n%.500s", b)
		}
		return total
	}
	dial := fakeDialer(c, 3)
	var counts []int
	for i := 0; i < 3; i++ {
		gen, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		runClients(gen, context.Background(), w, c.Nodes(), dial, rec, clientOptions{Concurrency: 3, OpTimeout: time.Second})
		cancel()
		counts = append(counts, scrape())
	}
	if !(counts[0] > 0 && counts[1] > counts[0] && counts[2] > counts[1]) {
		t.Fatalf("jepsen_ops_total over three scrapes: %v, want growing", counts)
	}
}

func TestMetricsAddrLoopbackByDefault(t *testing.T) {
	for in, want := range map[string]string{":9464": "127.0.0.1:9464", "0.0.0.0:1": "0.0.0.0:1", "[::1]:5": "[::1]:5"} {
		got, err := metricsListenAddr(in)
		if err != nil || got != want {
			t.Errorf("metricsListenAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := metricsListenAddr("9464"); err == nil {
		t.Error("a bare port was accepted")
	}
}

// BenchmarkClients measures ops issued and recorded per second by 20
// threads against an in-process fake that answers at once. Each b.N is one
// op.
func BenchmarkClients(b *testing.B) {
	const conc = 20
	c := httpkvtest.NewCluster(fakeNodes)
	defer c.Close()
	w, _ := workloads.New(workloads.Register, workloads.Options{Seed: 1, Concurrency: conc})
	rec, err := NewRecorder(filepath.Join(b.TempDir(), "h.jsonl"), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	dial := fakeDialer(c, conc)
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	start := time.Now()
	gen, cancel := context.WithCancel(context.Background())
	lim := int64(b.N)
	done := make(chan struct{})
	go func() {
		for {
			ok, fail, info := rec.Counts()
			if ok+fail+info >= lim {
				cancel()
				close(done)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	runClients(gen, context.Background(), w, c.Nodes(), dial, rec, clientOptions{Concurrency: conc, OpTimeout: time.Second})
	<-done
	el := time.Since(start)
	b.StopTimer()
	rec.Close()
	runtime.ReadMemStats(&ms1)
	ok, fail, info := rec.Counts()
	n := float64(ok + fail + info)
	b.ReportMetric(n/el.Seconds(), "ops/s")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/n, "alloc-B/op")
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc))/n, "retained-B/op")
}

func TestBackoff(t *testing.T) {
	ok := history.Op{Type: history.OK}
	refused := history.Op{Type: history.Fail, Error: "connection refused"}
	cas409 := history.Op{Type: history.Fail, Error: history.ErrPreconditionFailed}
	timeout := history.Op{Type: history.Info, Error: "timeout after 1s"}
	tests := []struct {
		prev time.Duration
		comp history.Op
		want time.Duration
	}{
		{0, ok, 0},
		{0, cas409, 0},
		{500 * time.Millisecond, ok, 0},
		{0, refused, minBackoff},
		{minBackoff, refused, 2 * minBackoff},
		{0, timeout, minBackoff},
		{maxBackoff, refused, maxBackoff},
	}
	for _, tt := range tests {
		if got := backoff(tt.prev, tt.comp); got != tt.want {
			t.Errorf("backoff(%s, %s %q) = %s, want %s", tt.prev, tt.comp.Type, tt.comp.Error, got, tt.want)
		}
	}
}

// A thread whose node is down fails fast, without an address, and backs
// off instead of spinning.
func TestDownNodeFailsAndBacksOff(t *testing.T) {
	w, _ := workloads.New(workloads.Register, workloads.Options{Seed: 1, Concurrency: 2})
	path := filepath.Join(t.TempDir(), "h.jsonl")
	rec, err := NewRecorder(path, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	gen, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	dial := func(node string) Client { return downClient{node: node} }
	runClients(gen, context.Background(), w, []string{"n1"}, dial, rec, clientOptions{Concurrency: 2, OpTimeout: time.Second})
	rec.Close()
	ops, err := history.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// With backoff doubling from 10ms to 1s, a thread manages about 7 ops
	// in a second; without it, thousands.
	if len(ops) > 2*2*12 {
		t.Errorf("%d events in 1s against a down node: the threads do not back off", len(ops))
	}
	for _, op := range ops {
		if op.Type == history.Info || op.Type == history.OK {
			t.Fatalf("op against a down node: %+v, want fail", op)
		}
		if op.Type == history.Fail && !strings.Contains(op.Error, "n1 is down") {
			t.Errorf("fail error %q does not say the node is down", op.Error)
		}
	}
}

// TestFinalReadsStall checks the final phase's rule: it reads every key of
// a cluster that answers, even when that takes far longer than the stall
// limit, and gives up on one that does not answer once no read has
// succeeded for the stall limit.
func TestFinalReadsStall(t *testing.T) {
	stall := 200 * time.Millisecond
	n := 40000 // about 2 s of reads: many stall limits
	if raceEnabled {
		// A loaded machine under the detector stalls reads for more
		// than 200 ms now and then; the keys stay many, so the phase
		// still outlasts two stall limits on a quiet one.
		stall = time.Second
	}
	keys := make([]string, n)

	for i := range keys {
		keys[i] = "s" + strconv.Itoa(i)
	}
	tests := []struct {
		name     string
		mode     httpkvtest.Mode
		wantRead int
		maxTime  time.Duration
	}{
		{"answering cluster is read to the end", httpkvtest.Normal, len(keys), 3 * time.Minute},
		{"unavailable cluster is left after the stall limit", httpkvtest.Unavailable, 0, 10 * stall},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := httpkvtest.NewCluster(fakeNodes)
			defer c.Close()
			for _, n := range c.Nodes() {
				c.Server(n).SetMode(tt.mode)
			}
			rec, err := NewRecorder(filepath.Join(t.TempDir(), "history.jsonl"), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			defer rec.Close()
			w, _ := workloads.New(workloads.Set, workloads.Options{Concurrency: 2})
			g0, g1 := w.Thread(0), w.Thread(1)
			for i := 0; i < len(keys)/2; i++ {
				g0.Next()
				g1.Next()
			}
			t0 := time.Now()
			read, _ := w.(workloads.Finisher).Final(context.Background(), finalEnv(c.Nodes(), 2, 0, fakeDialer(c, 2), rec, time.Second, stall))
			took := time.Since(t0)
			if read != tt.wantRead {
				t.Errorf("read %d keys, want %d", read, tt.wantRead)
			}
			if took > tt.maxTime {
				t.Errorf("took %v, want at most %v", took, tt.maxTime)
			}
			if tt.mode == httpkvtest.Normal && took < 2*stall {
				t.Errorf("all %d keys read in %v, within two stall limits: use more keys so that the test shows the phase outlasting the limit", len(keys), took)
			}
			t.Logf("%d of %d keys read in %v", read, len(keys), took)
		})
	}
}
