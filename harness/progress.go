package harness

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// startProgress reports the run's progress until ctx ends or the returned
// stop is called: a live status line on a terminal, a line every 5 s
// otherwise.
func (r *run) startProgress(ctx context.Context, nem nemesisRunner) (stop func()) {
	every := 5 * time.Second
	if r.cfg.Terminal {
		every = 250 * time.Millisecond
	}
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		var lastOps int64
		lastT := start
		rateNow := 0.0
		for {
			select {
			case <-done:
				if r.cfg.Terminal {
					fmt.Fprint(r.cfg.Progress, "\r\033[K")
				}
				return
			case now := <-t.C:
				ok, fail, info := r.rec.Counts()
				total := ok + fail + info
				if dt := now.Sub(lastT).Seconds(); dt >= 1 || !r.cfg.Terminal {
					rateNow = float64(total-lastOps) / dt
					lastOps, lastT = total, now
				}
				faults := "none"
				if nem != nil {
					if a := nem.Active(); len(a) > 0 {
						faults = strings.Join(a, ", ")
					}
					if r.metrics != nil {
						r.metrics.faults.Set(float64(len(nem.Active())))
					}
				}
				line := fmt.Sprintf("%5.1fs / %s  ok %d  fail %d  info %d  %.0f ops/s  faults: %s",
					now.Sub(start).Seconds(), r.cfg.TimeLimit, ok, fail, info, rateNow, faults)
				if r.cfg.Terminal {
					fmt.Fprintf(r.cfg.Progress, "\r\033[K%s", line)
				} else {
					fmt.Fprintln(r.cfg.Progress, line)
				}
				r.log.Debug("progress", "ok", ok, "fail", fail, "info", info, "faults", faults)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done); wg.Wait() })
	}
}
