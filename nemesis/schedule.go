package nemesis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jepsen-go/jepsen/history"
)

// Nemesis f names, as recorded in the history (see history.Fault for
// their values).
const (
	FStartPartition = history.FStartPartition
	FStopPartition  = history.FStopPartition
	FKill           = history.FKill
	FStart          = history.FStart
	FPause          = history.FPause
	FResume         = history.FResume
	FStartPacket    = history.FStartPacket
	FStopPacket     = history.FStopPacket
	FBumpClock      = history.FBumpClock
	FStrobeClock    = history.FStrobeClock
	FResetClock     = history.FResetClock
	FPowerLoss      = history.FPowerLoss
	FCorrupt        = history.FCorrupt
)

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
	// Logger receives one line per action with its latency (Info, or
	// Warn if it failed); nil leaves it to Logf.
	Logger *slog.Logger
	// Logf receives the same lines when Logger is nil; nil discards.
	// Deprecated: use Logger.
	Logf func(format string, args ...any)
	// Clocks shifts node clocks; required by the clock kind.
	Clocks Clock
	// ClockMax bounds clock offsets, forward or back, and strobe swings
	// (default DefaultClockMax).
	ClockMax time.Duration
	// Disk loses unsynced writes and damages files; required by the
	// power-loss and corrupt kinds.
	Disk Disk
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
	// faults are the enabled kinds at work, used under mu.
	faults map[Kind]fault

	mu   sync.Mutex // serialises actions
	sink func(history.Op)
	// cutLeader is the node that led when the active partition began, if
	// the partition cut it off from a majority: a deposed leader that may
	// still believe its lease. The partition kind sets it, the clock kind
	// aims at it.
	cutLeader string

	active atomic.Pointer[[]string] // activeLocked, published after each action
	down   atomic.Int32             // nodes down, published likewise

	amu     sync.Mutex
	actions []Action
}

// New returns a nemesis for the cluster and network. net may be nil if no
// network fault kind is enabled. It refuses a kind whose installer is
// missing from the options (a network for partition and packet, Clocks for
// clock, Disk for power-loss and corrupt).
func New(cluster Cluster, net Network, opts Options) (*Nemesis, error) {
	if cluster == nil {
		return nil, errors.New("nemesis: no cluster")
	}
	for _, k := range opts.Kinds {
		if _, ok := lookup(k); !ok {
			return nil, fmt.Errorf("nemesis: unknown fault kind %q %s", k, validKinds())
		}
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.HealTimeout <= 0 {
		opts.HealTimeout = DefaultHealTimeout
	}
	specs := specs()
	for _, s := range specs {
		if s.options != nil {
			if err := s.options(&opts); err != nil {
				return nil, err
			}
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
	n := &Nemesis{cluster: cluster, net: net, opts: opts, nodes: nodes, faults: map[Kind]fault{}}
	for _, s := range specs {
		if !slices.Contains(opts.Kinds, s.kind) {
			continue
		}
		f, err := s.new(n)
		if err != nil {
			return nil, err
		}
		n.faults[s.kind] = f
	}
	for i, f := range familySpecs() {
		f.kinds = slices.DeleteFunc(f.kinds, func(k Kind) bool { return !slices.Contains(opts.Kinds, k) })
		n.families = append(n.families, f)
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
// nor partitioned and shaped at once. The registry says which kind
// belongs to which family: network (partition, packet), process (kill,
// pause, power-loss, corrupt), clock.
type family struct {
	name string
	// kinds are the family's kinds (in a nemesis: the enabled ones), in
	// registry order.
	kinds []Kind
	// persistent faults (clock offsets) are not healed between faults:
	// they stay until a reset or the end of the run, and the family acts
	// every interval.
	persistent bool
}

// familyOf returns the index of k's family in n.families, or -1.
func (n *Nemesis) familyOf(k Kind) int {
	s, ok := lookup(k)
	if !ok {
		return -1
	}
	return slices.IndexFunc(n.families, func(f family) bool { return f.name == s.family })
}

// Run injects faults until ctx ends, then heals everything (Heal). Each
// family of the enabled kinds (network: partition and packet; process:
// kill, pause, power-loss and corrupt; clock) runs its own schedule: a
// random fault of the family, the interval, its healing, the interval,
// and again, the first fault after a warm-up (Warmup). Clock offsets are
// not healed between faults, so the clock family acts every interval
// instead (bump, strobe or reset). The families start staggered by a
// share of the interval, so their faults overlap without starting
// together. Every action is recorded into sink
// as a nemesis invoke followed by an info. It returns Heal's error: a
// fault that could not be injected is recorded and logged, not fatal.
func (n *Nemesis) Run(ctx context.Context, sink func(history.Op)) error {
	n.mu.Lock()
	n.sink = sink
	n.mu.Unlock()
	var active []int
	var names []string
	for i, f := range n.families {
		if len(f.kinds) > 0 {
			active = append(active, i)
			names = append(names, f.name)
		}
	}
	first := firstFaults(names, n.opts.Interval)
	var wg sync.WaitGroup
	for j, i := range active {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.runFamily(ctx, i, first[j])
		}()
	}
	wg.Wait()
	return n.Heal(ctx)
}

// runFamily runs the schedule of family i, whose first fault starts after
// first.
func (n *Nemesis) runFamily(ctx context.Context, i int, first time.Duration) {
	if !sleep(ctx, first) {
		return
	}
	for {
		// A fault that has begun is carried through even if the run ends
		// meanwhile (bounded by HealTimeout): cut off half-way it would be
		// recorded as failed and be half-installed; Heal follows anyway.
		ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.opts.HealTimeout)
		_ = n.injectFamily(ictx, i)
		cancel()
		if !sleep(ctx, n.opts.Interval) {
			return
		}
		if n.families[i].persistent {
			continue
		}
		// Healing is not cut short by the end of the run: a half-started
		// node would only need healing again.
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.opts.HealTimeout)
		_ = n.heal(hctx, n.families[i].kinds, false)
		cancel()
		if !sleep(ctx, n.opts.Interval) {
			return
		}
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
// draws come from the source of k's family. k must be enabled.
func (n *Nemesis) Inject(ctx context.Context, k Kind) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.injectLocked(ctx, k)
}

func (n *Nemesis) injectLocked(ctx context.Context, k Kind) error {
	fi := n.familyOf(k)
	if fi < 0 {
		return fmt.Errorf("nemesis: unknown fault kind %q %s", k, validKinds())
	}
	f, ok := n.faults[k]
	if !ok {
		return fmt.Errorf("nemesis: fault kind %s is not enabled", k)
	}
	return f.inject(ctx, n.rngs[fi])
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
// with what do reports was done (and its error). Values are written by
// history.EncodeFault. Fault kinds call it for every action, with the
// lock held.
func (n *Nemesis) act(ctx context.Context, f string, plan history.Fault, do func(context.Context) (history.Fault, error)) error {
	start := n.opts.Clock()
	n.record(history.Op{Type: history.Invoke, F: f, Value: history.EncodeFault(f, plan), Time: start})
	t0 := time.Now()
	done, err := do(ctx)
	d := time.Since(t0)
	op := history.Op{Type: history.Info, F: f, Value: history.EncodeFault(f, done), Time: n.opts.Clock()}
	a := Action{F: f, Value: op.Value, Start: start, Duration: d}
	if err != nil {
		op.Error = oneLine(err)
		a.Error = op.Error
		n.logf(slog.LevelWarn, "nemesis: %s %s failed after %v: %v", f, op.Value, d.Round(time.Millisecond), err)
	} else {
		n.logf(slog.LevelInfo, "nemesis: %s %s in %v", f, op.Value, d.Round(time.Millisecond))
	}
	active := n.activeLocked()
	n.active.Store(&active)
	n.down.Store(int32(len(n.downLocked())))
	n.record(op)
	n.amu.Lock()
	n.actions = append(n.actions, a)
	n.amu.Unlock()
	return err
}

// logf writes one line to the Logger at level, or to Logf.
func (n *Nemesis) logf(level slog.Level, format string, args ...any) {
	if n.opts.Logger != nil {
		n.opts.Logger.Log(context.Background(), level, fmt.Sprintf(format, args...))
		return
	}
	n.opts.Logf(format, args...)
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

func (n *Nemesis) record(op history.Op) {
	op.Process = history.NemesisProcess
	if n.sink != nil {
		n.sink(op)
	}
}

// Heal removes every active fault: it heals the partition and packet
// faults, resumes paused nodes and starts the nodes that were killed or
// lost power, recording each stop action, and resets every clock. It is
// safe to call at any time and more than once, and runs with its own
// timeout even if ctx is already cancelled.
func (n *Nemesis) Heal(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.opts.HealTimeout)
	defer cancel()
	return n.heal(ctx, nil, true)
}

// heal stops the active faults of the given kinds, family by family in
// registry order; with all (the end of a run) it stops every fault,
// resets every clock and clears every network rule whether or not it
// knows of one. Clock offsets outlive the scheduled healing: only a reset
// or the end of the run removes them.
func (n *Nemesis) heal(ctx context.Context, kinds []Kind, all bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ctx.Err() != nil {
		// Run's context ended between the fault and its healing: Heal
		// (with its own deadline) follows.
		return ctx.Err()
	}
	var errs []error
	for _, fam := range n.families {
		for _, k := range fam.kinds {
			if all || slices.Contains(kinds, k) {
				errs = append(errs, n.faults[k].heal(ctx, all))
			}
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
// "kill n2,n4", "pause n1", "packet", "clock n1-3.0s".
// It never waits for an action in progress.
func (n *Nemesis) Active() []string {
	if p := n.active.Load(); p != nil {
		return slices.Clone(*p)
	}
	return []string{}
}

func (n *Nemesis) activeLocked() []string {
	out := []string{}
	n.eachFault(func(f fault) { out = append(out, f.active()...) })
	return out
}

// downLocked returns the nodes some fault has taken down, sorted.
func (n *Nemesis) downLocked() []string {
	var out []string
	n.eachFault(func(f fault) { out = union(out, f.down()) })
	return out
}

// eachFault calls do for every enabled kind, family by family in registry
// order.
func (n *Nemesis) eachFault(do func(fault)) {
	for _, fam := range n.families {
		for _, k := range fam.kinds {
			do(n.faults[k])
		}
	}
}

// Nodes returns the nodes the nemesis acts on.
func (n *Nemesis) Nodes() []string { return slices.Clone(n.nodes) }

// Down returns how many nodes are down now (killed, paused, without power
// or corrupted). It never waits for an action in progress.
func (n *Nemesis) Down() int { return int(n.down.Load()) }

// Actions returns every action done so far with its timing.
func (n *Nemesis) Actions() []Action {
	n.amu.Lock()
	defer n.amu.Unlock()
	return slices.Clone(n.actions)
}
