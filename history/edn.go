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
)

// Jepsen interop: Jepsen and Knossos write a history as EDN, either one
// op map per line or a single vector (or list) of op maps, a map often
// spread over several lines:
//
//	[{:process 4, :type :invoke, :f :cas, :value [1 2]}
//	 {:process 4, :type :ok, :f :cas, :value [1 2]}]
//
// Newer Jepsen writes #jepsen.history.Op{...} records; both are read, with
// keyword or string values (:invoke or "invoke"). Knossos's test corpus
// has no :time: the order of the file is the real-time order, which is all
// linearizability needs, so the ops are then given the time of their
// position (see TimelessStep). Jepsen logs a nemesis action as :info ops
// with no :invoke; each such op is given an invocation at its own time.
// Independent keys (jepsen.independent) appear as [key value] tuples; a
// history whose client ops all carry such tuples is read as a multi-key
// history, otherwise every op is on the single register "r".

// EDNKey is the key given to the ops of a Jepsen history that has no
// independent keys.
const EDNKey = "r"

// TimelessStep is the time between two consecutive ops of a history
// read without times: the op at position i of the file (from 0) gets
// time i*TimelessStep, so that a time in seconds reads as the position.
const TimelessStep int64 = 1e9

// FileInfo says how a history file was read, besides its ops.
type FileInfo struct {
	// Format is "jsonl" or "edn".
	Format string
	// Timeless is true when the file had no times: each op's Time is its
	// position in the file times TimelessStep.
	Timeless bool
	// AddedInvokes counts the nemesis completions that had no invocation
	// and were given one at their own time.
	AddedInvokes int
	// Independent is true when an EDN history's ops carried [key value]
	// tuples.
	Independent bool
	// Reordered counts the ops of an EDN history whose :time was earlier
	// than the op before them. Jepsen takes each time on its client's own
	// thread, so neighbours can be out of order by a few microseconds;
	// the order of the file is the real-time order (Jepsen and Knossos
	// check by it), so such an op is given the time of the op before it.
	Reordered int
}

// LooksLikeEDN reports whether the start of a file looks like an EDN history
// rather than JSONL.
func LooksLikeEDN(head []byte) bool {
	head = bytes.TrimLeft(head, " \t\r\n,")
	if len(head) == 0 {
		return false
	}
	switch head[0] {
	case ';', '#', '[', '(':
		return true
	case '{':
		rest := bytes.TrimLeft(head[1:], " \t\r\n,")
		return len(rest) > 0 && rest[0] == ':'
	}
	return false
}

// ReadEDNFile reads a Jepsen or Knossos history.edn file.
func ReadEDNFile(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadEDN(f, path)
}

// ReadEDN reads a Jepsen or Knossos history in EDN from r and returns it as
// history ops, checked by the same rules as JSONL. name is used in
// FILE:LINE error messages.
func ReadEDN(r io.Reader, name string) ([]Op, error) {
	ops, _, err := ReadEDNInfo(r, name)
	return ops, err
}

// ReadFileInfo reads a history file in JSONL or EDN, telling them apart
// by the name (.edn) and, failing that, by the first bytes, and says how
// it was read.
func ReadFileInfo(path string) ([]Op, FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, FileInfo{}, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	head, _ := br.Peek(64)
	if strings.HasSuffix(path, ".edn") || LooksLikeEDN(head) {
		return ReadEDNInfo(br, path)
	}
	f.Close()
	ops, err := ReadFile(path)
	return ops, FileInfo{Format: "jsonl"}, err
}

// ednOp is an op map of an EDN history, its fields checked.
type ednOp struct {
	line    int
	typ     Type
	f       string
	proc    Process
	time    int64
	hasTime bool
	value   any
	err     string
	node    string
}

// ReadEDNInfo reads an EDN history as ReadEDN does and says how it was
// read.
func ReadEDNInfo(r io.Reader, name string) ([]Op, FileInfo, error) {
	info := FileInfo{Format: "edn"}
	fail := func(line int, msg string) ([]Op, FileInfo, error) {
		return nil, info, &ParseError{File: name, Line: line, Msg: oneLineMsg(msg)}
	}
	p := newEDNReader(r, name)
	var eops []ednOp
	for {
		form, line, err := p.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			var ee *ednError
			if errors.As(err, &ee) {
				return fail(ee.line, ee.msg)
			}
			return nil, info, err
		}
		m, ok := form.(*ednMap)
		if !ok {
			return fail(line, fmt.Sprintf("not an op map: a Jepsen history holds maps like {:type :invoke, :f :read, :process 0}, got %s", clipText(ednText(form))))
		}
		o, err := ednToOp(m, line)
		if err != nil {
			return fail(line, err.Error())
		}
		if len(eops) == 0 {
			info.Timeless = !o.hasTime
		} else if o.hasTime == info.Timeless {
			if o.hasTime {
				return fail(line, fmt.Sprintf("this op has :time but the first op (line %d) has none: either every op has :time or none does", eops[0].line))
			}
			return fail(line, fmt.Sprintf("missing :time (the first op, line %d, has one: either every op has :time or none does)", eops[0].line))
		}
		eops = append(eops, o)
	}
	info.Independent = isIndependent(eops)
	ops := make([]Op, 0, len(eops)+len(eops)/16)
	v := newReader(name)
	for pos := range eops {
		o := &eops[pos]
		op := Op{Type: canonicalType(o.typ), Process: o.proc, F: canonicalF(o.f), Time: o.time, Node: o.node, Error: o.err}
		if info.Timeless {
			op.Time = int64(pos) * TimelessStep
		} else if n := len(ops); n > 0 && op.Time < ops[n-1].Time {
			op.Time = ops[n-1].Time
			info.Reordered++
		}
		value := o.value
		if !o.proc.Nemesis && (op.F == FRead || op.F == FWrite || op.F == FCAS) {
			op.Key = EDNKey
			if info.Independent {
				tup := value.([]any) // checked by isIndependent
				k := ednToJSON(tup[0])
				if s, ok := k.(string); ok {
					op.Key = s
				} else {
					kb, _ := json.Marshal(k)
					op.Key = string(kb)
				}
				value = tup[1]
			}
		}
		if value != nil {
			b, err := json.Marshal(ednToJSON(value))
			if err != nil {
				return fail(o.line, fmt.Sprintf(":value %s cannot be read: %v", clipText(ednText(value)), err))
			}
			op.Value = b
		}
		problem, late := "", false
		if op.F == FCAS && op.Value != nil {
			if _, _, err := CASPair(op.Value); err != nil {
				problem, late = problemf("%v", err), true
			}
		}
		if op.Process.Nemesis && op.Type != Invoke {
			if _, open := v.inflight.InFlight(NemesisProcess); !open {
				// Jepsen logs nemesis actions as :info alone.
				inv := Op{Index: int64(len(ops)), Type: Invoke, Process: NemesisProcess, F: op.F, Time: op.Time}
				v.line = o.line
				if err := v.check(&inv, "", false); err != nil {
					return nil, info, err
				}
				ops = append(ops, inv)
				info.AddedInvokes++
			}
		}
		op.Index = int64(len(ops))
		v.line = o.line
		if err := v.check(&op, problem, late); err != nil {
			return nil, info, err
		}
		ops = append(ops, op)
	}
	return ops, info, nil
}

func clipText(s string) string { return truncate([]byte(s), 60) }

// isIndependent reports whether every client read, write and cas carries a
// [key value] tuple (and cas values are [key [from to]]).
func isIndependent(ops []ednOp) bool {
	seen := false
	for _, o := range ops {
		if o.proc.Nemesis || (o.f != FRead && o.f != FWrite && o.f != FCAS) {
			continue
		}
		tup, ok := o.value.([]any)
		if !ok || len(tup) != 2 {
			return false
		}
		if o.f == FCAS && tup[1] != nil {
			if inner, ok := tup[1].([]any); !ok || len(inner) != 2 {
				return false
			}
		}
		seen = true
	}
	return seen
}

// name returns a keyword's or a string's text.
func ednName(v any) (string, bool) {
	switch x := v.(type) {
	case ednKeyword:
		return string(x), true
	case string:
		return x, true
	}
	return "", false
}

// ednToOp checks the fields of one op map.
func ednToOp(m *ednMap, line int) (ednOp, error) {
	o := ednOp{line: line}
	get := func(field string) (string, error) {
		v, present := m.get(field)
		if !present {
			return "", fmt.Errorf("missing :%s", field)
		}
		s, ok := ednName(v)
		if !ok || s == "" {
			return "", fmt.Errorf(":%s must be a keyword or a string, got %s", field, clipText(ednText(v)))
		}
		return s, nil
	}
	typ, err := get("type")
	if err != nil {
		return o, err
	}
	o.typ = Type(typ)
	if !o.typ.Valid() {
		return o, fmt.Errorf("unknown :type %s: must be :invoke, :ok, :fail or :info", clipText(typ))
	}
	if o.f, err = get("f"); err != nil {
		return o, err
	}
	pv, present := m.get("process")
	switch p := pv.(type) {
	case int64:
		if p < 0 || p > 1<<31 {
			return o, fmt.Errorf(":process must be a non-negative integer or :nemesis, got %d", p)
		}
		o.proc = Client(int(p))
	case ednKeyword, string:
		if s, _ := ednName(p); s != "nemesis" {
			return o, fmt.Errorf(":process must be a non-negative integer or :nemesis, got %s", clipText(ednText(p)))
		}
		o.proc = NemesisProcess
	default:
		if !present {
			return o, fmt.Errorf("missing :process")
		}
		return o, fmt.Errorf(":process must be a non-negative integer or :nemesis, got %s", clipText(ednText(p)))
	}
	if tv, present := m.get("time"); present {
		t, ok := tv.(int64)
		if !ok {
			return o, fmt.Errorf(":time must be an integer (nanoseconds), got %s", clipText(ednText(tv)))
		}
		if t < 0 {
			return o, fmt.Errorf(":time %d is negative", t)
		}
		o.time, o.hasTime = t, true
	}
	o.value, _ = m.get("value")
	if e, _ := m.get("error"); e != nil {
		if s, ok := ednName(e); ok {
			o.err = s
		} else {
			eb, _ := json.Marshal(ednToJSON(e))
			o.err = string(eb)
		}
	}
	if n, _ := m.get("node"); n != nil {
		if s, ok := ednName(n); ok {
			o.node = s
		}
	}
	return o, nil
}
