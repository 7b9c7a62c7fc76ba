package checkers

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/jepsen-go/jepsen/history"
)

// Counterexample shrinking.
//
// Dropping operations from a history can make it non-linearizable on its own
// (drop the write a read observed and the read becomes impossible), so a
// sub-history that is not linearizable proves nothing by itself. The
// shrinker therefore only considers sub-histories W that are closed:
//
//   - for every operation o in W that observes a value v (an ok read of v,
//     a cas from v that completed ok or info, a not-found cas observing
//     "absent"), W holds every operation s of the key's history H that
//     may set the register to v, unless s could not be the last setter
//     before o: s was invoked after o completed, or some ok setter of H
//     lies strictly between them in real time (s completed before it was
//     invoked and it completed before o was invoked);
//   - for every precondition-failed cas o in W (which observes "not
//     from", any value), the same holds for setters of every value.
//
// Lemma: if H is linearizable, every closed W is. Take a linearization L of
// H and keep W's operations in L's order, moving info cas operations that
// did not take effect in L to the end (their return is infinite). For each
// observer o in W, the last setter before o in L is, by closure, in W, and
// nothing between them in L is a setter, so o sees in W what it saw in L.
// Hence a closed W that is not linearizable proves H is not: it is a
// sound witness. The shrinker cuts H to the shortest illegal closed prefix
// (binary search on invocation order), then removes chunks and then single
// operations while the rest stays closed and illegal (delta debugging).

const (
	// shrinkBudget bounds the time spent shrinking one key's witness.
	shrinkBudget = 10 * time.Second
	// shrinkMaxChecks bounds the porcupine calls spent shrinking one key.
	shrinkMaxChecks = 20000
	// shrinkMaxTimeouts ends delta debugging after this many porcupine
	// calls in a row could not decide a candidate in time: the key's
	// sub-histories are too hard to shrink within the budget.
	shrinkMaxTimeouts = 4
)

type shrinker struct {
	kh        *keyHistory
	model     porcupine.Model
	relaxed   bool    // info cas weakened to info writes (see relaxedStep)
	dom       []int64 // per op: max invocation time of an ok setter that completed before op was invoked
	domBy     []int32 // per op: that setter, -1 if none
	setters   []int32 // setters sorted by call
	byValue   map[int32][]int32
	minRet    map[int32]int64 // per value: earliest completion of a setter of it
	minRetAll int64
	deadline  time.Time
	perCheck  time.Duration // cap on one porcupine call; 0 = none
	checks    int
	timeouts  int // porcupine calls in a row that hit perCheck
	ctx       context.Context
}

func newShrinker(ctx context.Context, kh *keyHistory, model porcupine.Model, relaxed bool, deadline time.Time) *shrinker {
	s := &shrinker{kh: kh, model: model, relaxed: relaxed, ctx: ctx, deadline: deadline,
		byValue: map[int32][]int32{}, minRet: map[int32]int64{}, minRetAll: math.MaxInt64}
	ops := kh.ops
	var ok []int32
	for i := range ops {
		if ops[i].isSetter() {
			s.setters = append(s.setters, int32(i))
			if !ops[i].info {
				ok = append(ok, int32(i))
			}
		}
	}
	sort.SliceStable(s.setters, func(a, b int) bool { return ops[s.setters[a]].call < ops[s.setters[b]].call })
	// The initial state is a setter of absent that completed at -infinity.
	s.minRet[absent] = math.MinInt64
	s.minRetAll = math.MinInt64
	for _, i := range s.setters {
		v := ops[i].setValue()
		s.byValue[v] = append(s.byValue[v], i)
		if r, ok := s.minRet[v]; !ok || ops[i].ret < r {
			s.minRet[v] = ops[i].ret
		}
	}
	sort.Slice(ok, func(a, b int) bool { return ops[ok[a]].ret < ops[ok[b]].ret })
	rets := make([]int64, len(ok))
	prefMax := make([]int64, len(ok))
	prefArg := make([]int32, len(ok))
	m, arg := int64(math.MinInt64), int32(-1)
	for i, j := range ok {
		rets[i] = ops[j].ret
		if ops[j].call > m {
			m, arg = ops[j].call, j
		}
		prefMax[i], prefArg[i] = m, arg
	}
	s.dom = make([]int64, len(ops))
	s.domBy = make([]int32, len(ops))
	for i := range ops {
		n := sort.Search(len(rets), func(k int) bool { return rets[k] >= ops[i].call })
		if n == 0 {
			s.dom[i], s.domBy[i] = math.MinInt64, -1
		} else {
			s.dom[i], s.domBy[i] = prefMax[n-1], prefArg[n-1]
		}
	}
	return s
}

// needsDom reports whether observer oi needs its dominating setter
// domBy[oi] in a witness: some setter of what it observes (or the initial
// state) was left out because it completed before domBy[oi] began, and the
// witness must show why.
func (s *shrinker) needsDom(oi int32) bool {
	if s.domBy[oi] < 0 {
		return false
	}
	v, anyValue, _ := s.observes(&s.kh.ops[oi])
	if anyValue {
		return s.minRetAll < s.dom[oi]
	}
	r, ok := s.minRet[v]
	return ok && r < s.dom[oi]
}

// observes says what o observes: a value v, or (anyValue) only that the
// register did not hold some value. In relaxed mode an info cas observes
// nothing.
func (s *shrinker) observes(o *regOp) (v int32, anyValue, isObserver bool) {
	switch o.kind {
	case kRead:
		return o.a, false, true
	case kCAS:
		if o.info && s.relaxed {
			return 0, false, false
		}
		return o.a, false, true
	case kCASNotFound:
		return absent, false, true
	case kCASFail:
		return 0, true, true
	}
	return 0, false, false
}

// requires reports whether closure makes observer oi need setter si.
func (s *shrinker) requires(oi, si int32) bool {
	if oi == si {
		return false
	}
	o, st := &s.kh.ops[oi], &s.kh.ops[si]
	v, anyValue, obs := s.observes(o)
	if !obs {
		return false
	}
	if si == s.domBy[oi] && s.needsDom(oi) {
		return true
	}
	if !st.isSetter() || (!anyValue && st.setValue() != v) {
		return false
	}
	return st.call <= o.ret && st.ret >= s.dom[oi]
}

// closure returns the smallest closed superset of set, sorted by call.
func (s *shrinker) closure(set []int32) []int32 {
	in := make([]bool, len(s.kh.ops))
	work := append([]int32(nil), set...)
	for _, i := range set {
		in[i] = true
	}
	for len(work) > 0 {
		oi := work[len(work)-1]
		work = work[:len(work)-1]
		o := &s.kh.ops[oi]
		v, anyValue, obs := s.observes(o)
		if !obs {
			continue
		}
		if d := s.domBy[oi]; d >= 0 && !in[d] && s.needsDom(oi) {
			in[d] = true
			work = append(work, d)
		}
		list := s.setters
		if !anyValue {
			list = s.byValue[v]
		}
		for _, si := range list {
			st := &s.kh.ops[si]
			if st.call > o.ret {
				break
			}
			if si != oi && !in[si] && st.ret >= s.dom[oi] {
				in[si] = true
				work = append(work, si)
			}
		}
	}
	out := make([]int32, 0, len(set))
	for i, b := range in {
		if b {
			out = append(out, int32(i))
		}
	}
	s.sortByCall(out)
	return out
}

func (s *shrinker) sortByCall(idx []int32) {
	ops := s.kh.ops
	sort.SliceStable(idx, func(a, b int) bool {
		if ops[idx[a]].call != ops[idx[b]].call {
			return ops[idx[a]].call < ops[idx[b]].call
		}
		return idx[a] < idx[b]
	})
}

func (s *shrinker) outOfBudget() bool {
	return s.checks >= shrinkMaxChecks || s.timeouts >= shrinkMaxTimeouts || s.ctx.Err() != nil || !time.Now().Before(s.deadline)
}

// illegal reports whether the sub-history idx is provably not linearizable
// (false if porcupine ran out of time).
func (s *shrinker) illegal(idx []int32) bool {
	if s.outOfBudget() {
		return false
	}
	s.checks++
	if len(idx) <= smallMax {
		s.timeouts = 0
		return !s.smallLinearizable(idx)
	}
	limit := time.Until(s.deadline)
	if s.perCheck > 0 && s.perCheck < limit {
		limit = s.perCheck
	}
	switch porcupine.CheckOperationsTimeout(s.model, s.kh.operations(idx), limit) {
	case porcupine.Illegal:
		s.timeouts = 0
		return true
	case porcupine.Unknown:
		s.timeouts++
	default:
		s.timeouts = 0
	}
	return false
}

// smallMax is the largest sub-history illegal checks itself instead of
// calling porcupine: shrinking checks thousands of tiny candidates, and
// for them porcupine's per-call setup (a goroutine, a timer, sorting)
// costs more than the search. The final witness is always confirmed by
// porcupine (see explainFailure).
const smallMax = 10

// smallLinearizable decides by exhaustive search whether the few
// operations idx are linearizable under the shrinker's semantics: it tries
// every order that respects real time (an operation may come next unless
// another remaining one completed before it was invoked), remembering
// (linearized set, state) pairs already explored.
func (s *shrinker) smallLinearizable(idx []int32) bool {
	ops := make([]*regOp, len(idx))
	for i, j := range idx {
		ops[i] = &s.kh.ops[j]
	}
	full := uint32(1)<<len(ops) - 1
	seen := map[uint64]bool{}
	var dfs func(mask uint32, state int32) bool
	dfs = func(mask uint32, state int32) bool {
		if mask == full {
			return true
		}
		key := uint64(mask)<<32 | uint64(uint32(state))
		if seen[key] {
			return false
		}
		seen[key] = true
		minRet := int64(math.MaxInt64)
		for i, o := range ops {
			if mask&(1<<i) == 0 && o.ret < minRet {
				minRet = o.ret
			}
		}
		for i, o := range ops {
			if mask&(1<<i) != 0 || o.call > minRet {
				continue
			}
			if ok, next := stepInt(state, o, s.relaxed); ok && dfs(mask|1<<i, next) {
				return true
			}
		}
		return false
	}
	return dfs(0, absent)
}

// removable reports whether rest (W without drop) is still closed.
func (s *shrinker) removable(drop, rest []int32) bool {
	for _, oi := range rest {
		if _, _, obs := s.observes(&s.kh.ops[oi]); !obs {
			continue
		}
		for _, si := range drop {
			if s.requires(oi, si) {
				return false
			}
		}
	}
	return true
}

// shrink returns a closed, non-linearizable sub-history of the key (which
// must itself be non-linearizable under s.model) and whether it is
// 1-minimal. It shrinks from the key up to its first stuck observer (see
// stuck) or else the whole key and, when that is illegal too,
// from the key without its precondition-failed cas observations (which
// pull every concurrent setter into a witness), and keeps the smaller.
func (s *shrinker) shrink(stuck map[int32]bool) ([]int32, bool) {
	best, minimal := s.kh.all(), false
	// Porcupine got stuck at the earliest stuck observer: the history up
	// to its completion is likely illegal already, and much cheaper to
	// shrink than the whole key.
	first := int64(math.MaxInt64)
	for i := range stuck {
		if _, _, isObs := s.observes(&s.kh.ops[i]); isObs && !s.kh.ops[i].info {
			first = min(first, s.kh.ops[i].ret)
		}
	}
	if first < math.MaxInt64 {
		var prefix []int32
		for i := range s.kh.ops {
			if s.kh.ops[i].call <= first {
				prefix = append(prefix, int32(i))
			}
		}
		if c := s.closure(prefix); len(c) < len(best) && s.illegal(c) {
			best, minimal = s.shrinkFrom(c, false)
		}
	}
	if len(best) == len(s.kh.ops) {
		best, minimal = s.shrinkFrom(best, false)
	}
	var noFail []int32
	for i := range s.kh.ops {
		if s.kh.ops[i].kind != kCASFail {
			noFail = append(noFail, int32(i))
		}
	}
	try := func(start []int32, reverse bool) {
		if len(best) <= 2 || s.outOfBudget() {
			return
		}
		if w, m := s.shrinkFrom(start, reverse); len(w) < len(best) || (len(w) == len(best) && m && !minimal) {
			best, minimal = w, m
		}
	}
	if len(noFail) < len(s.kh.ops) && s.illegal(noFail) {
		try(noFail, false)
	}
	try(s.kh.all(), true)
	return best, minimal
}

// shrinkFrom shrinks the closed illegal set start; reverse tries to drop
// the latest operations first instead of the earliest.
func (s *shrinker) shrinkFrom(start []int32, reverse bool) ([]int32, bool) {
	w := append([]int32(nil), start...)
	s.sortByCall(w)
	byCall := append([]int32(nil), w...)

	// Shortest illegal closed prefix, by invocation order.
	lo, hi := 0, len(byCall)
	for hi-lo > 1 && !s.outOfBudget() {
		mid := (lo + hi) / 2
		cand := s.closure(byCall[:mid])
		if len(cand) < len(w) && s.illegal(cand) {
			hi, w = mid, cand
		} else {
			lo = mid
		}
	}

	if reverse {
		for i, j := 0, len(w)-1; i < j; i, j = i+1, j-1 {
			w[i], w[j] = w[j], w[i]
		}
	}
	// Delta debugging: drop chunks, then single operations.
	without := func(w []int32, i, j int) []int32 {
		out := make([]int32, 0, len(w)-(j-i))
		return append(append(out, w[:i]...), w[j:]...)
	}
	for k := len(w) / 2; k >= 1; k /= 2 {
		for i := 0; i < len(w); {
			if s.outOfBudget() {
				s.sortByCall(w)
				return w, false
			}
			j := min(i+k, len(w))
			cand := without(w, i, j)
			if len(cand) > 0 && s.removable(w[i:j], cand) && s.illegal(cand) {
				w = cand
				continue
			}
			i = j
		}
	}
	w, minimal := s.minimize(w)
	s.sortByCall(w)
	return w, minimal
}

// explainFailure builds the KeyFailure of a key porcupine found illegal:
// finds and shrinks a witness, explains it and visualises it.
//
// Shrinking first looks for the usual small witnesses directly (an
// observer alone or with one or two operations that completed just before
// it, plus their closure), with info cas weakened (see relaxedStep), and
// makes the one found 1-minimal. Only if none exists does it run delta
// debugging, with the exact semantics. Its budget is half the time the
// key's check took (at least 20ms, at most 10s, never past the check's
// deadline), so that explaining a failure costs less than finding it; a
// witness that runs out of budget is still a sound proof, only not
// minimal (KeyFailure.Minimal).
func (rc *registerCheck) explainFailure(ctx context.Context, kh *keyHistory) *KeyFailure {
	budget := min(max(kh.took/2, 10*time.Millisecond), shrinkBudget)
	deadline := time.Now().Add(budget)
	if rc.deadline.Before(deadline) {
		deadline = rc.deadline
	}
	hint := stuck(kh)
	s := newShrinker(ctx, kh, rc.relaxed, true, deadline)
	w, minimal := s.patterns(hint)
	if w != nil {
		w, minimal = s.minimize(w)
	} else {
		// A candidate that porcupine cannot decide quickly is kept rather
		// than allowed to eat the whole budget.
		s = newShrinker(ctx, kh, rc.model, false, deadline)
		s.perCheck = budget / 16
		w, minimal = s.shrink(hint)
	}
	if !s.confirmed(w) {
		// Never expected: the small-history search and porcupine
		// disagree. Fall back to the whole key, which porcupine found
		// illegal.
		w, minimal = kh.all(), false
	}
	f := &KeyFailure{
		Key:        kh.key,
		Operations: len(kh.ops),
		WitnessOps: len(w),
		Minimal:    minimal,
		Witness:    witnessEvents(rc.all, kh, w),
	}
	var culprit int32
	f.Explanation, culprit = explain(kh, s, w)
	if culprit >= 0 {
		o := &kh.ops[culprit]
		at := o.inv
		if o.comp >= 0 {
			at = o.comp
		}
		idx := rc.all[at].Index
		f.ImpossibleIndex = &idx
	}
	rc.visualize(ctx, kh, w, f)
	return f
}

const (
	// patternMax is the largest witness patterns looks for.
	patternMax = 8
	// patternPins is how many of the operations that completed last
	// before an observer began patterns combines with it.
	patternPins = 4
)

// patterns looks for a small closed illegal set made of one observer, or
// of an observer and one or two of the operations that completed last
// before it began, plus closure. It returns the smallest it finds, or nil.
// Observers are tried by completion time, those in stuck (porcupine could
// not linearize them) first.
func (s *shrinker) patterns(stuck map[int32]bool) ([]int32, bool) {
	ops := s.kh.ops
	var obs []int32
	for i := range ops {
		if _, _, isObs := s.observes(&ops[i]); isObs && !ops[i].info {
			obs = append(obs, int32(i))
		}
	}
	sort.SliceStable(obs, func(a, b int) bool {
		if stuck[obs[a]] != stuck[obs[b]] {
			return stuck[obs[a]]
		}
		return ops[obs[a]].ret < ops[obs[b]].ret
	})
	// Operations that pin the register's value at their linearization
	// point, by completion time.
	var pins []int32
	for i := range ops {
		if !ops[i].info && ops[i].kind != kCASFail {
			pins = append(pins, int32(i))
		}
	}
	sort.SliceStable(pins, func(a, b int) bool { return ops[pins[a]].ret < ops[pins[b]].ret })
	var best []int32
	scanned := 0
	tried := map[string]bool{} // closures already checked
	consider := func(set []int32) {
		c := s.closure(set)
		if len(c) > patternMax || (best != nil && len(c) >= len(best)) {
			return
		}
		key := fmt.Sprint(c)
		if tried[key] {
			return
		}
		tried[key] = true
		if s.illegal(c) {
			best = c
		}
	}
	for _, oi := range obs {
		if s.outOfBudget() || (best != nil && (len(best) <= 3 || scanned > 8)) {
			break
		}
		if best != nil {
			scanned++
		}
		o := &ops[oi]
		consider([]int32{oi})
		// The latest few operations that completed before o began, alone
		// and in pairs.
		var near []int32
		n := sort.Search(len(pins), func(k int) bool { return ops[pins[k]].ret >= o.call })
		for k := n - 1; k >= 0 && len(near) < patternPins; k-- {
			if pins[k] != oi {
				near = append(near, pins[k])
			}
		}
		for i, a := range near {
			consider([]int32{a, oi})
			for _, b := range near[i+1:] {
				consider([]int32{a, b, oi})
			}
		}
	}
	return best, false
}

// confirmed reports whether porcupine itself finds w illegal (within the
// rest of the check's budget; a witness it cannot decide in time is
// trusted to the small-history search).
func (s *shrinker) confirmed(w []int32) bool {
	if len(w) > smallMax {
		return true // already decided by porcupine
	}
	return porcupine.CheckOperationsTimeout(s.model, s.kh.operations(w), time.Second) != porcupine.Ok
}

// stuck returns the key's operations that are not in porcupine's longest
// partial linearization (nil if the check kept none): the violation is
// among the first of them.
func stuck(kh *keyHistory) map[int32]bool {
	if kh.info == nil {
		return nil
	}
	parts := kh.info.PartialLinearizations()
	if len(parts) == 0 {
		return nil
	}
	var longest []int
	for _, p := range parts[0] {
		if len(p) > len(longest) {
			longest = p
		}
	}
	in := make(map[int]bool, len(longest))
	for _, id := range longest {
		in[id] = true
	}
	out := map[int32]bool{}
	for i := range kh.ops {
		if !in[i] {
			out[int32(i)] = true
		}
	}
	return out
}

// minimize removes single operations from the closed illegal set w while
// it stays closed and illegal.
func (s *shrinker) minimize(w []int32) ([]int32, bool) {
	for changed := true; changed; {
		changed = false
		for i := 0; i < len(w); {
			if s.outOfBudget() {
				return w, false
			}
			cand := append(append([]int32(nil), w[:i]...), w[i+1:]...)
			if len(cand) > 0 && s.removable(w[i:i+1], cand) && s.illegal(cand) {
				w, changed = cand, true
				continue
			}
			i++
		}
	}
	return w, true
}

// witnessEvents returns the events of the witness operations, in history
// order.
func witnessEvents(all []history.Op, kh *keyHistory, w []int32) []history.Op {
	var pos []int32
	for _, i := range w {
		o := &kh.ops[i]
		pos = append(pos, o.inv)
		if o.comp >= 0 {
			pos = append(pos, o.comp)
		}
	}
	sort.Slice(pos, func(a, b int) bool { return pos[a] < pos[b] })
	out := make([]history.Op, len(pos))
	for i, p := range pos {
		out[i] = all[p]
	}
	return out
}
