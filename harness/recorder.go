package harness

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jepsen-go/jepsen/history"
)

// Recorder appends the ops of a run to history.jsonl as they happen. It
// stamps each op with its index and with the time since the test started,
// under one lock, so that the file's order is the order of events and times
// never go backwards. Lines are buffered and written whole, at most every
// flushEvery or when the buffer fills, so a crash of the harness leaves a
// valid prefix of the history on disk.
type Recorder struct {
	mu     sync.Mutex
	start  time.Time
	file   *os.File
	buf    bytes.Buffer
	w      *history.Writer
	err    error
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup

	// Counts of client completions, for progress lines.
	ok, fail, info atomic.Int64
	// observe, if set, is called with every op after it is recorded.
	observe func(op *history.Op)
}

const (
	flushEvery  = 100 * time.Millisecond
	flushAtSize = 64 << 10
)

// NewRecorder creates the history file at path. Times are measured from
// start, on the monotonic clock.
func NewRecorder(path string, start time.Time) (*Recorder, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create history: %w", err)
	}
	r := &Recorder{start: start, file: f, done: make(chan struct{})}
	r.w = history.NewWriter(&r.buf)
	r.wg.Add(1)
	go r.flusher()
	return r, nil
}

func (r *Recorder) flusher() {
	defer r.wg.Done()
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
			r.mu.Lock()
			r.flushLocked()
			r.mu.Unlock()
		}
	}
}

// flushLocked writes the buffered whole lines to the file.
func (r *Recorder) flushLocked() {
	if r.buf.Len() == 0 || r.err != nil {
		return
	}
	if _, err := r.file.Write(r.buf.Bytes()); err != nil {
		r.err = fmt.Errorf("write history: %w", err)
	}
	r.buf.Reset()
}

// Now returns the time since the test started, in nanoseconds.
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// Record stamps op with its index and time and appends it. The first write
// error is kept and returned by this and every later call.
func (r *Recorder) Record(op *history.Op) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return fmt.Errorf("record %s: recorder closed", op.F)
	}
	op.Time = r.Now()
	if err := r.w.Write(op); err != nil && r.err == nil {
		r.err = err
	}
	if r.buf.Len() >= flushAtSize {
		r.flushLocked()
	}
	err := r.err
	r.mu.Unlock()
	if op.IsClient() {
		switch op.Type {
		case history.OK:
			r.ok.Add(1)
		case history.Fail:
			r.fail.Add(1)
		case history.Info:
			r.info.Add(1)
		}
	}
	if r.observe != nil {
		r.observe(op)
	}
	return err
}

// Counts returns the numbers of ok, fail and info client completions so far.
func (r *Recorder) Counts() (ok, fail, info int64) { return r.ok.Load(), r.fail.Load(), r.info.Load() }

// Ops returns how many ops have been recorded.
func (r *Recorder) Ops() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.w.Count()
}

// Close flushes, syncs and closes the history file. It is safe to call more
// than once.
func (r *Recorder) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return r.err
	}
	r.closed = true
	close(r.done)
	r.flushLocked()
	r.mu.Unlock()
	r.wg.Wait()
	if err := r.file.Sync(); err != nil && r.err == nil {
		r.err = fmt.Errorf("sync history: %w", err)
	}
	if err := r.file.Close(); err != nil && r.err == nil {
		r.err = fmt.Errorf("close history: %w", err)
	}
	return r.err
}
