package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// ended is one operation as the pairing ended it: the positions of its
// invocation and completion (-1: dangling).
type ended struct{ inv, comp int }

// pairAll runs ops through a Pairing and returns the operations in the
// order they ended (at their completion, at a second invocation of their
// process, or at the end) and the unmatched completions.
func pairAll(ops []Op) (pairs []ended, unmatched []int) {
	var pr Pairing[int]
	for i, op := range ops {
		if op.Type == Invoke {
			if prev, ok := pr.Invoke(op.Process, op.F, i); ok {
				pairs = append(pairs, ended{prev.V, -1})
			}
			continue
		}
		if inv, ok := pr.Complete(op.Process, op.F); ok {
			pairs = append(pairs, ended{inv.V, i})
		} else {
			unmatched = append(unmatched, i)
		}
	}
	for _, inv := range pr.Dangling() {
		pairs = append(pairs, ended{inv.V, -1})
	}
	if pr.Len() != 0 {
		panic("Dangling left invocations in flight")
	}
	return pairs, unmatched
}

// ev writes an event compactly: "0 invoke write", "n info kill" (n is the
// nemesis).
func ev(s string) Op {
	parts := strings.Fields(s)
	p := NemesisProcess
	if parts[0] != "n" {
		id, _ := strconv.Atoi(parts[0])
		p = Client(id)
	}
	return Op{Process: p, Type: Type(parts[1]), F: parts[2]}
}

func TestPairing(t *testing.T) {
	tests := []struct {
		name      string
		events    []string
		pairs     []ended
		unmatched []int
	}{
		{"empty", nil, nil, nil},
		{"one op", []string{"0 invoke write", "0 ok write"}, []ended{{0, 1}}, nil},
		{"every outcome", []string{"0 invoke read", "0 fail read", "0 invoke write", "0 info write", "1 invoke cas", "1 ok cas"},
			[]ended{{0, 1}, {2, 3}, {4, 5}}, nil},
		{"dangling by a second invoke", []string{"0 invoke write", "0 invoke read", "0 ok read"},
			[]ended{{0, -1}, {1, 2}}, nil},
		{"dangling by a second invoke of the same f", []string{"0 invoke write", "0 invoke write", "0 ok write"},
			[]ended{{0, -1}, {1, 2}}, nil},
		{"dangling at the end, in history order", []string{"2 invoke write", "0 invoke read", "1 invoke cas", "1 ok cas", "5 invoke write"},
			[]ended{{2, 3}, {0, -1}, {1, -1}, {4, -1}}, nil},
		{"unmatched completion", []string{"0 ok read", "0 invoke write", "0 ok write", "0 ok write"},
			[]ended{{1, 2}}, []int{0, 3}},
		{"completion by another process", []string{"0 invoke write", "1 ok write"},
			[]ended{{0, -1}}, []int{1}},
		{"f mismatch: unmatched, the invocation stays in flight", []string{"0 invoke write", "0 ok read", "0 ok write"},
			[]ended{{0, 2}}, []int{1}},
		{"f mismatch, then dangling at the end", []string{"0 invoke write", "0 info cas"},
			[]ended{{0, -1}}, []int{1}},
		{"nemesis ops pair like a process", []string{"n invoke start-partition", "0 invoke read", "n info start-partition", "0 ok read", "n invoke kill"},
			[]ended{{0, 2}, {1, 3}, {4, -1}}, nil},
		{"nemesis is not client 0", []string{"n invoke kill", "0 invoke kill", "n info kill", "0 info kill"},
			[]ended{{0, 2}, {1, 3}}, nil},
		{"nemesis second invoke", []string{"n invoke kill", "n invoke start", "n info start", "n info kill"},
			[]ended{{0, -1}, {1, 2}}, []int{3}},
		{"interleaved processes", []string{"0 invoke write", "1 invoke read", "2 invoke cas", "1 ok read", "0 info write", "1 invoke write", "2 fail cas", "1 ok write"},
			[]ended{{1, 3}, {0, 4}, {2, 6}, {5, 7}}, nil},
		{"a process reused after its info", []string{"0 invoke write", "0 info write", "0 invoke write", "0 ok write"},
			[]ended{{0, 1}, {2, 3}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ops := make([]Op, len(tc.events))
			for i, s := range tc.events {
				ops[i] = ev(s)
			}
			pairs, unmatched := pairAll(ops)
			if !reflect.DeepEqual(pairs, tc.pairs) || !reflect.DeepEqual(unmatched, tc.unmatched) {
				t.Errorf("pairs %v, unmatched %v; want %v, %v", pairs, unmatched, tc.pairs, tc.unmatched)
			}
			if ref, refU := pairReference(ops); !reflect.DeepEqual(pairs, ref) || !reflect.DeepEqual(unmatched, refU) {
				t.Errorf("the reference model says %v, %v", ref, refU)
			}
		})
	}
}

func TestPairingInFlight(t *testing.T) {
	var pr Pairing[string]
	if _, ok := pr.Complete(Client(0), "read"); ok {
		t.Fatal("the zero Pairing paired a completion")
	}
	if pr.Dangling() != nil || pr.Len() != 0 {
		t.Fatal("the zero Pairing has invocations in flight")
	}
	pr.Invoke(Client(0), "write", "line 1")
	if _, ok := pr.Complete(Client(0), "read"); ok {
		t.Fatal("a read paired with a write")
	}
	inv, ok := pr.InFlight(Client(0))
	if !ok || inv.F != "write" || inv.V != "line 1" || pr.Len() != 1 {
		t.Fatalf("InFlight = %+v, %v (Len %d); want the write of line 1", inv, ok, pr.Len())
	}
	if _, ok := pr.InFlight(NemesisProcess); ok {
		t.Fatal("the nemesis has an invocation in flight")
	}
	if inv, ok := pr.Complete(Client(0), "write"); !ok || inv.V != "line 1" {
		t.Fatalf("Complete = %+v, %v", inv, ok)
	}
	if pr.Len() != 0 {
		t.Fatal("a paired invocation stays in flight")
	}
}

// pairReference is the pairing rules written the slow, obvious way: an
// invocation is in flight until its process completes it or invokes
// again; a completion pairs with the last invocation of its process if
// that one is still in flight and of the same f.
func pairReference(ops []Op) (pairs []ended, unmatched []int) {
	type end struct {
		at int // where the operation ended; len(ops)+inv for the end
		e  ended
	}
	var ends []end
	paired := map[int]bool{}
	for i, op := range ops {
		if op.Type == Invoke {
			continue
		}
		last := -1
		for j := i - 1; j >= 0; j-- {
			if ops[j].Process == op.Process && ops[j].Type == Invoke {
				last = j
				break
			}
		}
		if last < 0 || paired[last] || ops[last].F != op.F {
			unmatched = append(unmatched, i)
			continue
		}
		paired[last] = true
		ends = append(ends, end{i, ended{last, i}})
	}
	for i, op := range ops {
		if op.Type != Invoke || paired[i] {
			continue
		}
		at := len(ops) + i
		for j := i + 1; j < len(ops); j++ {
			if ops[j].Process == op.Process && ops[j].Type == Invoke {
				at = j
				break
			}
		}
		ends = append(ends, end{at, ended{i, -1}})
	}
	// Two operations never end at the same event: a completion ends one,
	// an invocation at most one, and the end positions are distinct.
	for i := 1; i < len(ends); i++ {
		for j := i; j > 0 && ends[j].at < ends[j-1].at; j-- {
			ends[j], ends[j-1] = ends[j-1], ends[j]
		}
	}
	for _, e := range ends {
		pairs = append(pairs, e.e)
	}
	return pairs, unmatched
}

// decodeLoose decodes every line of data that is a JSON op with a known
// type, whatever the rules of the reader say.
func decodeLoose(data []byte) []Op {
	var ops []Op
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var op Op
		if json.Unmarshal(sc.Bytes(), &op) == nil && op.Type.Valid() {
			ops = append(ops, op)
		}
	}
	return ops
}

// corpus returns the []byte values of the Go fuzz corpus files in dir.
func corpus(t testing.TB, dir string) [][]byte {
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if s, ok := strings.CutPrefix(line, "[]byte("); ok {
				if v, err := strconv.Unquote(strings.TrimSuffix(s, ")")); err == nil {
					out = append(out, []byte(v))
				}
			}
		}
	}
	return out
}

// FuzzPairing compares Pairing with the reference model on any sequence
// of events, and checks that a history the reader accepts has neither a
// dangling invocation before its end nor an unmatched completion. Its seeds
// are the reader's fuzz corpora.
func FuzzPairing(f *testing.F) {
	seeds := append(corpus(f, "testdata/fuzz/FuzzReader"), corpus(f, "testdata/fuzz/FuzzReadAll")...)
	if len(seeds) == 0 {
		f.Fatal("no seeds in testdata/fuzz/FuzzReader and FuzzReadAll")
	}
	seeds = append(seeds, []byte(`{"type":"invoke","process":0,"f":"write","key":"k","time":1}
{"type":"invoke","process":0,"f":"read","key":"k","time":2}
{"type":"ok","process":1,"f":"read","key":"k","time":3}
{"type":"invoke","process":"nemesis","f":"kill","time":4}
{"type":"ok","process":0,"f":"write","key":"k","time":5}
{"type":"ok","process":0,"f":"read","key":"k","time":6}`))
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ops := decodeLoose(data)
		pairs, unmatched := pairAll(ops)
		ref, refU := pairReference(ops)
		if !reflect.DeepEqual(pairs, ref) || !reflect.DeepEqual(unmatched, refU) {
			t.Fatalf("Pairing: %v, unmatched %v; the reference model: %v, %v", pairs, unmatched, ref, refU)
		}
		read, err := Read(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		var pr Pairing[int]
		for i, op := range read {
			if op.Type == Invoke {
				if _, dangling := pr.Invoke(op.Process, op.F, i); dangling {
					t.Fatalf("the reader accepted a second invocation in flight at %d", i)
				}
			} else if _, ok := pr.Complete(op.Process, op.F); !ok {
				t.Fatalf("the reader accepted an unmatched completion at %d", i)
			}
		}
	})
}
