package nemesis

import (
	"context"
	"math/rand"
	"slices"

	"github.com/jepsen-go/jepsen/history"
)

// KindPause freezes every process of one node, a minority, a majority or
// every node: pause, then resume, with the nodes as the value.
const KindPause Kind = "pause"

// pause is the pause kind at work.
type pause struct {
	n      *Nemesis
	paused []string // perhaps paused, not resumed since
}

func newPause(n *Nemesis) (fault, error) { return &pause{n: n}, nil }

func (k *pause) inject(ctx context.Context, rng *rand.Rand) error {
	targets := k.n.pick(true, rng)
	return k.n.act(ctx, FPause, history.Fault{Kind: string(KindPause), Targets: targets},
		func(ctx context.Context) (history.Fault, error) {
			done, err := k.n.each(ctx, targets, k.n.cluster.Pause)
			k.paused = union(k.paused, targets)
			return history.Fault{Kind: string(KindPause), Targets: done}, err
		})
}

func (k *pause) heal(ctx context.Context, all bool) error {
	if len(k.paused) == 0 {
		return nil
	}
	targets := k.paused
	return k.n.act(ctx, FResume, history.Fault{Kind: string(KindPause), Targets: targets},
		func(ctx context.Context) (history.Fault, error) {
			done, err := k.n.each(ctx, targets, k.n.cluster.Resume)
			k.paused = slices.DeleteFunc(k.paused, func(x string) bool { return slices.Contains(done, x) })
			return history.Fault{Kind: string(KindPause), Targets: done}, err
		})
}

func (k *pause) active() []string { return describeNodes(KindPause, k.paused) }

func (k *pause) down() []string { return k.paused }
