package nemesis

import (
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

func names(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("n%d", i+1)
	}
	return s
}

// hears returns the nodes x receives from under g (itself included).
func hears(g Grudge, nodes []string, x string) []string {
	var out []string
	for _, y := range nodes {
		if !slices.Contains(g[x], y) {
			out = append(out, y)
		}
	}
	return out
}

// checkWellFormed: no node holds a grudge against itself or a stranger,
// lists are sorted and unique, no empty lists.
func checkWellFormed(t *testing.T, g Grudge, nodes []string) {
	t.Helper()
	for x, from := range g {
		if !slices.Contains(nodes, x) {
			t.Errorf("grudge names unknown node %s", x)
		}
		if len(from) == 0 {
			t.Errorf("%s has an empty grudge list", x)
		}
		if !slices.IsSorted(from) || len(slices.Compact(slices.Clone(from))) != len(from) {
			t.Errorf("%s: list %v not sorted and unique", x, from)
		}
		for _, y := range from {
			if y == x {
				t.Errorf("%s drops its own packets", x)
			}
			if !slices.Contains(nodes, y) {
				t.Errorf("%s drops from unknown node %s", x, y)
			}
		}
	}
}

func symmetric(g Grudge) bool {
	for x, from := range g {
		for _, y := range from {
			if !slices.Contains(g[y], x) {
				return false
			}
		}
	}
	return true
}

func TestTopologies(t *testing.T) {
	for n := 3; n <= 9; n++ {
		nodes := names(n)
		for seed := int64(0); seed < 30; seed++ {
			rng := rand.New(rand.NewSource(seed))
			t.Run(fmt.Sprintf("n=%d/seed=%d", n, seed), func(t *testing.T) {
				// one: exactly one node hears only itself, the others
				// hear everyone but it.
				g, err := One(nodes, rng)
				if err != nil {
					t.Fatal(err)
				}
				checkWellFormed(t, g, nodes)
				var alone []string
				for _, x := range nodes {
					if len(hears(g, nodes, x)) == 1 {
						alone = append(alone, x)
					} else if len(hears(g, nodes, x)) != n-1 {
						t.Errorf("one: %s hears %v", x, hears(g, nodes, x))
					}
				}
				if len(alone) != 1 || !symmetric(g) {
					t.Errorf("one: isolated %v, symmetric %v: %v", alone, symmetric(g), g)
				}

				// majority: two components, sizes n/2+1 and the rest,
				// each node hears exactly its own component.
				g, err = Majority(nodes, rng)
				if err != nil {
					t.Fatal(err)
				}
				checkWellFormed(t, g, nodes)
				sizes := map[int]int{}
				for _, x := range nodes {
					sizes[len(hears(g, nodes, x))]++
				}
				if m := n/2 + 1; sizes[m] != m || sizes[n-m] != n-m || !symmetric(g) {
					t.Errorf("majority: component sizes %v: %v", sizes, g)
				}

				// majorities-ring: each node hears a majority, all
				// majorities differ.
				g, err = MajoritiesRing(nodes, rng)
				if err != nil {
					t.Fatal(err)
				}
				checkWellFormed(t, g, nodes)
				seen := map[string]string{}
				for _, x := range nodes {
					h := hears(g, nodes, x)
					if len(h) <= n/2 || !slices.Contains(h, x) {
						t.Errorf("majorities-ring: %s hears %v, not a majority with itself", x, h)
					}
					key := strings.Join(h, ",")
					if other, dup := seen[key]; dup {
						t.Errorf("majorities-ring: %s and %s hear the same majority %s", x, other, key)
					}
					seen[key] = x
				}
				if (n/2+1)%2 == 1 && !symmetric(g) {
					t.Errorf("majorities-ring with odd majority should be symmetric: %v", g)
				}

				// bridge: one node hears all and is heard by all; the
				// others split in two halves that cannot hear each
				// other.
				g, err = Bridge(nodes, rng)
				if err != nil {
					t.Fatal(err)
				}
				checkWellFormed(t, g, nodes)
				var bridges []string
				for _, x := range nodes {
					if len(g[x]) == 0 {
						bridges = append(bridges, x)
					}
				}
				if len(bridges) != 1 || !symmetric(g) {
					t.Fatalf("bridge: nodes that hear all: %v: %v", bridges, g)
				}
				b := bridges[0]
				for _, from := range g {
					if slices.Contains(from, b) {
						t.Errorf("bridge: someone drops the bridge %s: %v", b, g)
					}
				}
				h := n / 2 // halves of h and n-1-h nodes, each also hearing the bridge
				for _, x := range nodes {
					hx := hears(g, nodes, x)
					if x != b && (!slices.Contains(hx, b) || (len(hx) != h+1 && len(hx) != n-h)) {
						t.Errorf("bridge: %s hears %v", x, hx)
					}
				}
			})
		}
	}
}

func TestTopologiesDeterministic(t *testing.T) {
	for _, name := range []string{TopoOne, TopoMajority, TopoMajoritiesRing, TopoBridge} {
		f, err := Partitioner(name)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := f(names(5), rand.New(rand.NewSource(42)))
		b, _ := f(names(5), rand.New(rand.NewSource(42)))
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: same seed, different grudges %v and %v", name, a, b)
		}
	}
}

func TestTopologiesTooFewNodes(t *testing.T) {
	cases := []struct {
		name string
		n    int
	}{{TopoOne, 1}, {TopoMajority, 1}, {TopoMajoritiesRing, 2}, {TopoBridge, 2}}
	for _, tc := range cases {
		f, _ := Partitioner(tc.name)
		if _, err := f(names(tc.n), rand.New(rand.NewSource(1))); err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s with %d nodes: error %v, want one naming the topology", tc.name, tc.n, err)
		}
	}
	if _, err := Partitioner("star"); err == nil || !strings.Contains(err.Error(), `"star"`) {
		t.Errorf("unknown topology: %v", err)
	}
}

func TestIsolateAndFiveNodeExamples(t *testing.T) {
	g, err := Isolate(names(5), "n3")
	if err != nil {
		t.Fatal(err)
	}
	want := Grudge{"n3": {"n1", "n2", "n4", "n5"}, "n1": {"n3"}, "n2": {"n3"}, "n4": {"n3"}, "n5": {"n3"}}
	if !reflect.DeepEqual(g, want) {
		t.Errorf("isolate n3: %v, want %v", g, want)
	}
	if _, err := Isolate(names(3), "n9"); err == nil {
		t.Error("isolating an unknown node should fail")
	}
	// Bridge of 5: halves of 2, one bridge.
	g, _ = Bridge(names(5), rand.New(rand.NewSource(7)))
	var sizes []int
	for _, from := range g {
		sizes = append(sizes, len(from))
	}
	sort.Ints(sizes)
	if !reflect.DeepEqual(sizes, []int{2, 2, 2, 2}) {
		t.Errorf("bridge of 5: grudge sizes %v, want four nodes dropping 2 each: %v", sizes, g)
	}
}

func TestHearsMajority(t *testing.T) {
	nodes := []string{"n1", "n2", "n3", "n4", "n5"}
	isolated, _ := Isolate(nodes, "n2")
	cases := []struct {
		name string
		g    Grudge
		node string
		want bool
	}{
		{"no partition", Grudge{}, "n1", true},
		{"isolated node", isolated, "n2", false},
		{"the rest of an isolation", isolated, "n3", true},
		{"minority side", complete([]string{"n1", "n2"}, []string{"n3", "n4", "n5"}), "n1", false},
		{"majority side", complete([]string{"n1", "n2"}, []string{"n3", "n4", "n5"}), "n4", true},
		{"one way cuts count", Grudge{"n1": {"n2", "n3", "n4"}}, "n1", false},
		{"one way cuts the other way count", Grudge{"n2": {"n1"}, "n3": {"n1"}, "n4": {"n1"}}, "n1", false},
		{"two of four cut: still a majority", Grudge{"n1": {"n2"}, "n3": {"n1"}}, "n1", true},
		{"bridge half keeps the bridge", complete([]string{"n1", "n2"}, []string{"n4", "n5"}), "n1", true},
		{"not a node", Grudge{}, "n9", false},
	}
	for _, tc := range cases {
		if got := tc.g.HearsMajority(nodes, tc.node); got != tc.want {
			t.Errorf("%s: HearsMajority(%s) = %v, want %v", tc.name, tc.node, got, tc.want)
		}
	}
	// In a majorities ring every node hears a majority.
	for seed := int64(0); seed < 20; seed++ {
		g, err := MajoritiesRing(nodes, rand.New(rand.NewSource(seed)))
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range nodes {
			if !g.HearsMajority(nodes, x) {
				t.Errorf("seed %d: %s hears no majority in ring %v", seed, x, g)
			}
		}
	}
}
