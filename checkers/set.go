package checkers

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/jepsen-go/jepsen/history"
)

// SetResult is the verdict of a set workload.
//
// Each element is added by an add op on its own key, never written again,
// and read back at the end by read ops ("final reads"; docs/history.md).
// For each element, "present" means the LAST successful (ok) read of its
// key returned a value, "absent" that it returned null:
//
//   - lost: the add completed ok, the key was read successfully at least
//     once, and it is absent;
//   - unexpected: the add definitely failed (fail), or no add of the key
//     was ever invoked, yet some successful read returned a value;
//   - recovered: the add's outcome was unknown (info, or never completed)
//     and it is present; this is allowed;
//   - corrupted: a successful read returned a value no add of that key
//     tried to write;
//   - never read: no read of the key succeeded, so nothing is known.
//
// Lost, unexpected or corrupted elements make the set invalid. Otherwise,
// if any acknowledged (ok) add was never read successfully, the verdict is
// unknown: the store may have lost it and the history cannot tell.
// Never-read elements whose add failed or is indeterminate are counted but
// do not affect the verdict (a failed add that was never read could hide
// an unexpected element; the workload retries final reads to avoid that).
type SetResult struct {
	// Valid is the verdict of the set.
	Valid Validity `json:"valid"`
	// Attempted is the number of elements whose add was invoked.
	Attempted int `json:"attempted"`
	// Acknowledged counts adds that completed ok.
	Acknowledged int `json:"acknowledged"`
	// Failed counts adds that definitely failed.
	Failed int `json:"failed"`
	// Indeterminate counts adds with an unknown outcome (info or no
	// completion).
	Indeterminate int `json:"indeterminate"`
	// Lost, Unexpected, Recovered, Corrupted and NeverRead count elements
	// in each category (see the type's documentation).
	Lost       int `json:"lost"`
	Unexpected int `json:"unexpected"`
	Recovered  int `json:"recovered"`
	Corrupted  int `json:"corrupted"`
	NeverRead  int `json:"never_read"`
	// LostAfterPowerLoss counts the lost elements whose add was
	// acknowledged before a power loss (a power-loss nemesis op, of the
	// node that acknowledged it or of another) that came before the final
	// read: the store answered before the write was durable.
	LostAfterPowerLoss int `json:"lost_after_power_loss"`
	// NeverReadAcknowledged counts acknowledged elements never read
	// successfully; if non-zero and nothing is invalid, Valid is unknown.
	NeverReadAcknowledged int `json:"never_read_acknowledged"`
	// Explanation summarises the verdict in one sentence.
	Explanation string `json:"explanation"`
	// LostElements, UnexpectedElements, CorruptedElements,
	// RecoveredElements and NeverReadElements list the elements of each
	// category in key order, at most MaxSetElements each; the counts above
	// are exact.
	LostElements       []SetElement `json:"lost_elements"`
	UnexpectedElements []SetElement `json:"unexpected_elements"`
	CorruptedElements  []SetElement `json:"corrupted_elements"`
	RecoveredElements  []SetElement `json:"recovered_elements"`
	NeverReadElements  []SetElement `json:"never_read_elements"`
}

// MaxSetElements caps each element list of a SetResult.
const MaxSetElements = 100

// SetElement is one element of a set history.
type SetElement struct {
	// Key is the element's key.
	Key string `json:"key"`
	// Value is the value added (or, for a phantom element, read).
	Value json.RawMessage `json:"value"`
	// Add is the outcome of its add: "ok", "fail", "info" ("info" also for
	// an add that never completed) or "" if no add was invoked.
	Add history.Type `json:"add"`
	// Explanation says what happened, naming process and times.
	Explanation string `json:"explanation"`
}

type setElem struct {
	key         string
	value       json.RawMessage // first add's value, canonical
	values      map[string]bool // canonical values of all adds
	add         history.Type    // best outcome: ok > info > fail
	addProc     history.Process
	addTime     int64  // completion (or invocation if none) of the deciding add
	addNode     string // node the deciding add went to, "" if unknown
	reads       int
	last        *history.Op // last successful read
	seen        *history.Op // first successful read that found a value
	wrong       *history.Op // first successful read of a value never added
	hasAdd      bool
	addComplete bool
}

func rank(t history.Type) int {
	switch t {
	case history.OK:
		return 3
	case history.Info:
		return 2
	case history.Fail:
		return 1
	}
	return 0
}

// checkSet checks a set history; events holds, per key, the positions of
// its add and read events.
func checkSet(all []history.Op, keys []string, events map[string][]int32) *SetResult {
	r := &SetResult{
		LostElements: []SetElement{}, UnexpectedElements: []SetElement{}, CorruptedElements: []SetElement{},
		RecoveredElements: []SetElement{}, NeverReadElements: []SetElement{},
	}
	canon := func(v json.RawMessage) json.RawMessage {
		if history.IsNull(v) {
			return nil
		}
		if c, err := Canonical(v); err == nil {
			return c
		}
		return v
	}
	disk := diskFaults(all)
	for _, key := range keys {
		e := &setElem{key: key, values: map[string]bool{}}
		var pairing history.Pairing[int32]
		settle := func(inv int32, comp *history.Op) {
			iop := &all[inv]
			if iop.F != history.FAdd {
				return // an unfinished or failed read says nothing
			}
			t, at := history.Info, iop.Time
			if comp != nil {
				t, at = comp.Type, comp.Time
			}
			v := canon(iop.Value)
			if v == nil && comp != nil {
				v = canon(comp.Value)
			}
			if !e.hasAdd {
				e.value = v
			}
			e.hasAdd = true
			e.values[string(v)] = true
			if rank(t) > rank(e.add) {
				e.add, e.addProc, e.addTime, e.addComplete = t, iop.Process, at, comp != nil
				e.addNode = iop.Node
				if comp != nil && comp.Node != "" {
					e.addNode = comp.Node
				}
			}
		}
		for _, pos := range events[key] {
			op := &all[pos]
			if op.Type == history.Invoke {
				if prev, dangling := pairing.Invoke(op.Process, op.F, pos); dangling {
					settle(prev.V, nil)
				}
				continue
			}
			inv, ok := pairing.Complete(op.Process, op.F)
			if !ok {
				continue // unmatched: ignored
			}
			if op.F == history.FAdd {
				settle(inv.V, op)
				continue
			}
			if op.Type != history.OK {
				continue
			}
			e.reads++
			e.last = op
			if !history.IsNull(op.Value) {
				if e.seen == nil {
					e.seen = op
				}
				if e.wrong == nil && e.hasAdd && !e.values[string(canon(op.Value))] {
					e.wrong = op
				}
			}
		}
		for _, inv := range pairing.Dangling() {
			settle(inv.V, nil)
		}
		classify(r, e, disk)
	}
	switch {
	case r.Lost+r.Unexpected+r.Corrupted > 0:
		r.Valid = Invalid
		r.Explanation = fmt.Sprintf("%d lost, %d unexpected and %d corrupted of %d elements.", r.Lost, r.Unexpected, r.Corrupted, r.Attempted)
		if r.LostAfterPowerLoss > 0 {
			were := "were"
			if r.LostAfterPowerLoss == 1 {
				were = "was"
			}
			r.Explanation += fmt.Sprintf(" %d of the lost elements %s acknowledged before a power loss: the store answered before syncing them.", r.LostAfterPowerLoss, were)
		}
	case r.NeverReadAcknowledged > 0:
		r.Valid = Unknown
		r.Explanation = fmt.Sprintf("No element was lost among those read, but %d acknowledged elements were never read successfully, so whether they survived is unknown.", r.NeverReadAcknowledged)
	default:
		r.Valid = Valid
		r.Explanation = fmt.Sprintf("All %d acknowledged elements survived; %d elements with an unknown outcome were recovered.", r.Acknowledged, r.Recovered)
	}
	return r
}

func classify(r *SetResult, e *setElem, disk []diskFault) {
	sec := func(t int64) string { return seconds(t, 3) }
	el := SetElement{Key: e.key, Value: e.value, Add: e.add}
	addDesc := fmt.Sprintf("add of %s (key %s) by process %s", string(e.value), e.key, e.addProc)
	push := func(list *[]SetElement, expl string) {
		if len(*list) < MaxSetElements {
			el.Explanation = expl
			*list = append(*list, el)
		}
	}
	if e.hasAdd {
		r.Attempted++
		switch e.add {
		case history.OK:
			r.Acknowledged++
		case history.Fail:
			r.Failed++
		default:
			r.Indeterminate++
		}
	}
	if e.reads == 0 {
		if !e.hasAdd {
			return
		}
		r.NeverRead++
		if e.add == history.OK {
			r.NeverReadAcknowledged++
		}
		push(&r.NeverReadElements, fmt.Sprintf("%s completed %s at %s, but no final read of %s succeeded.", addDesc, e.add, sec(e.addTime), e.key))
		return
	}
	present := !history.IsNull(e.last.Value)
	switch {
	case !e.hasAdd && e.seen != nil:
		r.Unexpected++
		el.Value = e.seen.Value
		push(&r.UnexpectedElements, fmt.Sprintf("the final read of %s by process %s at %s found %s, but no add of %s was ever invoked.",
			e.key, e.seen.Process, sec(e.seen.Time), string(e.seen.Value), e.key))
	case !e.hasAdd:
		// A read of a key nobody added, which found nothing: fine.
	case e.wrong != nil:
		r.Corrupted++
		push(&r.CorruptedElements, fmt.Sprintf("the final read of %s by process %s at %s returned %s, which no add of %s wrote (%s).",
			e.key, e.wrong.Process, sec(e.wrong.Time), string(e.wrong.Value), e.key, addDesc))
	case e.add == history.Fail && e.seen != nil:
		r.Unexpected++
		push(&r.UnexpectedElements, fmt.Sprintf("%s failed at %s, yet the final read by process %s at %s found it.",
			addDesc, sec(e.addTime), e.seen.Process, sec(e.seen.Time)))
	case e.add == history.OK && !present:
		r.Lost++
		by := ""
		if e.addNode != "" {
			by = " by " + e.addNode
		}
		cause, powerLoss := lossCause(disk, e.addNode, e.addTime, e.last.Time)
		if powerLoss {
			r.LostAfterPowerLoss++
		}
		push(&r.LostElements, fmt.Sprintf("%s was acknowledged%s at %s, but the final read of %s by process %s at %s found it absent%s.",
			addDesc, by, sec(e.addTime), e.key, e.last.Process, sec(e.last.Time), cause))
	case e.add == history.Info && present:
		r.Recovered++
		how := "ended with an unknown outcome (info) at " + sec(e.addTime)
		if !e.addComplete {
			how = "never completed (invoked at " + sec(e.addTime) + ")"
		}
		push(&r.RecoveredElements, fmt.Sprintf("%s %s, and the final read by process %s at %s found it.",
			addDesc, how, e.last.Process, sec(e.last.Time)))
	}
}

// diskFault is a power loss or a corruption of one node's files, as the
// nemesis recorded it: the explanation of a lost element names the one
// that hit the node that acknowledged it.
type diskFault struct {
	node string
	f    string // history.FPowerLoss or history.FCorrupt
	// from and to are the times of the nemesis op's invocation and
	// completion; to is the largest time if it never completed.
	from, to int64
	damage   *history.Corruption
}

// diskFaults returns the power losses and corruptions of a history's
// nemesis ops, one per node hit, in the order they were invoked. The nodes
// are those the completion says were hit (the plan's if it never
// completed); values that do not decode are skipped.
func diskFaults(all []history.Op) []diskFault {
	var out []diskFault
	var pairing history.Pairing[int]
	add := func(inv *history.Op, comp *history.Op) {
		val, to := inv.Value, int64(math.MaxInt64)
		if comp != nil {
			to = comp.Time
			if !history.IsNull(comp.Value) {
				val = comp.Value
			}
		}
		f, err := history.DecodeFault(history.Op{Type: history.Info, Process: inv.Process, F: inv.F, Value: val})
		if err != nil {
			return
		}
		for _, n := range f.Targets {
			out = append(out, diskFault{node: n, f: inv.F, from: inv.Time, to: to, damage: f.Corruption})
		}
	}
	for i := range all {
		op := &all[i]
		if !op.Process.Nemesis || (op.F != history.FPowerLoss && op.F != history.FCorrupt) {
			continue
		}
		if op.Type == history.Invoke {
			if prev, dangling := pairing.Invoke(op.Process, op.F, i); dangling {
				add(&all[prev.V], nil)
			}
			continue
		}
		if inv, ok := pairing.Complete(op.Process, op.F); ok {
			add(&all[inv.V], op)
		}
	}
	for _, inv := range pairing.Dangling() {
		add(&all[inv.V], nil)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].from < out[j].from })
	return out
}

// lossCause names the first power loss or corruption that hit node after
// it acknowledged an add at ack and before the final read at read found
// the element absent: "; n1 lost power at 14.000s, before syncing it".
// When none hit node (or node is unknown), it names the first power loss
// of other nodes in that time instead: "; n2 kept its power, but n1 lost
// power at 24.068s, after the acknowledgement" (a store that forwards
// writes to a primary loses them there). It returns "" when there was
// none; powerLoss says whether it named a power loss.
func lossCause(disk []diskFault, node string, ack, read int64) (cause string, powerLoss bool) {
	sec := func(t int64) string { return seconds(t, 3) }
	// The fault may have struck any time between its invocation and its
	// completion: one that completed after the acknowledgement may have
	// come after the store answered.
	after := func(d diskFault) bool { return d.to > ack && d.from < read }
	when := func(d diskFault) string {
		if d.from < ack && d.to != math.MaxInt64 {
			return "between " + sec(d.from) + " and " + sec(d.to)
		}
		return "at " + sec(d.from)
	}
	for _, d := range disk {
		if node == "" || d.node != node || !after(d) {
			continue
		}
		if d.f == history.FPowerLoss {
			return fmt.Sprintf("; %s lost power %s, before syncing it", node, when(d)), true
		}
		what, how := "its files were", ""
		if d.damage != nil {
			what = fmt.Sprintf("its file %s was", d.damage.File)
			how = fmt.Sprintf(" (%s at %d)", d.damage.Kind, d.damage.Offset)
		}
		return fmt.Sprintf("; %s was stopped and %s corrupted%s %s", node, what, how, when(d)), false
	}
	for i, d := range disk {
		if d.f != history.FPowerLoss || !after(d) {
			continue
		}
		// The nodes of the same power loss (one op, one invocation time).
		var nodes []string
		for _, e := range disk[i:] {
			if e.f == d.f && e.from == d.from && e.to == d.to {
				nodes = append(nodes, e.node)
			}
		}
		who := strings.Join(nodes, " and ")
		if len(nodes) > 2 {
			who = strings.Join(nodes[:len(nodes)-1], ", ") + " and " + nodes[len(nodes)-1]
		}
		if node == "" {
			return fmt.Sprintf("; %s lost power %s, after the acknowledgement", who, when(d)), true
		}
		return fmt.Sprintf("; %s kept its power, but %s lost power %s, after the acknowledgement", node, who, when(d)), true
	}
	return "", false
}
