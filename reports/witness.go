package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jepsen-go/jepsen/checkers"
	"github.com/jepsen-go/jepsen/history"
)

// witnessOp is one operation of a counterexample: its invocation and
// completion.
type witnessOp struct {
	Process    string
	F          string
	Label      string // "write 3", "read → 2"
	Call       int64
	Ret        int64 // -1 if it never completed
	Type       history.Type
	Node       string
	NodeState  string // what was wrong with Node at the call, if anything
	Error      string
	Impossible bool
	comp       int64 // history index of the completion; -1 if none
	clk        clock
}

// CallS and RetS format the times for the table.
func (o witnessOp) CallS() string { return o.clk.at(o.Call) }

// RetS is the completion time, or "never".
func (o witnessOp) RetS() string {
	if o.Ret < 0 {
		return "never completed"
	}
	return o.clk.at(o.Ret)
}

// clock formats the times of a history: seconds since the test started,
// to the millisecond, or positions in a history without times.
type clock struct{ timeless bool }

// at formats a time: "12.301s", or "op 12" in a history without times.
func (c clock) at(ns int64) string {
	if c.timeless {
		return "op " + strconv.FormatInt(ns/history.TimelessStep, 10)
	}
	return fmtSeconds(ns)
}

// fmtSeconds formats nanoseconds as seconds to the millisecond: "12.301s".
func fmtSeconds(ns int64) string {
	return strconv.FormatFloat(float64(ns)/1e9, 'f', 3, 64) + "s"
}

// timelessRE finds the times a checker wrote into an explanation of a
// history without times, where each is a whole number of seconds.
var timelessRE = regexp.MustCompile(`\b(\d+)\.0+s\b`)

// TimelessText rewrites the times a checker wrote into a sentence about
// a history without times ("at 12.000s" becomes "at op 12").
func TimelessText(s string) string { return clock{timeless: true}.text(s) }

// text rewrites the times of a checker's sentence for a history without
// times ("at 12.000s" becomes "at op 12"); other histories' are kept.
func (c clock) text(s string) string {
	if !c.timeless {
		return s
	}
	return timelessRE.ReplaceAllString(s, "op $1")
}

// shortValue renders a JSON value for a label, at most 40 characters.
func shortValue(v []byte) string {
	if history.IsNull(v) {
		return "absent"
	}
	s := string(v)
	// Show strings as the store returned them, not as JSON with HTML
	// characters escaped (\u003c); html/template escapes them for HTML.
	var x any
	if json.Unmarshal(v, &x) == nil {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if enc.Encode(x) == nil {
			s = strings.TrimSuffix(b.String(), "\n")
		}
	}
	if r := []rune(s); len(r) > 40 {
		s = string(r[:40]) + "…"
	}
	return s
}

// pairWitness turns the witness events into operations.
func pairWitness(w []history.Op, clk clock) []witnessOp {
	var ops []witnessOp
	var pairing history.Pairing[int] // position in ops
	for _, e := range w {
		if e.Type == history.Invoke {
			// A dangling invocation stays in ops as it is: it never
			// completed.
			pairing.Invoke(e.Process, e.F, len(ops))
			ops = append(ops, witnessOp{Process: e.Process.String(), F: e.F, Call: e.Time, Ret: -1, comp: -1, clk: clk,
				Type: history.Info, Node: e.Node, Label: invokeLabel(e)})
			continue
		}
		inv, ok := pairing.Complete(e.Process, e.F)
		if !ok {
			continue
		}
		i := inv.V
		o := &ops[i]
		o.Ret, o.Type, o.Error, o.comp = e.Time, e.Type, e.Error, e.Index
		if e.Node != "" {
			o.Node = e.Node
		}
		o.Label = completeLabel(ops[i].Label, e)
	}
	return ops
}

func invokeLabel(e history.Op) string {
	switch e.F {
	case history.FRead:
		return "read"
	case history.FCAS:
		if from, to, err := history.CASPair(e.Value); err == nil {
			return "cas " + shortValue(from) + "→" + shortValue(to)
		}
	}
	return e.F + " " + shortValue(e.Value)
}

func completeLabel(inv string, e history.Op) string {
	switch {
	case e.Type == history.Info:
		return inv + " → ? (unknown)"
	case e.Type == history.Fail:
		if e.Error != "" {
			return inv + " → failed: " + e.Error
		}
		return inv + " → failed"
	case e.F == history.FRead:
		return "read → " + shortValue(e.Value)
	case e.F == history.FCAS:
		return inv + " → ok"
	}
	return inv + " → ok"
}

// markImpossible marks the operation whose result cannot be explained:
// the one whose completion is at history index impossible when the
// checker says so; otherwise, among the ops that observed something (ok
// reads, cas results), the one whose process the explanation names first,
// and failing that the last observer to complete.
func markImpossible(ops []witnessOp, explanation string, impossible *int64) {
	if impossible != nil {
		for i := range ops {
			if ops[i].comp == *impossible {
				ops[i].Impossible = true
				return
			}
		}
	}
	best, bestPos, latest := -1, math.MaxInt, -1
	for i, o := range ops {
		observer := (o.F == history.FRead && o.Type == history.OK) || (o.F == history.FCAS && (o.Type == history.OK || o.Type == history.Fail))
		if !observer {
			continue
		}
		verb := map[string]string{history.FRead: "read of", history.FCAS: "cas "}[o.F]
		pos := -1
		for off := 0; ; {
			j := strings.Index(explanation[off:], "by process "+o.Process)
			if j < 0 {
				break
			}
			j += off
			end := j + len("by process "+o.Process)
			if end == len(explanation) || explanation[end] < '0' || explanation[end] > '9' {
				// The verb must come shortly before, in the same clause.
				start := max(0, j-80)
				if strings.Contains(explanation[start:j], verb) {
					pos = j
					break
				}
			}
			off = end
		}
		if pos >= 0 && pos < bestPos {
			best, bestPos = i, pos
		}
		if pos < 0 && bestPos == math.MaxInt && (latest < 0 || o.Ret > ops[latest].Ret) {
			latest = i
		}
	}
	switch {
	case best >= 0:
		ops[best].Impossible = true
	case latest >= 0:
		ops[latest].Impossible = true
	}
}

// diagram is the counterexample drawn as a small timeline: one lane per
// process, each op a bar from invocation to completion.
type diagram struct {
	Width, Height float64
	Lanes         []diagLane
	Bars          []diagBar
	Ticks         []diagTick
	Bands         []diagBand
	AxisY         float64
}

type diagLane struct {
	Y     float64
	Label string
}

type diagBar struct {
	X, Y, W, H float64
	Class      string
	Label      string
	LabelX     float64
	LabelY     float64
	Anchor     string // text-anchor of the label: start or end
	Title      string
	Open       bool // the op never completed or its outcome is unknown
}

type diagTick struct {
	X     float64
	Label string
}

type diagBand struct {
	X, W  float64
	Label string
	Class string
}

// Layout of the diagram, in SVG user units (px).
const (
	diagWidth  = 860.0
	diagLeft   = 150.0
	diagRight  = 30.0
	diagTop    = 22.0
	diagLaneH  = 46.0
	diagBarH   = 14.0
	diagBottom = 34.0
)

// layoutDiagram lays out ops on a time axis.
func layoutDiagram(ops []witnessOp, faults []faultSpan) *diagram {
	if len(ops) == 0 {
		return nil
	}
	var procs []string
	t0, t1 := int64(math.MaxInt64), int64(math.MinInt64)
	for _, o := range ops {
		if !slices.Contains(procs, o.Process) {
			procs = append(procs, o.Process)
		}
		t0 = min(t0, o.Call)
		t1 = max(t1, o.Call)
		if o.Ret >= 0 {
			t1 = max(t1, o.Ret)
		}
	}
	span := t1 - t0
	if span <= 0 {
		span = 1_000_000
	}
	openEnd := t1 + span/5
	lo := t0 - span/20
	hi := openEnd + span/20
	plotW := diagWidth - diagLeft - diagRight
	x := func(t int64) float64 { return diagLeft + float64(t-lo)/float64(hi-lo)*plotW }
	d := &diagram{Width: diagWidth}
	for i, p := range procs {
		label := "process " + p
		for _, o := range ops {
			if o.Process == p && o.Node != "" {
				label += " → " + o.Node
				break
			}
		}
		d.Lanes = append(d.Lanes, diagLane{Y: diagTop + float64(i)*diagLaneH + diagLaneH/2, Label: label})
	}
	d.AxisY = diagTop + float64(len(procs))*diagLaneH + 4
	d.Height = d.AxisY + diagBottom
	for _, o := range ops {
		lane := slices.Index(procs, o.Process)
		y := diagTop + float64(lane)*diagLaneH + diagLaneH/2
		end := o.Ret
		open := o.Ret < 0 || o.Type == history.Info
		if o.Ret < 0 {
			end = openEnd
		}
		if o.Type == history.Info {
			end = openEnd // may take effect at any time after its call
		}
		b := diagBar{X: x(o.Call), Y: y - diagBarH/2, H: diagBarH, Open: open, Label: o.Label}
		b.W = max(x(end)-b.X, 3)
		switch {
		case o.Impossible:
			b.Class = "bad"
			b.Label = "✗ " + o.Label + " (impossible)"
		case o.Type == history.OK:
			b.Class = "ok"
		case o.Type == history.Fail:
			b.Class = "fail"
		default:
			b.Class = "info"
		}
		b.LabelX, b.LabelY, b.Anchor = b.X, y-diagBarH/2-4, "start"
		if b.X > diagLeft+plotW*0.5 {
			// Near the right edge: end the label where the bar ends.
			b.LabelX, b.Anchor = min(b.X+b.W, diagWidth-4), "end"
		}
		b.Title = fmt.Sprintf("process %s: %s, invoked %s, %s", o.Process, o.Label, o.CallS(), o.RetS())
		if o.Node != "" {
			b.Title += ", node " + o.Node
			if o.NodeState != "" {
				b.Title += " (" + o.NodeState + ")"
			}
		}
		d.Bars = append(d.Bars, b)
	}
	// Ticks: about five round values of milliseconds since the test start.
	step := niceStep(float64(hi-lo) / 5)
	if ops[0].clk.timeless {
		step = max(math.Round(step/float64(history.TimelessStep)), 1) * float64(history.TimelessStep)
	}
	first := math.Ceil(float64(lo)/step) * step
	for t := first; t <= float64(hi); t += step {
		label := tickLabel(t, step)
		if ops[0].clk.timeless {
			label = ops[0].clk.at(int64(t))
		}
		d.Ticks = append(d.Ticks, diagTick{X: x(int64(t)), Label: label})
	}
	for _, f := range faults {
		if f.End < lo || f.Start > hi {
			continue
		}
		bx0, bx1 := x(max(f.Start, lo)), x(min(f.End, hi))
		d.Bands = append(d.Bands, diagBand{X: bx0, W: max(bx1-bx0, 2), Label: f.Label, Class: "band-" + safeClass(f.Kind)})
	}
	return d
}

func safeClass(s string) string {
	switch s {
	case "partition", "kill", "pause", "packet", "power-loss", "corrupt":
		return s
	}
	return "other"
}

// niceStep rounds a step (ns) to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// tickLabel prints a time in seconds with as many decimals as the step
// needs.
func tickLabel(t, step float64) string {
	dec := max(0, int(math.Ceil(-math.Log10(step/1e9))))
	return strconv.FormatFloat(t/1e9, 'f', dec, 64) + "s"
}

// failureOrder sorts failures smallest witness first, then by key.
func failureOrder(fs []checkers.KeyFailure) []checkers.KeyFailure {
	out := slices.Clone(fs)
	slices.SortStableFunc(out, func(a, b checkers.KeyFailure) int {
		if a.WitnessOps != b.WitnessOps {
			return a.WitnessOps - b.WitnessOps
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out
}
