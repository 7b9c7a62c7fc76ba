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
	"unicode/utf8"
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

type inflight struct {
	f, key string
	line   int
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
	inflight map[Process]inflight
	crashed  map[int]int // process -> line of the info that ended it
	err      error
}

// NewReader returns a Reader of r. name is used in error messages (usually
// the file's path).
func NewReader(r io.Reader, name string) *Reader {
	return &Reader{
		br:       bufio.NewReaderSize(r, 64<<10),
		name:     name,
		inflight: make(map[Process]inflight),
		crashed:  make(map[int]int),
	}
}

// Line returns the number of the last line read.
func (r *Reader) Line() int { return r.line }

// Pending returns the number of operations invoked but not yet completed.
func (r *Reader) Pending() int { return len(r.inflight) }

func (r *Reader) errorf(format string, args ...any) error {
	r.err = &ParseError{File: r.name, Line: r.line, Msg: oneLineMsg(fmt.Sprintf(format, args...))}
	return r.err
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
	for {
		line, err := r.readLine()
		if err != nil {
			if err != io.EOF {
				r.err = err
			}
			return Op{}, err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		return r.parse(line)
	}
}

// rawOp mirrors Op with pointers so that missing fields can be told apart
// from zero values.
type rawOp struct {
	Index   *int64          `json:"index"`
	Type    *Type           `json:"type"`
	Process *Process        `json:"process"`
	F       *string         `json:"f"`
	Key     *string         `json:"key"`
	Value   json.RawMessage `json:"value"`
	Time    *int64          `json:"time"`
	Node    string          `json:"node"`
	Error   string          `json:"error"`
}

func (r *Reader) parse(line []byte) (Op, error) {
	if line[0] != '{' {
		if !utf8.Valid(line) {
			return Op{}, r.errorf("not text: a history line must be a JSON object")
		}
		return Op{}, r.errorf("not a JSON object: %q", truncate(line, 60))
	}
	var raw rawOp
	if err := json.Unmarshal(line, &raw); err != nil {
		return Op{}, r.errorf("%s", jsonProblem(err))
	}
	switch {
	case raw.Type == nil:
		return Op{}, r.errorf(`missing field "type"`)
	case raw.Process == nil:
		return Op{}, r.errorf(`missing field "process"`)
	case raw.F == nil || *raw.F == "":
		return Op{}, r.errorf(`missing field "f"`)
	case raw.Time == nil:
		return Op{}, r.errorf(`missing field "time"`)
	}
	if !raw.Type.Valid() {
		return Op{}, r.errorf(`unknown type %q: must be invoke, ok, fail or info`, string(*raw.Type))
	}
	op := Op{
		Type:    *raw.Type,
		Process: *raw.Process,
		F:       *raw.F,
		Value:   raw.Value,
		Time:    *raw.Time,
		Node:    raw.Node,
		Error:   raw.Error,
	}
	if raw.Index != nil {
		op.Index = *raw.Index
	}
	if raw.Key != nil {
		op.Key = *raw.Key
	}
	if IsNull(op.Value) {
		op.Value = nil
	}
	if op.Time < 0 {
		return Op{}, r.errorf("time %d is negative", op.Time)
	}
	if op.Time < r.lastTime {
		return Op{}, r.errorf("time goes backwards: %d after %d", op.Time, r.lastTime)
	}
	r.lastTime = op.Time
	if op.F == FCAS && op.Value != nil {
		if _, _, err := CASPair(op.Value); err != nil {
			return Op{}, r.errorf("%v", err)
		}
	}
	p := op.Process
	if op.Type == Invoke {
		if prev, ok := r.inflight[p]; ok {
			return Op{}, r.errorf("process %s invokes %s while its %s from line %d is still in flight (a process runs one op at a time)", p, op.F, prev.f, prev.line)
		}
		if at, ok := r.crashed[p.ID]; ok && !p.Nemesis {
			return Op{}, r.errorf("process %s invokes %s after its info at line %d (after an info the client must continue under a new process number)", p, op.F, at)
		}
		r.inflight[p] = inflight{f: op.F, key: op.Key, line: r.line}
		return op, nil
	}
	inv, ok := r.inflight[p]
	if !ok {
		return Op{}, r.errorf("%s of %s by process %s has no invocation", op.Type, op.F, p)
	}
	if inv.f != op.F {
		return Op{}, r.errorf("%s of %s by process %s completes its invocation of %s at line %d", op.Type, op.F, p, inv.f, inv.line)
	}
	if op.Key == "" {
		op.Key = inv.key
	} else if op.Key != inv.key {
		return Op{}, r.errorf("%s of %s on key %q by process %s completes its invocation on key %q at line %d", op.Type, op.F, op.Key, p, inv.key, inv.line)
	}
	delete(r.inflight, p)
	if op.Type == Info && !p.Nemesis {
		r.crashed[p.ID] = r.line
	}
	return op, nil
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

// Read reads a whole history from r. name is used in error messages.
func Read(r io.Reader, name string) ([]Op, error) { return read(r, name, 0) }

// read reads a whole history, with room for capHint ops to begin with.
func read(r io.Reader, name string, capHint int) ([]Op, error) {
	hr := NewReader(r, name)
	ops := make([]Op, 0, capHint)
	for {
		op, err := hr.Next()
		if err == io.EOF {
			return ops, nil
		}
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
}

// ReadFile reads the history JSONL file at path.
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
	return read(f, path, hint)
}
