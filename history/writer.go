package history

import (
	"encoding/json"
	"fmt"
	"io"
)

// Writer appends ops to a history JSONL v1 stream. Each op is written with a
// single Write call on the underlying writer, so a crash of the process
// leaves a valid prefix on disk (a file write of one line is not split by a
// SIGKILL). A Writer is not safe for concurrent use: the recorder that owns
// it serialises ops.
type Writer struct {
	w    io.Writer
	next int64
	buf  []byte
}

// NewWriter returns a Writer appending to w, numbering ops from 0.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write sets op.Index to the next position in the history and appends op as
// one line.
func (w *Writer) Write(op *Op) error {
	op.Index = w.next
	b, err := json.Marshal(op)
	if err != nil {
		return fmt.Errorf("encode op %d: %w", op.Index, err)
	}
	w.buf = append(append(w.buf[:0], b...), '\n')
	if _, err := w.w.Write(w.buf); err != nil {
		return fmt.Errorf("write op %d: %w", op.Index, err)
	}
	w.next++
	return nil
}

// Count returns how many ops have been written.
func (w *Writer) Count() int64 { return w.next }
