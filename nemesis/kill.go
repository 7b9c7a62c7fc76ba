package nemesis

import (
	"context"
	"math/rand"
	"slices"
	"strings"

	"github.com/jepsen-go/jepsen/history"
)

// KindKill sends SIGKILL to the process of one node, a minority, a
// majority or every node: kill, then start, with the nodes as the value.
const KindKill Kind = "kill"

// kill is the kill kind at work.
type kill struct {
	n      *Nemesis
	killed []string // perhaps killed, not started since
}

func newKill(n *Nemesis) (fault, error) { return &kill{n: n}, nil }

func (k *kill) inject(ctx context.Context, rng *rand.Rand) error {
	targets := k.n.pick(true, rng)
	return k.n.act(ctx, FKill, history.Fault{Kind: string(KindKill), Targets: targets},
		func(ctx context.Context) (history.Fault, error) {
			done, err := k.n.each(ctx, targets, k.n.cluster.Kill)
			k.killed = union(k.killed, targets) // a failed kill may still have killed
			return history.Fault{Kind: string(KindKill), Targets: done}, err
		})
}

func (k *kill) heal(ctx context.Context, all bool) error { return k.n.restart(ctx, &k.killed) }

func (k *kill) active() []string { return describeNodes(KindKill, k.killed) }

func (k *kill) down() []string { return k.killed }

// restart starts the nodes of *stopped again (Cluster.Start), recording a
// start, and leaves in *stopped those that did not start. The kinds that
// take a node's process down (kill, power-loss, corrupt) heal with it.
func (n *Nemesis) restart(ctx context.Context, stopped *[]string) error {
	if len(*stopped) == 0 {
		return nil
	}
	targets := *stopped
	return n.act(ctx, FStart, history.Fault{Targets: targets}, func(ctx context.Context) (history.Fault, error) {
		done, err := n.each(ctx, targets, n.cluster.Start)
		*stopped = slices.DeleteFunc(*stopped, func(x string) bool { return slices.Contains(done, x) })
		return history.Fault{Targets: done}, err
	})
}

// describeNodes is the Active line of a fault of kind k on nodes, e.g.
// "kill n2,n4"; nil without nodes.
func describeNodes(k Kind, nodes []string) []string {
	if len(nodes) == 0 {
		return nil
	}
	return []string{string(k) + " " + strings.Join(nodes, ",")}
}
