package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jepsen-go/jepsen/harness/clockfault"
	"github.com/jepsen-go/jepsen/harness/netfault"
	"github.com/jepsen-go/jepsen/history"
	"github.com/jepsen-go/jepsen/nemesis"
	"github.com/jepsen-go/jepsen/targets"
)

// nemesisRunner is what a run needs of the fault schedule.
type nemesisRunner interface {
	// Run injects and heals faults until ctx ends.
	Run(ctx context.Context)
	// Heal removes every fault; safe to call at any time.
	Heal(ctx context.Context) error
	// Active names the faults in effect, for the status line.
	Active() []string
	// Actions is the record of what was done, for test.json.
	Actions() any
}

// kindNames joins kinds as --nemesis takes them ("none" for none).
func kindNames(kinds []nemesis.Kind) string {
	if len(kinds) == 0 {
		return "none"
	}
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ",")
}

// parseFaults parses --nemesis.
func parseFaults(s string) ([]nemesis.Kind, error) {
	kinds, err := nemesis.ParseKinds(s)
	if err != nil {
		return nil, fmt.Errorf("--nemesis: %w", err)
	}
	return kinds, nil
}

// faults runs the nemesis schedule of a run, recording its ops.
type faults struct {
	n     *nemesis.Nemesis
	ctl   *netfault.Controller   // nil without network faults
	clock *clockfault.Controller // nil without clock faults
	rec   *Recorder
	m     *metrics
}

// newNemesis returns the schedule of the given fault kinds, or nil for
// none. Network faults get an agent sidecar per node, started here so the
// first fault is installed at once.
func (r *run) newNemesis(ctx context.Context, kinds []nemesis.Kind) (nemesisRunner, error) {
	if len(kinds) == 0 {
		return nil, nil
	}
	f := &faults{rec: r.rec, m: r.metrics}
	var network nemesis.Network
	if slices.Contains(kinds, nemesis.KindPartition) || slices.Contains(kinds, nemesis.KindPacket) {
		image, err := r.selfImage(ctx)
		if err != nil {
			return nil, err
		}
		f.ctl = netfault.NewController(r.cluster, netfault.ControllerOptions{
			Image: image,
			Log:   r.log,
		})
		if err := f.ctl.Prepare(ctx); err != nil {
			return nil, trouble("start the network fault agents: %w", err)
		}
		network = f.ctl
	}
	var clocks nemesis.Clock
	if slices.Contains(kinds, nemesis.KindClock) {
		image, err := r.selfImage(ctx)
		if err != nil {
			return nil, err
		}
		f.clock = clockfault.NewController(r.cluster, clockfault.ControllerOptions{
			Image: image,
			Log:   r.log,
		})
		// Refuse to run rather than run with a silent no-op fault; the
		// default mix goes on without clock faults, and says so.
		if err := f.clock.Check(ctx); err != nil {
			f.clock.Close(ctx)
			if !r.defaultFaults {
				return nil, trouble("clock faults cannot work here: %w", err)
			}
			r.progressf("jepsen: warning: no clock faults in this run: they cannot work here (%v)", err)
			f.clock = nil
			kinds = slices.DeleteFunc(slices.Clone(kinds), func(k nemesis.Kind) bool { return k == nemesis.KindClock })
			r.cfg.Nemesis = kindNames(kinds)
			r.meta.Config.Nemesis = r.cfg.Nemesis
		} else {
			clocks = f.clock
		}
	}
	n, err := nemesis.New(r.cluster, network, nemesis.Options{
		Kinds:    kinds,
		Interval: r.cfg.NemesisInterval,
		Seed:     int64(r.cfg.Seed),
		Leader:   r.leader,
		Clocks:   clocks,
		ClockMax: r.cfg.ClockMax,
		Clock:    r.rec.Now,
		Logger:   r.log,
		Disk:     r.diskFaults(),
	})
	if err != nil {
		return nil, &TroubleError{Err: err}
	}
	f.n = n
	return f, nil
}

// leaderTimeout bounds a leader lookup: a paused node never answers.
const leaderTimeout = time.Second

// leader asks the nodes for the current leader (GET /leader), for the
// primaries partition topology and for aiming clock faults (askLeader).
func (r *run) leader(ctx context.Context) (string, bool) {
	var nodes []string
	for _, node := range r.cluster.Nodes() {
		if r.cluster.Endpoint(node) != "" {
			nodes = append(nodes, node)
		}
	}
	return askLeader(ctx, nodes, len(r.cluster.Nodes()), leaderTimeout, func(ctx context.Context, node string) (string, bool) {
		c, err := r.client(node)
		if err != nil {
			return "", false
		}
		if lc, ok := c.(targets.LeaderConn); ok {
			return lc.Leader(ctx)
		}
		return "", false
	})
}

// askLeader asks every node at once who leads and returns the leader a
// majority of the total nodes names, as soon as they have. Otherwise, once
// every node has answered or timeout has passed (a paused node holds its
// answer forever), it returns the leader named most often, ties going to
// the one named by the earlier node; false if none was named. Asking all at
// once, not in turn, keeps a frozen node from stalling the nemesis; the
// majority keeps an isolated old leader that still believes it leads from
// being taken for the leader.
func askLeader(ctx context.Context, nodes []string, total int, timeout time.Duration,
	ask func(ctx context.Context, node string) (string, bool)) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type answer struct {
		i      int
		leader string
		ok     bool
	}
	answers := make(chan answer, len(nodes))
	for i, node := range nodes {
		go func() {
			l, ok := ask(ctx, node)
			answers <- answer{i, l, ok}
		}()
	}
	votes := map[string]int{}
	first := map[string]int{} // the earliest node that named each leader
wait:
	for range nodes {
		var a answer
		select {
		case a = <-answers:
		case <-ctx.Done():
			break wait
		}
		if !a.ok {
			continue
		}
		votes[a.leader]++
		if f, seen := first[a.leader]; !seen || a.i < f {
			first[a.leader] = a.i
		}
		if votes[a.leader] > total/2 {
			return a.leader, true
		}
	}
	best := ""
	for l, v := range votes {
		if best == "" || v > votes[best] || v == votes[best] && first[l] < first[best] {
			best = l
		}
	}
	return best, best != ""
}

func (f *faults) record(op history.Op) {
	f.rec.Record(&op)
	if f.m != nil && op.Type == history.Info {
		f.m.faults.Set(float64(len(f.n.Active())))
		f.m.nodesUp.Set(float64(len(f.n.Nodes()) - f.n.Down()))
	}
}

func (f *faults) Run(ctx context.Context) { f.n.Run(ctx, f.record) }

func (f *faults) Heal(ctx context.Context) error {
	err := f.n.Heal(ctx)
	if f.ctl != nil {
		err = errors.Join(err, f.ctl.Close(ctx))
	}
	if f.clock != nil {
		err = errors.Join(err, f.clock.Close(ctx))
	}
	return err
}

func (f *faults) Active() []string { return f.n.Active() }
func (f *faults) Actions() any     { return f.n.Actions() }

// diskFaults is the nemesis's Disk: the filesystem helper, or nil when the
// run has no durability faults.
func (r *run) diskFaults() nemesis.Disk {
	if r.disk == nil {
		return nil
	}
	return r.disk
}
