package nemesis

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"sync"
)

// registry lists every fault kind, in the order of --nemesis help (the
// opt-in kinds last). A new kind is one file with its type and one line
// here.
//
// The order matters to reproducibility: a family's random source is
// seeded by the family's position (families appear in the order of their
// first kind here), and a family chooses among its enabled kinds in this
// order. Append new kinds and families; do not reorder.
var registry = []kindSpec{
	{kind: KindPartition, family: familyNetwork, new: newPartition, options: partitionOptions},
	{kind: KindKill, family: "process", new: newKill},
	{kind: KindPause, family: "process", new: newPause},
	{kind: KindPacket, family: familyNetwork, new: newPacket, options: packetOptions},
	{kind: KindClock, family: familyClock, persistent: true, new: newClock, options: clockOptions},
	{kind: KindPowerLoss, family: "process", optIn: true, new: newPowerLoss},
	{kind: KindCorrupt, family: "process", optIn: true, new: newCorrupt},
}

// kindSpec is one line of the registry.
type kindSpec struct {
	kind Kind
	// family names the kinds that take turns: one fault of a family is in
	// force at a time, and faults of different families overlap.
	family string
	// persistent kinds are not healed between faults: their faults stay
	// until the kind itself undoes them or the run ends, and their
	// family acts every interval. A family's kinds agree on it.
	persistent bool
	// optIn kinds are left out of Kinds, the default mix.
	optIn bool
	// new returns the kind's fault for a nemesis, or why the options do
	// not allow it (a missing installer). It is called by New once the
	// options are complete.
	new func(n *Nemesis) (fault, error)
	// options, if set, fills in the kind's defaults in the options and
	// checks them. New calls it whether or not the kind is enabled.
	options func(o *Options) error
}

// fault is one fault kind at work in one nemesis: it injects faults of its
// kind, heals them, and says what is in force. Its methods are called with
// the nemesis's lock held, one at a time, so it needs no lock of its own;
// it records what it does with Nemesis.act.
type fault interface {
	// inject starts one fault, drawing every random choice from rng (the
	// source of the kind's family).
	inject(ctx context.Context, rng *rand.Rand) error
	// heal stops the kind's faults in force, if any. With all (the end
	// of the run), it also undoes what outlives the scheduled healing
	// (clock offsets).
	heal(ctx context.Context, all bool) error
	// active describes the faults in force, e.g. "kill n2,n4"; empty if
	// none.
	active() []string
	// down lists the nodes the kind has taken down (killed, paused, ...):
	// they run no process that another fault could reach.
	down() []string
}

var registryMu sync.RWMutex

// specs returns the registry.
func specs() []kindSpec {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return slices.Clone(registry)
}

// lookup returns the registry line of k.
func lookup(k Kind) (kindSpec, bool) {
	for _, s := range specs() {
		if s.kind == k {
			return s, true
		}
	}
	return kindSpec{}, false
}

// register appends s to the registry, as a line of the registry would, and
// returns the function that removes it again. It panics on a programming
// error: a kind registered twice, or a family whose kinds disagree on
// persistence. Tests use it to add a throwaway kind.
func register(s kindSpec) (unregister func()) {
	registryMu.Lock()
	defer registryMu.Unlock()
	for _, r := range registry {
		if r.kind == s.kind {
			panic(fmt.Sprintf("nemesis: fault kind %q registered twice", s.kind))
		}
		if r.family == s.family && r.persistent != s.persistent {
			panic(fmt.Sprintf("nemesis: fault kind %q: family %s would mix persistent and healed kinds", s.kind, s.family))
		}
	}
	registry = append(registry, s)
	return func() {
		registryMu.Lock()
		defer registryMu.Unlock()
		registry = slices.DeleteFunc(registry, func(r kindSpec) bool { return r.kind == s.kind })
	}
}

// familySpecs groups the registry into families, in the order of their
// first kind; each lists its kinds in registry order.
func familySpecs() []family {
	var out []family
	for _, s := range specs() {
		i := slices.IndexFunc(out, func(f family) bool { return f.name == s.family })
		if i < 0 {
			i = len(out)
			out = append(out, family{name: s.family, persistent: s.persistent})
		}
		out[i].kinds = append(out[i].kinds, s.kind)
	}
	return out
}
