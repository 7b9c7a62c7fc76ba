package nemesis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/history"
)

// memCluster is an in-memory cluster and network that keeps the state the
// nemesis puts it in, so tests can check that every fault is healed.
type memCluster struct {
	mu      sync.Mutex
	nodes   []string
	state   map[string]string // up, killed, paused
	grudge  Grudge
	packet  Packet
	failOn  string // node whose Kill fails after killing it
	calls   []string
	healNet int
	offsets map[string]time.Duration // clock offsets in force
	strobes int
}

func newMem(n int) *memCluster {
	m := &memCluster{nodes: names(n), state: map[string]string{}}
	for _, x := range m.nodes {
		m.state[x] = "up"
	}
	return m
}

func (m *memCluster) Nodes() []string { return m.nodes }
func (m *memCluster) trans(ctx context.Context, node, from, to, call string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, call+" "+node)
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.state[node] != from && !(call == "start" && m.state[node] == "up") {
		return fmt.Errorf("%s %s: node is %s", call, node, m.state[node])
	}
	m.state[node] = to
	if call == "kill" && node == m.failOn {
		return errors.New("kill " + node + ": daemon said no")
	}
	return nil
}
func (m *memCluster) Kill(ctx context.Context, n string) error {
	return m.trans(ctx, n, "up", "killed", "kill")
}
func (m *memCluster) Start(ctx context.Context, n string) error {
	return m.trans(ctx, n, "killed", "up", "start")
}
func (m *memCluster) Pause(ctx context.Context, n string) error {
	return m.trans(ctx, n, "up", "paused", "pause")
}
func (m *memCluster) Resume(ctx context.Context, n string) error {
	return m.trans(ctx, n, "paused", "up", "resume")
}
func (m *memCluster) Partition(ctx context.Context, g Grudge) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	m.grudge = g
	return nil
}
func (m *memCluster) Shape(ctx context.Context, p Packet) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	m.packet = p
	return nil
}
func (m *memCluster) HealNetwork(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.grudge, m.packet = nil, Packet{}
	m.healNet++
	return nil
}

func (m *memCluster) SetClock(ctx context.Context, offsets map[string]time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.offsets == nil {
		m.offsets = map[string]time.Duration{}
	}
	for n, d := range offsets {
		m.offsets[n] = d
	}
	return nil
}
func (m *memCluster) StrobeClock(ctx context.Context, nodes []string, delta, period, duration time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if delta == 0 || period <= 0 || duration <= 0 || len(nodes) == 0 {
		return fmt.Errorf("bad strobe %v %s %s %s", nodes, delta, period, duration)
	}
	m.strobes++
	return nil
}
func (m *memCluster) ResetClock(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.offsets = nil
	return nil
}

func (m *memCluster) assertHealed(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.nodes {
		if m.state[x] != "up" {
			t.Errorf("%s left %s", x, m.state[x])
		}
	}
	if len(m.grudge) != 0 || !m.packet.IsZero() {
		t.Errorf("network left faulty: grudge %v packet %+v", m.grudge, m.packet)
	}
	for n, d := range m.offsets {
		if d != 0 {
			t.Errorf("clock of %s left %s off", n, d)
		}
	}
}

type opLog struct {
	mu  sync.Mutex
	ops []history.Op
}

func (l *opLog) add(op history.Op) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops = append(l.ops, op)
}

func runSchedule(t *testing.T, kinds []Kind, seed int64, d time.Duration) (*memCluster, *Nemesis, []history.Op) {
	t.Helper()
	return runScheduleEvery(t, kinds, seed, d, 2*time.Millisecond)
}

// runScheduleEvery is runSchedule at the given interval.
func runScheduleEvery(t *testing.T, kinds []Kind, seed int64, d, interval time.Duration) (*memCluster, *Nemesis, []history.Op) {
	t.Helper()
	m := newMem(5)
	n, err := New(m, m, Options{Kinds: kinds, Interval: interval, Seed: seed, Clocks: m})
	if err != nil {
		t.Fatal(err)
	}
	var log opLog
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := n.Run(ctx, log.add); err != nil {
		t.Fatalf("run: %v", err)
	}
	return m, n, log.ops
}

func TestScheduleHealsAndRecords(t *testing.T) {
	m, n, ops := runSchedule(t, Kinds, 7, 300*time.Millisecond)
	m.assertHealed(t)
	if got := n.Active(); len(got) != 0 {
		t.Errorf("active after run: %v", got)
	}
	if len(ops) < 8 {
		t.Fatalf("only %d ops in 300ms at a 2ms interval", len(ops))
	}
	// invoke/info pairs, nemesis process, every start followed by its
	// stop before the next fault of its family (faults of different
	// families overlap).
	stops := map[string]string{FStartPartition: FStopPartition, FStartPacket: FStopPacket, FKill: FStart, FPause: FResume}
	fam := map[string]string{FStartPartition: "network", FStopPartition: "network", FStartPacket: "network", FStopPacket: "network",
		FKill: "process", FStart: "process", FPause: "process", FResume: "process"}
	// Clock offsets persist until a reset, which comes at the latest at
	// the end; they are not paired with a stop.
	clockFs := map[string]bool{FBumpClock: true, FStrobeClock: true, FResetClock: true}
	open := map[string]string{} // family -> the stop it waits for
	seenF := map[string]bool{}
	for i := 0; i+1 < len(ops); i += 2 {
		inv, info := ops[i], ops[i+1]
		if inv.Type != history.Invoke || info.Type != history.Info || inv.F != info.F || !inv.Process.Nemesis || !info.Process.Nemesis {
			t.Fatalf("ops %d,%d are not a nemesis invoke/info pair: %+v %+v", i, i+1, inv, info)
		}
		if info.Time < inv.Time {
			t.Errorf("op %d: time goes backwards", i)
		}
		seenF[inv.F] = true
		if clockFs[inv.F] {
			continue
		}
		f := fam[inv.F]
		if stop, ok := stops[inv.F]; ok {
			if open[f] != "" {
				t.Fatalf("op %d: %s while the %s family still waits for %s", i, inv.F, f, open[f])
			}
			open[f] = stop
		} else if open[f] != inv.F {
			t.Fatalf("op %d: %s without a matching start (open %v)", i, inv.F, open)
		} else {
			delete(open, f)
		}
	}
	if len(open) != 0 {
		t.Errorf("faults never stopped: %v", open)
	}
	lastShift, lastReset := -1, -1
	for i, op := range ops {
		switch op.F {
		case FBumpClock, FStrobeClock:
			lastShift = i
		case FResetClock:
			lastReset = i
		}
	}
	if lastShift > lastReset {
		t.Errorf("the clock shift at op %d was never reset", lastShift)
	}
	for _, f := range []string{FStartPartition, FKill, FPause, FStartPacket, FBumpClock} {
		if !seenF[f] {
			t.Errorf("no %s in %d ops", f, len(ops))
		}
	}
	if acts := n.Actions(); len(acts) != len(ops)/2 {
		t.Errorf("%d actions for %d ops", len(acts), len(ops))
	}
}

func TestScheduleValues(t *testing.T) {
	_, _, ops := runSchedule(t, Kinds, 3, 300*time.Millisecond)
	for _, op := range ops {
		switch op.F {
		case FStartPartition, FStopPartition:
			var g Grudge
			if err := json.Unmarshal(op.Value, &g); err != nil || len(g) == 0 {
				t.Errorf("%s value %s is not a grudge: %v", op.F, op.Value, err)
			}
		case FKill, FStart, FPause, FResume:
			var nodes []string
			if err := json.Unmarshal(op.Value, &nodes); err != nil || len(nodes) > 5 || len(nodes) == 0 && op.Error == "" {
				t.Errorf("%s value %s is not a node list: %v", op.F, op.Value, err)
			}
		case FBumpClock:
			var offs map[string]string
			if err := json.Unmarshal(op.Value, &offs); err != nil || len(offs) == 0 {
				t.Fatalf("%s value %s is not a node -> offset map: %v", op.F, op.Value, err)
			}
			for node, o := range offs {
				d, err := time.ParseDuration(o)
				if err != nil || d == 0 || d > DefaultClockMax || d < -DefaultClockMax {
					t.Errorf("%s: %s offset %q out of (0, ±%s]", op.F, node, o, DefaultClockMax)
				}
			}
		case FStrobeClock, FResetClock:
			if len(op.Value) == 0 || string(op.Value) == "null" {
				t.Errorf("%s has no value", op.F)
			}
		case FStartPacket, FStopPacket:
			want := `{"loss":20,"duplicate":10,"reorder":20,"corrupt":5,"delay":"100ms","jitter":"50ms"}`
			if string(op.Value) != want {
				t.Errorf("%s value %s, want %s", op.F, op.Value, want)
			}
		}
	}
}

// Same seed, same sequence of actions in each family (ignoring times),
// however the families interleave.
func TestScheduleReproducible(t *testing.T) {
	seq := func(seed int64, rounds int) map[int][]string {
		m := newMem(5)
		n, _ := New(m, m, Options{Kinds: []Kind{KindPartition, KindPacket, KindClock}, Seed: seed, Clocks: m})
		out := map[int][]string{}
		var log opLog
		// Interleave the families differently in every round.
		for r := 0; r < rounds; r++ {
			for _, i := range []int{r % 3, (r + 1) % 3} {
				if i == 1 {
					continue // process: not enabled
				}
				log.ops = nil
				n.sink = log.add
				_ = n.injectFamily(context.Background(), i)
				_ = n.heal(context.Background(), n.families[i].kinds, false)
				for _, op := range log.ops {
					out[i] = append(out[i], op.F+" "+string(op.Value))
				}
			}
		}
		return out
	}
	a, b, c := seq(11, 12), seq(11, 9), seq(12, 12)
	for _, i := range []int{0, 2} {
		if len(a[i]) < 4 {
			t.Fatalf("family %d: only %v", i, a[i])
		}
		k := min(len(a[i]), len(b[i]))
		if !reflect.DeepEqual(a[i][:k], b[i][:k]) {
			t.Errorf("family %d: same seed, different schedules:\n%v\n%v", i, a[i][:k], b[i][:k])
		}
	}
	if reflect.DeepEqual(a, c) {
		t.Errorf("different seeds, same schedule")
	}
}

// TestFamiliesOverlap checks that faults of different families are in
// force together, those of one family never are, and a clock fault never
// targets a node that is down.
func TestFamiliesOverlap(t *testing.T) {
	// A 10 ms interval, not runSchedule's 2 ms: on a loaded machine,
	// timers late by a millisecond blur the families' phases.
	_, _, ops := runScheduleEvery(t, Kinds, 5, time.Second, 10*time.Millisecond)
	var partition, process bool
	down := map[string]bool{}
	var clockDuringPartition, clockDuringProcess, partitionDuringProcess bool
	for i := 1; i < len(ops); i += 2 {
		op := ops[i]
		var nodes []string
		switch op.F {
		case FStartPartition:
			partitionDuringProcess = partitionDuringProcess || process
			partition = true
		case FStopPartition:
			partition = false
		case FKill, FPause:
			// The families run at the same period, staggered: a
			// partition starts while the cluster is healed of kills and
			// pauses and is still in force when the next kill comes.
			partitionDuringProcess = partitionDuringProcess || partition
			_ = json.Unmarshal(op.Value, &nodes)
			for _, x := range nodes {
				down[x] = true
			}
			process = true
		case FStart, FResume:
			clear(down)
			process = false
		case FBumpClock:
			var plan map[string]string
			_ = json.Unmarshal(op.Value, &plan)
			for x := range plan {
				nodes = append(nodes, x)
			}
		case FStrobeClock:
			var plan struct{ Nodes []string }
			_ = json.Unmarshal(op.Value, &plan)
			nodes = plan.Nodes
		}
		if op.F == FBumpClock || op.F == FStrobeClock {
			clockDuringPartition = clockDuringPartition || partition
			clockDuringProcess = clockDuringProcess || process
			for _, x := range nodes {
				if down[x] {
					t.Errorf("op %d: %s %s shifts %s, which is down", i, op.F, op.Value, x)
				}
			}
		}
	}
	if !clockDuringPartition || !clockDuringProcess || !partitionDuringProcess {
		t.Errorf("families did not overlap: clock during partition %v, clock during kill/pause %v, partition during kill/pause %v",
			clockDuringPartition, clockDuringProcess, partitionDuringProcess)
	}
}

func TestHealWithCancelledContext(t *testing.T) {
	m := newMem(5)
	n, _ := New(m, m, Options{Kinds: Kinds, Seed: 1, Clocks: m})
	var log opLog
	n.sink = log.add
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	// The schedule injects one fault at a time; Heal copes with several
	// (a node cannot be paused once killed, so pause comes second).
	for i, kinds := range [][]Kind{{KindPartition, KindPacket, KindKill}, {KindPause}} {
		for _, k := range kinds {
			if err := n.Inject(ctx, k); err != nil {
				t.Fatalf("inject %s: %v", k, err)
			}
		}
		if got := n.Active(); len(got) != len(kinds) {
			t.Errorf("active: %v, want %d faults", got, len(kinds))
		}
		if err := n.Heal(cancelled); err != nil {
			t.Fatalf("heal: %v", err)
		}
		m.assertHealed(t)
		if len(n.Active()) != 0 || m.healNet != i+1 {
			t.Errorf("active %v, network healed %d times", n.Active(), m.healNet)
		}
	}
	// Healing again is harmless and records nothing new.
	before := len(log.ops)
	if err := n.Heal(cancelled); err != nil {
		t.Fatal(err)
	}
	if len(log.ops) != before {
		t.Errorf("a second heal recorded %d ops", len(log.ops)-before)
	}
}

func TestFailedKillIsStillRestarted(t *testing.T) {
	m := newMem(3)
	n, _ := New(m, m, Options{Kinds: []Kind{KindKill}, Seed: 1})
	var log opLog
	n.sink = log.add
	m.failOn = "n1"
	m.nodes = []string{"n1"} // pick() takes from n.nodes; force n1
	n.nodes = []string{"n1"}
	if err := n.Inject(context.Background(), KindKill); err == nil {
		t.Fatal("kill should have failed")
	}
	info := log.ops[1]
	if info.Error == "" || string(info.Value) != "[]" {
		t.Errorf("failed kill recorded as %+v", info)
	}
	if err := n.Heal(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.assertHealed(t)
	if !strings.Contains(strings.Join(m.calls, ";"), "start n1") {
		t.Errorf("killed node never started: %v", m.calls)
	}
}

func TestNoneOnlyHeals(t *testing.T) {
	m, n, ops := runSchedule(t, nil, 1, 20*time.Millisecond)
	if len(ops) != 0 || len(n.Actions()) != 0 {
		t.Errorf("nemesis none recorded %d ops", len(ops))
	}
	m.assertHealed(t)
}

func TestPrimariesIsolatesLeader(t *testing.T) {
	m := newMem(5)
	n, err := New(m, m, Options{Kinds: []Kind{KindPartition}, Topologies: []string{TopoPrimaries},
		Leader: func(context.Context) (string, bool) { return "n4", true }})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Inject(context.Background(), KindPartition); err != nil {
		t.Fatal(err)
	}
	want, _ := Isolate(m.nodes, "n4")
	if !reflect.DeepEqual(m.grudge, want) {
		t.Errorf("primaries: grudge %v, want %v", m.grudge, want)
	}
	if got := n.Active(); !reflect.DeepEqual(got, []string{"partition primaries"}) {
		t.Errorf("active %v", got)
	}
	_ = n.Heal(context.Background())
	m.assertHealed(t)
}

func TestNewErrors(t *testing.T) {
	m := newMem(3)
	cases := []struct {
		name string
		c    Cluster
		net  Network
		opts Options
		want string
	}{
		{"no cluster", nil, m, Options{}, "no cluster"},
		{"partition without network", m, nil, Options{Kinds: []Kind{KindPartition}}, "network fault installer"},
		{"clock without shifter", m, m, Options{Kinds: []Kind{KindClock}}, "clock shifter"},
		{"bad kind", m, m, Options{Kinds: []Kind{"flood"}}, `"flood"`},
		{"primaries without leader", m, m, Options{Topologies: []string{TopoPrimaries}}, "leader"},
		{"bad topology", m, m, Options{Topologies: []string{"star"}}, `"star"`},
	}
	for _, tc := range cases {
		if _, err := New(tc.c, tc.net, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestParseKinds(t *testing.T) {
	cases := []struct {
		in   string
		want []Kind
		err  string
	}{
		{"none", nil, ""},
		{"", nil, ""},
		{"partition", []Kind{KindPartition}, ""},
		{"partition,kill,pause,packet,clock", Kinds, ""},
		{" kill , kill ", []Kind{KindKill}, ""},
		{"partition,clocks", nil, `unknown fault kind "clocks" (valid: partition, kill, pause, packet, clock, or none)`},
		{"kill,,pause", nil, "empty fault kind"},
		{"none,kill", nil, "cannot be combined"},
	}
	for _, tc := range cases {
		got, err := ParseKinds(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%q: error %v, want one line containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseKinds(f *testing.F) {
	for _, s := range []string{"none", "partition,kill", "pause,packet,,", "clock", " kill "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kinds, err := ParseKinds(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error %q", err)
			}
			return
		}
		for _, k := range kinds {
			if !containsKind(AllKinds(), k) {
				t.Errorf("accepted unknown kind %q", k)
			}
		}
	})
}

func containsKind(ks []Kind, k Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func TestDownCountsKilledAndPaused(t *testing.T) {
	m := newMem(5)
	n, err := New(m, m, Options{Kinds: []Kind{KindKill, KindPause}, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if n.Down() != 0 {
		t.Fatalf("Down() = %d before any fault", n.Down())
	}
	n.Inject(ctx, KindKill)
	m.mu.Lock()
	killed := 0
	for _, st := range m.state {
		if st == "killed" {
			killed++
		}
	}
	m.mu.Unlock()
	if n.Down() != killed || killed == 0 {
		t.Fatalf("Down() = %d, %d nodes killed", n.Down(), killed)
	}
	if err := n.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if n.Down() != 0 {
		t.Fatalf("Down() = %d after healing", n.Down())
	}
}

// TestClockAimsAtLeader checks that clock faults sometimes shift the
// leader's clock alone when the leader is known, and that knowing it does
// not change the rest of a seed's schedule (same actions, same order).
func TestClockAimsAtLeader(t *testing.T) {
	const faults = 200
	actions := func(leader func(context.Context) (string, bool)) []Action {
		m := newMem(5)
		n, err := New(m, m, Options{Kinds: []Kind{KindClock}, Seed: 3, Clocks: m, Leader: leader})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < faults; i++ {
			if err := n.Inject(context.Background(), KindClock); err != nil {
				t.Fatal(err)
			}
		}
		return n.Actions()
	}
	known := actions(func(context.Context) (string, bool) { return "n4", true })
	unknown := actions(func(context.Context) (string, bool) { return "", false })
	if len(known) != len(unknown) {
		t.Fatalf("%d actions with the leader known, %d without", len(known), len(unknown))
	}
	leaderAlone := 0
	var cur time.Duration // n4's offset
	for i := range known {
		if known[i].F != unknown[i].F {
			t.Fatalf("action %d: %s with the leader known, %s without", i, known[i].F, unknown[i].F)
		}
		if known[i].F == FResetClock {
			cur = 0
		}
		if known[i].F != FBumpClock {
			continue
		}
		var plan map[string]string
		if err := json.Unmarshal(known[i].Value, &plan); err != nil {
			t.Fatal(err)
		}
		next := cur
		if s, ok := plan["n4"]; ok {
			var err error
			if next, err = time.ParseDuration(s); err != nil {
				t.Fatal(err)
			}
		}
		if string(known[i].Value) != string(unknown[i].Value) {
			if _, ok := plan["n4"]; !ok || len(plan) != 1 {
				t.Errorf("action %d differs but does not aim at the leader alone: %s", i, known[i].Value)
			}
			if next >= cur && cur > -DefaultClockMax+time.Second {
				t.Errorf("action %d: the leader's clock went from %v to %v, want back", i, cur, next)
			}
			if next < -DefaultClockMax {
				t.Errorf("action %d: the leader's clock went to %v, beyond -%v", i, next, DefaultClockMax)
			}
			leaderAlone++
		}
		cur = next
	}
	// Half of the bumps (which are about half of the clock faults) aim at
	// the leader; a few of those would have picked it alone anyway and do
	// not differ.
	if leaderAlone < faults/8 || leaderAlone > faults/2 {
		t.Errorf("%d of %d clock faults aimed at the leader alone, want about %d", leaderAlone, faults, faults/4)
	}
}

func TestBack(t *testing.T) {
	const max = 30 * time.Second
	cases := []struct{ cur, d, want time.Duration }{
		{0, 5 * time.Second, -5 * time.Second},
		{0, -5 * time.Second, -5 * time.Second},
		{20 * time.Second, 5 * time.Second, 15 * time.Second},
		{-10 * time.Second, 5 * time.Second, -15 * time.Second},
		{-10 * time.Second, 25 * time.Second, -max},
		{-28 * time.Second, 10 * time.Second, -max},
		{-29500 * time.Millisecond, 10 * time.Second, -19500 * time.Millisecond}, // at the floor: forward
		{-max, 10 * time.Second, -20 * time.Second},
		{-max, 40 * time.Second, 10 * time.Second},
	}
	for _, tc := range cases {
		if got := back(tc.cur, tc.d, max); got != tc.want {
			t.Errorf("back(%v, %v) = %v, want %v", tc.cur, tc.d, got, tc.want)
		}
	}
}

// TestClockAimsAtDeposedLeader checks that while a partition keeps the
// node that led when it began away from a majority, the clock faults aimed
// at the leader shift that deposed leader, not the new one; and the new
// one again once the partition heals or when the old leader kept a
// majority.
func TestClockAimsAtDeposedLeader(t *testing.T) {
	cases := []struct {
		name  string
		topos []string
		// aimed is the node the leader-aimed clock faults should shift
		// during the partition.
		aimed string
	}{
		{"isolated leader", []string{TopoPrimaries}, "n4"},
		{"ring: the old leader keeps a majority", []string{TopoMajoritiesRing}, "n1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMem(5)
			leader := "n4"
			n, err := New(m, m, Options{Kinds: []Kind{KindPartition, KindClock}, Seed: 5, Clocks: m, Topologies: tc.topos,
				Leader: func(context.Context) (string, bool) { return leader, true }})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			alone := func() map[string]int {
				got := map[string]int{}
				for i := 0; i < 100; i++ {
					if err := n.Inject(ctx, KindClock); err != nil {
						t.Fatal(err)
					}
					acts := n.Actions()
					a := acts[len(acts)-1]
					if a.F == FStrobeClock {
						// Leader-aimed strobes dip behind the offset.
						var plan struct {
							Nodes []string
							Delta string
						}
						if err := json.Unmarshal(a.Value, &plan); err != nil {
							t.Fatal(err)
						}
						if strings.HasPrefix(plan.Delta, "-") {
							got["strobe back "+strings.Join(plan.Nodes, ",")]++
						}
					}
					if a.F == FBumpClock {
						var plan map[string]string
						if err := json.Unmarshal(a.Value, &plan); err != nil {
							t.Fatal(err)
						}
						for x := range plan {
							if len(plan) == 1 {
								got[x]++
							}
						}
					}
				}
				return got
			}
			if err := n.Inject(ctx, KindPartition); err != nil {
				t.Fatal(err)
			}
			leader = "n1" // elected by the majority
			during := alone()
			if during[tc.aimed] < 15 {
				t.Errorf("during the partition %s was shifted alone %d times in 100 clock faults, want about 25: %v", tc.aimed, during[tc.aimed], during)
			}
			for k, c := range during {
				if strings.HasPrefix(k, "strobe back") && k != "strobe back "+tc.aimed {
					t.Errorf("%d strobes back of %s, aimed at %s alone", c, k, tc.aimed)
				}
			}
			if during["strobe back "+tc.aimed] < 5 {
				t.Errorf("%d strobes dipped %s's clock back in 100 clock faults, want about 12", during["strobe back "+tc.aimed], tc.aimed)
			}
			if err := n.Heal(ctx); err != nil {
				t.Fatal(err)
			}
			after := alone()
			if after["n1"] < 15 || after["n4"] > 10 {
				t.Errorf("after healing: shifted alone %v, want n1 about 25 times and n4 about 5", after)
			}
		})
	}
}

// TestPartitionsOftenIsolateLeader checks that, with the leader known,
// more than half of the partitions isolate it, and that a topology list
// without primaries is obeyed.
func TestPartitionsOftenIsolateLeader(t *testing.T) {
	leader := func(context.Context) (string, bool) { return "n2", true }
	for _, tc := range []struct {
		name     string
		topos    []string
		min, max int // of 200 partitions, how many isolate the leader
	}{
		{"all topologies", nil, 95, 145},
		{"no primaries", []string{TopoMajority, TopoMajoritiesRing}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMem(5)
			n, err := New(m, m, Options{Kinds: []Kind{KindPartition}, Seed: 7, Leader: leader, Topologies: tc.topos})
			if err != nil {
				t.Fatal(err)
			}
			isolated := 0
			for i := 0; i < 200; i++ {
				if err := n.Inject(context.Background(), KindPartition); err != nil {
					t.Fatal(err)
				}
				if slices.Contains(n.Active(), "partition "+TopoPrimaries) {
					isolated++
				}
				if err := n.Heal(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if isolated < tc.min || isolated > tc.max {
				t.Errorf("%d of 200 partitions isolated the leader, want %d to %d", isolated, tc.min, tc.max)
			}
		})
	}
}
