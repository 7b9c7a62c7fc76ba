package checkers

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// explain says in plain words why the witness w (positions into kh.ops) is
// impossible, and which operation of it cannot be explained (-1 when the
// explanation only lists the witness). The specific sentences are checked against the key's whole
// history, so that "no operation could have written 1 after it" is true of
// the history, not only of the witness.
func explain(kh *keyHistory, s *shrinker, w []int32) (string, int32) {
	ops := kh.ops
	p := precision(kh, w)
	sec := func(t int64) string { return seconds(t, p) }
	val := func(v int32) string { return kh.in.text(v) }

	// Observers, earliest completion first.
	obs := make([]int32, 0, len(w))
	for _, i := range w {
		o := &ops[i]
		if _, _, isObs := s.observes(o); isObs && !o.info {
			obs = append(obs, i)
		}
	}
	sort.SliceStable(obs, func(a, b int) bool { return ops[obs[a]].ret < ops[obs[b]].ret })

	for _, oi := range obs {
		o := &ops[oi]
		v, anyValue, _ := s.observes(o)
		if anyValue {
			// A precondition-failed cas: the register did not hold o.a.
			x := o.a
			// Blocker: an ok setter of x, completed before o began, after
			// which no setter of another value could have happened.
			for _, wi := range w {
				b := &ops[wi]
				if !b.isSetter() || b.info || b.setValue() != x || b.ret >= o.call {
					continue
				}
				if s.noSetterAfter(oi, b.call, func(val int32) bool { return val != x }) {
					return fmt.Sprintf("%s failed at %s saying %s did not hold %s, but %s had completed at %s, before the cas began at %s, and no operation could have changed %s after it.",
						describe(kh, o), sec(o.ret), kh.key, val(x), describe(kh, b), sec(b.ret), sec(o.call), kh.key), oi
				}
			}
			if x == absent && s.noSetterAfter(oi, minTime, func(val int32) bool { return val != absent }) {
				return fmt.Sprintf("%s failed at %s saying %s held a value, but no operation had written %s before then.",
					describe(kh, o), sec(o.ret), kh.key, kh.key), oi
			}
			continue
		}
		// o observed value v.
		if v != absent && s.noSetterAfter(oi, minTime, func(val int32) bool { return val == v }) {
			return fmt.Sprintf("%s, but no operation had written %s to %s before then.",
				observed(kh, o, sec(o.ret)), val(v), kh.key), oi
		}
		// A blocker b left the register holding something other than v,
		// strictly before o began.
		for _, bi := range w {
			b := &ops[bi]
			post, ok := s.postState(b)
			if !ok || bi == oi || post == v || b.ret >= o.call {
				continue
			}
			later := s.settersAfter(oi, b.call, v)
			what := "no operation could have written " + val(v) + " after it"
			if v == absent {
				what = "nothing could have removed " + kh.key + " after it"
			}
			if len(later) == 0 {
				return fmt.Sprintf("%s, but %s, before the %s began at %s, and %s.",
					observed(kh, o, sec(o.ret)), blocked(kh, b, sec(b.ret)), noun(o), sec(o.call), what), oi
			}
			if len(later) != 1 {
				continue
			}
			// The only candidate setter was used up by an earlier
			// observer of v: one that completed before b began, or b
			// itself (a cas from v).
			c := later[0]
			for _, pi := range w {
				p := &ops[pi]
				pv, anyValue, isObs := s.observes(p)
				if pi == oi || !isObs || anyValue || p.info || pv != v || (pi != bi && p.ret >= b.call) {
					continue
				}
				if u := s.settersAfter(pi, s.dom[pi], v); len(u) == 1 && u[0] == c && (v != absent || s.dom[pi] != minTime) {
					when := fmt.Sprintf("before process %s read %s at %s", p.proc, val(v), sec(p.ret))
					if p.kind != kRead {
						when = fmt.Sprintf("before %s, which found %s, completed at %s", describe(kh, p), val(v), sec(p.ret))
					}
					if pi == bi {
						when = "before that cas, which found " + val(v)
					}
					return fmt.Sprintf("%s, but %s, before the %s began at %s; the only operation that could have written %s after it, %s, must already have taken effect %s.",
						observed(kh, o, sec(o.ret)), blocked(kh, b, sec(b.ret)), noun(o), sec(o.call), val(v), describe(kh, &ops[c]), when), oi
				}
			}
		}
	}

	// General case: list the operations.
	order := append([]int32(nil), w...)
	s.sortByCall(order)
	parts := make([]string, len(order))
	for i, j := range order {
		o := &ops[j]
		end := "never completed"
		if o.comp >= 0 {
			end = "completed " + sec(ops[j].ret)
			if o.info {
				end = "outcome unknown at " + sec(o.done)
			}
		}
		parts[i] = fmt.Sprintf("%s (invoked %s, %s)", outcome(kh, o), sec(o.call), end)
	}
	const maxListed = 12
	more := ""
	if len(parts) > maxListed {
		more = fmt.Sprintf("; and %d more (see the witness)", len(parts)-maxListed)
		parts = parts[:maxListed]
	}
	return fmt.Sprintf("No order of these %d operations on %s agrees both with their timing and with a single register: %s%s.",
		len(order), kh.key, strings.Join(parts, "; "), more), -1
}

const minTime = -1 << 63

// noSetterAfter reports whether no setter of the key's whole history whose
// value satisfies pick could take effect after time t and before observer
// oi completed: every such setter invoked before oi completed had
// completed before t.
func (s *shrinker) noSetterAfter(oi int32, t int64, pick func(int32) bool) bool {
	o := &s.kh.ops[oi]
	for _, si := range s.setters {
		st := &s.kh.ops[si]
		if st.call > o.ret {
			break
		}
		if si == oi || !pick(st.setValue()) {
			continue
		}
		if t == minTime || st.ret >= t {
			return false
		}
	}
	return true
}

// settersAfter returns the setters of v in the key's whole history that
// could take effect after time t and before observer oi completes:
// invoked before oi completed, completed at or after t. The initial state
// (absent) counts as a setter that completed at minus infinity.
func (s *shrinker) settersAfter(oi int32, t int64, v int32) []int32 {
	o := &s.kh.ops[oi]
	var out []int32
	if v == absent && t == minTime {
		out = append(out, -1)
	}
	for _, si := range s.byValue[v] {
		st := &s.kh.ops[si]
		if st.call > o.ret {
			break
		}
		if si != oi && st.ret >= t {
			out = append(out, si)
		}
	}
	return out
}

// postState returns the value the register certainly held at b's
// linearization point, after b: the value an ok setter wrote, or the value
// an ok read returned.
func (s *shrinker) postState(b *regOp) (int32, bool) {
	if b.info {
		return 0, false
	}
	switch b.kind {
	case kCASNotFound:
		return absent, true
	case kRead, kWrite:
		return b.a, true
	case kCAS:
		return b.b, true
	}
	return 0, false
}

// blocked describes a blocker and when it completed.
func blocked(kh *keyHistory, b *regOp, at string) string {
	switch b.kind {
	case kRead:
		if b.a == absent {
			return fmt.Sprintf("process %s had found %s absent at %s", b.proc, kh.key, at)
		}
		return fmt.Sprintf("process %s had read %s at %s", b.proc, kh.in.text(b.a), at)
	case kCASNotFound:
		return fmt.Sprintf("%s had failed saying %s was absent at %s", describe(kh, b), kh.key, at)
	}
	return fmt.Sprintf("%s had completed at %s", describe(kh, b), at)
}

// describe names an operation: "write 2 to k3 by process 1".
func describe(kh *keyHistory, o *regOp) string {
	v := kh.in.text
	var s string
	switch o.kind {
	case kRead:
		s = fmt.Sprintf("read of %s by process %s", kh.key, o.proc)
	case kWrite:
		s = fmt.Sprintf("write %s to %s by process %s", v(o.a), kh.key, o.proc)
	default:
		s = fmt.Sprintf("cas %s→%s on %s by process %s", v(o.a), v(o.b), kh.key, o.proc)
	}
	if o.info {
		s += " (outcome unknown)"
	}
	return s
}

// observed describes what an observer saw and when: "read of k3 by
// process 4 returned 1 at 12.301s".
func observed(kh *keyHistory, o *regOp, at string) string {
	switch o.kind {
	case kRead:
		if o.a == absent {
			return fmt.Sprintf("read of %s by process %s found %s absent at %s", kh.key, o.proc, kh.key, at)
		}
		return fmt.Sprintf("read of %s by process %s returned %s at %s", kh.key, o.proc, kh.in.text(o.a), at)
	case kCAS:
		return fmt.Sprintf("%s succeeded at %s, so %s held %s then", describe(kh, o), at, kh.key, kh.in.text(o.a))
	case kCASNotFound:
		return fmt.Sprintf("%s failed at %s saying %s was absent", describe(kh, o), at, kh.key)
	}
	return describe(kh, o) + " at " + at
}

// outcome describes an operation with its result, for the general case.
func outcome(kh *keyHistory, o *regOp) string {
	switch o.kind {
	case kRead:
		if o.a == absent {
			return fmt.Sprintf("process %s read %s as absent", o.proc, kh.key)
		}
		return fmt.Sprintf("process %s read %s", o.proc, kh.in.text(o.a))
	case kWrite:
		return fmt.Sprintf("process %s wrote %s", o.proc, kh.in.text(o.a))
	case kCAS:
		return fmt.Sprintf("process %s did cas %s→%s", o.proc, kh.in.text(o.a), kh.in.text(o.b))
	case kCASFail:
		return fmt.Sprintf("process %s's cas %s→%s failed (precondition-failed)", o.proc, kh.in.text(o.a), kh.in.text(o.b))
	default:
		return fmt.Sprintf("process %s's cas %s→%s failed (not-found)", o.proc, kh.in.text(o.a), kh.in.text(o.b))
	}
}

func noun(o *regOp) string {
	if o.kind == kRead {
		return "read"
	}
	return "cas"
}

// precision returns how many decimals of a second tell the witness's
// times apart: 3 (milliseconds) unless two distinct times would print the
// same.
func precision(kh *keyHistory, w []int32) int {
	var ts []int64
	for _, i := range w {
		o := &kh.ops[i]
		ts = append(ts, o.call)
		if !o.info {
			ts = append(ts, o.ret)
		}
	}
	for p := 3; p < 9; p++ {
		seen := map[string]int64{}
		clash := false
		for _, t := range ts {
			s := seconds(t, p)
			if u, ok := seen[s]; ok && u != t {
				clash = true
				break
			}
			seen[s] = t
		}
		if !clash {
			return p
		}
	}
	return 9
}

// seconds formats nanoseconds as seconds with p decimals: "12.301s".
func seconds(ns int64, p int) string {
	return strconv.FormatFloat(float64(ns)/1e9, 'f', p, 64) + "s"
}
