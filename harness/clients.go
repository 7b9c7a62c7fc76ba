package harness

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/jepsen-go/jepsen/history"
	"github.com/jepsen-go/jepsen/workloads"
)

// Client performs one operation against one node: given an invocation it
// returns the completion (ok, fail or info), as the target's protocol maps
// it. Every targets.Conn satisfies it.
type Client interface {
	Invoke(ctx context.Context, op history.Op) history.Op
}

// Dialer returns the client for a node. It is called before every op, so
// that a node whose address changed (a restarted container) is reached at
// its new one.
type Dialer func(node string) Client

// clientOptions configure the client threads.
type clientOptions struct {
	Concurrency int
	OpTimeout   time.Duration
	// Limiter caps the total op rate of all threads; nil means unlimited.
	Limiter *rate.Limiter
}

// thread is one client thread: it runs one op at a time under its current
// process number, and continues under a fresh one after an info, as
// Jepsen's clients do.
type thread struct {
	node    int // index into nodes: thread i starts on node i mod N
	process int
	stride  int // the number of threads: after an info, process += stride, so threads never share a number
}

func (t *thread) crashed() { t.process += t.stride }

// Backoff after errors: a thread whose node is down or refusing would
// otherwise spin, filling the history with thousands of failures a second
// (and info ops, which are the expensive ones to check).
const (
	minBackoff = 10 * time.Millisecond
	maxBackoff = time.Second
)

// backoff returns how long to wait after comp, given the previous wait:
// nothing after an answer from the store (ok, or a cas that found another
// value), doubling waits after errors.
func backoff(prev time.Duration, comp history.Op) time.Duration {
	if comp.Type == history.OK || comp.Error == history.ErrPreconditionFailed || comp.Error == history.ErrNotFound {
		return 0
	}
	return min(max(2*prev, minBackoff), maxBackoff)
}

// pause waits d or until ctx is done.
func pause(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// downClient stands for a node that has no address (its container is
// stopped) or that the protocol could not dial (why): nothing can be sent,
// so every op surely fails.
type downClient struct{ node, why string }

func (d downClient) Invoke(_ context.Context, op history.Op) history.Op {
	op.Type, op.Error = history.Fail, "node "+d.node+" is down (no address to send to)"
	if d.why != "" {
		op.Error = "cannot reach node " + d.node + ": " + d.why
	}
	return op
}

// invoke records an invocation, performs it with a deadline of opTimeout and
// records its completion. It reports the completion.
func invoke(ctx context.Context, rec *Recorder, c Client, node string, p int, inv workloads.Invocation, opTimeout time.Duration) history.Op {
	op := history.Op{Type: history.Invoke, Process: history.Client(p), F: inv.F, Key: inv.Key, Value: inv.Value, Node: node}
	rec.Record(&op)
	opCtx, cancel := context.WithTimeout(ctx, opTimeout)
	comp := c.Invoke(opCtx, op)
	cancel()
	comp.Process, comp.F, comp.Key, comp.Node = op.Process, op.F, op.Key, node
	if !comp.Type.Valid() || comp.Type == history.Invoke {
		comp.Type, comp.Error = history.Info, "client returned no completion"
	}
	rec.Record(&comp)
	return comp
}

// runClients runs opts.Concurrency threads issuing the workload's ops until
// gen is done. In-flight ops are not cut when gen ends: each finishes within
// its own timeout, or when ops (the interrupt context) is cancelled, in which
// case it is recorded as info. It returns the threads, whose process numbers
// the final phase continues with.
func runClients(gen, ops context.Context, w workloads.Workload, nodes []string, dial Dialer, rec *Recorder, opts clientOptions) []*thread {
	threads := make([]*thread, opts.Concurrency)
	var wg sync.WaitGroup
	for i := range threads {
		t := &thread{node: i % len(nodes), process: i, stride: opts.Concurrency}
		threads[i] = t
		g := w.Thread(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var wait time.Duration
			for gen.Err() == nil {
				if opts.Limiter != nil && opts.Limiter.Wait(gen) != nil {
					return
				}
				node := nodes[t.node]
				comp := invoke(ops, rec, dial(node), node, t.process, g.Next(), opts.OpTimeout)
				if comp.Type == history.Info {
					t.crashed()
				}
				wait = backoff(wait, comp)
				pause(gen, wait)
			}
		}()
	}
	wg.Wait()
	return threads
}

// finalConcurrency is the number of final-phase threads for a main phase
// of conc threads: four times as many, up to 64 (never fewer than conc).
func finalConcurrency(conc int) int { return max(conc, min(4*conc, 64)) }

// nextProcess returns the lowest process number no thread has used.
func nextProcess(threads []*thread) int {
	base := 0
	for _, t := range threads {
		base = max(base, t.process+1)
	}
	return base
}
