package history

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A small EDN reader (https://github.com/edn-format/edn) that knows the line
// of every form, reads a file form by form without holding it whole, and
// never panics. It reads what Jepsen and Knossos write: maps, vectors,
// lists, sets, keywords, symbols, strings, characters, integers (with N),
// floats (with M), ratios (as floats), #tag forms (the tag is dropped:
// #jepsen.history.Op{...} is its map), #_ discards and ; comments.

// ednKeyword is an EDN keyword, without its colon.
type ednKeyword string

// ednSymbol is an EDN symbol.
type ednSymbol string

// ednMap is an EDN map, its entries in file order (keys may be vectors,
// which a Go map cannot hold).
type ednMap struct {
	keys, vals []any
}

// get returns the value of the keyword key k, and whether it is there.
func (m *ednMap) get(k string) (any, bool) {
	for i, key := range m.keys {
		if kw, ok := key.(ednKeyword); ok && string(kw) == k {
			return m.vals[i], true
		}
	}
	return nil, false
}

// ednSet is an EDN set, its elements in file order.
type ednSet []any

// ednList is an EDN list; vectors are []any.
type ednList []any

// Limits of the EDN reader.
const (
	// maxEDNDepth is how deeply forms may nest.
	maxEDNDepth = 200
	// maxEDNForm is the most bytes one op (an element of the top-level
	// sequence, or a top-level form) may take.
	maxEDNForm = MaxLineBytes
)

// ednError is a problem at a line of an EDN file.
type ednError struct {
	line int
	msg  string
}

func (e *ednError) Error() string { return e.msg }

// ednReader reads EDN forms from a stream.
type ednReader struct {
	br    *bufio.Reader
	name  string
	line  int   // line of the next byte
	used  int64 // bytes read in the current top-level element
	depth int
	// inSeq is the closing delimiter of the top-level vector or list
	// being read element by element, or 0.
	inSeq    byte
	seqStart int
	readErr  error
}

func newEDNReader(r io.Reader, name string) *ednReader {
	return &ednReader{br: bufio.NewReaderSize(r, 64<<10), name: name, line: 1}
}

func (p *ednReader) errorf(line int, format string, args ...any) error {
	return &ednError{line: line, msg: oneLineMsg(fmt.Sprintf(format, args...))}
}

// readByte returns the next byte; io.EOF at the end.
func (p *ednReader) readByte() (byte, error) {
	c, err := p.br.ReadByte()
	if err != nil {
		if err != io.EOF {
			p.readErr = fmt.Errorf("read %s: %w", p.name, err)
			return 0, p.readErr
		}
		return 0, io.EOF
	}
	p.used++
	if p.used > maxEDNForm {
		return 0, p.errorf(p.line, "one operation is longer than %d MiB; this is not a Jepsen history", maxEDNForm>>20)
	}
	if c == '\n' {
		p.line++
	}
	return c, nil
}

func (p *ednReader) unreadByte(c byte) {
	_ = p.br.UnreadByte()
	p.used--
	if c == '\n' {
		p.line--
	}
}

func isEDNSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == '\f' || c == '\v'
}

func isEDNDelim(c byte) bool {
	return isEDNSpace(c) || strings.IndexByte("()[]{}\";", c) >= 0
}

// skip skips white space, commas and comments, and returns the next byte
// (not consumed); io.EOF at the end.
func (p *ednReader) skip() (byte, error) {
	for {
		c, err := p.readByte()
		if err != nil {
			return 0, err
		}
		switch {
		case isEDNSpace(c):
		case c == ';':
			for c != '\n' {
				if c, err = p.readByte(); err != nil {
					return 0, err
				}
			}
		default:
			p.unreadByte(c)
			return c, nil
		}
	}
}

// next returns the next op form of the file and the line it starts at: an
// element of a top-level vector or list, or a top-level form. It returns
// io.EOF at the end of the file.
func (p *ednReader) next() (any, int, error) {
	for {
		p.used = 0
		c, err := p.skip()
		if err == io.EOF {
			if p.inSeq != 0 {
				return nil, 0, p.errorf(p.seqStart, "bad EDN: the %s that starts here is never closed", delimName(p.inSeq))
			}
			return nil, 0, io.EOF
		}
		if err != nil {
			return nil, 0, p.wrap(err)
		}
		line := p.line
		if p.inSeq != 0 && c == p.inSeq {
			_, _ = p.readByte()
			p.inSeq = 0
			continue
		}
		if p.inSeq == 0 && (c == '[' || c == '(') {
			_, _ = p.readByte()
			p.inSeq, p.seqStart = closerOf(c), line
			continue
		}
		v, err := p.read()
		if err != nil {
			return nil, 0, p.wrap(err)
		}
		if _, skip := v.(ednDiscarded); skip {
			continue
		}
		return v, line, nil
	}
}

// wrap turns an error into one with a line.
func (p *ednReader) wrap(err error) error {
	var ee *ednError
	if errors.As(err, &ee) || err == p.readErr {
		return err
	}
	if err == io.EOF {
		return p.errorf(p.line, "bad EDN: the file ends inside a form")
	}
	return p.errorf(p.line, "bad EDN: %v", err)
}

func closerOf(c byte) byte {
	switch c {
	case '[':
		return ']'
	case '(':
		return ')'
	}
	return '}'
}

func delimName(closer byte) string {
	switch closer {
	case ']':
		return "vector"
	case ')':
		return "list"
	}
	return "map"
}

// read reads one form.
func (p *ednReader) read() (any, error) {
	c, err := p.skip()
	if err != nil {
		return nil, err
	}
	line := p.line
	_, _ = p.readByte()
	switch c {
	case '{':
		return p.readMap(line)
	case '[':
		vs, err := p.readSeq(']', line)
		return vs, err
	case '(':
		vs, err := p.readSeq(')', line)
		return ednList(vs), err
	case '"':
		return p.readString(line)
	case '\\':
		return p.readChar()
	case ')', ']', '}':
		return nil, p.errorf(line, "bad EDN: unexpected %q", c)
	case '#':
		return p.readDispatch(line)
	}
	p.unreadByte(c)
	tok, err := p.token()
	if err != nil {
		return nil, err
	}
	return p.atom(tok, line)
}

func (p *ednReader) enter(line int) error {
	p.depth++
	if p.depth > maxEDNDepth {
		return p.errorf(line, "bad EDN: forms nest more than %d deep", maxEDNDepth)
	}
	return nil
}

// readSeq reads the elements of a vector, list or set up to closer.
func (p *ednReader) readSeq(closer byte, line int) ([]any, error) {
	if err := p.enter(line); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	var out []any
	for {
		c, err := p.skip()
		if err == io.EOF {
			return nil, p.errorf(line, "bad EDN: the %s that starts here is never closed", delimName(closer))
		}
		if err != nil {
			return nil, err
		}
		if c == closer {
			_, _ = p.readByte()
			return out, nil
		}
		v, err := p.read()
		if err == io.EOF {
			return nil, p.errorf(line, "bad EDN: the %s that starts here is never closed", delimName(closer))
		}
		if err != nil {
			return nil, err
		}
		if _, skip := v.(ednDiscarded); !skip {
			out = append(out, v)
		}
	}
}

func (p *ednReader) readMap(line int) (*ednMap, error) {
	vs, err := p.readSeq('}', line)
	if err != nil {
		return nil, err
	}
	if len(vs)%2 != 0 {
		return nil, p.errorf(line, "bad EDN: the map that starts here has a key without a value")
	}
	m := &ednMap{}
	for i := 0; i < len(vs); i += 2 {
		m.keys = append(m.keys, vs[i])
		m.vals = append(m.vals, vs[i+1])
	}
	return m, nil
}

func (p *ednReader) readDispatch(line int) (any, error) {
	c, err := p.readByte()
	if err != nil {
		return nil, err
	}
	switch {
	case c == '{':
		vs, err := p.readSeq('}', line)
		return ednSet(vs), err
	case c == '_': // #_ discards the next form
		if err := p.enter(line); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		if _, err := p.readForm(); err != nil {
			return nil, err
		}
		return ednDiscarded{}, nil
	case isEDNDelim(c) || c == '#':
		return nil, p.errorf(line, "bad EDN: # must be followed by a tag, { or _")
	}
	p.unreadByte(c)
	if _, err := p.token(); err != nil { // the tag: dropped
		return nil, err
	}
	if err := p.enter(line); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	return p.readForm()
}

// ednDiscarded is what read returns for a form discarded with #_.
type ednDiscarded struct{}

// readForm reads the next form that is not discarded.
func (p *ednReader) readForm() (any, error) {
	for {
		v, err := p.read()
		if _, skip := v.(ednDiscarded); !skip || err != nil {
			return v, err
		}
	}
}

// token reads the characters up to the next delimiter.
func (p *ednReader) token() (string, error) {
	var b []byte
	for {
		c, err := p.readByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		if isEDNDelim(c) {
			p.unreadByte(c)
			break
		}
		b = append(b, c)
	}
	return string(b), nil
}

func (p *ednReader) atom(tok string, line int) (any, error) {
	switch tok {
	case "":
		return nil, p.errorf(line, "bad EDN: empty token")
	case "nil":
		return nil, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	if !utf8.ValidString(tok) {
		return nil, p.errorf(line, "bad EDN: not text")
	}
	if tok[0] == ':' {
		if len(tok) == 1 {
			return nil, p.errorf(line, "bad EDN: a lone ':' is not a keyword")
		}
		return ednKeyword(tok[1:]), nil
	}
	c := tok[0]
	if c >= '0' && c <= '9' || (c == '-' || c == '+') && len(tok) > 1 && tok[1] >= '0' && tok[1] <= '9' {
		return p.number(tok, line)
	}
	return ednSymbol(tok), nil
}

func (p *ednReader) number(tok string, line int) (any, error) {
	bad := func() (any, error) {
		return nil, p.errorf(line, "bad EDN: %q is not a number", truncate([]byte(tok), 40))
	}
	s := strings.TrimPrefix(tok, "+")
	if strings.HasSuffix(s, "N") {
		n, ok := new(big.Int).SetString(strings.TrimSuffix(s, "N"), 10)
		if !ok {
			return bad()
		}
		if n.IsInt64() {
			return n.Int64(), nil
		}
		return n, nil
	}
	if i := strings.IndexByte(s, '/'); i > 0 { // a ratio
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return bad()
		}
		f, _ := r.Float64()
		return f, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	if n, ok := new(big.Int).SetString(s, 10); ok {
		return n, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "M"), 64)
	if err != nil {
		return bad()
	}
	return f, nil
}

func (p *ednReader) readString(line int) (string, error) {
	var b []byte
	for {
		c, err := p.readByte()
		if err == io.EOF {
			return "", p.errorf(line, "bad EDN: the string that starts here is never closed")
		}
		if err != nil {
			return "", err
		}
		switch c {
		case '"':
			if !utf8.Valid(b) {
				return "", p.errorf(line, "bad EDN: the string that starts here is not UTF-8 text")
			}
			return string(b), nil
		case '\\':
			e, err := p.readByte()
			if err != nil {
				return "", p.errorf(line, "bad EDN: the string that starts here is never closed")
			}
			switch e {
			case 't':
				b = append(b, '\t')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case '"', '\\', '/', '\'':
				b = append(b, e)
			case 'u':
				var hex [4]byte
				for i := range hex {
					if hex[i], err = p.readByte(); err != nil {
						return "", p.errorf(line, "bad EDN: the string that starts here is never closed")
					}
				}
				r, err := strconv.ParseUint(string(hex[:]), 16, 32)
				if err != nil {
					return "", p.errorf(p.line, "bad EDN: bad escape \\u%s in a string", hex[:])
				}
				b = utf8.AppendRune(b, rune(r))
			default:
				return "", p.errorf(p.line, "bad EDN: unknown escape \\%c in a string", e)
			}
		default:
			b = append(b, c)
		}
	}
}

func (p *ednReader) readChar() (string, error) {
	line := p.line
	c, err := p.readByte()
	if err != nil {
		return "", err
	}
	tok, err := p.token()
	if err != nil {
		return "", err
	}
	tok = string(c) + tok
	switch tok {
	case "newline":
		return "\n", nil
	case "space":
		return " ", nil
	case "tab":
		return "\t", nil
	case "return":
		return "\r", nil
	case "formfeed":
		return "\f", nil
	case "backspace":
		return "\b", nil
	}
	if r, size := utf8.DecodeRuneInString(tok); r != utf8.RuneError && size == len(tok) {
		return tok, nil
	}
	if len(tok) == 5 && tok[0] == 'u' {
		if r, err := strconv.ParseUint(tok[1:], 16, 32); err == nil {
			return string(rune(r)), nil
		}
	}
	return "", p.errorf(line, "bad EDN: unknown character \\%s", truncate([]byte(tok), 20))
}

// ednToJSON converts a value read by ednReader into one encoding/json
// writes: keywords and symbols become strings, vectors, lists and sets
// arrays (sets sorted), maps objects whose keys are the keys' text.
func ednToJSON(v any) any {
	switch x := v.(type) {
	case ednKeyword:
		return string(x)
	case ednSymbol:
		return string(x)
	case *big.Int:
		return json.Number(x.String())
	case []any:
		return ednSliceToJSON(x)
	case ednList:
		return ednSliceToJSON(x)
	case ednSet:
		out := ednSliceToJSON(x)
		sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
		return out
	case *ednMap:
		out := make(map[string]any, len(x.keys))
		for i, k := range x.keys {
			ks, ok := ednToJSON(k).(string)
			if !ok {
				ks = ednText(k)
			}
			out[ks] = ednToJSON(x.vals[i])
		}
		return out
	}
	return v // nil, bool, int64, float64, string
}

func ednSliceToJSON(x []any) []any {
	out := make([]any, len(x))
	for i, e := range x {
		out[i] = ednToJSON(e)
	}
	return out
}

// ednText writes v back as EDN-like text, for messages and for keys that
// are not strings.
func ednText(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case ednKeyword:
		return ":" + string(x)
	case string:
		return strconv.Quote(x)
	case []any:
		return "[" + ednJoin(x) + "]"
	case ednList:
		return "(" + ednJoin(x) + ")"
	case ednSet:
		return "#{" + ednJoin(x) + "}"
	case *ednMap:
		parts := make([]string, len(x.keys))
		for i := range x.keys {
			parts[i] = ednText(x.keys[i]) + " " + ednText(x.vals[i])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

func ednJoin(xs []any) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = ednText(x)
	}
	return strings.Join(parts, " ")
}
