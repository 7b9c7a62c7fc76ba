package history

import "sort"

// Pairing pairs the invocations of a history with their completions as
// the events go by, in history order. It is the one place that applies the
// pairing rules of docs/history.md; the reader, the checkers and the
// reports all pair through it:
//
//   - A process runs one op at a time: a completion pairs with its
//     process's invocation in flight, if that invocation is of the same f.
//   - A second invocation by a process whose invocation is still in flight
//     makes the first dangling: it never completes.
//   - Invocations still in flight at the end are dangling (Dangling returns
//     them in history order).
//   - A completion whose process has no invocation of its f in flight is
//     unmatched; an invocation of another f in flight stays in flight.
//
// The nemesis is one process like any other. T is what the caller keeps of
// an invocation (its position in a slice, its line, ...). The zero Pairing
// is ready to use; a Pairing is not safe for concurrent use.
type Pairing[T any] struct {
	inflight map[Process]Invocation[T]
	seq      uint64
}

// Invocation is an invocation in flight: its f and what the caller kept of
// it.
type Invocation[T any] struct {
	// F is the invoked operation.
	F string
	// V is what the caller gave Invoke.
	V   T
	seq uint64 // invocation order, for Dangling
}

// Invoke records that p invoked f and keeps v with it. If p already had an
// invocation in flight, that one is now dangling: Invoke returns it and
// true.
func (pr *Pairing[T]) Invoke(p Process, f string, v T) (prev Invocation[T], dangling bool) {
	if pr.inflight == nil {
		pr.inflight = make(map[Process]Invocation[T])
	}
	prev, dangling = pr.inflight[p]
	pr.seq++
	pr.inflight[p] = Invocation[T]{F: f, V: v, seq: pr.seq}
	return prev, dangling
}

// Complete pairs p's completion of f with p's invocation in flight, which
// it returns with true and forgets. It returns false when the completion is
// unmatched: p has no invocation of f in flight (an invocation of another
// f stays in flight; InFlight shows it).
func (pr *Pairing[T]) Complete(p Process, f string) (inv Invocation[T], ok bool) {
	inv, ok = pr.inflight[p]
	if !ok || inv.F != f {
		return Invocation[T]{}, false
	}
	delete(pr.inflight, p)
	return inv, true
}

// InFlight returns p's invocation in flight, if it has one.
func (pr *Pairing[T]) InFlight(p Process) (Invocation[T], bool) {
	inv, ok := pr.inflight[p]
	return inv, ok
}

// Len returns the number of invocations in flight.
func (pr *Pairing[T]) Len() int { return len(pr.inflight) }

// Dangling returns the invocations still in flight, in the order they were
// invoked, and forgets them: at the end of a history they are dangling.
func (pr *Pairing[T]) Dangling() []Invocation[T] {
	if len(pr.inflight) == 0 {
		return nil
	}
	out := make([]Invocation[T], 0, len(pr.inflight))
	for _, inv := range pr.inflight {
		out = append(out, inv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	clear(pr.inflight)
	return out
}
