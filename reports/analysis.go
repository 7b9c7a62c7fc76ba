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
	Kind   string // partition, kill, pause, packet, or the f of another nemesis
	Label  string // short: "partition n1 n2 | n3 n4 n5"
	Start  int64
	End    int64
	Healed bool // false if it was still in effect at the end of the history
	nodes  map[string]bool
}

// nodeSpan is a state of one node during [Start, End).
type nodeSpan struct {
	Node   string
	State  string // killed, paused, partitioned, packet, clock, strobe
	Detail string // "cut off from n3 n4 n5", "clock -12.3s", "clock strobe +28.9s"
	Start  int64
	End    int64
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

// nodeList decodes a nemesis value that is a list of nodes.
func nodeList(v json.RawMessage) []string {
	var ns []string
	if json.Unmarshal(v, &ns) != nil {
		return nil
	}
	return ns
}

// grudge decodes a partition value: node -> nodes whose packets it drops.
func grudge(v json.RawMessage) map[string][]string {
	var g map[string][]string
	if json.Unmarshal(v, &g) != nil {
		return nil
	}
	return g
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

// buildFaults turns the nemesis rows into fault spans and node states.
func (a *analysis) buildFaults(known map[string]bool) {
	var allNodes []string
	for n := range known {
		allNodes = append(allNodes, n)
	}
	sortNodes(allNodes)
	openFault := map[string]int{}           // kind -> index into a.faults of the open span
	openNode := map[string]map[string]int{} // state -> node -> index into a.nodeSpans
	startNode := func(node, state, detail string, t int64) {
		known[node] = true
		if openNode[state] == nil {
			openNode[state] = map[string]int{}
		}
		if _, ok := openNode[state][node]; ok {
			return
		}
		openNode[state][node] = len(a.nodeSpans)
		a.nodeSpans = append(a.nodeSpans, nodeSpan{Node: node, State: state, Detail: detail, Start: t, End: -1})
	}
	endNode := func(node, state string, t int64) {
		if i, ok := openNode[state][node]; ok {
			a.nodeSpans[i].End = t
			delete(openNode[state], node)
		}
	}
	startFault := func(kind, label string, t int64, nodes []string) {
		if i, ok := openFault[kind]; ok {
			// A second fault of the same kind while one is open: widen it.
			f := &a.faults[i]
			for _, n := range nodes {
				f.nodes[n] = true
			}
			return
		}
		f := faultSpan{Kind: kind, Label: label, Start: t, End: -1, nodes: map[string]bool{}}
		for _, n := range nodes {
			f.nodes[n] = true
		}
		openFault[kind] = len(a.faults)
		a.faults = append(a.faults, f)
	}
	endFault := func(kind string, t int64, nodes []string, all bool) {
		i, ok := openFault[kind]
		if !ok {
			return
		}
		f := &a.faults[i]
		for _, n := range nodes {
			delete(f.nodes, n)
		}
		if all || len(f.nodes) == 0 {
			f.End, f.Healed = t, true
			delete(openFault, kind)
		}
	}
	done := func(r nemesisRow) json.RawMessage {
		if !history.IsNull(r.Done) {
			return r.Done
		}
		return r.Plan
	}
	for _, r := range a.rows {
		end := r.End
		if end < 0 {
			end = a.end
		}
		switch r.F {
		case "start-partition":
			g := grudge(done(r))
			startFault("partition", "partition "+describeGrudge(g, allNodes), r.Start, nil)
			for _, n := range sortedKeys(g) {
				if len(g[n]) > 0 {
					startNode(n, "partitioned", "cut off from "+strings.Join(g[n], " "), r.Start)
				}
			}
		case "stop-partition":
			endFault("partition", end, nil, true)
			for n := range maps(openNode["partitioned"]) {
				endNode(n, "partitioned", end)
			}
		case "kill", "pause":
			state := map[string]string{"kill": "killed", "pause": "paused"}[r.F]
			ns := nodeList(done(r))
			startFault(r.F, r.F+" "+strings.Join(ns, " "), r.Start, ns)
			for _, n := range ns {
				startNode(n, state, r.F, r.Start)
			}
		case "start", "stop":
			// Jepsen's generic nemesis (a partition, most often) logs
			// :start and :stop with no node list; ours logs start with the
			// nodes it restarts after a kill.
			if _, killed := openFault["kill"]; r.F == "start" && (killed || nodeList(done(r)) != nil) {
				ns := nodeList(done(r))
				endFault("kill", end, ns, false)
				for _, n := range ns {
					endNode(n, "killed", end)
				}
				continue
			}
			if r.F == "start" {
				startFault("nemesis", "nemesis", r.Start, nil)
			} else {
				endFault("nemesis", end, nil, true)
			}
		case "resume":
			kind := map[string]string{"start": "kill", "resume": "pause"}[r.F]
			state := map[string]string{"start": "killed", "resume": "paused"}[r.F]
			ns := nodeList(done(r))
			endFault(kind, end, ns, false)
			for _, n := range ns {
				endNode(n, state, end)
			}
		case "start-packet":
			ns, detail := packetNodes(done(r))
			if len(ns) == 0 {
				ns = allNodes
			}
			startFault("packet", "packet "+detail, r.Start, nil)
			for _, n := range ns {
				startNode(n, "packet", detail, r.Start)
			}
		case "stop-packet":
			endFault("packet", end, nil, true)
			for n := range maps(openNode["packet"]) {
				endNode(n, "packet", end)
			}
		case "bump-clock":
			// Offsets are absolute and stay until the node's next bump,
			// a reset or the end.
			for node, off := range clockPlan(done(r)) {
				endNode(node, "clock", r.Start)
				if off != 0 {
					startNode(node, "clock", "clock "+signedSeconds(off), r.Start)
				}
			}
			a.faults = append(a.faults, faultSpan{Kind: r.F, Label: r.F, Start: r.Start, End: end, Healed: true})
		case "strobe-clock":
			var st struct {
				Nodes    []string `json:"nodes"`
				Delta    string   `json:"delta"`
				Duration string   `json:"duration"`
			}
			_ = json.Unmarshal(done(r), &st)
			delta, _ := time.ParseDuration(st.Delta)
			dur, _ := time.ParseDuration(st.Duration)
			for _, node := range st.Nodes {
				known[node] = true
				a.nodeSpans = append(a.nodeSpans, nodeSpan{Node: node, State: "strobe",
					Detail: "clock strobe " + signedSeconds(delta), Start: r.Start, End: r.Start + int64(dur)})
			}
			a.faults = append(a.faults, faultSpan{Kind: r.F, Label: r.F, Start: r.Start, End: end, Healed: true})
		case "reset-clock":
			for node := range maps(openNode["clock"]) {
				endNode(node, "clock", end)
			}
			for i := range a.nodeSpans {
				if sp := &a.nodeSpans[i]; sp.State == "strobe" && sp.End > end {
					sp.End = end
				}
			}
			a.faults = append(a.faults, faultSpan{Kind: r.F, Label: r.F, Start: r.Start, End: end, Healed: true})
		default:
			kind, ok := strings.CutPrefix(r.F, "start-")
			if ok {
				startFault(kind, kind, r.Start, nil)
				continue
			}
			if kind, ok := strings.CutPrefix(r.F, "stop-"); ok {
				endFault(kind, end, nil, true)
				continue
			}
			// An instant action (bump-clock, ...): a span of its own length.
			a.faults = append(a.faults, faultSpan{Kind: r.F, Label: r.F, Start: r.Start, End: end, Healed: true})
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

// clockPlan decodes a bump-clock value: node -> offset from true time.
func clockPlan(v json.RawMessage) map[string]time.Duration {
	var plan map[string]string
	if json.Unmarshal(v, &plan) != nil {
		return nil
	}
	out := map[string]time.Duration{}
	for node, s := range plan {
		if d, err := time.ParseDuration(s); err == nil {
			out[node] = d
		}
	}
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

// packetNodes decodes a start-packet value: the nodes it shapes (empty =
// all) and a short description of the fault.
func packetNodes(v json.RawMessage) ([]string, string) {
	var p struct {
		Nodes     []string `json:"nodes"`
		Delay     string   `json:"delay"`
		Jitter    string   `json:"jitter"`
		Loss      float64  `json:"loss"`
		Duplicate float64  `json:"duplicate"`
		Reorder   float64  `json:"reorder"`
		Corrupt   float64  `json:"corrupt"`
	}
	if json.Unmarshal(v, &p) != nil {
		return nil, "shaped"
	}
	var parts []string
	if p.Delay != "" {
		d := "delay " + p.Delay
		if p.Jitter != "" {
			d += "±" + p.Jitter
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
		return p.Nodes, "shaped"
	}
	return p.Nodes, strings.Join(parts, ", ")
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
			if s.State == "partitioned" || s.State == "clock" || s.State == "strobe" {
				out = append(out, s.Detail)
			} else {
				out = append(out, s.State)
			}
		}
	}
	return strings.Join(out, "; ")
}
