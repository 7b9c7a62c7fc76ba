package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jepsen-go/jepsen/harness/clockfault"
	"github.com/jepsen-go/jepsen/harness/netfault"
	"github.com/jepsen-go/jepsen/history"
	"github.com/jepsen-go/jepsen/nemesis"
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
			Logf:  func(format string, args ...any) { r.log.Info(fmt.Sprintf(format, args...)) },
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
			Logf:  func(format string, args ...any) { r.log.Info(fmt.Sprintf(format, args...)) },
		})
		// Refuse to run rather than run with a silent no-op fault.
		if err := f.clock.Check(ctx); err != nil {
			f.clock.Close(ctx)
			return nil, trouble("clock faults cannot work here: %w", err)
		}
		clocks = f.clock
	}
	n, err := nemesis.New(r.cluster, network, nemesis.Options{
		Kinds:    kinds,
		Interval: r.cfg.NemesisInterval,
		Seed:     int64(r.cfg.Seed),
		Leader:   r.leader,
		Clocks:   clocks,
		ClockMax: r.cfg.ClockMax,
		Clock:    r.rec.Now,
		Logf:     func(format string, args ...any) { r.log.Info(fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		return nil, &TroubleError{Err: err}
	}
	f.n = n
	return f, nil
}

// leader asks the nodes in turn for the current leader (GET /leader),
// for the primaries partition topology.
func (r *run) leader(ctx context.Context) (string, bool) {
	for _, node := range r.cluster.Nodes() {
		if r.cluster.Endpoint(node) == "" {
			continue
		}
		if l, ok := r.client(node).Leader(ctx); ok {
			return l, true
		}
	}
	return "", false
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
