package history

import (
	"encoding/json"
	"fmt"
	"math"
	"unicode/utf8"
)

// opFields is the JSON object of a line, with pointers so that missing
// fields can be told apart from zero values; T and P are the types of its
// type and process. Both decodes read the same fields by the same names.
type opFields[T, P any] struct {
	Index   *int64          `json:"index"`
	Type    *T              `json:"type"`
	Process *P              `json:"process"`
	F       *string         `json:"f"`
	Key     *string         `json:"key"`
	Value   json.RawMessage `json:"value"`
	Time    *int64          `json:"time"`
	Node    string          `json:"node"`
	Error   string          `json:"error"`
}

// rawOp mirrors Op: it is what the exact decode reads.
type rawOp = opFields[Type, Process]

// fastRawOp is what the fast decode reads: type as a plain string and
// process as a number (encoding/json then calls no method of theirs).
type fastRawOp = opFields[string, int]

// Values that mean "absent" to the fast decode. A process number is never
// negative; a type or time that is read as its sentinel is decoded again
// the exact way.
const (
	absentType    = "\x00absent"
	absentTime    = math.MinInt64
	absentProcess = -1
)

// lineDecoder decodes history lines one at a time. It is not safe for
// concurrent use: each goroutine that decodes owns one.
//
// Decoding into rawOp, encoding/json allocates the target of every nil
// pointer field through reflect, and looks for an UnmarshalJSON method on
// Type and calls Process's: together about a fifth of the time of a line
// (BenchmarkDecode). The fast decode therefore decodes into fastRawOp, whose
// fields point at the decoder's own fields, filled with values that mean
// "absent": decoding into an existing target is what encoding/json does
// when a field appears twice, and null still sets the pointer to nil. A
// line the fast decode refuses (a process that is not a non-negative
// number, such as "nemesis"; any error) or that leaves a sentinel in type,
// process or time is decoded again the exact way (rawOp, fresh nil
// pointers), so that what it says and its message are what they always
// were. For index, f and key, absent and the zero value mean the same.
type lineDecoder struct {
	raw         rawOp
	fast        fastRawOp
	index, time int64
	typ, f, key string
	proc        int
	process     Process
	pair        []json.RawMessage // reused by the cas value check
	exact       bool              // always decode the exact way (tests)
}

// unmarshal decodes line into d.raw.
func (d *lineDecoder) unmarshal(line []byte) error {
	if !d.exact && d.unmarshalFast(line) {
		return nil
	}
	d.raw = rawOp{}
	return json.Unmarshal(line, &d.raw)
}

// unmarshalFast decodes line into d.raw the fast way if it can, and reports
// whether it could.
func (d *lineDecoder) unmarshalFast(line []byte) bool {
	d.index, d.time, d.typ, d.proc, d.f, d.key = 0, absentTime, absentType, absentProcess, "", ""
	f := &d.fast
	*f = fastRawOp{Index: &d.index, Type: &d.typ, Process: &d.proc, F: &d.f, Key: &d.key, Time: &d.time}
	if json.Unmarshal(line, f) != nil || f.Type != nil && *f.Type == absentType ||
		f.Process != nil && *f.Process < 0 || f.Time != nil && *f.Time == absentTime {
		return false
	}
	d.raw = rawOp{Index: f.Index, Type: (*Type)(f.Type), F: f.F, Key: f.Key, Value: f.Value, Time: f.Time, Node: f.Node, Error: f.Error}
	if f.Process != nil {
		d.process = Process{ID: *f.Process}
		d.raw.Process = &d.process
	}
	return true
}

// casPairOK reports whether v is a pair [from, to], as CASPair would, without
// allocating: decoding into a reused slice of reused RawMessages keeps their
// memory.
func (d *lineDecoder) casPairOK(v json.RawMessage) bool {
	err := json.Unmarshal(v, &d.pair)
	return err == nil && len(d.pair) == 2
}

// problemf formats what is wrong with a line the way a ParseError says it.
func problemf(format string, args ...any) string {
	return oneLineMsg(fmt.Sprintf(format, args...))
}

// decode decodes a line (not blank) into op, with the checks that need no
// other line, in the order Reader.Next makes them. It returns what is wrong
// with the line, ready for a ParseError, or ""; late says that it is a bad
// cas value, which comes after the time checks (op is then complete).
func (d *lineDecoder) decode(line []byte, op *Op) (problem string, late bool) {
	if line[0] != '{' {
		if !utf8.Valid(line) {
			return problemf("not text: a history line must be a JSON object"), false
		}
		return problemf("not a JSON object: %q", truncate(line, 60)), false
	}
	if err := d.unmarshal(line); err != nil {
		return problemf("%s", jsonProblem(err)), false
	}
	raw := &d.raw
	switch {
	case raw.Type == nil:
		return problemf(`missing field "type"`), false
	case raw.Process == nil:
		return problemf(`missing field "process"`), false
	case raw.F == nil || *raw.F == "":
		return problemf(`missing field "f"`), false
	case raw.Time == nil:
		return problemf(`missing field "time"`), false
	}
	if !raw.Type.Valid() {
		return problemf(`unknown type %q: must be invoke, ok, fail or info`, string(*raw.Type)), false
	}
	*op = Op{
		Type:    canonicalType(*raw.Type),
		Process: *raw.Process,
		F:       canonicalF(*raw.F),
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
		return problemf("time %d is negative", op.Time), false
	}
	if op.F == FCAS && op.Value != nil && !d.casPairOK(op.Value) {
		// CASPair has the last word and says what is wrong.
		if _, _, err := CASPair(op.Value); err != nil {
			return problemf("%v", err), true
		}
	}
	return "", false
}

// canonicalType returns t as one of the four constants, so that the ops
// read do not each hold a copy of it.
func canonicalType(t Type) Type {
	switch t {
	case Invoke:
		return Invoke
	case OK:
		return OK
	case Fail:
		return Fail
	case Info:
		return Info
	}
	return t
}

// canonicalF returns f as the constant of a workload function if it is one.
func canonicalF(f string) string {
	switch f {
	case FRead:
		return FRead
	case FWrite:
		return FWrite
	case FCAS:
		return FCAS
	case FAdd:
		return FAdd
	}
	return f
}
