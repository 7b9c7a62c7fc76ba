package checkers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// absent is the interned id of JSON null: the key holds no value.
const absent int32 = 0

// interner maps JSON values to small integers by their canonical form, so
// that equal values (1, 1.0, 1e0; {"a":1,"b":2} and {"b":2,"a":1}) get the
// same id and model states hash and compare as plain ints. Id 0 is null.
// An interner is not safe for concurrent use; each key gets its own.
type interner struct {
	ids  map[string]int32
	vals []json.RawMessage // id -> canonical form, for messages
}

func newInterner() *interner {
	return &interner{ids: make(map[string]int32), vals: []json.RawMessage{json.RawMessage("null")}}
}

// id returns the id of raw, interning it if new.
func (in *interner) id(raw json.RawMessage) (int32, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return absent, nil
	}
	if id, ok := in.ids[string(raw)]; ok {
		return id, nil
	}
	canon := raw
	if !isPlainInt(raw) {
		c, err := Canonical(raw)
		if err != nil {
			return 0, err
		}
		if string(c) == "null" {
			return absent, nil
		}
		if id, ok := in.ids[string(c)]; ok {
			in.ids[string(raw)] = id
			return id, nil
		}
		canon = c
	}
	id := int32(len(in.vals))
	in.vals = append(in.vals, append(json.RawMessage(nil), canon...))
	in.ids[string(canon)] = id
	if !bytes.Equal(canon, raw) {
		in.ids[string(raw)] = id
	}
	return id, nil
}

// text returns the canonical JSON of the value with id v.
func (in *interner) text(v int32) string {
	if v < 0 || int(v) >= len(in.vals) {
		return "?"
	}
	return string(in.vals[v])
}

// isPlainInt reports whether b is an integer literal already in canonical
// form: an optional minus, no leading zeros, at most 18 digits.
func isPlainInt(b []byte) bool {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 || (b[0] == '0' && (len(b) > 1 || neg)) {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Canonical returns the canonical JSON form of a value: no insignificant
// white space, object keys sorted, strings escaped as encoding/json does
// (except that <, > and & are kept as they are), numbers as the shortest
// decimal that round-trips (integers that fit in 64 bits exactly, others
// as float64). Two values are the same register
// value exactly when their canonical forms are equal.
func Canonical(raw json.RawMessage) (json.RawMessage, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("value %s is not JSON: %w", clip(raw, 40), err)
	}
	if d.More() {
		return nil, fmt.Errorf("value %s is more than one JSON value", clip(raw, 40))
	}
	v, err := canonNumbers(v)
	if err != nil {
		return nil, err
	}
	// Not json.Marshal: it escapes <, > and & as \u003c..., which would
	// show in every explanation; the report escapes for HTML itself.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("value %s: %w", clip(raw, 40), err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// canonNumbers replaces every json.Number in v by its canonical form.
func canonNumbers(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return json.Number(strconv.FormatInt(i, 10)), nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("number %s is out of range", clip([]byte(s), 40))
		}
		if f == float64(int64(f)) && f >= -1<<62 && f <= 1<<62 {
			return json.Number(strconv.FormatInt(int64(f), 10)), nil
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	case []any:
		for i := range x {
			c, err := canonNumbers(x[i])
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
		return x, nil
	case map[string]any:
		for k := range x {
			c, err := canonNumbers(x[k])
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
		return x, nil
	}
	return v, nil
}

// splitPair splits a cas value [from, to]. The common case, two plain
// integers, is handled without encoding/json.
func splitPair(raw json.RawMessage) (from, to json.RawMessage, err error) {
	b := bytes.TrimSpace(raw)
	if len(b) >= 5 && b[0] == '[' && b[len(b)-1] == ']' {
		inner := b[1 : len(b)-1]
		if i := bytes.IndexByte(inner, ','); i > 0 {
			f, t := bytes.TrimSpace(inner[:i]), bytes.TrimSpace(inner[i+1:])
			if isPlainInt(f) && isPlainInt(t) {
				return f, t, nil
			}
		}
	}
	var pair []json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil || len(pair) != 2 {
		return nil, nil, fmt.Errorf("cas value must be a pair [from, to], got %s", clip(raw, 40))
	}
	return pair[0], pair[1], nil
}

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
