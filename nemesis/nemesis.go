// Package nemesis decides which faults a test run suffers and when: network
// partitions computed from a grudge, packet faults, process kills and
// pauses, clock shifts, and the opt-in durability faults power-loss and
// corrupt. Each family of faults alternates with healing on its own
// schedule, driven by a seeded random source; faults of different
// families overlap. Every action is recorded as a nemesis operation of the
// history, its value a history.Fault.
//
// Each fault kind is one small type in its own file (partition.go,
// packet.go, kill.go, pause.go, clock.go, powerloss.go, corrupt.go) that
// injects, heals, and says what is in force; registry.go lists them with
// their family. A new kind is one new file and one registry line.
//
// The package does not know how a fault is installed. It declares the
// small interfaces it needs: Cluster (process faults, which
// *docker.Cluster satisfies), Network (network faults, which the fault
// agent's controller in harness/netfault satisfies), Clock (clock
// shifts, which harness/clockfault's controller satisfies) and Disk
// (durability faults, for a filesystem that holds unsynced writes).
package nemesis

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"time"

	"github.com/jepsen-go/jepsen/history"
)

// Cluster is what the nemesis needs to kill, restart, pause and resume
// nodes.
type Cluster interface {
	// Nodes returns the node names, n1..nN.
	Nodes() []string
	// Kill sends SIGKILL to node's process.
	Kill(ctx context.Context, node string) error
	// Start starts a killed node again with the same data and waits until
	// it is ready.
	Start(ctx context.Context, node string) error
	// Pause freezes every process of node.
	Pause(ctx context.Context, node string) error
	// Resume thaws a paused node.
	Resume(ctx context.Context, node string) error
}

// Network is what the nemesis needs to cut and shape traffic between nodes.
// Each call replaces the previous state of the same kind.
type Network interface {
	// Partition makes every node drop the packets that come from the
	// nodes of its grudge; an empty grudge heals the partition.
	Partition(ctx context.Context, g Grudge) error
	// Shape applies p to the traffic between nodes; the zero Packet
	// heals packet faults.
	Shape(ctx context.Context, p Packet) error
	// HealNetwork removes every network fault.
	HealNetwork(ctx context.Context) error
}

// Grudge says, for each node, the nodes whose packets it drops. It is
// directional: {"n2": ["n1"]} cuts n1 -> n2 but not n2 -> n1. In the
// history it is written as {"n1":["n3","n4"],...}.
type Grudge map[string][]string

// Normalize returns g with each list sorted and deduplicated, and nodes
// with an empty list left out.
func (g Grudge) Normalize() Grudge {
	out := Grudge{}
	for n, from := range g {
		from = slices.Clone(from)
		slices.Sort(from)
		from = slices.Compact(from)
		if len(from) > 0 {
			out[n] = from
		}
	}
	return out
}

// Packet is a netem-like fault on the traffic between nodes (see
// history.Packet, which it is, so that the history records it as is).
type Packet = history.Packet

// DefaultPacket is the packet fault used when none is configured: every
// behaviour at a level that hurts without stopping a cluster outright.
var DefaultPacket = Packet{Delay: 100 * time.Millisecond, Jitter: 50 * time.Millisecond,
	Loss: 20, Duplicate: 10, Reorder: 20, Corrupt: 5}

// Kind is a class of fault the schedule can choose. Each kind is one type
// in its own file, listed in the registry (registry.go).
type Kind string

// Kinds lists the default mix of fault kinds, in the order of --nemesis
// help: every registered kind but the opt-in ones (power-loss, corrupt),
// which must be named on their own. AllKinds lists every kind.
var Kinds = defaultKinds()

// AllKinds returns every registered fault kind, the opt-in ones last, in
// registry order.
func AllKinds() []Kind {
	var def, opt []Kind
	for _, s := range specs() {
		if s.optIn {
			opt = append(opt, s.kind)
		} else {
			def = append(def, s.kind)
		}
	}
	return append(def, opt...)
}

func defaultKinds() []Kind {
	var out []Kind
	for _, s := range specs() {
		if !s.optIn {
			out = append(out, s.kind)
		}
	}
	return out
}

// Clock is what the nemesis needs to shift the clocks the nodes' processes
// see (not the host's).
type Clock interface {
	// SetClock sets the offset of each listed node's clock (0 = true
	// time); other nodes keep theirs.
	SetClock(ctx context.Context, offsets map[string]time.Duration) error
	// StrobeClock flips the nodes' clocks between their offset and the
	// offset plus delta (which may be negative) every period, for
	// duration, and returns at once.
	StrobeClock(ctx context.Context, nodes []string, delta, period, duration time.Duration) error
	// ResetClock sets every node's offset back to 0.
	ResetClock(ctx context.Context) error
}

// Disk is what the nemesis needs for durability faults: losing what a node
// has not synced, and damaging a stopped node's files. The node's data
// directory is served by something that can do both (harness/durafs).
type Disk interface {
	// PowerLoss stops node at once, as a power cut would: its process
	// dies, and every write to its data directory that was not made
	// durable (by fsync or fdatasync of the file, or sync or syncfs)
	// is lost. The node stays down until Cluster.Start.
	PowerLoss(ctx context.Context, node string) error
	// Corrupt damages one file of the data directory of node, which is
	// down: it flips bits in it or truncates it, and says what it did.
	// Every random choice (the file, among the files the store wrote
	// listed in a stable order; the offset; the kind) is drawn from rng,
	// so that a seed gives the same damage.
	Corrupt(ctx context.Context, node string, rng *rand.Rand) (history.Corruption, error)
}

// ParseKinds parses a --nemesis value: a comma-separated list of kinds, or
// "none" (or "") for no faults. An unknown kind gives a one-line error that
// names it and lists the valid ones (without the flag name, which the
// caller adds).
func ParseKinds(s string) ([]Kind, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil, nil
	}
	var out []Kind
	for _, part := range strings.Split(s, ",") {
		k := Kind(strings.TrimSpace(part))
		if k == "" {
			return nil, fmt.Errorf("%q: empty fault kind %s", s, validKinds())
		}
		if k == "none" {
			return nil, fmt.Errorf("%q: none cannot be combined with other kinds", s)
		}
		if _, ok := lookup(k); !ok {
			return nil, fmt.Errorf("unknown fault kind %q %s", k, validKinds())
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

// validKinds lists the valid kinds for an error message, e.g. "(valid:
// partition, kill, pause, packet, clock, or none), opt-in: power-loss,
// corrupt".
func validKinds() string {
	var def, opt []string
	for _, s := range specs() {
		if s.optIn {
			opt = append(opt, string(s.kind))
		} else {
			def = append(def, string(s.kind))
		}
	}
	out := "(valid: " + strings.Join(append(def, "or none"), ", ") + ")"
	if len(opt) > 0 {
		out += ", opt-in: " + strings.Join(opt, ", ")
	}
	return out
}
