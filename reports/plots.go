package reports

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/jepsen-go/jepsen/history"
)

// Plot limits that keep a report of a long run small and fast to open.
const (
	// maxLatencyPoints caps the points of one op type in the latency plot.
	maxLatencyPoints = 3000
	// maxThroughputBins caps the bins of the throughput plot.
	maxThroughputBins = 150
	// maxNodeSpans caps the bars of the node-state timeline.
	maxNodeSpans = 600
	// maxNodeLanes caps the lanes of the node-state timeline.
	maxNodeLanes = 64
)

// The look of each op type: a colour (Okabe–Ito palette, readable by the
// colour-blind) and a distinct glyph shape.
var typeStyle = []struct {
	typ   history.Type
	name  string
	color color.Color
	shape draw.GlyphDrawer
	dash  []vg.Length
}{
	{history.OK, "ok", color.RGBA{0, 114, 178, 255}, draw.CircleGlyph{}, nil},
	{history.Fail, "fail", color.RGBA{230, 159, 0, 255}, draw.TriangleGlyph{}, []vg.Length{vg.Points(5), vg.Points(3)}},
	{history.Info, "info (unknown)", color.RGBA{204, 121, 167, 255}, draw.CrossGlyph{}, []vg.Length{vg.Points(1.5), vg.Points(2.5)}},
}

// faultColor is the shade of a fault kind.
func faultColor(kind string) color.Color {
	switch kind {
	case "partition":
		return color.NRGBA{86, 180, 233, 60}
	case "kill":
		return color.NRGBA{213, 94, 0, 55}
	case "pause":
		return color.NRGBA{240, 228, 66, 90}
	case "packet":
		return color.NRGBA{148, 103, 189, 55}
	case "power-loss":
		return color.NRGBA{204, 102, 119, 60}
	case "corrupt":
		return color.NRGBA{153, 153, 51, 70}
	}
	return color.NRGBA{128, 128, 128, 50}
}

// stateColor is the colour of a node state in the node timeline.
func stateColor(state string) color.Color {
	switch state {
	case "killed":
		return color.NRGBA{213, 94, 0, 255}
	case "paused":
		return color.NRGBA{200, 170, 0, 255}
	case "partitioned":
		return color.NRGBA{86, 180, 233, 255}
	case "packet":
		return color.NRGBA{148, 103, 189, 255}
	case "clock":
		return color.NRGBA{0, 158, 115, 255}
	case "strobe":
		return color.NRGBA{204, 121, 167, 255}
	case "power lost":
		return color.NRGBA{204, 102, 119, 255}
	case "corrupted":
		return color.NRGBA{153, 153, 51, 255}
	}
	return color.NRGBA{128, 128, 128, 255}
}

// legendItem is one entry of the node timeline's legend.
type legendItem struct {
	Name  string
	Color template.CSS
}

// nodeLegend lists the node states that the timeline shows, in a fixed
// order, with their colours.
func nodeLegend(a *analysis) []legendItem {
	var out []legendItem
	for _, st := range []string{"partitioned", "packet", "clock", "strobe", "killed", "power lost", "corrupted", "paused"} {
		if slices.ContainsFunc(a.nodeSpans, func(s nodeSpan) bool { return s.State == st }) {
			r, g, b, _ := stateColor(st).RGBA()
			out = append(out, legendItem{Name: legendName(st), Color: template.CSS(fmt.Sprintf("#%02x%02x%02x", r>>8, g>>8, b>>8))})
		}
	}
	return out
}

// legendName is how the node timeline's legend names a state.
func legendName(state string) string {
	switch state {
	case "clock":
		return "clock off"
	case "strobe":
		return "clock strobe"
	}
	return state
}

func seconds(ns int64) float64 { return float64(ns) / 1e9 }

// positionTicks labels the time axis of a history without times with
// whole positions.
func positionTicks(p *plot.Plot, a *analysis) {
	if !a.timeless {
		return
	}
	p.X.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		var out []plot.Tick
		for _, t := range (plot.DefaultTicks{}).Ticks(lo, hi) {
			if t.Label != "" {
				if t.Value != math.Trunc(t.Value) {
					continue
				}
				t.Label = strconv.FormatFloat(t.Value, 'f', 0, 64)
			}
			out = append(out, t)
		}
		return out
	})
}

// xLabel is the label of the time axis: seconds, or positions in a
// history without times (history.TimelessStep apart, so that seconds()
// gives the position).
func xLabel(a *analysis) string {
	if a.timeless {
		return "position in the history (it has no times: the order of the file is the order of events)"
	}
	return "time since the test started (s)"
}

func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	for _, v := range []*font.Variant{
		&p.Title.TextStyle.Font.Variant, &p.X.Label.TextStyle.Font.Variant, &p.Y.Label.TextStyle.Font.Variant,
		&p.X.Tick.Label.Font.Variant, &p.Y.Tick.Label.Font.Variant, &p.Legend.TextStyle.Font.Variant,
	} {
		*v = "Sans"
	}
	p.Legend.Top = true
	p.Legend.Left = false
	p.Legend.XOffs = -vg.Points(4)
	p.Legend.YOffs = -vg.Points(2)
	p.Legend.Padding = vg.Points(2)
	p.Add(plotter.NewGrid())
	return p
}

// renderSVG draws p as an SVG document without its XML prelude, ready to
// be inlined into HTML. A panic inside the plotting library costs the
// picture, not the report.
func renderSVG(p *plot.Plot, w, h vg.Length) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("plot %q: %v", p.Title.Text, r)
		}
	}()
	c := vgsvg.New(w, h)
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("plot %q: %w", p.Title.Text, err)
	}
	b := buf.Bytes()
	if i := bytes.Index(b, []byte("<svg")); i >= 0 {
		b = b[i:]
	}
	return b, nil
}

// faultBands shades fault spans across the whole height of a plot, with
// their labels at the top.
type faultBands struct {
	spans  []faultSpan
	labels bool
}

// Plot implements plot.Plotter.
func (f faultBands) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	sty := p.X.Tick.Label
	sty.Font.Size = vg.Points(8)
	sty.XAlign = draw.XLeft
	sty.YAlign = draw.YTop
	sty.Color = color.Gray{60}
	for i, s := range f.spans {
		x0 := max(trX(seconds(s.Start)), c.Min.X)
		x1 := min(trX(seconds(s.End)), c.Max.X)
		if x1 < c.Min.X || x0 > c.Max.X {
			continue
		}
		if x1-x0 < 1.5 {
			x1 = x0 + 1.5
		}
		c.FillPolygon(faultColor(s.Kind), []vg.Point{{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y}})
		if f.labels {
			label := s.Label
			if len(label) > 40 {
				label = label[:40] + "…"
			}
			y := c.Max.Y - 2 - vg.Length(i%3)*sty.Font.Size*1.2
			c.FillText(sty, vg.Point{X: x0 + 2, Y: y}, label)
		}
	}
}

// swatch is a legend thumbnail filled with one colour.
type swatch struct{ c color.Color }

// Thumbnail implements plot.Thumbnailer.
func (s swatch) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(s.c, []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}})
}

// addFaultLegend adds one legend entry per fault kind present.
func addFaultLegend(p *plot.Plot, spans []faultSpan) {
	var kinds []string
	for _, s := range spans {
		if !slices.Contains(kinds, s.Kind) {
			kinds = append(kinds, s.Kind)
		}
	}
	for _, k := range kinds {
		p.Legend.Add(k, swatch{faultColor(k)})
	}
}

// downsample keeps at most limit points: when there are more, the time
// axis is cut into limit/2 slices and the fastest and the slowest op of
// each slice are kept, so that outliers stay visible.
func downsample(pts []opPoint, end int64, limit int) []opPoint {
	if len(pts) <= limit {
		return pts
	}
	slices := limit / 2
	type pair struct{ lo, hi int }
	best := make([]pair, slices)
	for i := range best {
		best[i] = pair{-1, -1}
	}
	span := end + 1
	for i, p := range pts {
		b := int(float64(p.call) / float64(span) * float64(slices))
		b = min(max(b, 0), slices-1)
		lat := p.done - p.call
		if best[b].lo < 0 || lat < pts[best[b].lo].done-pts[best[b].lo].call {
			best[b].lo = i
		}
		if best[b].hi < 0 || lat > pts[best[b].hi].done-pts[best[b].hi].call {
			best[b].hi = i
		}
	}
	out := make([]opPoint, 0, limit)
	for _, b := range best {
		if b.lo >= 0 {
			out = append(out, pts[b.lo])
		}
		if b.hi >= 0 && b.hi != b.lo {
			out = append(out, pts[b.hi])
		}
	}
	return out
}

// latencyPlot draws the latency of every op (downsampled) against its
// invocation time, with faults shaded. It also returns how many points
// were drawn.
func latencyPlot(a *analysis) ([]byte, int, error) {
	p := newPlot("Latency of every operation", xLabel(a), "latency (ms, log scale)")
	if a.timeless {
		p.Title.Text = "Latency of every operation, in positions of the history"
		p.Y.Label.Text = "positions from invocation to completion (log scale)"
	}
	p.Add(faultBands{spans: a.faults, labels: true})
	drawn := 0
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, ts := range typeStyle {
		var pts []opPoint
		for _, pt := range a.points {
			if pt.typ == ts.typ {
				pts = append(pts, pt)
			}
		}
		pts = downsample(pts, a.end, maxLatencyPoints)
		if len(pts) == 0 {
			continue
		}
		xys := make(plotter.XYs, len(pts))
		for i, pt := range pts {
			ms := max(float64(pt.done-pt.call)/1e6, 0.001)
			if a.timeless {
				ms = max(float64(pt.done-pt.call)/float64(history.TimelessStep), 0.5)
			}
			xys[i] = plotter.XY{X: seconds(pt.call), Y: ms}
			lo, hi = min(lo, ms), max(hi, ms)
		}
		s, err := plotter.NewScatter(xys)
		if err != nil {
			return nil, 0, fmt.Errorf("latency plot: %w", err)
		}
		s.GlyphStyle.Color = ts.color
		s.GlyphStyle.Shape = ts.shape
		s.GlyphStyle.Radius = vg.Points(1.8)
		p.Add(s)
		p.Legend.Add(ts.name, s)
		drawn += len(pts)
	}
	addFaultLegend(p, a.faults)
	p.X.Min, p.X.Max = 0, math.Max(seconds(a.end), 0.001)
	positionTicks(p, a)
	if drawn > 0 {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		if lo == hi {
			lo, hi = lo/2, hi*2
		}
		p.Y.Min, p.Y.Max = lo/1.5, hi*20 // headroom for the legend
	} else {
		p.Y.Min, p.Y.Max = 0, 1
	}
	b, err := renderSVG(p, 9.5*vg.Inch, 3.6*vg.Inch)
	return b, drawn, err
}

// binWidth chooses a round bin width (seconds) giving at most
// maxThroughputBins bins over d seconds.
func binWidth(d float64) float64 {
	for _, w := range []float64{0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600} {
		if d/w <= maxThroughputBins {
			return w
		}
	}
	return math.Ceil(d / maxThroughputBins)
}

// throughputPlot draws completed ops per second by type, with faults
// shaded.
func throughputPlot(a *analysis) ([]byte, float64, error) {
	if a.timeless {
		return nil, 0, errors.New("The history has no times, so throughput cannot be measured: no throughput plot.")
	}
	d := math.Max(seconds(a.end), 0.001)
	w := binWidth(d)
	n := int(math.Ceil(d/w)) + 1
	p := newPlot(fmt.Sprintf("Throughput: completed operations per second (%gs bins)", w), "time since the test started (s)", "operations/s")
	p.Add(faultBands{spans: a.faults, labels: true})
	peak := 1.0
	for _, ts := range typeStyle {
		counts := make([]float64, n)
		any := false
		for _, pt := range a.points {
			if pt.typ == ts.typ {
				b := min(int(seconds(pt.done)/w), n-1)
				counts[b]++
				any = true
			}
		}
		if !any {
			continue
		}
		xys := make(plotter.XYs, n)
		for i, c := range counts {
			xys[i] = plotter.XY{X: (float64(i) + 0.5) * w, Y: c / w}
			peak = max(peak, c/w)
		}
		l, s, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, w, fmt.Errorf("throughput plot: %w", err)
		}
		l.Color, l.Dashes, l.Width = ts.color, ts.dash, vg.Points(1.2)
		s.Color, s.Shape, s.Radius = ts.color, ts.shape, vg.Points(1.8)
		p.Add(l, s)
		p.Legend.Add(ts.name, l, s)
	}
	addFaultLegend(p, a.faults)
	p.X.Min, p.X.Max = 0, d
	p.Y.Min = 0
	// Round ticks, with headroom for the legend.
	step := niceStep(peak / 4)
	var ticks plot.ConstantTicks
	for v := 0.0; v <= peak+step/2; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	p.Y.Tick.Marker = ticks
	p.Y.Max = peak * 1.7
	b, err := renderSVG(p, 9.5*vg.Inch, 3*vg.Inch)
	return b, w, err
}

// nodeLanes draws the state of each node over time: one lane per node.
type nodeLanes struct {
	nodes []string
	spans []nodeSpan
	end   float64
}

// DataRange implements plot.DataRanger.
func (l nodeLanes) DataRange() (xmin, xmax, ymin, ymax float64) {
	return 0, l.end, -0.5, float64(len(l.nodes)) + 0.4 // room for the legend
}

func (l nodeLanes) lane(node string) int {
	i := slices.Index(l.nodes, node)
	return len(l.nodes) - 1 - i
}

// Plot implements plot.Plotter.
func (l nodeLanes) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	sty := p.X.Tick.Label
	sty.Font.Size = vg.Points(7.5)
	sty.XAlign = draw.XLeft
	sty.YAlign = draw.YCenter
	sty.Color = color.Black
	for _, s := range l.spans {
		y := float64(l.lane(s.Node))
		y0, y1 := y+laneRow(s.State)-0.135, y+laneRow(s.State)+0.135
		x0 := max(trX(seconds(s.Start)), c.Min.X)
		x1 := min(trX(seconds(s.End)), c.Max.X)
		if x1-x0 < 1.5 {
			x1 = x0 + 1.5
		}
		c.FillPolygon(stateColor(s.State), []vg.Point{{X: x0, Y: trY(y0)}, {X: x1, Y: trY(y0)}, {X: x1, Y: trY(y1)}, {X: x0, Y: trY(y1)}})
		label := s.text()
		if s.State == "clock" || s.State == "strobe" {
			label = strings.TrimPrefix(s.Detail, "clock ")
		}
		// A label longer than its bar runs on to the right, up to the
		// next bar in the same row of the lane: a short power loss or a
		// corruption still says what it was.
		room := c.Max.X
		for _, t := range l.spans {
			if t.Node == s.Node && t.Start > s.Start && laneRow(t.State) == laneRow(s.State) {
				room = min(room, trX(seconds(t.Start)))
			}
		}
		if sty.Width(label)+4 < max(x1, room)-x0 {
			c.FillText(sty, vg.Point{X: x0 + 2, Y: trY((y0 + y1) / 2)}, label)
		}
	}
}

// laneRow is where a node state is drawn in its node's lane, as an offset
// from the lane's middle: network states in the upper third, clock states
// in the middle, process states in the lower third, so that all show
// when they overlap.
func laneRow(state string) float64 {
	switch state {
	case "partitioned", "packet":
		return 0.285
	case "clock", "strobe":
		return 0
	}
	return -0.285
}

// nodesPlot draws the node-state timeline, or nil if there is no nemesis
// activity to show.
func nodesPlot(a *analysis) ([]byte, error) {
	if len(a.nodes) == 0 || (len(a.rows) == 0 && len(a.nodeSpans) == 0) {
		return nil, nil
	}
	spans := a.nodeSpans
	if len(spans) > maxNodeSpans {
		spans = spans[:maxNodeSpans]
	}
	nodes := a.nodes
	if len(nodes) > maxNodeLanes {
		// Too many lanes to read: keep the nodes that had a fault.
		nodes = nil
		for _, n := range a.nodes {
			if len(nodes) < maxNodeLanes && slices.ContainsFunc(spans, func(s nodeSpan) bool { return s.Node == n }) {
				nodes = append(nodes, n)
			}
		}
		spans = slices.DeleteFunc(slices.Clone(spans), func(s nodeSpan) bool { return !slices.Contains(nodes, s.Node) })
	}
	d := math.Max(seconds(a.end), 0.001)
	p := newPlot("Node states (up unless marked)", xLabel(a), "")
	p.Add(faultBands{spans: a.faults})
	lanes := nodeLanes{nodes: nodes, spans: spans, end: d}
	p.Add(lanes)
	var ticks plot.ConstantTicks
	for _, n := range nodes {
		ticks = append(ticks, plot.Tick{Value: float64(lanes.lane(n)), Label: n})
	}
	p.Y.Tick.Marker = ticks
	// The legend is HTML under the plot (nodeLegend): inside, it would
	// hide the top lane's last seconds.
	p.X.Min, p.X.Max = 0, d
	positionTicks(p, a)
	h := 1.1*vg.Inch + vg.Length(len(nodes))*0.42*vg.Inch
	return renderSVG(p, 9.5*vg.Inch, h)
}
