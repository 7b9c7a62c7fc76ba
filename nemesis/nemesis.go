// Package nemesis decides which faults a test run suffers and when: network
// partitions computed from a grudge, packet faults, process kills and
// pauses, and clock shifts. Each family of faults alternates with healing
// on its own schedule, driven by a seeded random source; faults of
// different families overlap. Every action is recorded as a nemesis
// operation of the history.
//
// The package does not know how a fault is installed. It declares the
// small interfaces it needs: Cluster (process faults, which
// *docker.Cluster satisfies), Network (network faults, which the fault
// agent's controller in harness/netfault satisfies) and Clock (clock
// shifts, which harness/clockfault's controller satisfies).
package nemesis

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
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

// Packet is a netem-like fault on the traffic between nodes.
type Packet struct {
	// Nodes are the nodes whose packets to other nodes are shaped; empty
	// means every node.
	Nodes []string `json:"nodes,omitempty"`
	// Delay holds every packet back this long, plus or minus Jitter.
	Delay time.Duration `json:"-"`
	// Jitter is the maximal random deviation from Delay.
	Jitter time.Duration `json:"-"`
	// Loss, Duplicate, Reorder and Corrupt are percentages in [0, 100].
	// Reorder sends that share of packets at once, ahead of the delayed
	// ones.
	Loss      float64 `json:"loss,omitempty"`
	Duplicate float64 `json:"duplicate,omitempty"`
	Reorder   float64 `json:"reorder,omitempty"`
	Corrupt   float64 `json:"corrupt,omitempty"`
}

// DefaultPacket is the packet fault used when none is configured: every
// behaviour at a level that hurts without stopping a cluster outright.
var DefaultPacket = Packet{Delay: 100 * time.Millisecond, Jitter: 50 * time.Millisecond,
	Loss: 20, Duplicate: 10, Reorder: 20, Corrupt: 5}

// IsZero reports whether p shapes nothing.
func (p Packet) IsZero() bool {
	return p.Delay == 0 && p.Jitter == 0 && p.Loss == 0 && p.Duplicate == 0 && p.Reorder == 0 && p.Corrupt == 0
}

// MarshalJSON writes p with durations as strings ("100ms").
func (p Packet) MarshalJSON() ([]byte, error) {
	type plain Packet
	var v struct {
		plain
		Delay  string `json:"delay,omitempty"`
		Jitter string `json:"jitter,omitempty"`
	}
	v.plain = plain(p)
	if p.Delay != 0 {
		v.Delay = p.Delay.String()
	}
	if p.Jitter != 0 {
		v.Jitter = p.Jitter.String()
	}
	return json.Marshal(v)
}

// Kind is a class of fault the schedule can choose.
type Kind string

// The fault kinds of --nemesis.
const (
	KindPartition Kind = "partition"
	KindKill      Kind = "kill"
	KindPause     Kind = "pause"
	KindPacket    Kind = "packet"
	KindClock     Kind = "clock"
)

// Kinds lists every valid kind, in the order of --nemesis help.
var Kinds = []Kind{KindPartition, KindKill, KindPause, KindPacket, KindClock}

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
			return nil, fmt.Errorf("%q: empty fault kind (valid: %s, or none)", s, kindList())
		}
		if k == "none" {
			return nil, fmt.Errorf("%q: none cannot be combined with other kinds", s)
		}
		if !slices.Contains(Kinds, k) {
			return nil, fmt.Errorf("unknown fault kind %q (valid: %s, or none)", k, kindList())
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

func kindList() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}
