package nemesis

import (
	"context"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/history"
)

// flood is a throwaway fault kind, declared here and nowhere else: it
// "floods" one random node (a fake load generator, kept in memory), in a
// family of its own. That it runs in the scheduler with no edit outside
// this file shows what a new kind needs: one type and one registry line.
type flood struct {
	n       *Nemesis
	target  *floodTarget
	flooded []string
}

// floodTarget is the in-memory thing a flood acts on.
type floodTarget struct {
	mu      sync.Mutex
	flooded map[string]bool
	calls   int
}

func (f *flood) inject(ctx context.Context, rng *rand.Rand) error {
	node := f.n.nodes[rng.Intn(len(f.n.nodes))]
	plan := history.Fault{Kind: "flood", Targets: []string{node}}
	return f.n.act(ctx, "start-flood", plan, func(ctx context.Context) (history.Fault, error) {
		f.target.mu.Lock()
		defer f.target.mu.Unlock()
		f.target.flooded[node] = true
		f.target.calls++
		f.flooded = union(f.flooded, []string{node})
		return plan, nil
	})
}

func (f *flood) heal(ctx context.Context, all bool) error {
	if len(f.flooded) == 0 {
		return nil
	}
	plan := history.Fault{Kind: "flood", Targets: f.flooded}
	return f.n.act(ctx, "stop-flood", plan, func(ctx context.Context) (history.Fault, error) {
		f.target.mu.Lock()
		defer f.target.mu.Unlock()
		clear(f.target.flooded)
		f.flooded = nil
		return plan, nil
	})
}

func (f *flood) active() []string { return describeNodes("flood", f.flooded) }
func (f *flood) down() []string   { return nil }

// registerFlood registers the flood kind (the registry line) until the
// test ends, acting on target.
func registerFlood(t *testing.T, target *floodTarget) (unregister func()) {
	t.Helper()
	var once sync.Once
	un := register(kindSpec{kind: "flood", family: "flood", optIn: true,
		new: func(n *Nemesis) (fault, error) { return &flood{n: n, target: target}, nil }})
	unregister = func() { once.Do(un) }
	t.Cleanup(unregister)
	return unregister
}

func TestThrowawayKind(t *testing.T) {
	target := &floodTarget{flooded: map[string]bool{}}
	unregister := registerFlood(t, target)

	kinds, err := ParseKinds("flood,kill")
	if err != nil || !reflect.DeepEqual(kinds, []Kind{"flood", KindKill}) {
		t.Fatalf("ParseKinds(flood,kill) = %v, %v", kinds, err)
	}
	if slices.Contains(Kinds, "flood") || !slices.Contains(AllKinds(), "flood") {
		t.Errorf("an opt-in kind: Kinds %v, AllKinds %v", Kinds, AllKinds())
	}
	m := newMem(5)
	n, err := New(m, m, Options{Kinds: kinds, Interval: 2 * time.Millisecond, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	var log opLog
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := n.Run(ctx, log.add); err != nil {
		t.Fatalf("run: %v", err)
	}
	m.assertHealed(t)
	if len(target.flooded) != 0 || len(n.Active()) != 0 {
		t.Errorf("after the run: flooded %v, active %v", target.flooded, n.Active())
	}
	var floods, kills int
	open := false
	for i := 0; i+1 < len(log.ops); i += 2 {
		inv, info := log.ops[i], log.ops[i+1]
		if inv.F != info.F || inv.Type != history.Invoke || info.Type != history.Info || !info.Process.Nemesis {
			t.Fatalf("ops %d, %d: not a nemesis invoke/info pair: %+v %+v", i, i+1, inv, info)
		}
		switch inv.F {
		case "start-flood", "stop-flood":
			f, err := history.DecodeFault(info)
			if err != nil || f.Kind != "flood" || len(f.Targets) == 0 {
				t.Errorf("op %d: %s %s decodes as %+v, %v", i, info.F, info.Value, f, err)
			}
			if (inv.F == "start-flood") == open {
				t.Fatalf("op %d: %s while a flood is open: %v", i, inv.F, open)
			}
			open = inv.F == "start-flood"
			if open {
				floods++
			}
		case FKill:
			kills++
		}
	}
	if floods < 3 || kills < 3 || target.calls != floods {
		t.Errorf("%d floods (%d calls), %d kills in %d ops", floods, target.calls, kills, len(log.ops))
	}

	unregister()
	if _, err := ParseKinds("flood"); err == nil || !strings.Contains(err.Error(), `unknown fault kind "flood"`) {
		t.Errorf("after unregistering: %v", err)
	}
}

// TestNewKindKeepsOtherSchedules checks that a kind registered in a new
// family changes no draw of the families before it.
func TestNewKindKeepsOtherSchedules(t *testing.T) {
	seq := func(kinds []Kind) []string {
		m := newMem(5)
		n, err := New(m, m, Options{Kinds: kinds, Seed: 21, Clocks: m})
		if err != nil {
			t.Fatal(err)
		}
		var log opLog
		n.sink = log.add
		ctx := context.Background()
		for r := 0; r < 30; r++ {
			for i, f := range n.families {
				if len(f.kinds) == 0 {
					continue
				}
				_ = n.injectFamily(ctx, i)
				_ = n.heal(ctx, f.kinds, false)
			}
		}
		var out []string
		for _, op := range log.ops {
			if !strings.Contains(op.F, "flood") {
				out = append(out, op.F+" "+string(op.Value))
			}
		}
		return out
	}
	without := seq(Kinds)
	registerFlood(t, &floodTarget{flooded: map[string]bool{}})
	with := seq(append(slices.Clone(Kinds), "flood"))
	if !reflect.DeepEqual(with, without) {
		t.Errorf("registering a kind changed the others' schedule:\n%v\n%v", without, with)
	}
}

func TestRegisterRefusesMistakes(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec kindSpec
	}{
		{"twice", kindSpec{kind: KindKill, family: "process"}},
		{"mixed family", kindSpec{kind: "drift", family: "clock", persistent: false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("register(%+v) did not panic", tc.spec)
				}
			}()
			register(tc.spec)
		})
	}
}
