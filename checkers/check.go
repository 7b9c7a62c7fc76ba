package checkers

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"time"

	"github.com/jepsen-go/jepsen/history"
)

// Workload names understood by Check.
const (
	// WorkloadRegister is read, write and cas on independent keys, checked
	// for linearizability.
	WorkloadRegister = "register"
	// WorkloadSet is add (a unique key per element) plus final reads,
	// checked for lost and unexpected elements.
	WorkloadSet = "set"
)

// DetectWorkload guesses the workload of a history: "set" if any client
// op is an add (set histories also contain reads), otherwise "register".
func DetectWorkload(ops []history.Op) string {
	for i := range ops {
		if ops[i].IsClient() && ops[i].F == history.FAdd {
			return WorkloadSet
		}
	}
	return WorkloadRegister
}

// Check checks a history (events in history order, as history.Read returns
// them) and returns its verdict. It never panics on any input and never
// returns nil. A register history is checked for linearizability key by
// key, in parallel on opts.Workers workers, within opts.Timeout for the
// whole check; a key whose check does not finish in time, or is cut short
// by ctx, is unknown, never valid. For every invalid key, Check shrinks a
// witness, explains it and renders porcupine's visualization.
func Check(ctx context.Context, ops []history.Op, opts Options) (res *Result) {
	start := time.Now()
	res = &Result{Ops: len(ops), Stats: Stats{ByF: map[string]map[history.Type]int{}}}
	defer func() {
		if r := recover(); r != nil {
			// A bug of ours must surface as trouble, not as a crash of
			// the harness or a verdict.
			*res = Result{Valid: Unknown, Ops: len(ops), Error: fmt.Sprintf("internal error in the checker: %v", r), Stats: Stats{ByF: map[string]map[history.Type]int{}}}
		}
		res.Seconds = time.Since(start).Seconds()
	}()
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	wl := opts.Workload
	if wl == "" {
		wl = DetectWorkload(ops)
	}
	res.Workload = wl
	if wl != WorkloadRegister && wl != WorkloadSet {
		res.Error = fmt.Sprintf("unknown workload %q: must be %q or %q", wl, WorkloadRegister, WorkloadSet)
		return res
	}
	deadline := start.Add(opts.Timeout)

	events := map[string][]int32{}
	inflight := map[history.Process]bool{}
	for i := range ops {
		op := &ops[i]
		byType := res.Stats.ByF[op.F]
		if byType == nil {
			byType = map[history.Type]int{}
			res.Stats.ByF[op.F] = byType
		}
		byType[op.Type]++
		if op.Process.Nemesis {
			res.Stats.Nemesis++
			continue
		}
		if op.Type == history.Invoke {
			if inflight[op.Process] {
				res.Stats.Dangling++
			}
			inflight[op.Process] = true
		} else if inflight[op.Process] {
			delete(inflight, op.Process)
		} else {
			res.Stats.Unmatched++
		}
		if !belongs(wl, op.F) {
			res.Stats.Ignored++
			continue
		}
		events[op.Key] = append(events[op.Key], int32(i))
	}
	res.Stats.Dangling += len(inflight)
	keys := make([]string, 0, len(events))
	for k := range events {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	res.Keys = len(keys)

	switch wl {
	case WorkloadRegister:
		res.Linear = checkRegister(ctx, ops, keys, events, opts, deadline)
		res.Valid = res.Linear.Valid
	case WorkloadSet:
		res.Set = checkSet(ops, keys, events)
		res.Valid = res.Set.Valid
	}
	return res
}

// belongs reports whether f is an operation of workload wl.
func belongs(wl, f string) bool {
	switch f {
	case history.FRead:
		return true
	case history.FWrite, history.FCAS:
		return wl == WorkloadRegister
	case history.FAdd:
		return wl == WorkloadSet
	}
	return false
}
