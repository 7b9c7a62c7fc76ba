package workloads

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func take(g Generator, n int) []Invocation {
	out := make([]Invocation, n)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

func TestSameSeedSameSequence(t *testing.T) {
	for _, name := range Names {
		a, _ := New(name, Options{Seed: 42, Concurrency: 7})
		b, _ := New(name, Options{Seed: 42, Concurrency: 7})
		c, _ := New(name, Options{Seed: 43, Concurrency: 7})
		// Threads drawn in different orders must not matter.
		for _, th := range []int{3, 0, 6} {
			sa, sb := take(a.Thread(th), 500), take(b.Thread(th), 500)
			if !reflect.DeepEqual(sa, sb) {
				t.Errorf("%s thread %d: same seed, different sequences", name, th)
			}
			sc := take(c.Thread(th), 500)
			if name == Register && reflect.DeepEqual(sa, sc) {
				t.Errorf("%s thread %d: different seeds, same sequence", name, th)
			}
		}
	}
}

func TestRegisterKeysRetireAndShare(t *testing.T) {
	w, err := New(Register, Options{Seed: 1, Concurrency: 10, OpsPerKey: 100})
	if err != nil {
		t.Fatal(err)
	}
	perKey := map[string]int{}
	fs := map[string]int{}
	for th := 0; th < 10; th++ {
		for _, inv := range take(w.Thread(th), 60) {
			perKey[inv.Key]++
			fs[inv.F]++
			switch inv.F {
			case "read":
				if inv.Value != nil {
					t.Fatalf("read invocation with value %s", inv.Value)
				}
			case "write":
				var v int
				if err := json.Unmarshal(inv.Value, &v); err != nil || v < 0 || v >= registerValues {
					t.Fatalf("write value %s", inv.Value)
				}
			case "cas":
				var p [2]int
				if err := json.Unmarshal(inv.Value, &p); err != nil {
					t.Fatalf("cas value %s: %v", inv.Value, err)
				}
			default:
				t.Fatalf("unexpected f %q", inv.F)
			}
		}
	}
	// 10 threads, 2 keys at once, 5 threads a key, 20 ops a thread a key:
	// 600 ops over k0..k5, 100 ops each.
	if len(perKey) != 6 {
		t.Fatalf("keys used: %v, want k0..k5", perKey)
	}
	for k, n := range perKey {
		if n != 100 {
			t.Errorf("key %s got %d ops, want 100 (OpsPerKey)", k, n)
		}
	}
	for _, f := range []string{"read", "write", "cas"} {
		if fs[f] < 100 {
			t.Errorf("only %d %s ops of 600", fs[f], f)
		}
	}
}

func TestSetAddsUniqueKeysAndReadsThemBack(t *testing.T) {
	w, _ := New(Set, Options{Seed: 1, Concurrency: 3})
	seen := map[string]bool{}
	for th := 0; th < 3; th++ {
		for _, inv := range take(w.Thread(th), 4) {
			if inv.F != "add" || seen[inv.Key] || !strings.HasPrefix(inv.Key, "s") || "s"+string(inv.Value) != inv.Key {
				t.Fatalf("bad or repeated add %+v", inv)
			}
			seen[inv.Key] = true
		}
	}
	reads := w.FinalReads()
	if len(reads) != 12 || reads[0] != "s0" || reads[11] != "s11" {
		t.Fatalf("FinalReads = %v, want s0..s11 in order", reads)
	}
}

func TestUnknownWorkload(t *testing.T) {
	_, err := New("bank", Options{Concurrency: 1})
	if err == nil || !strings.Contains(err.Error(), "register, set") {
		t.Fatalf("err = %v", err)
	}
}
