package nemesis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jepsen-go/jepsen/history"
)

// Nemesis f names, as recorded in the history.
const (
	FStartPartition = "start-partition"
	FStopPartition  = "stop-partition"
	FKill           = "kill"
	FStart          = "start"
	FPause          = "pause"
	FResume         = "resume"
	FStartPacket    = "start-packet"
	FStopPacket     = "stop-packet"
	FBumpClock      = "bump-clock"
	FStrobeClock    = "strobe-clock"
	FResetClock     = "reset-clock"
)

// DefaultClockMax bounds the clock offsets of the clock kind.
const DefaultClockMax = 30 * time.Second

// DefaultInterval is the time between a fault and its healing, and between
// healing and the next fault.
const DefaultInterval = 10 * time.Second

// DefaultHealTimeout bounds Heal, whatever the caller's context.
const DefaultHealTimeout = 60 * time.Second

// Options configure a Nemesis.
type Options struct {
	// Kinds are the enabled fault kinds (see ParseKinds); none means the
	// nemesis only heals.
	Kinds []Kind
	// Interval separates a fault from its healing and the healing from
	// the next fault (default DefaultInterval).
	Interval time.Duration
	// Seed makes the schedule reproducible: the same seed and nodes give
	// the same sequence of faults.
	Seed int64
	// Packet is the packet fault to inject (zero: DefaultPacket); its
	// Nodes are ignored, every node's traffic to the others is shaped.
	Packet Packet
	// Topologies restricts the partition topologies (default all of
	// Topologies; primaries only if Leader is set).
	Topologies []string
	// Leader, if set, returns the current leader for the primaries
	// topology and for aiming clock faults at the leader (e.g. from the
	// target's GET /leader); false if unknown.
	Leader func(ctx context.Context) (string, bool)
	// HealTimeout bounds Heal, and each scheduled fault once begun
	// (default DefaultHealTimeout).
	HealTimeout time.Duration
	// Clock returns the time of an op, in ns since the test started
	// (default: since New).
	Clock func() int64
	// Logf receives one line per action with its latency; nil discards.
	Logf func(format string, args ...any)
	// Clocks shifts node clocks; required by the clock kind.
	Clocks Clock
	// ClockMax bounds clock offsets, forward or back, and strobe swings
	// (default DefaultClockMax).
	ClockMax time.Duration
}

// Action is one nemesis action with its timing, for test.json.
type Action struct {
	// F is the nemesis op: start-partition, kill, resume, ...
	F string `json:"f"`
	// Value is what was done, as recorded in the history.
	Value json.RawMessage `json:"value,omitempty"`
	// Start is when the action began, in ns since the test started.
	Start int64 `json:"start"`
	// Duration is how long the action took, in ns.
	Duration time.Duration `json:"duration"`
	// Error is why the action failed, if it did.
	Error string `json:"error,omitempty"`
}

// Nemesis injects faults on a schedule and heals them. Its methods are
// safe for concurrent use; actions are serialised.
type Nemesis struct {
	cluster Cluster
	net     Network
	opts    Options
	nodes   []string
	// families take turns within and overlap between them; rngs[i] is
	// the random source of families[i], used under mu.
	families []family
	rngs     []*rand.Rand

	mu        sync.Mutex // serialises actions
	sink      func(history.Op)
	partition Grudge // active partition, nil if none
	topology  string
	// cutLeader is the node that led when the active partition began, if
	// the partition cut it off from a majority: a deposed leader that may
	// still believe its lease.
	cutLeader string
	packet    *Packet
	killed    []string
	paused    []string
	clocks    map[string]time.Duration // nodes whose clock is shifted
	strobed   []string                 // nodes strobed since the last reset

	active atomic.Pointer[[]string] // activeLocked, published after each action
	down   atomic.Int32             // killed or paused nodes, published likewise

	amu     sync.Mutex
	actions []Action
}

// New returns a nemesis for the cluster and network. net may be nil if no
// network fault kind is enabled.
func New(cluster Cluster, net Network, opts Options) (*Nemesis, error) {
	if cluster == nil {
		return nil, errors.New("nemesis: no cluster")
	}
	for _, k := range opts.Kinds {
		if !slices.Contains(Kinds, k) {
			return nil, fmt.Errorf("nemesis: unknown fault kind %q (valid: %s)", k, kindList())
		}
		if (k == KindPartition || k == KindPacket) && net == nil {
			return nil, fmt.Errorf("nemesis: %s faults need a network fault installer", k)
		}
		if k == KindClock && opts.Clocks == nil {
			return nil, fmt.Errorf("nemesis: clock faults need a clock shifter")
		}
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.HealTimeout <= 0 {
		opts.HealTimeout = DefaultHealTimeout
	}
	if opts.ClockMax <= 0 {
		opts.ClockMax = DefaultClockMax
	}
	if opts.Packet.IsZero() {
		opts.Packet = DefaultPacket
	}
	opts.Packet.Nodes = nil
	if len(opts.Topologies) == 0 {
		opts.Topologies = []string{TopoOne, TopoMajority, TopoMajoritiesRing, TopoBridge}
		if opts.Leader != nil {
			opts.Topologies = append(opts.Topologies, TopoPrimaries)
		}
	}
	for _, t := range opts.Topologies {
		if t == TopoPrimaries {
			if opts.Leader == nil {
				return nil, fmt.Errorf("nemesis: topology primaries needs a leader lookup")
			}
			continue
		}
		if _, err := Partitioner(t); err != nil {
			return nil, fmt.Errorf("nemesis: %w", err)
		}
	}
	if opts.Clock == nil {
		t0 := time.Now()
		opts.Clock = func() int64 { return int64(time.Since(t0)) }
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	nodes := cluster.Nodes()
	if len(nodes) == 0 {
		return nil, errors.New("nemesis: the cluster has no nodes")
	}
	n := &Nemesis{cluster: cluster, net: net, opts: opts, nodes: nodes}
	for i, f := range families {
		n.families = append(n.families, family{persistent: f.persistent,
			kinds: slices.DeleteFunc(slices.Clone(f.kinds), func(k Kind) bool { return !slices.Contains(opts.Kinds, k) })})
		// Each family has its own source, so its sequence of faults
		// depends on the seed alone, not on how the families interleave.
		n.rngs = append(n.rngs, rand.New(rand.NewSource(opts.Seed+int64(i))))
	}
	return n, nil
}

// A family is a set of fault kinds that take turns: each fault of a family
// is healed before the family's next one. Families run side by side, so
// faults of different families overlap, as with Jepsen's combined nemesis
// packages: a skewed clock meets a partition, a partition meets a crash.
// Only whole families overlap, so a node is never killed while paused,
// nor partitioned and shaped at once.
type family struct {
	kinds []Kind
	// persistent faults (clock offsets) are not healed between faults:
	// they stay until a reset or the end of the run, and the family acts
	// every interval.
	persistent bool
}

// families are every family, in a fixed order that gives each its seed.
var families = []family{
	{kinds: []Kind{KindPartition, KindPacket}},   // network
	{kinds: []Kind{KindKill, KindPause}},         // process
	{kinds: []Kind{KindClock}, persistent: true}, // clock
}

// familyOf returns the index of k's family in families, or -1.
func familyOf(k Kind) int {
	return slices.IndexFunc(families, func(f family) bool { return slices.Contains(f.kinds, k) })
}

// Run injects faults until ctx ends, then heals everything (Heal). Each
// family of the enabled kinds (network: partition and packet; process:
// kill and pause; clock) runs its own schedule: a random fault of the
// family, the interval, its healing, the interval, and again. Clock
// offsets are not healed between faults, so the clock family acts every
// interval instead (bump, strobe or reset). The families start staggered
// by a share of the interval, so their faults overlap without starting
// together. Every action is recorded into sink as a nemesis invoke
// followed by an info. It returns Heal's error: a fault that could not be
// injected is recorded and logged, not fatal.
func (n *Nemesis) Run(ctx context.Context, sink func(history.Op)) error {
	n.mu.Lock()
	n.sink = sink
	n.mu.Unlock()
	var active []int
	for i, f := range n.families {
		if len(f.kinds) > 0 {
			active = append(active, i)
		}
	}
	var wg sync.WaitGroup
	for j, i := range active {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.runFamily(ctx, i, n.opts.Interval*time.Duration(j)/time.Duration(len(active)))
		}()
	}
	wg.Wait()
	return n.Heal(ctx)
}

// runFamily runs the schedule of family i, starting after the phase.
func (n *Nemesis) runFamily(ctx context.Context, i int, phase time.Duration) {
	if !sleep(ctx, phase) {
		return
	}
	for {
		if !sleep(ctx, n.opts.Interval) {
			return
		}
		// A fault that has begun is carried through even if the run ends
		// meanwhile (bounded by HealTimeout): cut off half-way it would be
		// recorded as failed and be half-installed; Heal follows anyway.
		ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.opts.HealTimeout)
		_ = n.injectFamily(ictx, i)
		cancel()
		if n.families[i].persistent {
			continue
		}
		if !sleep(ctx, n.opts.Interval) {
			return
		}
		// Healing is not cut short by the end of the run: a half-started
		// node would only need healing again.
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.opts.HealTimeout)
		_ = n.heal(hctx, n.families[i].kinds, false)
		cancel()
	}
}

// injectFamily starts a random fault of family i's enabled kinds.
func (n *Nemesis) injectFamily(ctx context.Context, i int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	kinds := n.families[i].kinds
	return n.injectLocked(ctx, kinds[n.rngs[i].Intn(len(kinds))])
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Inject starts one random fault of kind k now, recording it. The random
// draws come from the source of k's family.
func (n *Nemesis) Inject(ctx context.Context, k Kind) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.injectLocked(ctx, k)
}

func (n *Nemesis) injectLocked(ctx context.Context, k Kind) error {
	fi := familyOf(k)
	if fi < 0 {
		return fmt.Errorf("nemesis: unknown fault kind %q (valid: %s)", k, kindList())
	}
	rng := n.rngs[fi]
	switch k {
	case KindPartition:
		return n.startPartition(ctx, rng)
	case KindPacket:
		p := n.opts.Packet
		return n.act(ctx, FStartPacket, p, func(ctx context.Context) (any, error) {
			n.packet = &p // even on error: part may be installed, heal it
			return p, n.net.Shape(ctx, p)
		})
	case KindKill:
		targets := n.pick(true, rng)
		return n.act(ctx, FKill, targets, func(ctx context.Context) (any, error) {
			done, err := n.each(ctx, targets, n.cluster.Kill)
			n.killed = union(n.killed, targets) // a failed kill may still have killed
			return done, err
		})
	case KindPause:
		targets := n.pick(true, rng)
		return n.act(ctx, FPause, targets, func(ctx context.Context) (any, error) {
			done, err := n.each(ctx, targets, n.cluster.Pause)
			n.paused = union(n.paused, targets)
			return done, err
		})
	case KindClock:
		return n.clockFault(ctx, rng)
	}
	return fmt.Errorf("nemesis: unknown fault kind %q (valid: %s)", k, kindList())
}

// startPartition cuts the network by a random topology. When primaries is
// among the topologies (the leader is known), half of the partitions
// isolate the leader whatever the draw: in a leader-based store, deposing
// the leader is what exposes lost acknowledged writes and stale leases,
// and bridge and majorities-ring never depose it.
func (n *Nemesis) startPartition(ctx context.Context, rng *rand.Rand) error {
	topo := n.opts.Topologies[rng.Intn(len(n.opts.Topologies))]
	if slices.Contains(n.opts.Topologies, TopoPrimaries) && rng.Intn(2) == 0 {
		topo = TopoPrimaries
	}
	var g Grudge
	var err error
	// The leader as the partition begins: primaries isolates it, and the
	// clock faults aim at it while the partition cuts it off.
	var leader string
	var known bool
	if n.opts.Leader != nil {
		leader, known = n.opts.Leader(ctx)
	}
	if topo == TopoPrimaries {
		if known {
			g, err = Isolate(n.nodes, leader)
		}
		if !known || err != nil {
			// No known leader: isolate a random node instead.
			topo = TopoOne
			g, err = One(n.nodes, rng)
		}
	} else {
		f, _ := Partitioner(topo)
		g, err = f(n.nodes, rng)
	}
	if err != nil {
		n.opts.Logf("nemesis: partition %s: %v", topo, err)
		return fmt.Errorf("nemesis: partition %s: %w", topo, err)
	}
	cut := ""
	if known && !g.HearsMajority(n.nodes, leader) {
		cut = leader
	}
	return n.act(ctx, FStartPartition, g, func(ctx context.Context) (any, error) {
		n.partition, n.topology, n.cutLeader = g, topo, cut
		return g, n.net.Partition(ctx, g)
	})
}

// clockFault bumps the clocks of some nodes by random offsets (half the
// time), strobes them, or resets every clock. As in Jepsen, and as with
// real clock skew, offsets are not healed between faults: they stay until a
// reset or the end of the run, so a skewed clock meets the other faults.
// Only nodes that are up are shifted: a killed node has no process to
// shift (it gets its old offset back when it restarts), and a frozen one
// cannot be patched until it thaws. Half of the faults aim at the leader
// (clockTargets); those move its clock back (back) or strobe it behind
// its offset.
func (n *Nemesis) clockFault(ctx context.Context, rng *rand.Rand) error {
	choice := rng.Intn(4)
	if choice == 3 {
		if len(n.clocks) == 0 && len(n.strobed) == 0 {
			choice = 0 // nothing to reset: bump instead
		} else {
			return n.resetClocks(ctx)
		}
	}
	up := slices.DeleteFunc(slices.Clone(n.nodes), func(x string) bool {
		return slices.Contains(n.killed, x) || slices.Contains(n.paused, x)
	})
	targets, drawn, leader := n.clockTargets(ctx, up, rng)
	max := int64(n.opts.ClockMax / time.Millisecond)
	offset := func() time.Duration {
		// Uniform in [-max, max], at least 1 s away from 0 where max allows.
		ms := rng.Int63n(2*max+1) - max
		if ms > -1000 && ms < 1000 && max >= 1000 {
			ms = 1000 * (1 - 2*(ms&1))
		}
		return time.Duration(ms) * time.Millisecond
	}
	if choice < 2 {
		bump := map[string]time.Duration{}
		plan := map[string]string{}
		offsets := make([]time.Duration, drawn) // as many draws whoever is aimed at
		for i := range offsets {
			offsets[i] = offset()
		}
		if len(targets) == 0 {
			n.opts.Logf("nemesis: no running node to shift the clock of")
			return nil
		}
		for i, node := range targets {
			bump[node] = offsets[i]
			if leader {
				bump[node] = back(n.clocks[node], offsets[i], n.opts.ClockMax)
			}
			plan[node] = bump[node].String()
		}
		return n.act(ctx, FBumpClock, plan, func(ctx context.Context) (any, error) {
			if n.clocks == nil {
				n.clocks = map[string]time.Duration{}
			}
			for node, d := range bump {
				n.clocks[node] = d // even on error: part may be applied, reset it
			}
			return plan, n.opts.Clocks.SetClock(ctx, bump)
		})
	}
	delta := abs(offset())
	if leader {
		// The leader's clock dips behind its base every other period:
		// a deposed leader that still counts its lease sees it revived.
		delta = -delta
	}
	if len(targets) == 0 {
		n.opts.Logf("nemesis: no running node to strobe the clock of")
		return nil
	}
	period := 10 * time.Millisecond
	duration := min(n.opts.Interval, 10*time.Second)
	plan := map[string]any{"nodes": targets, "delta": delta.String(), "period": period.String(), "duration": duration.String()}
	return n.act(ctx, FStrobeClock, plan, func(ctx context.Context) (any, error) {
		n.strobed = union(n.strobed, targets)
		return plan, n.opts.Clocks.StrobeClock(ctx, targets, delta, period, duration)
	})
}

// back returns the offset a leader-aimed bump sets a clock at offset cur
// to: |d| behind cur, but not beyond -max. A leader's clock goes back
// because a lease holder whose clock falls behind holds its lease too
// long, while a jump forward only shortens it; forward jumps still reach
// the leader among random targets. A clock that cannot go a second
// further back (it is at -max already) jumps |d| forward instead, so that
// the next bump has room again.
func back(cur, d, max time.Duration) time.Duration {
	d = abs(d)
	next := cur - d
	if next < -max {
		next = -max
	}
	if cur-next < time.Second {
		next = min(cur+d, max)
	}
	return next
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// resetClocks sets every shifted clock back to true time, recording it.
func (n *Nemesis) resetClocks(ctx context.Context) error {
	plan := union(slices.Sorted(maps.Keys(n.clocks)), n.strobed)
	return n.act(ctx, FResetClock, plan, func(ctx context.Context) (any, error) {
		err := n.opts.Clocks.ResetClock(ctx)
		if err == nil {
			n.clocks, n.strobed = nil, nil
		}
		return plan, err
	})
}

// clockTargets chooses the nodes of a clock fault among up: one node, a
// minority or a majority of the cluster, and, when the leader is known and
// up, half of the time the leader alone (Jepsen's primaries target): its
// clock is the one a leader lease trusts, and skew elsewhere rarely
// matters to a leader-based store. While a partition keeps the node that
// led when it began away from a majority, that deposed leader is aimed at
// instead of the new one: it may still believe its lease, and a clock that
// jumps back stretches that lease over the new leader's writes. The random
// draws depend neither on whether the leader is known nor on which nodes
// are up, so a seed gives the same sequence of draws either way; drawn is
// the size of the random choice, for which the caller draws its offsets,
// and leader says the targets are the (deposed) leader alone.
func (n *Nemesis) clockTargets(ctx context.Context, up []string, rng *rand.Rand) (targets []string, drawn int, leader bool) {
	targets = n.pick(false, rng)
	drawn = len(targets)
	targets = slices.DeleteFunc(targets, func(x string) bool { return !slices.Contains(up, x) })
	if n.opts.Leader == nil {
		return targets, drawn, false
	}
	if rng.Intn(2) == 0 {
		if n.cutLeader != "" && slices.Contains(up, n.cutLeader) {
			return []string{n.cutLeader}, drawn, true
		}
		if l, ok := n.opts.Leader(ctx); ok && slices.Contains(up, l) {
			return []string{l}, drawn, true
		}
	}
	return targets, drawn, false
}

// pick chooses one node, a minority or a majority at random; with all,
// sometimes every node (a whole-cluster crash is what loses data that was
// acknowledged but never synced).
func (n *Nemesis) pick(all bool, rng *rand.Rand) []string {
	s := shuffled(n.nodes, rng)
	choices := 3
	if all {
		choices = 4
	}
	var k int
	switch rng.Intn(choices) {
	case 0:
		k = 1
	case 1:
		k = max(1, (len(s)-1)/2)
	case 2:
		k = len(s)/2 + 1
	default:
		k = len(s)
	}
	out := s[:k]
	slices.Sort(out)
	return out
}

// each runs f on every node concurrently; it returns the nodes it
// succeeded on and the joined errors.
func (n *Nemesis) each(ctx context.Context, nodes []string, f func(context.Context, string) error) ([]string, error) {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(ctx, node)
		}()
	}
	wg.Wait()
	done := []string{}
	for i, node := range nodes {
		if errs[i] == nil {
			done = append(done, node)
		}
	}
	return done, errors.Join(errs...)
}

func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// act records an invoke of f with value plan, runs do, and records an info
// with what do reports was done (and its error).
func (n *Nemesis) act(ctx context.Context, f string, plan any, do func(context.Context) (any, error)) error {
	start := n.opts.Clock()
	n.record(history.Op{Type: history.Invoke, F: f, Value: history.MustValue(plan), Time: start})
	t0 := time.Now()
	done, err := do(ctx)
	d := time.Since(t0)
	op := history.Op{Type: history.Info, F: f, Value: history.MustValue(done), Time: n.opts.Clock()}
	a := Action{F: f, Value: op.Value, Start: start, Duration: d}
	if err != nil {
		op.Error = oneLine(err)
		a.Error = op.Error
		n.opts.Logf("nemesis: %s %s failed after %v: %v", f, op.Value, d.Round(time.Millisecond), err)
	} else {
		n.opts.Logf("nemesis: %s %s in %v", f, op.Value, d.Round(time.Millisecond))
	}
	active := n.activeLocked()
	n.active.Store(&active)
	n.down.Store(int32(len(union(n.killed, n.paused))))
	n.record(op)
	n.amu.Lock()
	n.actions = append(n.actions, a)
	n.amu.Unlock()
	return err
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

func (n *Nemesis) record(op history.Op) {
	op.Process = history.NemesisProcess
	if n.sink != nil {
		n.sink(op)
	}
}

// Heal removes every active fault: it heals the partition and packet
// faults, resumes paused nodes and starts killed ones, recording each
// stop action. It is safe to call at any time and more than once, and runs
// with its own timeout even if ctx is already cancelled.
func (n *Nemesis) Heal(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.opts.HealTimeout)
	defer cancel()
	return n.heal(ctx, nil, true)
}

// heal stops the active faults of the given kinds; with all (the end of a
// run) it stops every fault, resets every clock and clears every network
// rule whether or not it knows of one. Clock offsets outlive the scheduled
// healing: only a reset or the end of the run removes them.
func (n *Nemesis) heal(ctx context.Context, kinds []Kind, all bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ctx.Err() != nil {
		// Run's context ended between the fault and its healing: Heal
		// (with its own deadline) follows.
		return ctx.Err()
	}
	var errs []error
	of := func(k Kind) bool { return all || slices.Contains(kinds, k) }
	if n.partition != nil && of(KindPartition) {
		g := n.partition
		errs = append(errs, n.act(ctx, FStopPartition, g, func(ctx context.Context) (any, error) {
			err := n.net.Partition(ctx, Grudge{})
			if err == nil {
				n.partition, n.topology, n.cutLeader = nil, "", ""
			}
			return g, err
		}))
	}
	if n.packet != nil && of(KindPacket) {
		p := *n.packet
		errs = append(errs, n.act(ctx, FStopPacket, p, func(ctx context.Context) (any, error) {
			err := n.net.Shape(ctx, Packet{})
			if err == nil {
				n.packet = nil
			}
			return p, err
		}))
	}
	if len(n.paused) > 0 && of(KindPause) {
		targets := n.paused
		errs = append(errs, n.act(ctx, FResume, targets, func(ctx context.Context) (any, error) {
			done, err := n.each(ctx, targets, n.cluster.Resume)
			n.paused = slices.DeleteFunc(n.paused, func(x string) bool { return slices.Contains(done, x) })
			return done, err
		}))
	}
	if len(n.killed) > 0 && of(KindKill) {
		targets := n.killed
		errs = append(errs, n.act(ctx, FStart, targets, func(ctx context.Context) (any, error) {
			done, err := n.each(ctx, targets, n.cluster.Start)
			n.killed = slices.DeleteFunc(n.killed, func(x string) bool { return slices.Contains(done, x) })
			return done, err
		}))
	}
	if all && (len(n.clocks) > 0 || len(n.strobed) > 0) {
		errs = append(errs, n.resetClocks(ctx))
	} else if all && n.opts.Clocks != nil {
		if err := n.opts.Clocks.ResetClock(ctx); err != nil {
			errs = append(errs, fmt.Errorf("reset clocks: %w", err))
		}
	}
	if all && n.net != nil {
		if err := n.net.HealNetwork(ctx); err != nil {
			errs = append(errs, fmt.Errorf("heal network: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Active describes the faults in force now, e.g. "partition majority",
// "kill n2,n4", "pause n1", "packet".
// It never waits for an action in progress.
func (n *Nemesis) Active() []string {
	if p := n.active.Load(); p != nil {
		return slices.Clone(*p)
	}
	return []string{}
}

func (n *Nemesis) activeLocked() []string {
	out := []string{}
	if n.partition != nil {
		out = append(out, "partition "+n.topology)
	}
	if n.packet != nil {
		out = append(out, "packet")
	}
	if len(n.killed) > 0 {
		out = append(out, "kill "+strings.Join(n.killed, ","))
	}
	if len(n.paused) > 0 {
		out = append(out, "pause "+strings.Join(n.paused, ","))
	}
	if len(n.clocks) > 0 {
		var c []string
		for _, node := range slices.Sorted(maps.Keys(n.clocks)) {
			c = append(c, fmt.Sprintf("%s%+.1fs", node, n.clocks[node].Seconds()))
		}
		out = append(out, "clock "+strings.Join(c, ","))
	}
	if len(n.strobed) > 0 {
		out = append(out, "clock strobe "+strings.Join(n.strobed, ","))
	}
	return out
}

// Nodes returns the nodes the nemesis acts on.
func (n *Nemesis) Nodes() []string { return slices.Clone(n.nodes) }

// Down returns how many nodes are killed or paused now. It never waits
// for an action in progress.
func (n *Nemesis) Down() int { return int(n.down.Load()) }

// Actions returns every action done so far with its timing.
func (n *Nemesis) Actions() []Action {
	n.amu.Lock()
	defer n.amu.Unlock()
	return slices.Clone(n.actions)
}
