package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
)

// MaxLineBytes is the longest line the reader accepts. A history line is a
// few hundred bytes; anything this long is not a history.
const MaxLineBytes = 4 << 20

// ParseError is a problem found at one line of a history. Its message has
// the form FILE:LINE: what is wrong.
type ParseError struct {
	File string // name of the history, as given to NewReader
	Line int    // 1-based line number
	Msg  string // what is wrong, in one line
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// inflight is what the reader keeps of an invocation in flight.
type inflight struct {
	key  string
	line int
}

// Reader reads a history JSONL v1 stream one op at a time and checks it as
// it goes: each line must be a JSON object with a known type, process and f;
// a completion must follow an invocation of the same process, f and key; a
// process runs one op at a time and never issues again after an info; cas
// values are pairs; times never go backwards. It never panics, whatever the
// input.
type Reader struct {
	br       *bufio.Reader
	name     string
	line     int
	lastTime int64
	inflight Pairing[inflight]
	crashed  map[int]int // process -> line of the info that ended it
	err      error
	dec      *lineDecoder // made at the first line
}

// NewReader returns a Reader of r. name is used in error messages (usually
// the file's path).
func NewReader(r io.Reader, name string) *Reader {
	v := newReader(name)
	v.br = bufio.NewReaderSize(r, 64<<10)
	return v
}

// newReader returns a Reader without a stream, for its checks only.
func newReader(name string) *Reader {
	return &Reader{name: name, crashed: make(map[int]int)}
}

// Line returns the number of the last line read.
func (r *Reader) Line() int { return r.line }

// Pending returns the number of operations invoked but not yet completed.
func (r *Reader) Pending() int { return r.inflight.Len() }

func (r *Reader) errorf(format string, args ...any) error {
	return r.fail(problemf(format, args...))
}

// oneLineMsg keeps an error message on one line whatever the input put in
// it: control characters are shown escaped.
func oneLineMsg(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		if unicode.IsControl(c) {
			fmt.Fprintf(&b, "\\x%02x", c)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// readLine returns the next line without its newline, refusing lines longer
// than MaxLineBytes without holding them in memory.
func (r *Reader) readLine() ([]byte, error) {
	var long []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if len(long)+len(chunk) > MaxLineBytes {
				r.line++
				return nil, r.errorf("line is longer than %d MiB; this is not a history JSONL file", MaxLineBytes>>20)
			}
			long = append(long, chunk...)
			continue
		}
		if long != nil {
			chunk = append(long, chunk...)
		}
		if err == io.EOF && len(chunk) == 0 {
			return nil, io.EOF
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read %s: %w", r.name, err)
		}
		r.line++
		return bytes.TrimRight(chunk, "\r\n"), nil
	}
}

// Next returns the next op. It returns io.EOF at the end of the stream and
// a *ParseError for a malformed line; after an error every call returns the
// same error.
func (r *Reader) Next() (Op, error) {
	if r.err != nil {
		return Op{}, r.err
	}
	line, err := r.nextLine()
	if err != nil {
		if err != io.EOF {
			r.err = err
		}
		return Op{}, err
	}
	return r.parse(line)
}

// nextLine returns the next line that is not blank, or the error that ends
// the stream (io.EOF at its end).
func (r *Reader) nextLine() ([]byte, error) {
	for {
		line, err := r.readLine()
		if err != nil || len(bytes.TrimSpace(line)) != 0 {
			return line, err
		}
	}
}

func (r *Reader) parse(line []byte) (Op, error) {
	if r.dec == nil {
		r.dec = new(lineDecoder)
	}
	var op Op
	problem, late := r.dec.decode(line, &op)
	if err := r.check(&op, problem, late); err != nil {
		return Op{}, err
	}
	return op, nil
}

// fail records problem as the error at the current line.
func (r *Reader) fail(problem string) error {
	r.err = &ParseError{File: r.name, Line: r.line, Msg: problem}
	return r.err
}

// check makes the checks of a decoded line that depend on the lines before
// it, in line order, and completes op (a completion without a key takes its
// invocation's). problem and late are what decode returned.
func (r *Reader) check(op *Op, problem string, late bool) error {
	if problem != "" && !late {
		return r.fail(problem)
	}
	if op.Time < r.lastTime {
		return r.errorf("time goes backwards: %d after %d", op.Time, r.lastTime)
	}
	r.lastTime = op.Time
	if problem != "" {
		return r.fail(problem)
	}
	p := op.Process
	if op.Type == Invoke {
		// After an error the reader stops, so recording the invocation
		// before the checks below is harmless.
		if prev, dangling := r.inflight.Invoke(p, op.F, inflight{key: op.Key, line: r.line}); dangling {
			return r.errorf("process %s invokes %s while its %s from line %d is still in flight (a process runs one op at a time)", p, op.F, prev.F, prev.V.line)
		}
		if at, ok := r.crashed[p.ID]; ok && !p.Nemesis {
			return r.errorf("process %s invokes %s after its info at line %d (after an info the client must continue under a new process number)", p, op.F, at)
		}
		return nil
	}
	inv, ok := r.inflight.Complete(p, op.F)
	if !ok {
		other, found := r.inflight.InFlight(p)
		if !found {
			return r.errorf("%s of %s by process %s has no invocation", op.Type, op.F, p)
		}
		return r.errorf("%s of %s by process %s completes its invocation of %s at line %d", op.Type, op.F, p, other.F, other.V.line)
	}
	if op.Key == "" {
		op.Key = inv.V.key
	} else if op.Key != inv.V.key {
		return r.errorf("%s of %s on key %q by process %s completes its invocation on key %q at line %d", op.Type, op.F, op.Key, p, inv.V.key, inv.V.line)
	}
	if op.Type == Info && !p.Nemesis {
		r.crashed[p.ID] = r.line
	}
	return nil
}

// jsonProblem turns an encoding/json error into a short message a person
// can act on.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %q has the wrong type: got a JSON %s", te.Field, te.Value)
		}
		return fmt.Sprintf("wrong type: got a JSON %s", te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("bad JSON at byte %d: %v", se.Offset, se)
	}
	return err.Error()
}

// Read reads a whole history from r. name is used in error messages. It
// decodes the lines on several goroutines and checks them in order, as
// Reader.Next does, with the same errors; it may read a few batches of
// lines beyond a malformed one before it returns, and returns only once it
// no longer reads r.
func Read(r io.Reader, name string) ([]Op, error) {
	return readAll(r, name, 0, defaultPipeline(), nil)
}

// ReadFile reads the history JSONL file at path, as Read does.
func ReadFile(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Growing the slice op by op costs a quarter of the reading time of a
	// large history; a line is rarely shorter than 80 bytes.
	hint := 0
	if fi, err := f.Stat(); err == nil {
		hint = int(min(fi.Size()/80, 1<<26))
	}
	// Closing the file on an early stop ends a read that waits on a pipe.
	return readAll(f, path, hint, defaultPipeline(), func() { f.Close() })
}
