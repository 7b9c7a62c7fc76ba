package workloads

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jepsen-go/jepsen/history"
)

// Finisher is a workload with a final phase, run after the faults are
// healed and the cluster has had time to recover.
type Finisher interface {
	// Final runs the final phase and returns how many of its items (keys
	// to read back) were done, and how many there were.
	Final(ctx context.Context, env FinalEnv) (done, total int)
}

// FinalEnv is what a final phase uses of the run.
type FinalEnv struct {
	// Nodes are the node names; thread i starts on node i mod len(Nodes).
	Nodes []string
	// Threads is how many client threads to use.
	Threads int
	// FirstProcess is the lowest process number not used so far: thread i
	// is process FirstProcess+i, and after an info continues as that
	// number plus Threads.
	FirstProcess int
	// Invoke performs inv as process p through node, records the
	// invocation and its completion, and returns the completion.
	Invoke func(ctx context.Context, p int, node string, inv Invocation) history.Op
	// Stall ends the phase when no op has succeeded for this long.
	Stall time.Duration
	// Retry is the pause before an op that failed is tried again (on the
	// next node); default 100 ms.
	Retry time.Duration
	// Progress, if not nil, is called with (0, total) at the start and
	// every 5 s with the number of items done so far.
	Progress func(done, total int)
}

// Final reads every added key back. The threads take the keys in turn; a
// read is retried, on the next node each time, until it succeeds. Each
// try is an op of the history. The phase gives up only when no read has
// succeeded for env.Stall: a cluster that answers is read to the end
// however many keys there are, one that does not is left after the stall.
func (w *set) Final(ctx context.Context, env FinalEnv) (done, total int) {
	keys := w.keys()
	if env.Progress != nil {
		env.Progress(0, len(keys))
	}
	if env.Retry <= 0 {
		env.Retry = 100 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next, read atomic.Int64
	var lastOK atomic.Int64 // UnixNano of the latest successful read
	lastOK.Store(time.Now().UnixNano())
	go func() {
		tick := time.NewTicker(min(env.Stall/4+time.Millisecond, time.Second))
		defer tick.Stop()
		lastReport := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				if now.Sub(time.Unix(0, lastOK.Load())) > env.Stall {
					cancel()
					return
				}
				if env.Progress != nil && now.Sub(lastReport) >= 5*time.Second {
					lastReport = now
					env.Progress(int(read.Load()), len(keys))
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range env.Threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node, p := i%len(env.Nodes), env.FirstProcess+i
			for {
				k := int(next.Add(1) - 1)
				if k >= len(keys) {
					return
				}
				for ctx.Err() == nil {
					comp := env.Invoke(ctx, p, env.Nodes[node], Invocation{F: history.FRead, Key: keys[k]})
					if comp.Type == history.OK {
						read.Add(1)
						lastOK.Store(time.Now().UnixNano())
						break
					}
					if comp.Type == history.Info {
						p += env.Threads // an info'd process never issues again
					}
					node = (node + 1) % len(env.Nodes)
					select {
					case <-ctx.Done():
					case <-time.After(env.Retry):
					}
				}
				if ctx.Err() != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return int(read.Load()), len(keys)
}
