package history

import (
	"errors"
	"io"
	"runtime"
	"sync"
)

// Read and ReadFile decode a history on several goroutines: one reads the
// lines (with Reader's line reader, so that line numbers, long lines and
// read errors are what Reader.Next sees) and copies them into batches;
// workers decode the batches, each line on its own (lineDecoder.decode),
// into their place in the result when there is room; the calling goroutine
// checks the decoded lines in line order (Reader.check) and stops at the
// first error, which is therefore the one Reader.Next returns. At most a
// few batches exist at a time, besides the ops read.

// pipeline shapes the reading of a whole history.
type pipeline struct {
	batchLines int  // a batch holds at most this many lines,
	batchBytes int  // and is full once its lines make this many bytes
	workers    int  // goroutines that decode batches
	exact      bool // decode every line the exact way (tests)
}

func defaultPipeline() pipeline {
	return pipeline{batchLines: 2048, batchBytes: 1 << 20, workers: runtime.GOMAXPROCS(0)}
}

// batch is a run of consecutive lines that are not blank.
type batch struct {
	buf   []byte        // the lines, end to end
	refs  []lineRef     // where each line ends in buf, and its number
	first int           // the index of the op of its first line
	err   error         // what ended the stream after these lines (not io.EOF)
	done  chan struct{} // a worker has decoded the batch (capacity 1)

	// Set by the worker that decodes the batch.
	ops     []Op   // its ops: in the result if they fit there, else in own
	own     []Op   // room for ops that do not fit in the result
	bad     int    // the first line that is malformed on its own, or len(refs)
	problem string // what decode says of line bad
	late    bool
}

type lineRef struct{ end, line int }

func (b *batch) reset(p pipeline, first int) {
	if cap(b.buf) > 4*p.batchBytes {
		b.buf = nil // it held a long line; do not keep it
	}
	b.buf, b.refs, b.first, b.err = b.buf[:0], b.refs[:0], first, nil
}

// decode decodes the lines of b into their place in result if they fit,
// else into b.own, up to the first line that is malformed on its own: the
// lines after it are never checked.
func (b *batch) decode(d *lineDecoder, result []Op) {
	n := len(b.refs)
	if b.first+n <= len(result) {
		b.ops = result[b.first : b.first+n]
	} else {
		if cap(b.own) < n {
			b.own = make([]Op, n)
		}
		b.ops = b.own[:n]
	}
	b.bad, b.problem, b.late = n, "", false
	start := 0
	for i, ref := range b.refs {
		if problem, late := d.decode(b.buf[start:ref.end], &b.ops[i]); problem != "" {
			b.bad, b.problem, b.late = i, problem, late
			return
		}
		start = ref.end
	}
}

// readAll reads a whole history from r, with room for capHint ops to begin
// with. abort, if not nil, is called when reading stops before the end of
// r, before waiting for the goroutine that reads r.
func readAll(r io.Reader, name string, capHint int, p pipeline, abort func()) ([]Op, error) {
	p.workers = max(p.workers, 1)
	batches := 2*p.workers + 2
	free := make(chan *batch, batches)
	work := make(chan *batch, batches)
	ordered := make(chan *batch, batches)
	quit := make(chan struct{})
	// The workers decode the ops straight into the result as long as they
	// fit in it, each batch into its own part.
	result := make([]Op, capHint)
	var wg sync.WaitGroup
	wg.Add(1 + p.workers)
	go func() {
		defer wg.Done()
		produce(r, name, p, batches, free, work, ordered, quit)
	}()
	for range p.workers {
		go func() {
			defer wg.Done()
			d := &lineDecoder{exact: p.exact}
			for b := range work {
				select {
				case <-quit:
				default:
					b.decode(d, result)
				}
				b.done <- struct{}{}
			}
		}()
	}
	ops, err := checkAll(name, result, ordered, free)
	close(quit)
	if err != nil && abort != nil {
		abort()
	}
	wg.Wait()
	return ops, err
}

// produce reads the lines of r into batches and sends each to the workers
// and, in order, to checkAll; it makes at most batches batches and then
// reuses those checkAll frees. A batch is sent once it is full, and before
// each read of r, which may wait (on a pipe, say), so that a malformed line
// is reported as soon as Reader.Next would. produce stops at the end of the
// stream, at its first error, or when quit is closed.
func produce(r io.Reader, name string, p pipeline, batches int, free <-chan *batch, work, ordered chan<- *batch, quit <-chan struct{}) {
	defer close(ordered)
	defer close(work)
	made, next := 0, 0 // batches made, ops in the batches sent
	var b *batch
	send := func() bool {
		select {
		case <-quit:
			return false
		default:
		}
		// Neither send waits: there are never more batches than room.
		next += len(b.refs)
		ordered <- b
		work <- b
		b = nil
		return true
	}
	lr := NewReader(readHook{r, func() bool { return b == nil || len(b.refs) == 0 || send() }}, name)
	for {
		line, err := lr.nextLine()
		if b == nil {
			if made < batches {
				made++
				b = &batch{done: make(chan struct{}, 1)}
			} else {
				select {
				case b = <-free:
				case <-quit:
					return
				}
			}
			b.reset(p, next)
		}
		switch err {
		case nil:
			b.buf = append(b.buf, line...)
			b.refs = append(b.refs, lineRef{end: len(b.buf), line: lr.line})
		case io.EOF:
		default:
			b.err = err
		}
		if (err != nil || len(b.refs) >= p.batchLines || len(b.buf) >= p.batchBytes) && !send() || err != nil {
			return
		}
	}
}

// readHook calls before ahead of each read of r; a read fails once before
// returns false.
type readHook struct {
	r      io.Reader
	before func() bool
}

var errStopped = errors.New("reading stopped")

func (h readHook) Read(p []byte) (int, error) {
	if !h.before() {
		return 0, errStopped
	}
	return h.r.Read(p)
}

// checkAll checks the decoded batches in line order and collects their ops,
// from result on.
func checkAll(name string, result []Op, ordered <-chan *batch, free chan<- *batch) ([]Op, error) {
	v := newReader(name)
	ops := result[:0]
	for b := range ordered {
		<-b.done
		inPlace := b.first+len(b.refs) <= len(result)
		for i := range b.refs {
			v.line = b.refs[i].line
			problem, late := "", false
			if i == b.bad {
				problem, late = b.problem, b.late
			}
			if err := v.check(&b.ops[i], problem, late); err != nil {
				return nil, err
			}
			if inPlace {
				ops = ops[:b.first+i+1]
			} else {
				// Once a batch does not fit, no later one does: the
				// workers no longer write to result, which may move.
				ops = append(ops, b.ops[i])
			}
		}
		if b.err != nil {
			return nil, b.err
		}
		free <- b
	}
	return ops, nil
}
