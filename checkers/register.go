package checkers

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/jepsen-go/jepsen/history"
)

// Kinds of register operation, after the semantics of docs/history.md
// have been applied.
const (
	kRead        uint8 = iota // ok read of a
	kWrite                    // write a (ok or info)
	kCAS                      // cas a -> b (ok or info)
	kCASFail                  // failed cas, precondition-failed: the register did not hold a
	kCASNotFound              // failed cas, not-found: the register was absent
)

// regOp is one register operation as the model sees it. Values are interned
// ids (absent = null).
type regOp struct {
	kind uint8
	info bool // outcome unknown: may take effect any time after call, or never
	a, b int32
	// av and bv are a and b boxed once, so that the model's steps do not
	// convert them on every call.
	av, bv any
	call   int64
	ret    int64 // for info ops: the key's "infinity", after every other return
	done   int64 // time of the completion event; -1 for a dangling invocation
	proc   history.Process
	inv    int32 // position of the invocation in the checked ops
	comp   int32 // position of the completion, -1 for a dangling invocation
}

func (o *regOp) isSetter() bool { return o.kind == kWrite || o.kind == kCAS }

// setValue is the value a setter writes (if it takes effect).
func (o *regOp) setValue() int32 {
	if o.kind == kCAS {
		return o.b
	}
	return o.a
}

// registerStep is the sequential specification of one register. The state
// is the interned value it holds (absent = key absent).
func registerStep(state, input, _ any) (bool, any) {
	s := state.(int32)
	op := input.(*regOp)
	switch op.kind {
	case kRead:
		return s == op.a, state
	case kWrite:
		return true, op.av
	case kCAS:
		if s == op.a {
			return true, op.bv
		}
		// An info cas that finds another value simply does not take
		// effect; an ok cas must have found its from value.
		return op.info, state
	case kCASFail:
		return s != op.a, state
	case kCASNotFound:
		return s == absent && op.a != absent, state
	}
	return false, state
}

// stepInt is registerStep (relaxedStep if relaxed) on unboxed states, for
// the small-history search of the witness shrinker.
func stepInt(s int32, op *regOp, relaxed bool) (bool, int32) {
	switch op.kind {
	case kRead:
		return s == op.a, s
	case kWrite:
		return true, op.a
	case kCAS:
		if s == op.a || (relaxed && op.info) {
			return true, op.b
		}
		return op.info, s
	case kCASFail:
		return s != op.a, s
	case kCASNotFound:
		return s == absent && op.a != absent, s
	}
	return false, s
}

// relaxedStep is registerStep with every info cas weakened to an info
// write of its to value: it may set the register to b at any moment after
// its invocation, or never, whatever the register holds. A sub-history
// that is illegal even so is illegal under registerStep too. The witness
// shrinker uses it so that a witness need not explain where an info cas's
// from value came from.
func relaxedStep(state, input, output any) (bool, any) {
	if op := input.(*regOp); op.kind == kCAS && op.info {
		return true, op.bv
	}
	return registerStep(state, input, output)
}

// newRegisterModel returns the porcupine model of one key's register
// (relaxed: see relaxedStep). Its StepContext gives up (refuses every step)
// once stop is set, so that a cancelled check returns promptly; callers
// discard results found after stop is set.
func newRegisterModel(stop *atomic.Bool, relaxed bool) porcupine.Model {
	m := porcupine.Model{
		Init: func() any { return absent },
		Step: registerStep,
		StepContext: func(_ context.Context, state, input, output any) (bool, any) {
			if stop.Load() {
				return false, state
			}
			return registerStep(state, input, output)
		},
	}
	if relaxed {
		m.Step = relaxedStep
		m.StepContext = func(_ context.Context, state, input, output any) (bool, any) {
			if stop.Load() {
				return false, state
			}
			return relaxedStep(state, input, output)
		}
	}
	// No Hash: states are small interned ints, so porcupine's cache
	// buckets (keyed by the set of linearized operations) hold few states
	// and comparing them is cheap; a Hash function measured about 20%
	// slower on the etcd histories.
	return m
}

// keyHistory is one key's operations, ready for porcupine.
type keyHistory struct {
	key     string
	ops     []regOp
	in      *interner
	inf     int64
	dropped map[string]int
	// info is porcupine's record of the whole key's check, kept for the
	// visualization when the key is small enough to show whole.
	info *porcupine.LinearizationInfo
	// took is how long the key's check took.
	took time.Duration
}

// buildKey applies the semantics of docs/history.md to the events of
// one key (positions into all, in history order).
func buildKey(all []history.Op, key string, events []int32) (*keyHistory, error) {
	kh := &keyHistory{key: key, in: newInterner(), dropped: map[string]int{}}
	var pairing history.Pairing[int32]
	var maxTime int64
	val := func(pos int32, raw []byte) (int32, error) {
		id, err := kh.in.id(raw)
		if err != nil {
			return 0, fmt.Errorf("op %d (%s by process %s): %w", all[pos].Index, all[pos].F, all[pos].Process, err)
		}
		return id, nil
	}
	add := func(inv, comp int32) error {
		iop := &all[inv]
		var cop *history.Op
		typ := history.Info // dangling invocations count as info
		if comp >= 0 {
			cop = &all[comp]
			typ = cop.Type
		}
		o := regOp{proc: iop.Process, inv: inv, comp: comp, call: iop.Time, info: typ == history.Info, done: -1}
		if cop != nil {
			o.ret, o.done = cop.Time, cop.Time
		}
		arg := iop.Value
		if history.IsNull(arg) && cop != nil {
			arg = cop.Value
		}
		var err error
		switch iop.F {
		case history.FRead:
			switch typ {
			case history.Fail:
				kh.dropped["failed-read"]++
				return nil
			case history.Info:
				kh.dropped["info-read"]++
				return nil
			}
			o.kind = kRead
			if o.a, err = val(comp, cop.Value); err != nil {
				return err
			}
		case history.FWrite:
			if typ == history.Fail {
				kh.dropped["failed"]++
				return nil
			}
			o.kind = kWrite
			if o.a, err = val(inv, arg); err != nil {
				return err
			}
		case history.FCAS:
			if typ == history.Fail {
				switch cop.Error {
				case history.ErrPreconditionFailed:
					o.kind = kCASFail
				case history.ErrNotFound:
					o.kind = kCASNotFound
				default:
					kh.dropped["failed"]++
					return nil
				}
			} else {
				o.kind = kCAS
			}
			from, to, perr := splitPair(arg)
			if perr != nil {
				return fmt.Errorf("op %d (cas by process %s): %w", iop.Index, iop.Process, perr)
			}
			if o.a, err = val(inv, from); err != nil {
				return err
			}
			if o.b, err = val(inv, to); err != nil {
				return err
			}
		default:
			return nil
		}
		kh.ops = append(kh.ops, o)
		return nil
	}
	for _, pos := range events {
		op := &all[pos]
		if op.Time > maxTime {
			maxTime = op.Time
		}
		if op.Type == history.Invoke {
			if prev, dangling := pairing.Invoke(op.Process, op.F, pos); dangling {
				if err := add(prev.V, -1); err != nil {
					return nil, err
				}
			}
			continue
		}
		inv, ok := pairing.Complete(op.Process, op.F)
		if !ok {
			continue // unmatched: ignored
		}
		if err := add(inv.V, pos); err != nil {
			return nil, err
		}
	}
	for _, inv := range pairing.Dangling() {
		if err := add(inv.V, -1); err != nil {
			return nil, err
		}
	}
	kh.inf = maxTime + 1
	for i := range kh.ops {
		o := &kh.ops[i]
		if o.info {
			o.ret = kh.inf
		}
		o.av, o.bv = o.a, o.b
	}
	return kh, nil
}

// operations converts ops (positions into kh.ops) to porcupine
// operations. Client rows are numbered densely by process, in process
// order, for the visualization; Metadata is the *regOp.
func (kh *keyHistory) operations(idx []int32) []porcupine.Operation {
	rows := map[history.Process]int{}
	var procs []history.Process
	for _, j := range idx {
		p := kh.ops[j].proc
		if _, ok := rows[p]; !ok {
			rows[p] = 0
			procs = append(procs, p)
		}
	}
	sort.Slice(procs, func(a, b int) bool { return procs[a].ID < procs[b].ID })
	for r, p := range procs {
		rows[p] = r
	}
	pops := make([]porcupine.Operation, len(idx))
	for i, j := range idx {
		o := &kh.ops[j]
		pops[i] = porcupine.Operation{ClientId: rows[o.proc], Input: o, Call: o.call, Return: o.ret, Metadata: o}
	}
	return pops
}

func (kh *keyHistory) all() []int32 {
	idx := make([]int32, len(kh.ops))
	for i := range idx {
		idx[i] = int32(i)
	}
	return idx
}

// keyOutcome is the verdict of one key.
type keyOutcome struct {
	valid   Validity
	ops     int
	dropped map[string]int
	failure *KeyFailure
	unknown *UnknownKey
}

// registerCheck is the state shared by the workers of one register check.
type registerCheck struct {
	all      []history.Op
	deadline time.Time
	budget   time.Duration
	stop     atomic.Bool
	model    porcupine.Model // exact semantics
	relaxed  porcupine.Model // info cas weakened, for shrinking
}

// checkRegister checks each key of a register history for
// linearizability, keys in parallel on a bounded pool of workers.
func checkRegister(ctx context.Context, all []history.Op, keys []string, events map[string][]int32, opts Options, deadline time.Time) *LinearResult {
	rc := &registerCheck{all: all, deadline: deadline, budget: opts.Timeout}
	rc.model = newRegisterModel(&rc.stop, false)
	rc.relaxed = newRegisterModel(&rc.stop, true)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			rc.stop.Store(true)
		case <-done:
		}
	}()

	// Biggest keys first, so that one huge key does not start last.
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(events[keys[order[a]]]) > len(events[keys[order[b]]]) })

	outcomes := make([]keyOutcome, len(keys))
	jobs := make(chan int)
	var wg sync.WaitGroup
	workers := opts.Workers
	if workers > len(keys) {
		workers = len(keys)
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				outcomes[i] = rc.safeCheckKey(ctx, keys[i], events[keys[i]])
			}
		}()
	}
	for _, i := range order {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	lr := &LinearResult{Valid: Valid, Keys: len(keys), Dropped: map[string]int{"failed-read": 0, "info-read": 0, "failed": 0}, Failures: []KeyFailure{}, Unknown: []UnknownKey{}}
	for i := range keys {
		o := &outcomes[i]
		lr.Operations += o.ops
		for k, n := range o.dropped {
			lr.Dropped[k] += n
		}
		lr.Valid = combine(lr.Valid, o.valid)
		switch o.valid {
		case Valid:
			lr.ValidKeys++
		case Invalid:
			lr.InvalidKeys++
			lr.Failures = append(lr.Failures, *o.failure)
		default:
			lr.UnknownKeys++
			lr.Unknown = append(lr.Unknown, *o.unknown)
		}
	}
	return lr
}

// safeCheckKey is checkKey, with a panic (a bug of ours or porcupine's)
// turned into an unknown verdict for the key rather than a crash.
func (rc *registerCheck) safeCheckKey(ctx context.Context, key string, events []int32) (o keyOutcome) {
	defer func() {
		if r := recover(); r != nil {
			o = keyOutcome{valid: Unknown, unknown: &UnknownKey{Key: key, Reason: fmt.Sprintf("internal error in the checker: %v", r)}}
		}
	}()
	return rc.checkKey(ctx, key, events)
}

// checkKey checks one key.
func (rc *registerCheck) checkKey(ctx context.Context, key string, events []int32) keyOutcome {
	unknown := func(n int, reason string) keyOutcome {
		return keyOutcome{valid: Unknown, ops: n, unknown: &UnknownKey{Key: key, Operations: n, Reason: reason}}
	}
	kh, err := buildKey(rc.all, key, events)
	if err != nil {
		return unknown(0, err.Error())
	}
	out := func(o keyOutcome) keyOutcome {
		o.ops, o.dropped = len(kh.ops), kh.dropped
		if o.unknown != nil {
			o.unknown.Operations = len(kh.ops)
		}
		return o
	}
	if ctx.Err() != nil {
		return out(unknown(0, "check cancelled before this key was checked"))
	}
	remaining := time.Until(rc.deadline)
	if remaining <= 0 {
		return out(unknown(0, fmt.Sprintf("not checked: the time budget of %s was spent on other keys", rc.budget)))
	}
	start := time.Now()
	var res porcupine.CheckResult
	if len(kh.ops) <= VisualizeMaxOps {
		// Small enough to visualise whole: record partial linearizations
		// now rather than check the key a second time if it fails.
		var info porcupine.LinearizationInfo
		res, info = porcupine.CheckOperationsVerbose(rc.model, kh.operations(kh.all()), remaining)
		if res == porcupine.Illegal {
			kh.info = &info
		}
	} else {
		res = porcupine.CheckOperationsTimeout(rc.model, kh.operations(kh.all()), remaining)
	}
	kh.took = time.Since(start)
	if ctx.Err() != nil {
		return out(unknown(0, "check cancelled while checking this key"))
	}
	switch res {
	case porcupine.Ok:
		return out(keyOutcome{valid: Valid})
	case porcupine.Unknown:
		return out(unknown(0, fmt.Sprintf("timed out after %s (the check's budget is %s)", time.Since(start).Round(time.Millisecond), rc.budget)))
	}
	f := rc.explainFailure(ctx, kh)
	return out(keyOutcome{valid: Invalid, failure: f})
}
