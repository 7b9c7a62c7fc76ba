package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Nemesis op names (the f of a nemesis op), as recorded in the history.
const (
	FStartPartition = "start-partition"
	FStopPartition  = "stop-partition"
	FStartPacket    = "start-packet"
	FStopPacket     = "stop-packet"
	FKill           = "kill"
	FPause          = "pause"
	FResume         = "resume"
	// FStart restarts nodes, whatever took them down: kill, power-loss
	// or corrupt.
	FStart       = "start"
	FBumpClock   = "bump-clock"
	FStrobeClock = "strobe-clock"
	FResetClock  = "reset-clock"
	FPowerLoss   = "power-loss"
	FCorrupt     = "corrupt"
)

// Fault is the typed description of a nemesis op's Value: what the nemesis
// set out to do (on the invoke) or did (on the info). Which fields are set
// depends on the kind; a field that does not apply is zero.
//
// In the history, the ops that existed before this type keep the value
// they always had (see EncodeFault): a grudge for start-partition and
// stop-partition, a node list for kill, start, pause, resume and
// reset-clock, the packet fault for start-packet and stop-packet, node ->
// offset for bump-clock, and {nodes, delta, period, duration} for
// strobe-clock. Every other nemesis op, power-loss and corrupt included,
// carries this struct's own JSON, whose keys follow those older values
// ("nodes", durations as strings).
type Fault struct {
	// Kind is the fault kind the op injects or heals: partition, packet,
	// kill, pause, clock, power-loss, corrupt, or a kind added later.
	// It is empty for start, which restarts nodes whatever took them
	// down (kill, power-loss or corrupt).
	Kind string `json:"kind,omitempty"`
	// Targets are the nodes acted on: killed, paused, restarted, whose
	// clock was shifted, or that are cut off from some node (partition);
	// for a packet fault, its nodes (empty: every node).
	Targets []string `json:"nodes,omitempty"`
	// Grudge says, for each node, the nodes whose packets it drops
	// (partition).
	Grudge map[string][]string `json:"grudge,omitempty"`
	// Topology names the shape of a partition (one, majority,
	// majorities-ring, bridge, primaries). The grudge value of
	// start-partition does not carry it, so it is empty when decoded
	// from a history.
	Topology string `json:"topology,omitempty"`
	// Packet is the packet fault (packet).
	Packet *Packet `json:"packet,omitempty"`
	// Offsets are the clock offsets from true time set by a bump, in
	// nanoseconds (clock).
	Offsets map[string]int64 `json:"offsets,omitempty"`
	// Strobe is a clock strobe of Targets (clock).
	Strobe *Strobe `json:"strobe,omitempty"`
	// Corruption is the damage done to a stopped node's file (corrupt).
	Corruption *Corruption `json:"corruption,omitempty"`
}

// Packet is a netem-like fault on the traffic between nodes. In JSON its
// durations are strings ("100ms") and zero fields are left out.
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

// IsZero reports whether p shapes nothing.
func (p Packet) IsZero() bool {
	return p.Delay == 0 && p.Jitter == 0 && p.Loss == 0 && p.Duplicate == 0 && p.Reorder == 0 && p.Corrupt == 0
}

// packetJSON is Packet as written: its durations as strings.
type packetJSON struct {
	plainPacket
	Delay  string `json:"delay,omitempty"`
	Jitter string `json:"jitter,omitempty"`
}

// plainPacket is Packet without its methods.
type plainPacket Packet

// MarshalJSON writes p with durations as strings ("100ms").
func (p Packet) MarshalJSON() ([]byte, error) {
	v := packetJSON{plainPacket: plainPacket(p)}
	if p.Delay != 0 {
		v.Delay = p.Delay.String()
	}
	if p.Jitter != 0 {
		v.Jitter = p.Jitter.String()
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *Packet) UnmarshalJSON(b []byte) error {
	var v packetJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	out := Packet(v.plainPacket)
	var err error
	if out.Delay, err = parseDuration("delay", v.Delay); err != nil {
		return err
	}
	if out.Jitter, err = parseDuration("jitter", v.Jitter); err != nil {
		return err
	}
	*p = out
	return nil
}

// Strobe flips node clocks between their offset and the offset plus Delta
// every Period, for Duration. In JSON its durations are strings.
type Strobe struct {
	// Delta is the second offset, relative to the node's offset; it may
	// be negative.
	Delta time.Duration
	// Period is the time between flips.
	Period time.Duration
	// Duration is how long the strobe lasts.
	Duration time.Duration
}

// strobeJSON is a Strobe as written.
type strobeJSON struct {
	Delta    string `json:"delta"`
	Duration string `json:"duration"`
	Period   string `json:"period"`
}

// MarshalJSON writes s with durations as strings ("-5s").
func (s Strobe) MarshalJSON() ([]byte, error) {
	return json.Marshal(strobeJSON{Delta: s.Delta.String(), Duration: s.Duration.String(), Period: s.Period.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Strobe) UnmarshalJSON(b []byte) error {
	var v strobeJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	return s.set(v)
}

func (s *Strobe) set(v strobeJSON) error {
	var out Strobe
	var err error
	if out.Delta, err = parseDuration("delta", v.Delta); err != nil {
		return err
	}
	if out.Period, err = parseDuration("period", v.Period); err != nil {
		return err
	}
	if out.Duration, err = parseDuration("duration", v.Duration); err != nil {
		return err
	}
	*s = out
	return nil
}

// The kinds of Corruption.
const (
	// CorruptBitFlip flips bits in a file, which keeps its size.
	CorruptBitFlip = "bitflip"
	// CorruptTruncate cuts a file short.
	CorruptTruncate = "truncate"
)

// Corruption is the damage done to one file of a node's data directory
// while the node was down.
type Corruption struct {
	// File is the path of the file, relative to the data directory.
	File string `json:"file"`
	// Offset is, for a bit flip, the first byte changed; for a truncation,
	// the new size.
	Offset int64 `json:"offset"`
	// Kind is CorruptBitFlip or CorruptTruncate.
	Kind string `json:"kind"`
	// Length is, for a bit flip, how many bytes from Offset had bits
	// flipped; for a truncation, how many bytes were cut off.
	Length int64 `json:"length,omitempty"`
}

// shape is how a nemesis op's Value is written.
type shape int

const (
	shapeObject  shape = iota // Fault's own JSON
	shapeGrudge               // {"n1":["n3","n4"],...}
	shapeNodes                // ["n1","n2"]
	shapePacket               // Packet
	shapeOffsets              // {"n1":"-5s",...}
	shapeStrobe               // {"delta":"-5s","duration":"10s","nodes":["n1"],"period":"10ms"}
)

// legacy are the nemesis ops whose values predate Fault, with their kind
// and shape. Other ops are written as a Fault object.
var legacy = map[string]struct {
	kind  string
	shape shape
}{
	FStartPartition: {"partition", shapeGrudge},
	FStopPartition:  {"partition", shapeGrudge},
	FStartPacket:    {"packet", shapePacket},
	FStopPacket:     {"packet", shapePacket},
	FKill:           {"kill", shapeNodes},
	FStart:          {"", shapeNodes},
	FPause:          {"pause", shapeNodes},
	FResume:         {"pause", shapeNodes},
	FBumpClock:      {"clock", shapeOffsets},
	FStrobeClock:    {"clock", shapeStrobe},
	FResetClock:     {"clock", shapeNodes},
}

// EncodeFault returns the Value of a nemesis op named f that describes
// fault. An op that predates Fault gets the value it always had (see
// Fault), built from the fields that apply to it; any other op gets the
// JSON of fault itself.
func EncodeFault(f string, fault Fault) json.RawMessage {
	switch legacy[f].shape {
	case shapeGrudge:
		return MustValue(fault.Grudge)
	case shapeNodes:
		return MustValue(fault.Targets)
	case shapePacket:
		return MustValue(fault.Packet)
	case shapeOffsets:
		plan := make(map[string]string, len(fault.Offsets))
		for node, ns := range fault.Offsets {
			plan[node] = time.Duration(ns).String()
		}
		return MustValue(plan)
	case shapeStrobe:
		var s Strobe
		if fault.Strobe != nil {
			s = *fault.Strobe
		}
		return MustValue(struct {
			Delta    string   `json:"delta"`
			Duration string   `json:"duration"`
			Nodes    []string `json:"nodes"`
			Period   string   `json:"period"`
		}{s.Delta.String(), s.Duration.String(), fault.Targets, s.Period.String()})
	}
	return MustValue(fault)
}

// DecodeFault reads the Value of a nemesis op as a Fault: the values that
// predate Fault (see Fault) by their op name, any other as a Fault object.
// Kind comes from the op name for the older values (empty for start), and
// Targets are filled in from the grudge (nodes that drop some packets),
// the packet fault's nodes and the offsets' nodes. A null value gives a
// Fault with only its Kind. The error, one line, says what is wrong with
// the value.
func DecodeFault(op Op) (Fault, error) {
	l, known := legacy[op.F]
	out := Fault{Kind: l.kind}
	if IsNull(op.Value) {
		return out, nil
	}
	bad := func(want string, err error) (Fault, error) {
		return Fault{}, fmt.Errorf("%s value %s is not %s: %v", printable(op.F), oneLineValue(op.Value), want, err)
	}
	if !known {
		if err := json.Unmarshal(op.Value, &out); err != nil {
			return bad("a fault object", err)
		}
		return out, nil
	}
	switch l.shape {
	case shapeGrudge:
		if err := json.Unmarshal(op.Value, &out.Grudge); err != nil {
			return bad("a grudge (node -> nodes it drops)", err)
		}
		for _, node := range slices.Sorted(maps.Keys(out.Grudge)) {
			if len(out.Grudge[node]) > 0 {
				out.Targets = append(out.Targets, node)
			}
		}
	case shapeNodes:
		if err := json.Unmarshal(op.Value, &out.Targets); err != nil {
			return bad("a node list", err)
		}
	case shapePacket:
		out.Packet = &Packet{}
		if err := json.Unmarshal(op.Value, out.Packet); err != nil {
			return bad("a packet fault", err)
		}
		out.Targets = slices.Clone(out.Packet.Nodes)
	case shapeOffsets:
		var plan map[string]string
		if err := json.Unmarshal(op.Value, &plan); err != nil {
			return bad("node -> clock offset", err)
		}
		out.Offsets = make(map[string]int64, len(plan))
		for _, node := range slices.Sorted(maps.Keys(plan)) {
			d, err := parseDuration(node, plan[node])
			if err != nil {
				return bad("node -> clock offset", err)
			}
			out.Offsets[node] = int64(d)
			out.Targets = append(out.Targets, node)
		}
	case shapeStrobe:
		var v struct {
			strobeJSON
			Nodes []string `json:"nodes"`
		}
		if err := json.Unmarshal(op.Value, &v); err != nil {
			return bad("a clock strobe", err)
		}
		out.Targets = v.Nodes
		out.Strobe = &Strobe{}
		if err := out.Strobe.set(v.strobeJSON); err != nil {
			return bad("a clock strobe", err)
		}
	}
	return out, nil
}

// printable returns s, quoted if it holds a character that does not print
// (a newline, ...).
func printable(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return strconv.Quote(s)
	}
	return s
}

// oneLineValue returns the start of the JSON value v on one line.
func oneLineValue(v json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return strconv.Quote(truncate(v, 60))
	}
	return printable(truncate(b.Bytes(), 60))
}

// parseDuration reads a duration written as a string ("1.5s"); empty is 0.
func parseDuration(what, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: bad duration %s", printable(what), strconv.Quote(s))
	}
	return d, nil
}
