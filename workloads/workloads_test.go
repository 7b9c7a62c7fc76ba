package workloads

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/history"
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
	reads := w.(*set).keys()
	if len(reads) != 12 || reads[0] != "s0" || reads[11] != "s11" {
		t.Fatalf("keys = %v, want s0..s11 in order", reads)
	}
}

func TestUnknownWorkload(t *testing.T) {
	_, err := New("bank", Options{Concurrency: 1})
	if err == nil || !strings.Contains(err.Error(), "register, set") {
		t.Fatalf("err = %v", err)
	}
}

func TestOpsSubset(t *testing.T) {
	d, err := Lookup(Register)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ops     string
		want    []string // fs that must appear; the others must not
		wantErr string
	}{
		{"", []string{"read", "write", "cas"}, ""},
		{"read,write", []string{"read", "write"}, ""},
		{"write", []string{"write"}, ""},
		{" read , cas ", []string{"read", "cas"}, ""},
		{"read,add", nil, `op "add" is not one the register workload issues; choose from read,write,cas`},
		{"read,", nil, `op "" is not one`},
	}
	for _, tt := range tests {
		ops, err := d.ParseOps(tt.ops)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseOps(%q) = %v, want %q", tt.ops, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("ParseOps(%q): %v", tt.ops, err)
		}
		w, err := New(Register, Options{Seed: 3, Concurrency: 2, Ops: ops})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, inv := range take(w.Thread(0), 300) {
			seen[inv.F]++
		}
		for _, f := range []string{"read", "write", "cas"} {
			if slices.Contains(tt.want, f) != (seen[f] > 0) {
				t.Errorf("--ops %q: %d %s ops in 300", tt.ops, seen[f], f)
			}
		}
	}
}

func TestAllOpsKeepTheSeedsSequence(t *testing.T) {
	a, _ := New(Register, Options{Seed: 9, Concurrency: 4})
	b, _ := New(Register, Options{Seed: 9, Concurrency: 4, Ops: []string{"cas", "read", "write"}})
	if x, y := take(a.Thread(1), 100), take(b.Thread(1), 100); !reflect.DeepEqual(x, y) {
		t.Error("naming every op changed the sequence of a seed")
	}
}

func TestSetFinalReadsBack(t *testing.T) {
	w, _ := New(Set, Options{Seed: 1, Concurrency: 2})
	take(w.Thread(0), 5)
	take(w.Thread(1), 5)
	var mu sync.Mutex
	tries := map[string]int{}
	procs := map[int]bool{}
	env := FinalEnv{
		Nodes: []string{"n1", "n2"}, Threads: 3, FirstProcess: 10, Stall: time.Second, Retry: time.Millisecond,
		Invoke: func(_ context.Context, p int, node string, inv Invocation) history.Op {
			mu.Lock()
			defer mu.Unlock()
			tries[inv.Key]++
			procs[p] = true
			op := history.Op{F: inv.F, Key: inv.Key, Type: history.OK}
			switch {
			case inv.Key == "s3" && tries[inv.Key] == 1:
				op.Type = history.Info // the process must change
			case node == "n2" && tries[inv.Key] < 3:
				op.Type = history.Fail
			}
			return op
		},
	}
	done, total := w.(Finisher).Final(context.Background(), env)
	if done != 10 || total != 10 {
		t.Errorf("Final = %d of %d, want 10 of 10", done, total)
	}
	moved := false
	for p := range procs {
		if p < 10 {
			t.Errorf("process %d is below FirstProcess", p)
		}
		moved = moved || p >= 13 && (p-10)%3 < 3
	}
	if !moved {
		t.Errorf("processes used %v: the info must move its thread to process+3", procs)
	}
}

func TestSetFinalGivesUpAfterStall(t *testing.T) {
	w, _ := New(Set, Options{Seed: 1, Concurrency: 1})
	take(w.Thread(0), 3)
	start := time.Now()
	done, total := w.(Finisher).Final(context.Background(), FinalEnv{
		Nodes: []string{"n1"}, Threads: 1, Stall: 100 * time.Millisecond, Retry: time.Millisecond,
		Invoke: func(_ context.Context, p int, node string, inv Invocation) history.Op {
			return history.Op{Type: history.Fail}
		},
	})
	if done != 0 || total != 3 {
		t.Errorf("Final = %d of %d, want 0 of 3", done, total)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("gave up after %v, want about the 100 ms stall", el)
	}
}
