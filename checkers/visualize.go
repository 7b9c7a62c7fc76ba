package checkers

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
)

const (
	// VisualizeMaxOps is the most operations a visualization shows. A key
	// with more is shown as a window of this many operations around its
	// witness: porcupine's page draws every operation and embeds every
	// partial linearization, and beyond a few thousand operations a
	// browser can no longer open it.
	VisualizeMaxOps = 1000
	// VisualizeMaxBytes caps the size of one visualization; when the page
	// would be larger, the window is halved until it fits.
	VisualizeMaxBytes = 8 << 20
	// visualizeBudget bounds the time spent on one key's visualization.
	visualizeBudget = 5 * time.Second
)

// visualize renders porcupine's HTML view of key kh with the witness w
// marked, into f.Visualization.
func (rc *registerCheck) visualize(ctx context.Context, kh *keyHistory, w []int32, f *KeyFailure) {
	defer func() {
		// porcupine is a dependency; a bug in it must cost the picture,
		// not the verdict.
		if r := recover(); r != nil {
			f.Visualization = nil
			f.VisualizedOps = 0
			f.VisualizationNote = fmt.Sprintf("no visualization: porcupine failed: %v", r)
		}
	}()
	limit := VisualizeMaxOps
	for {
		if ctx.Err() != nil {
			f.VisualizationNote = "no visualization: check cancelled"
			return
		}
		deadline := time.Now().Add(visualizeBudget)
		if rc.deadline.Before(deadline) {
			deadline = rc.deadline
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			f.VisualizationNote = "no visualization: the check's time budget was spent"
			return
		}
		idx := window(kh, w, limit)
		model := visualModel(kh, &rc.stop)
		var info porcupine.LinearizationInfo
		if kh.info != nil && len(idx) == len(kh.ops) {
			info = *kh.info
		} else {
			_, info = porcupine.CheckOperationsVerbose(model, kh.operations(idx), remaining)
		}
		info.AddAnnotations(witnessAnnotations(kh, w, model))
		var buf bytes.Buffer
		if err := porcupine.Visualize(model, info, &buf); err != nil {
			f.VisualizationNote = fmt.Sprintf("no visualization: %v", err)
			return
		}
		if buf.Len() > VisualizeMaxBytes && limit > 16 {
			limit /= 2
			continue
		}
		f.Visualization = buf.Bytes()
		f.VisualizedOps = len(idx)
		if len(idx) < len(kh.ops) {
			f.VisualizationNote = fmt.Sprintf("shows %d of the key's %d operations: a window around the witness (the whole key would be too large for a browser); operations before the window are not shown, so its partial linearizations may differ from the whole key's",
				len(idx), len(kh.ops))
		}
		return
	}
}

// window returns the witness plus the operations nearest to it in
// invocation order, at most limit in all (all of the key's operations if
// they fit), sorted by call.
func window(kh *keyHistory, w []int32, limit int) []int32 {
	if len(kh.ops) <= limit {
		return kh.all()
	}
	byCall := kh.all()
	sort.SliceStable(byCall, func(a, b int) bool { return kh.ops[byCall[a]].call < kh.ops[byCall[b]].call })
	pos := make(map[int32]int, len(byCall))
	for p, i := range byCall {
		pos[i] = p
	}
	in := make(map[int32]bool, limit)
	lo, hi := len(byCall), -1
	for _, i := range w {
		in[i] = true
		lo, hi = min(lo, pos[i]), max(hi, pos[i])
	}
	// Grow [lo, hi] outwards, alternating sides, from the witness's centre.
	mid := (lo + hi) / 2
	l, r := mid, mid+1
	for len(in) < limit && (l >= 0 || r < len(byCall)) {
		if l >= 0 {
			in[byCall[l]] = true
			l--
		}
		if len(in) < limit && r < len(byCall) {
			in[byCall[r]] = true
			r++
		}
	}
	out := make([]int32, 0, len(in))
	for _, i := range byCall {
		if in[i] {
			out = append(out, i)
		}
	}
	return out
}

// visualModel returns a model that describes operations and states with
// the key's real values.
func visualModel(kh *keyHistory, stop *atomic.Bool) porcupine.Model {
	m := newRegisterModel(stop, false)
	text := kh.in.text
	m.DescribeState = func(state any) string {
		if s := state.(int32); s != absent {
			return text(s)
		}
		return "absent"
	}
	m.DescribeOperation = func(input, _ any) string {
		o := input.(*regOp)
		suffix := ""
		if o.info {
			suffix = " -> unknown"
		}
		switch o.kind {
		case kRead:
			if o.a == absent {
				return "read() -> absent"
			}
			return "read() -> " + text(o.a)
		case kWrite:
			return "write(" + text(o.a) + ")" + suffix
		case kCAS:
			if !o.info {
				suffix = " -> ok"
			}
			return "cas(" + text(o.a) + ", " + text(o.b) + ")" + suffix
		case kCASFail:
			return "cas(" + text(o.a) + ", " + text(o.b) + ") -> precondition-failed"
		}
		return "cas(" + text(o.a) + ", " + text(o.b) + ") -> not-found"
	}
	m.DescribeOperationMetadata = func(meta any) string {
		if o, ok := meta.(*regOp); ok {
			return "process " + o.proc.String()
		}
		return ""
	}
	return m
}

// witnessAnnotations marks the witness operations on a row of their own.
func witnessAnnotations(kh *keyHistory, w []int32, m porcupine.Model) []porcupine.Annotation {
	var out []porcupine.Annotation
	for _, i := range w {
		o := &kh.ops[i]
		out = append(out, porcupine.Annotation{
			Tag:             "witness",
			Start:           o.call,
			End:             o.ret,
			Description:     m.DescribeOperation(o, nil),
			Details:         describe(kh, o),
			BackgroundColor: "#ffd8d8",
		})
	}
	return out
}
