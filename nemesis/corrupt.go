package nemesis

import (
	"context"
	"fmt"
	"math/rand"
	"slices"

	"github.com/jepsen-go/jepsen/history"
)

// KindCorrupt damages the files of one node while it is down: it kills the
// node (Cluster.Kill), flips bits in or truncates one file of its data
// directory (Disk.Corrupt), and leaves it down until the healing starts it
// again, as kill does. One node at a time, so that a store which detects
// the damage and refuses to start leaves a majority running. Recorded as
// corrupt with the node and the damage:
// {"kind":"corrupt","nodes":["n2"],"corruption":{"file":"raft.db","offset":4096,"kind":"bitflip","length":1}}.
// Opt-in: it needs Options.Disk.
const KindCorrupt Kind = "corrupt"

// corrupt is the corrupt kind at work.
type corrupt struct {
	n       *Nemesis
	stopped []string // perhaps down, not started since
	damage  map[string]history.Corruption
}

func newCorrupt(n *Nemesis) (fault, error) {
	if n.opts.Disk == nil {
		return nil, fmt.Errorf("nemesis: %s faults need a disk fault installer (Options.Disk)", KindCorrupt)
	}
	return &corrupt{n: n, damage: map[string]history.Corruption{}}, nil
}

func (c *corrupt) inject(ctx context.Context, rng *rand.Rand) error {
	n := c.n
	node := n.nodes[rng.Intn(len(n.nodes))]
	// The disk draws from a source of its own, seeded from the family's,
	// so that how much it draws does not change the family's schedule.
	drng := rand.New(rand.NewSource(rng.Int63()))
	plan := history.Fault{Kind: string(KindCorrupt), Targets: []string{node}}
	return n.act(ctx, FCorrupt, plan, func(ctx context.Context) (history.Fault, error) {
		done := history.Fault{Kind: string(KindCorrupt), Targets: []string{}}
		err := n.cluster.Kill(ctx, node)
		c.stopped = union(c.stopped, []string{node}) // a failed kill may still have killed
		if err != nil {
			// The node may still run: damaging its files under it would
			// test nothing a store promises.
			return done, err
		}
		done.Targets = []string{node}
		d, err := n.opts.Disk.Corrupt(ctx, node, drng)
		if err != nil {
			return done, fmt.Errorf("corrupt %s: %w", node, err)
		}
		c.damage[node] = d
		done.Corruption = &d
		return done, nil
	})
}

func (c *corrupt) heal(ctx context.Context, all bool) error {
	err := c.n.restart(ctx, &c.stopped)
	for node := range c.damage {
		if !slices.Contains(c.stopped, node) {
			delete(c.damage, node)
		}
	}
	return err
}

// active says, e.g., "corrupt n2 raft.db".
func (c *corrupt) active() []string {
	var out []string
	for _, node := range c.stopped {
		s := "corrupt " + node
		if d, ok := c.damage[node]; ok {
			s += " " + d.File
		}
		out = append(out, s)
	}
	return out
}

func (c *corrupt) down() []string { return c.stopped }
