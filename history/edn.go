package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"os"
	"sort"
	"strings"

	"olympos.io/encoding/edn"
)

// Jepsen interop: a Jepsen history.edn of a register test holds one op per
// line as an EDN map, e.g.
//
//	{:type :invoke, :f :cas, :value [3 [1 2]], :process 4, :time 1234}
//
// (newer Jepsen writes #jepsen.history.Op{...}; both are read). Independent
// keys (jepsen.independent) appear as [key value] tuples; a history whose
// client ops all carry such tuples is read as a multi-key history, otherwise
// every op is on the single register "r".

// EDNKey is the key given to the ops of a Jepsen history that has no
// independent keys.
const EDNKey = "r"

// LooksLikeEDN reports whether the start of a file looks like an EDN history
// rather than JSONL.
func LooksLikeEDN(head []byte) bool {
	head = bytes.TrimLeft(head, " \t\r\n,")
	return bytes.HasPrefix(head, []byte("{:")) || bytes.HasPrefix(head, []byte("#jepsen")) ||
		bytes.HasPrefix(head, []byte("[{:")) || bytes.HasPrefix(head, []byte(";"))
}

// ReadEDNFile reads a Jepsen history.edn file.
func ReadEDNFile(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadEDN(f, path)
}

type ednLine struct {
	line int
	m    map[string]any
}

// ReadEDN reads a Jepsen history.edn from r (one op map per line) and
// returns it as history ops, checked by the same rules as JSONL. name is
// used in FILE:LINE error messages.
func ReadEDN(r io.Reader, name string) ([]Op, error) {
	var maps []ednLine
	br := bufio.NewReaderSize(r, 64<<10)
	for lineNo := 1; ; lineNo++ {
		line, err := readBoundedLine(br)
		if err == errLineTooLong {
			return nil, &ParseError{File: name, Line: lineNo, Msg: fmt.Sprintf("line is longer than %d MiB; this is not a Jepsen history", MaxLineBytes>>20)}
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != ';' {
			m, perr := decodeEDNMap(t)
			if perr != nil {
				return nil, &ParseError{File: name, Line: lineNo, Msg: oneLineMsg(perr.Error())}
			}
			maps = append(maps, ednLine{line: lineNo, m: m})
		}
		if err == io.EOF {
			break
		}
	}
	independent := isIndependent(maps)
	// Convert to JSONL, one output line per input line, so that the JSONL
	// reader's validation reports the EDN file's own line numbers.
	var buf bytes.Buffer
	next := 1
	for _, l := range maps {
		for ; next < l.line; next++ {
			buf.WriteByte('\n')
		}
		op, err := ednToOp(l.m, independent)
		if err != nil {
			return nil, &ParseError{File: name, Line: l.line, Msg: oneLineMsg(err.Error())}
		}
		b, err := json.Marshal(op)
		if err != nil {
			return nil, &ParseError{File: name, Line: l.line, Msg: oneLineMsg(err.Error())}
		}
		buf.Write(b)
		buf.WriteByte('\n')
		next++
	}
	return Read(&buf, name)
}

var errLineTooLong = fmt.Errorf("line too long")

func readBoundedLine(br *bufio.Reader) ([]byte, error) {
	var long []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if len(long)+len(chunk) > MaxLineBytes {
				return nil, errLineTooLong
			}
			long = append(long, chunk...)
			continue
		}
		if long != nil {
			chunk = append(long, chunk...)
		}
		return chunk, err
	}
}

// decodeEDNMap parses one line holding one EDN map, never panicking.
func decodeEDNMap(b []byte) (m map[string]any, err error) {
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("bad EDN: %v", p)
		}
	}()
	var v any
	d := edn.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("bad EDN: %v", oneLine(err.Error()))
	}
	if t, ok := v.(edn.Tag); ok { // #jepsen.history.Op{...}
		v = t.Value
	}
	raw, ok := v.(map[any]any)
	if !ok {
		return nil, fmt.Errorf("not an EDN map: a Jepsen history line must be {:type ... :f ... :process ...}")
	}
	m = make(map[string]any, len(raw))
	for k, val := range raw {
		kw, ok := k.(edn.Keyword)
		if !ok {
			return nil, fmt.Errorf("op map key %v is not a keyword", k)
		}
		m[string(kw)] = val
	}
	return m, nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// isIndependent reports whether every client read, write and cas carries a
// [key value] tuple (and cas values are [key [from to]]).
func isIndependent(maps []ednLine) bool {
	seen := false
	for _, l := range maps {
		if _, nem := l.m["process"].(edn.Keyword); nem {
			continue
		}
		f, _ := l.m["f"].(edn.Keyword)
		if f != FRead && f != FWrite && f != FCAS {
			continue
		}
		tup, ok := l.m["value"].([]any)
		if !ok || len(tup) != 2 {
			return false
		}
		if f == FCAS && tup[1] != nil {
			if inner, ok := tup[1].([]any); !ok || len(inner) != 2 {
				return false
			}
		}
		seen = true
	}
	return seen
}

func ednToOp(m map[string]any, independent bool) (map[string]any, error) {
	out := map[string]any{}
	for _, field := range []string{"type", "f"} {
		kw, ok := m[field].(edn.Keyword)
		if !ok {
			if _, present := m[field]; !present {
				return nil, fmt.Errorf("missing :%s", field)
			}
			return nil, fmt.Errorf(":%s must be a keyword, got %v", field, m[field])
		}
		out[field] = string(kw)
	}
	switch p := m["process"].(type) {
	case int64:
		out["process"] = p
	case edn.Keyword:
		if p != "nemesis" {
			return nil, fmt.Errorf(":process must be an integer or :nemesis, got %v", p)
		}
		out["process"] = "nemesis"
	case nil:
		return nil, fmt.Errorf("missing :process")
	default:
		return nil, fmt.Errorf(":process must be an integer or :nemesis, got %v", p)
	}
	t, ok := m["time"].(int64)
	if !ok {
		if _, present := m["time"]; !present {
			return nil, fmt.Errorf("missing :time")
		}
		return nil, fmt.Errorf(":time must be an integer (nanoseconds), got %v", m["time"])
	}
	out["time"] = t
	if i, ok := m["index"].(int64); ok {
		out["index"] = i
	}
	value := m["value"]
	client := out["process"] != "nemesis"
	f := out["f"].(string)
	if client && (f == FRead || f == FWrite || f == FCAS) {
		if independent {
			tup := value.([]any) // checked by isIndependent
			k, err := ednToJSON(tup[0])
			if err != nil {
				return nil, err
			}
			if s, ok := k.(string); ok {
				out["key"] = s
			} else {
				kb, _ := json.Marshal(k)
				out["key"] = string(kb)
			}
			value = tup[1]
		} else {
			out["key"] = EDNKey
		}
	}
	v, err := ednToJSON(value)
	if err != nil {
		return nil, err
	}
	out["value"] = v
	if e, ok := m["error"]; ok && e != nil {
		ev, err := ednToJSON(e)
		if err != nil {
			return nil, err
		}
		if s, ok := ev.(string); ok {
			out["error"] = s
		} else {
			eb, _ := json.Marshal(ev)
			out["error"] = string(eb)
		}
	}
	return out, nil
}

// ednToJSON converts a decoded EDN value into one encoding/json can write:
// keywords and symbols become strings, vectors, lists and sets arrays,
// maps objects with string keys.
func ednToJSON(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, int64, float64, string:
		return x, nil
	case *big.Int:
		return json.Number(x.String()), nil
	case *big.Float:
		return json.Number(x.Text('g', -1)), nil
	case rune:
		return string(x), nil
	case edn.Keyword:
		return string(x), nil
	case edn.Symbol:
		return string(x), nil
	case edn.Tag:
		return ednToJSON(x.Value)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := ednToJSON(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case map[any]bool: // a set
		out := make([]any, 0, len(x))
		for e := range x {
			c, err := ednToJSON(e)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			kc, err := ednToJSON(k)
			if err != nil {
				return nil, err
			}
			c, err := ednToJSON(e)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(kc)] = c
		}
		return out, nil
	}
	return nil, fmt.Errorf("EDN value %v of type %T is not supported", v, v)
}
