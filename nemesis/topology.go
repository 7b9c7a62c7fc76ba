package nemesis

import (
	"fmt"
	"math/rand"
	"slices"
)

// Topology names, as recorded in the history and accepted by Topologies.
const (
	TopoOne            = "one"
	TopoMajority       = "majority"
	TopoMajoritiesRing = "majorities-ring"
	TopoBridge         = "bridge"
	TopoPrimaries      = "primaries"
)

// complete returns the grudge that cuts every node of a from every node of
// b, both ways.
func complete(a, b []string) Grudge {
	g := Grudge{}
	for _, x := range a {
		g[x] = append(g[x], b...)
	}
	for _, y := range b {
		g[y] = append(g[y], a...)
	}
	return g.Normalize()
}

func shuffled(nodes []string, rng *rand.Rand) []string {
	s := slices.Clone(nodes)
	rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return s
}

func without(nodes []string, x string) []string {
	return slices.DeleteFunc(slices.Clone(nodes), func(n string) bool { return n == x })
}

// HearsMajority reports whether node, under g, exchanges packets both ways
// with a majority of nodes (itself included): whether it can still take
// part in a quorum. A node that is not one of nodes hears no majority.
func (g Grudge) HearsMajority(nodes []string, node string) bool {
	if !slices.Contains(nodes, node) {
		return false
	}
	n := 0
	for _, y := range nodes {
		if y == node || !slices.Contains(g[node], y) && !slices.Contains(g[y], node) {
			n++
		}
	}
	return n > len(nodes)/2
}

// Isolate cuts node from every other node, both ways.
func Isolate(nodes []string, node string) (Grudge, error) {
	if !slices.Contains(nodes, node) {
		return nil, fmt.Errorf("isolate: %q is not a node", node)
	}
	if len(nodes) < 2 {
		return nil, fmt.Errorf("isolate: needs at least 2 nodes, have %d", len(nodes))
	}
	return complete([]string{node}, without(nodes, node)), nil
}

// One isolates one random node from all the others.
func One(nodes []string, rng *rand.Rand) (Grudge, error) {
	if len(nodes) < 2 {
		return nil, fmt.Errorf("%s: needs at least 2 nodes, have %d", TopoOne, len(nodes))
	}
	return Isolate(nodes, nodes[rng.Intn(len(nodes))])
}

// Majority splits the nodes at random into a majority and a minority that
// cannot talk to each other.
func Majority(nodes []string, rng *rand.Rand) (Grudge, error) {
	if len(nodes) < 2 {
		return nil, fmt.Errorf("%s: needs at least 2 nodes, have %d", TopoMajority, len(nodes))
	}
	s := shuffled(nodes, rng)
	m := len(s)/2 + 1
	return complete(s[:m], s[m:]), nil
}

// MajoritiesRing arranges the nodes in a random ring in which every node
// hears from a majority of nodes (itself included) centred on itself, and
// no two nodes hear from the same majority. With an odd majority size the
// cut is symmetric; otherwise some links are cut one way only.
func MajoritiesRing(nodes []string, rng *rand.Rand) (Grudge, error) {
	n := len(nodes)
	if n < 3 {
		return nil, fmt.Errorf("%s: needs at least 3 nodes, have %d", TopoMajoritiesRing, n)
	}
	s := shuffled(nodes, rng)
	m := n/2 + 1
	lo := (m - 1) / 2 // neighbours seen on the left; m-1-lo on the right
	g := Grudge{}
	for i, x := range s {
		sees := map[string]bool{}
		for k := -lo; k <= m-1-lo; k++ {
			sees[s[((i+k)%n+n)%n]] = true
		}
		for _, y := range s {
			if !sees[y] {
				g[x] = append(g[x], y)
			}
		}
	}
	return g.Normalize(), nil
}

// Bridge splits the nodes at random into two halves that cannot talk to
// each other, joined by one bridge node that talks to everyone.
func Bridge(nodes []string, rng *rand.Rand) (Grudge, error) {
	if len(nodes) < 3 {
		return nil, fmt.Errorf("%s: needs at least 3 nodes, have %d", TopoBridge, len(nodes))
	}
	s := shuffled(nodes, rng)
	h := len(s) / 2
	// s[h] is the bridge.
	return complete(s[:h], s[h+1:]), nil
}

// Topologies lists the partition topologies the schedule chooses from.
// primaries needs a leader lookup.
var Topologies = []string{TopoOne, TopoMajority, TopoMajoritiesRing, TopoBridge, TopoPrimaries}

// Partitioner computes the grudge of a named topology.
func Partitioner(name string) (func([]string, *rand.Rand) (Grudge, error), error) {
	switch name {
	case TopoOne:
		return One, nil
	case TopoMajority:
		return Majority, nil
	case TopoMajoritiesRing:
		return MajoritiesRing, nil
	case TopoBridge:
		return Bridge, nil
	}
	return nil, fmt.Errorf("unknown partition topology %q (valid: one, majority, majorities-ring, bridge, primaries)", name)
}
