package nemesis

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand"
	"slices"

	"github.com/jepsen-go/jepsen/history"
)

// KindPartition cuts the network between nodes by a random topology
// (topology.go): start-partition, then stop-partition, with the grudge as
// the value.
const KindPartition Kind = "partition"

// partition is the partition kind at work.
type partition struct {
	n        *Nemesis
	grudge   Grudge // in force, nil if none
	topology string
}

func newPartition(n *Nemesis) (fault, error) {
	if n.net == nil {
		return nil, fmt.Errorf("nemesis: %s faults need a network fault installer", KindPartition)
	}
	return &partition{n: n}, nil
}

// partitionOptions fills in the default topologies (all of them; primaries
// only with a leader lookup) and checks the topologies asked for.
func partitionOptions(o *Options) error {
	if len(o.Topologies) == 0 {
		o.Topologies = []string{TopoOne, TopoMajority, TopoMajoritiesRing, TopoBridge}
		if o.Leader != nil {
			o.Topologies = append(o.Topologies, TopoPrimaries)
		}
	}
	for _, t := range o.Topologies {
		if t == TopoPrimaries {
			if o.Leader == nil {
				return fmt.Errorf("nemesis: topology primaries needs a leader lookup")
			}
			continue
		}
		if _, err := Partitioner(t); err != nil {
			return fmt.Errorf("nemesis: %w", err)
		}
	}
	return nil
}

// inject cuts the network by a random topology. When primaries is among
// the topologies (the leader is known), half of the partitions isolate
// the leader whatever the draw: in a leader-based store, deposing the
// leader is what exposes lost acknowledged writes and stale leases, and
// bridge and majorities-ring never depose it. The node that led as the
// partition began becomes the nemesis's cutLeader if the partition cuts
// it off from a majority.
func (p *partition) inject(ctx context.Context, rng *rand.Rand) error {
	n := p.n
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
		n.logf(slog.LevelInfo, "nemesis: partition %s: %v", topo, err)
		return fmt.Errorf("nemesis: partition %s: %w", topo, err)
	}
	cut := ""
	if known && !g.HearsMajority(n.nodes, leader) {
		cut = leader
	}
	plan := describePartition(g, topo)
	return n.act(ctx, FStartPartition, plan, func(ctx context.Context) (history.Fault, error) {
		p.grudge, p.topology, n.cutLeader = g, topo, cut
		return plan, n.net.Partition(ctx, g)
	})
}

// heal heals the partition in force.
func (p *partition) heal(ctx context.Context, all bool) error {
	if p.grudge == nil {
		return nil
	}
	n := p.n
	plan := describePartition(p.grudge, p.topology)
	return n.act(ctx, FStopPartition, plan, func(ctx context.Context) (history.Fault, error) {
		err := n.net.Partition(ctx, Grudge{})
		if err == nil {
			p.grudge, p.topology, n.cutLeader = nil, "", ""
		}
		return plan, err
	})
}

// describePartition is the history's description of partition g: the grudge, its
// topology, and the nodes that drop some packets (as DecodeFault reads it).
func describePartition(g Grudge, topo string) history.Fault {
	f := history.Fault{Kind: string(KindPartition), Grudge: g, Topology: topo}
	for _, node := range slices.Sorted(maps.Keys(g)) {
		if len(g[node]) > 0 {
			f.Targets = append(f.Targets, node)
		}
	}
	return f
}

func (p *partition) active() []string {
	if p.grudge == nil {
		return nil
	}
	return []string{"partition " + p.topology}
}

func (p *partition) down() []string { return nil }
