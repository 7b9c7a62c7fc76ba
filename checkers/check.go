package checkers

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jepsen-go/jepsen/history"
)

// Checker judges the client ops of one kind of history. A workload names
// the Checker that applies to it; a history without a workload is matched
// by Detect.
type Checker struct {
	// Name is recorded as the result's workload ("register", "set").
	Name string
	// Fs are the client fs the checker judges; others are ignored.
	Fs []string
	// mark is an f only this checker's histories hold ("" = none): Detect
	// picks the first checker whose mark a history holds.
	mark string
	// check judges the ops of keys (events: each key's op indexes) into res.
	check func(ctx context.Context, ops []history.Op, keys []string, events map[string][]int32, opts Options, deadline time.Time, res *Result)
}

// The checkers.
var (
	// Linearizable checks read, write and cas on independent keys for
	// linearizability, key by key, with porcupine.
	Linearizable = &Checker{Name: "register", Fs: []string{history.FRead, history.FWrite, history.FCAS},
		check: func(ctx context.Context, ops []history.Op, keys []string, events map[string][]int32, opts Options, deadline time.Time, res *Result) {
			res.Linear = checkRegister(ctx, ops, keys, events, opts, deadline)
			res.Valid = res.Linear.Valid
		}}
	// LostWrites checks adds (a unique key per element) against the final
	// reads for lost and unexpected elements.
	LostWrites = &Checker{Name: "set", Fs: []string{history.FAdd, history.FRead}, mark: history.FAdd,
		check: func(_ context.Context, ops []history.Op, keys []string, events map[string][]int32, _ Options, _ time.Time, res *Result) {
			res.Set = checkSet(ops, keys, events)
			res.Valid = res.Set.Valid
		}}
)

// Checkers lists every checker; Detect tries them in order.
var Checkers = []*Checker{LostWrites, Linearizable}

// Workload names of the checkers, for callers that name them.
const (
	// WorkloadRegister is Linearizable's name.
	WorkloadRegister = "register"
	// WorkloadSet is LostWrites's name.
	WorkloadSet = "set"
)

// ByName returns the checker called name, or nil.
func ByName(name string) *Checker {
	for _, c := range Checkers {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Detect returns the checker of a history: the first whose mark (an f only
// its histories hold, such as add) a client op has, else Linearizable.
func Detect(ops []history.Op) *Checker {
	for i := range ops {
		if !ops[i].IsClient() {
			continue
		}
		for _, c := range Checkers {
			if c.mark != "" && ops[i].F == c.mark {
				return c
			}
		}
	}
	return Linearizable
}

// DetectWorkload returns the name of Detect's checker.
func DetectWorkload(ops []history.Op) string { return Detect(ops).Name }

// names lists the checkers' names.
func names() string {
	var out []string
	for _, c := range Checkers {
		out = append(out, strconv.Quote(c.Name))
	}
	return strings.Join(out, " or ")
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
	chk := opts.Checker
	switch {
	case chk != nil:
	case opts.Workload == "":
		chk = Detect(ops)
	default:
		chk = ByName(opts.Workload)
	}
	if chk == nil {
		res.Workload = opts.Workload
		res.Error = fmt.Sprintf("unknown workload %q: must be %s", opts.Workload, names())
		return res
	}
	res.Workload = chk.Name
	deadline := start.Add(opts.Timeout)

	events := map[string][]int32{}
	var pairing history.Pairing[struct{}]
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
			if _, dangling := pairing.Invoke(op.Process, op.F, struct{}{}); dangling {
				res.Stats.Dangling++
			}
		} else if _, ok := pairing.Complete(op.Process, op.F); !ok {
			res.Stats.Unmatched++
		}
		if !slices.Contains(chk.Fs, op.F) {
			res.Stats.Ignored++
			continue
		}
		events[op.Key] = append(events[op.Key], int32(i))
	}
	res.Stats.Dangling += pairing.Len()
	keys := make([]string, 0, len(events))
	for k := range events {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	res.Keys = len(keys)

	chk.check(ctx, ops, keys, events, opts, deadline, res)
	res.AddProblems(untested(ops, chk.Fs)...)
	return res
}
