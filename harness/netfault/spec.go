// Package netfault is the fault agent: code that runs inside one node's
// network namespace and programs the kernel so that the node drops packets
// from chosen peers (a partition) or delays, loses, duplicates, reorders and
// corrupts the packets it sends to chosen peers (packet faults).
//
// Drops are an nftables table of our own (named "jepsen") with an input chain
// that drops packets whose source address is a grudged peer: the fault is
// directional and touches only traffic between nodes, never the harness's
// client traffic (which arrives from the Docker bridge gateway). Packet faults
// queue the packets sent to the target peers to this process with NFQUEUE and
// release them late, twice, altered or never, the way netem would. (The
// kernel this project runs on has no sch_netem; NFQUEUE is available on any
// kernel with nftables.)
//
// The agent runs as `jepsen netfault serve` in a sidecar container that joins
// the node's network namespace with NET_ADMIN only; `jepsen netfault apply
// JSON` and `jepsen netfault clear`, run in the same sidecar with docker exec,
// hand it the new rule set. Controller does all that for a whole cluster and
// re-installs the rules after a node restarts.
package netfault

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Spec is the complete set of faults of one node. Applying a Spec replaces
// whatever was installed before; the zero Spec means no fault.
type Spec struct {
	// DropFrom lists the peers whose packets this node drops (IPv4).
	DropFrom []netip.Addr `json:"drop_from,omitempty"`
	// Packet, if set, shapes the packets this node sends to Packet.Targets.
	Packet *Packet `json:"packet,omitempty"`
}

// Packet describes netem-like faults on the packets sent to Targets.
// Percentages are in [0, 100].
type Packet struct {
	// Targets are the peers (IPv4) whose traffic from this node is shaped.
	Targets []netip.Addr `json:"targets"`
	// Delay holds every packet back this long ...
	Delay Duration `json:"delay,omitempty"`
	// Jitter ... plus or minus a uniformly random amount up to this.
	Jitter Duration `json:"jitter,omitempty"`
	// Loss is the percentage of packets dropped.
	Loss float64 `json:"loss,omitempty"`
	// Duplicate is the percentage of packets sent twice.
	Duplicate float64 `json:"duplicate,omitempty"`
	// Reorder is the percentage of packets sent at once, ahead of the
	// delayed ones (meaningful only with a Delay, as in netem).
	Reorder float64 `json:"reorder,omitempty"`
	// Corrupt is the percentage of packets with one bit flipped.
	Corrupt float64 `json:"corrupt,omitempty"`
}

// Duration is a time.Duration written in JSON as a Go duration string
// ("100ms").
type Duration time.Duration

// MarshalJSON writes d as a string such as "150ms".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts a duration string ("100ms") or a number of
// nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("bad duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration must be a string such as \"100ms\", got %.40s", b)
	}
	*d = Duration(n)
	return nil
}

// MaxDelay bounds Delay+Jitter: a packet held longer than this is a bug in
// the caller, not a fault worth injecting.
const MaxDelay = 10 * time.Second

// Validate reports the first thing wrong with s, in one line.
func (s *Spec) Validate() error {
	for _, a := range s.DropFrom {
		if !a.Is4() {
			return fmt.Errorf("drop_from: %v is not an IPv4 address", a)
		}
	}
	if p := s.Packet; p != nil {
		if len(p.Targets) == 0 {
			return fmt.Errorf("packet: no targets")
		}
		for _, a := range p.Targets {
			if !a.Is4() {
				return fmt.Errorf("packet.targets: %v is not an IPv4 address", a)
			}
		}
		if p.Delay < 0 || p.Jitter < 0 {
			return fmt.Errorf("packet: negative delay or jitter")
		}
		if time.Duration(p.Delay+p.Jitter) > MaxDelay {
			return fmt.Errorf("packet: delay+jitter %v exceeds %v", time.Duration(p.Delay+p.Jitter), MaxDelay)
		}
		for _, f := range []struct {
			name string
			v    float64
		}{{"loss", p.Loss}, {"duplicate", p.Duplicate}, {"reorder", p.Reorder}, {"corrupt", p.Corrupt}} {
			if !(f.v >= 0 && f.v <= 100) {
				return fmt.Errorf("packet.%s: %v is not a percentage in [0, 100]", f.name, f.v)
			}
		}
	}
	return nil
}

// IsZero reports whether s installs no fault at all.
func (s *Spec) IsZero() bool {
	return len(s.DropFrom) == 0 && s.Packet == nil
}

// Equal reports whether s and o install the same faults.
func (s Spec) Equal(o Spec) bool {
	if !slices.Equal(sorted(s.DropFrom), sorted(o.DropFrom)) {
		return false
	}
	if (s.Packet == nil) != (o.Packet == nil) {
		return false
	}
	if s.Packet == nil {
		return true
	}
	a, b := *s.Packet, *o.Packet
	if !slices.Equal(sorted(a.Targets), sorted(b.Targets)) {
		return false
	}
	return a.Delay == b.Delay && a.Jitter == b.Jitter && a.Loss == b.Loss &&
		a.Duplicate == b.Duplicate && a.Reorder == b.Reorder && a.Corrupt == b.Corrupt
}

func sorted(a []netip.Addr) []netip.Addr {
	a = slices.Clone(a)
	slices.SortFunc(a, func(x, y netip.Addr) int { return x.Compare(y) })
	return slices.Compact(a)
}

// ParseSpec decodes and validates a Spec from JSON. Unknown fields are an
// error, so that a typo does not silently install nothing.
func ParseSpec(data []byte) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("fault spec: %w", err)
	}
	if dec.More() {
		return Spec{}, fmt.Errorf("fault spec: trailing data after the JSON object")
	}
	if err := s.Validate(); err != nil {
		return Spec{}, fmt.Errorf("fault spec: %w", err)
	}
	return s, nil
}
