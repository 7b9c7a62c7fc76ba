package nemesis

import (
	"context"
	"fmt"
	"math/rand"

	"github.com/jepsen-go/jepsen/history"
)

// KindPowerLoss cuts the power of one node, a minority, a majority or
// every node (Disk.PowerLoss): each process dies at once and every write
// to its data directory that was not made durable is lost. Recorded as
// power-loss with the nodes ({"kind":"power-loss","nodes":[...]}); healed
// like kill, by a start of the nodes. Opt-in: it needs Options.Disk.
const KindPowerLoss Kind = "power-loss"

// powerLoss is the power-loss kind at work.
type powerLoss struct {
	n    *Nemesis
	lost []string // perhaps down, not started since
}

func newPowerLoss(n *Nemesis) (fault, error) {
	if n.opts.Disk == nil {
		return nil, fmt.Errorf("nemesis: %s faults need a disk fault installer (Options.Disk)", KindPowerLoss)
	}
	return &powerLoss{n: n}, nil
}

// inject cuts the power of random nodes; sometimes of every node, since a
// whole-cluster power cut is what loses data that was acknowledged by a
// quorum but synced by none.
func (p *powerLoss) inject(ctx context.Context, rng *rand.Rand) error {
	targets := p.n.pick(true, rng)
	return p.n.act(ctx, FPowerLoss, history.Fault{Kind: string(KindPowerLoss), Targets: targets},
		func(ctx context.Context) (history.Fault, error) {
			done, err := p.n.each(ctx, targets, p.n.opts.Disk.PowerLoss)
			p.lost = union(p.lost, targets) // a failed power cut may still have stopped the node
			return history.Fault{Kind: string(KindPowerLoss), Targets: done}, err
		})
}

func (p *powerLoss) heal(ctx context.Context, all bool) error { return p.n.restart(ctx, &p.lost) }

func (p *powerLoss) active() []string { return describeNodes(KindPowerLoss, p.lost) }

func (p *powerLoss) down() []string { return p.lost }
