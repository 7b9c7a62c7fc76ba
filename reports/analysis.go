package reports

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jepsen-go/jepsen/history"
)

// opPoint is one completed client operation, for the plots.
type opPoint struct {
	call, done int64 // ns since the test started
	typ        history.Type
}

// nemesisRow is one nemesis action: an invoke and its info.
type nemesisRow struct {
	F      string
	Start  int64 // invoke time
	End    int64 // info time; -1 if it never completed
	Plan   json.RawMessage
	Done   json.RawMessage
	Error  string
	Failed bool // the info carries an error
}

// faultSpan is a fault in effect during [Start, End): shaded in the plots.
type faultSpan struct {
	Kind   string // partition, kill, pause, packet, power-loss, corrupt, or the f of another nemesis
	Label  string // short: "partition n1 n2 | n3 n4 n5"
	Start  int64
	End    int64
	Healed bool // false if it was still in effect at the end of the history
	nodes  map[string]bool
}

// nodeSpan is a state of one node during [Start, End).
type nodeSpan struct {
	Node   string
	State  string // killed, paused, partitioned, packet, clock, strobe, power lost, corrupted
	Detail string // "cut off from n3 n4 n5", "clock -12.3s", "clock strobe +28.9s", "corrupted: wal/1.log bitflip at 4096"
	Start  int64
	End    int64
}

// text describes the state for a reader: the detail of a partition, a
// clock offset or a corruption ("corrupted: wal/1.log bitflip at 4096"),
// else the state's name.
func (s nodeSpan) text() string {
	switch s.State {
	case "partitioned", "clock", "strobe", "corrupted":
		return s.Detail
	}
	return s.State
}

// analysis is what the report needs from a history besides the checker's
// result, gathered in one pass.
type analysis struct {
	points    []opPoint
	dangling  int // client invocations that never completed
	end       int64
	clientOps int
	rows      []nemesisRow
	faults    []faultSpan
	nodeSpans []nodeSpan
	nodes     []string
	timeless  bool // the history has no times: Time is the position (history.TimelessStep apart)
}

// pendingInvoke is what analyze keeps of an invocation in flight.
type pendingInvoke struct {
	time    int64
	nemesis bool
	value   json.RawMessage // a nemesis action's plan
}

// analyze reads a history from next (which returns io.EOF at its end) and
// gathers latencies, nemesis actions, faults and node states. nodes are
// the node names known from test.json.
func analyze(next func() (history.Op, error), nodes []string) (*analysis, error) {
	a := &analysis{}
	var pairing history.Pairing[pendingInvoke]
	known := map[string]bool{}
	for _, n := range nodes {
		known[n] = true
	}
	for {
		op, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		a.end = max(a.end, op.Time)
		if op.Node != "" {
			known[op.Node] = true
		}
		if op.Type == history.Invoke {
			pi := pendingInvoke{time: op.Time, nemesis: op.Process.Nemesis}
			if pi.nemesis {
				pi.value = op.Value
			} else {
				a.clientOps++
			}
			if prev, dangling := pairing.Invoke(op.Process, op.F, pi); dangling {
				a.endUnfinished(prev)
			}
			continue
		}
		inv, paired := pairing.Complete(op.Process, op.F)
		if op.Process.Nemesis {
			row := nemesisRow{F: op.F, Start: op.Time, End: op.Time, Done: op.Value, Error: op.Error, Failed: op.Error != ""}
			if paired {
				row.Start, row.Plan = inv.V.time, inv.V.value
			}
			a.rows = append(a.rows, row)
			continue
		}
		if paired {
			a.points = append(a.points, opPoint{call: inv.V.time, done: op.Time, typ: op.Type})
		}
	}
	for _, inv := range pairing.Dangling() {
		a.endUnfinished(inv)
	}
	a.buildFaults(known)
	for n := range known {
		a.nodes = append(a.nodes, n)
	}
	sortNodes(a.nodes)
	return a, nil
}

// endUnfinished records an invocation that never completed (dangling):
// a nemesis action as a row that did not complete, a client op in the
// dangling count.
func (a *analysis) endUnfinished(inv history.Invocation[pendingInvoke]) {
	if inv.V.nemesis {
		a.rows = append(a.rows, nemesisRow{F: inv.F, Start: inv.V.time, End: -1, Plan: inv.V.value})
	} else {
		a.dangling++
	}
}

// sortNodes sorts node names naturally: n2 before n10.
func sortNodes(ns []string) {
	sort.Slice(ns, func(i, j int) bool {
		pi, ni := splitNum(ns[i])
		pj, nj := splitNum(ns[j])
		if pi != pj {
			return pi < pj
		}
		if ni != nj {
			return ni < nj
		}
		return ns[i] < ns[j]
	})
}

func splitNum(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	n, err := strconv.Atoi(s[i:])
	if err != nil {
		return s, -1
	}
	return s[:i], n
}

// describeGrudge summarises a partition: "n1 n2 | n3 n4 n5" when the
// nodes fall into groups that cannot talk to each other, otherwise a
// sentence about a partial partition.
func describeGrudge(g map[string][]string, nodes []string) string {
	drops := func(a, b string) bool { return slices.Contains(g[a], b) }
	all := slices.Clone(nodes)
	for n, ds := range g {
		all = append(all, n)
		all = append(all, ds...)
	}
	sortNodes(all)
	all = slices.Compact(all)
	// Components of "can talk both ways".
	comp := map[string]int{}
	var groups [][]string
	for _, n := range all {
		if _, ok := comp[n]; ok {
			continue
		}
		id := len(groups)
		groups = append(groups, nil)
		stack := []string{n}
		comp[n] = id
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			groups[id] = append(groups[id], x)
			for _, y := range all {
				if _, seen := comp[y]; !seen && !drops(x, y) && !drops(y, x) {
					comp[y] = id
					stack = append(stack, y)
				}
			}
		}
	}
	if len(groups) > 1 {
		parts := make([]string, len(groups))
		for i, gr := range groups {
			sortNodes(gr)
			parts[i] = strings.Join(gr, " ")
		}
		return strings.Join(parts, " | ")
	}
	return "partial: every node still reaches some others"
}

// Node states of the node-state timeline, by the fault kind that causes
// them; a kind not named here shows as a state of its own name.
var stateOfKind = map[string]string{
	"partition":        "partitioned",
	"packet":           "packet",
	"kill":             "killed",
	"pause":            "paused",
	history.FPowerLoss: "power lost",
	history.FCorrupt:   "corrupted",
	"clock":            "clock",
}

// stateOf returns the node state that a fault of kind puts a node in.
func stateOf(kind string) string {
	if st, ok := stateOfKind[kind]; ok {
		return st
	}
	return kind
}

// decodeRow returns the typed description of a nemesis row (what was
// done, else what was planned) and the kind of fault it starts or ends. A
// value that is not what its op name promises (a Jepsen nemesis's own
// value, say) gives a Fault with only the kind the op name implies; the
// kind of an op that history does not know is its name without start- or
// stop-.
func decodeRow(r nemesisRow) (history.Fault, string) {
	v := r.Done
	if history.IsNull(v) {
		v = r.Plan
	}
	op := history.Op{Type: history.Info, Process: history.NemesisProcess, F: r.F, Value: v}
	f, err := history.DecodeFault(op)
	if err != nil {
		op.Value = nil
		f, _ = history.DecodeFault(op)
	}
	kind := f.Kind
	if kind == "" {
		kind = strings.TrimPrefix(strings.TrimPrefix(r.F, "start-"), "stop-")
	}
	return f, kind
}

// heals reports whether the nemesis op f ends faults rather than starting
// one: stop-..., resume and reset-clock. start, which restarts nodes, and
// Jepsen's stop are handled apart (faultBuilder.restart).
func heals(f string) bool {
	return strings.HasPrefix(f, "stop-") || f == history.FResume || f == history.FResetClock
}

// faultBuilder turns nemesis rows into fault spans and node states.
type faultBuilder struct {
	a         *analysis
	known     map[string]bool
	allNodes  []string
	openFault map[string]int            // kind -> index into a.faults of the open span
	openNode  map[string]map[string]int // state -> node -> index into a.nodeSpans
	down      map[string]bool           // kinds that took nodes down: a start of the nodes ends them
}

func (b *faultBuilder) startNode(node, state, detail string, t int64) {
	b.known[node] = true
	if b.openNode[state] == nil {
		b.openNode[state] = map[string]int{}
	}
	if _, ok := b.openNode[state][node]; ok {
		return
	}
	b.openNode[state][node] = len(b.a.nodeSpans)
	b.a.nodeSpans = append(b.a.nodeSpans, nodeSpan{Node: node, State: state, Detail: detail, Start: t, End: -1})
}

func (b *faultBuilder) endNode(node, state string, t int64) {
	if i, ok := b.openNode[state][node]; ok {
		b.a.nodeSpans[i].End = t
		delete(b.openNode[state], node)
	}
}

// endState ends state on every node in it.
func (b *faultBuilder) endState(state string, t int64) {
	for n := range maps(b.openNode[state]) {
		b.endNode(n, state, t)
	}
}

func (b *faultBuilder) startFault(kind, label string, t int64, nodes []string) {
	if i, ok := b.openFault[kind]; ok {
		// A second fault of the same kind while one is open: widen it.
		f := &b.a.faults[i]
		for _, n := range nodes {
			f.nodes[n] = true
		}
		return
	}
	f := faultSpan{Kind: kind, Label: label, Start: t, End: -1, nodes: map[string]bool{}}
	for _, n := range nodes {
		f.nodes[n] = true
	}
	b.openFault[kind] = len(b.a.faults)
	b.a.faults = append(b.a.faults, f)
}

// endFault ends the open fault of kind on nodes, and the fault itself
// when all is set or no node is left in it.
func (b *faultBuilder) endFault(kind string, t int64, nodes []string, all bool) {
	i, ok := b.openFault[kind]
	if !ok {
		return
	}
	f := &b.a.faults[i]
	for _, n := range nodes {
		delete(f.nodes, n)
	}
	if all || len(f.nodes) == 0 {
		f.End, f.Healed = t, true
		delete(b.openFault, kind)
	}
}

// instant records an action that is over when it completes (a clock bump)
// as a span of its own length.
func (b *faultBuilder) instant(r nemesisRow, end int64) {
	b.a.faults = append(b.a.faults, faultSpan{Kind: r.F, Label: r.F, Start: r.Start, End: end, Healed: true})
}

// buildFaults turns the nemesis rows into fault spans and node states,
// from each op's typed description (history.DecodeFault): which ops start
// and which end faults is told by their names, what they did by their
// description.
func (a *analysis) buildFaults(known map[string]bool) {
	b := &faultBuilder{a: a, known: known, openFault: map[string]int{}, openNode: map[string]map[string]int{}, down: map[string]bool{}}
	for n := range known {
		b.allNodes = append(b.allNodes, n)
	}
	sortNodes(b.allNodes)
	for _, r := range a.rows {
		end := r.End
		if end < 0 {
			end = a.end
		}
		f, kind := decodeRow(r)
		switch {
		case r.F == history.FStart || r.F == "stop":
			b.restart(r, f, end)
		case heals(r.F):
			b.heal(r, f, kind, end)
		default:
			b.inject(r, f, kind, end)
		}
	}
	for i := range a.faults {
		if a.faults[i].End < 0 {
			a.faults[i].End = a.end
		}
	}
	for i := range a.nodeSpans {
		if a.nodeSpans[i].End < 0 || a.nodeSpans[i].End > a.end {
			a.nodeSpans[i].End = a.end
		}
	}
}

// restart handles start and Jepsen's stop. Ours logs start with the nodes
// it restarts, whatever took them down (kill, power-loss, corrupt);
// Jepsen's generic nemesis (a partition, most often) logs :start and
// :stop with no node list.
func (b *faultBuilder) restart(r nemesisRow, f history.Fault, end int64) {
	open := false
	for kind := range b.openFault {
		open = open || b.down[kind]
	}
	if r.F == history.FStart && (open || f.Targets != nil) {
		for _, kind := range sortedKinds(b.down) {
			b.endFault(kind, end, f.Targets, false)
			for _, n := range f.Targets {
				b.endNode(n, stateOf(kind), end)
			}
		}
		return
	}
	if r.F == history.FStart {
		b.startFault("nemesis", "nemesis", r.Start, nil)
	} else {
		b.endFault("nemesis", end, nil, true)
	}
}

// heal handles the ops that end faults: a stop-... ends every fault of its
// kind, resume the pauses of its nodes, reset-clock every clock offset.
func (b *faultBuilder) heal(r nemesisRow, f history.Fault, kind string, end int64) {
	switch {
	case kind == "clock":
		b.endState("clock", end)
		for i := range b.a.nodeSpans {
			if sp := &b.a.nodeSpans[i]; sp.State == "strobe" && sp.End > end {
				sp.End = end
			}
		}
		b.instant(r, end)
	case strings.HasPrefix(r.F, "stop-"):
		b.endFault(kind, end, nil, true)
		b.endState(stateOf(kind), end)
	default:
		b.endFault(kind, end, f.Targets, false)
		for _, n := range f.Targets {
			b.endNode(n, stateOf(kind), end)
		}
	}
}

// inject handles the ops that start faults, by what their description
// holds: a grudge, a packet fault, clock offsets or a strobe, or the nodes
// a fault took down or paused (with the damage done to a file).
func (b *faultBuilder) inject(r nemesisRow, f history.Fault, kind string, end int64) {
	a := b.a
	switch {
	case kind == "partition":
		b.startFault(kind, "partition "+describeGrudge(f.Grudge, b.allNodes), r.Start, nil)
		for _, n := range sortedKeys(f.Grudge) {
			if len(f.Grudge[n]) > 0 {
				b.startNode(n, stateOf(kind), "cut off from "+strings.Join(f.Grudge[n], " "), r.Start)
			}
		}
	case kind == "packet":
		ns, detail := f.Targets, describePacket(f.Packet)
		if len(ns) == 0 {
			ns = b.allNodes
		}
		b.startFault(kind, "packet "+detail, r.Start, nil)
		for _, n := range ns {
			b.startNode(n, stateOf(kind), detail, r.Start)
		}
	case kind == "clock":
		// Offsets are absolute and stay until the node's next bump, a
		// reset or the end; a strobe lasts its duration.
		for _, node := range sortedOffsets(f.Offsets) {
			off := time.Duration(f.Offsets[node])
			b.endNode(node, "clock", r.Start)
			if off != 0 {
				b.startNode(node, "clock", "clock "+signedSeconds(off), r.Start)
			}
		}
		if st := f.Strobe; st != nil {
			for _, node := range f.Targets {
				b.known[node] = true
				a.nodeSpans = append(a.nodeSpans, nodeSpan{Node: node, State: "strobe",
					Detail: "clock strobe " + signedSeconds(st.Delta), Start: r.Start, End: r.Start + int64(st.Duration)})
			}
		}
		b.instant(r, end)
	case f.Targets != nil || (stateOfKind[kind] != "" && !strings.HasPrefix(r.F, "start-")):
		// Nodes taken down (kill, power-loss, corrupt, and kinds added
		// later) until a start of them, or paused until a resume.
		if kind != "pause" {
			b.down[kind] = true
		}
		label := kind
		if len(f.Targets) > 0 {
			label += " " + strings.Join(f.Targets, " ")
		}
		detail := kind
		if c := f.Corruption; c != nil {
			label += " " + c.File
			detail = fmt.Sprintf("%s: %s %s at %d", stateOf(kind), c.File, c.Kind, c.Offset)
		}
		b.startFault(kind, label, r.Start, f.Targets)
		for _, n := range f.Targets {
			b.startNode(n, stateOf(kind), detail, r.Start)
		}
	case strings.HasPrefix(r.F, "start-"):
		b.startFault(kind, kind, r.Start, nil)
	default:
		// An action the history does not describe: a span of its own
		// length.
		b.instant(r, end)
	}
}

// sortedKinds returns the kinds of m in order.
func sortedKinds(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sortedOffsets returns the nodes of clock offsets in order.
func sortedOffsets(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortNodes(out)
	return out
}

// signedSeconds writes d as "+1.5s" or "-12.3s".
func signedSeconds(d time.Duration) string {
	return fmt.Sprintf("%+.1fs", d.Seconds())
}

// clocksAt describes the node clocks that were off at time t, e.g.
// "n2 -12.3s, n5 strobe +28.9s", or "".
func (a *analysis) clocksAt(t int64) string {
	off := map[string][]string{}
	var nodes []string
	for _, s := range a.nodeSpans {
		if (s.State == "clock" || s.State == "strobe") && s.Start <= t && t < s.End {
			if off[s.Node] == nil {
				nodes = append(nodes, s.Node)
			}
			off[s.Node] = append(off[s.Node], strings.TrimPrefix(s.Detail, "clock "))
		}
	}
	sortNodes(nodes)
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n + " " + strings.Join(off[n], " and ")
	}
	return strings.Join(out, ", ")
}

// maps returns a copy of m, so that it can be changed while ranging.
func maps(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sortedKeys(g map[string][]string) []string {
	ks := make([]string, 0, len(g))
	for k := range g {
		ks = append(ks, k)
	}
	sortNodes(ks)
	return ks
}

// describePacket describes a packet fault in short: "delay 100ms±50ms,
// loss 20%", or "shaped".
func describePacket(p *history.Packet) string {
	if p == nil {
		return "shaped"
	}
	var parts []string
	if p.Delay != 0 {
		d := "delay " + p.Delay.String()
		if p.Jitter != 0 {
			d += "±" + p.Jitter.String()
		}
		parts = append(parts, d)
	}
	for _, x := range []struct {
		name string
		v    float64
	}{{"loss", p.Loss}, {"dup", p.Duplicate}, {"reorder", p.Reorder}, {"corrupt", p.Corrupt}} {
		if x.v > 0 {
			parts = append(parts, fmt.Sprintf("%s %g%%", x.name, x.v))
		}
	}
	if len(parts) == 0 {
		return "shaped"
	}
	return strings.Join(parts, ", ")
}

// faultsDuring returns the labels of the faults in effect at some moment
// of [from, to].
func (a *analysis) faultsDuring(from, to int64) []string {
	var out []string
	for _, f := range a.faults {
		if f.Start <= to && f.End >= from {
			out = append(out, f.Label)
		}
	}
	return out
}

// nodeStateAt describes what was wrong with node at time t, or "".
func (a *analysis) nodeStateAt(node string, t int64) string {
	var out []string
	for _, s := range a.nodeSpans {
		if s.Node == node && s.Start <= t && t < s.End {
			out = append(out, s.text())
		}
	}
	return strings.Join(out, "; ")
}
