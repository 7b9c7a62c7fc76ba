package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/history"
)

// memDisk is an in-memory Disk over a memCluster: a power loss stops the
// node as a kill does and counts the writes it drops; a corruption is
// refused on a node that runs.
type memDisk struct {
	m           *memCluster
	files       []string // each node's data files, sorted
	lost        map[string]int
	corruptions []string
	failCorrupt bool
}

func newMemDisk(m *memCluster) *memDisk {
	return &memDisk{m: m, files: []string{"raft.db", "snapshots/1-2.snap", "wal/0001.log"}, lost: map[string]int{}}
}

func (d *memDisk) PowerLoss(ctx context.Context, node string) error {
	if err := d.m.trans(ctx, node, "up", "killed", "power-loss"); err != nil {
		return err
	}
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	d.lost[node]++
	return nil
}

func (d *memDisk) Corrupt(ctx context.Context, node string, rng *rand.Rand) (history.Corruption, error) {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	d.m.calls = append(d.m.calls, "corrupt "+node)
	if st := d.m.state[node]; st != "killed" {
		return history.Corruption{}, fmt.Errorf("corrupt %s: node is %s", node, st)
	}
	if d.failCorrupt {
		return history.Corruption{}, errors.New("no file to corrupt")
	}
	c := history.Corruption{File: d.files[rng.Intn(len(d.files))], Offset: rng.Int63n(1 << 20), Kind: history.CorruptBitFlip, Length: 1}
	if rng.Intn(2) == 0 {
		c.Kind, c.Length = history.CorruptTruncate, rng.Int63n(4096)+1
	}
	d.corruptions = append(d.corruptions, node+" "+c.File)
	return c, nil
}

func TestDiskKindsNeedDisk(t *testing.T) {
	m := newMem(3)
	for _, k := range []Kind{KindPowerLoss, KindCorrupt} {
		_, err := New(m, m, Options{Kinds: []Kind{KindKill, k}})
		if err == nil || !strings.Contains(err.Error(), string(k)+" faults need a disk fault installer") {
			t.Errorf("%s without a Disk: %v", k, err)
		}
		if _, err := New(m, m, Options{Kinds: []Kind{k}, Disk: newMemDisk(m)}); err != nil {
			t.Errorf("%s with a Disk: %v", k, err)
		}
	}
}

func TestDiskKindsOptIn(t *testing.T) {
	for _, k := range []Kind{KindPowerLoss, KindCorrupt} {
		if slices.Contains(Kinds, k) || !slices.Contains(AllKinds(), k) {
			t.Errorf("%s: in the default mix %v, or missing from %v", k, Kinds, AllKinds())
		}
	}
	cases := []struct {
		in   string
		want []Kind
		err  string
	}{
		{"power-loss", []Kind{KindPowerLoss}, ""},
		{"kill,power-loss,corrupt,kill", []Kind{KindKill, KindPowerLoss, KindCorrupt}, ""},
		{"powerloss", nil, `unknown fault kind "powerloss" (valid: partition, kill, pause, packet, clock, or none), opt-in: power-loss, corrupt`},
	}
	for _, tc := range cases {
		got, err := ParseKinds(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

// TestDiskKindsSchedule runs power-loss and corrupt with clock faults: the
// nodes they take down are started again, corruptions only hit stopped
// nodes, clock faults never shift a node that is down, and the history
// says what was done.
func TestDiskKindsSchedule(t *testing.T) {
	m := newMem(5)
	disk := newMemDisk(m)
	n, err := New(m, m, Options{Kinds: []Kind{KindPowerLoss, KindCorrupt, KindClock}, Interval: 2 * time.Millisecond,
		Seed: 8, Clocks: m, Disk: disk})
	if err != nil {
		t.Fatal(err)
	}
	var log opLog
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := n.Run(ctx, log.add); err != nil {
		t.Fatalf("run: %v", err)
	}
	m.assertHealed(t)
	if len(n.Active()) != 0 || n.Down() != 0 {
		t.Errorf("after the run: active %v, %d down", n.Active(), n.Down())
	}
	down := map[string]bool{}
	var powerLosses, corrupts int
	for i := 1; i < len(log.ops); i += 2 {
		op := log.ops[i]
		if op.Error != "" {
			t.Errorf("op %d: %s failed: %s", i, op.F, op.Error)
		}
		f, err := history.DecodeFault(op)
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
		switch op.F {
		case FPowerLoss:
			powerLosses++
			if f.Kind != string(KindPowerLoss) || len(f.Targets) == 0 || string(log.ops[i-1].Value) != string(op.Value) {
				t.Errorf("op %d: power-loss recorded as %s then %s", i, log.ops[i-1].Value, op.Value)
			}
		case FCorrupt:
			corrupts++
			c := f.Corruption
			if f.Kind != string(KindCorrupt) || len(f.Targets) != 1 || c == nil || !slices.Contains(disk.files, c.File) ||
				c.Kind != history.CorruptBitFlip && c.Kind != history.CorruptTruncate {
				t.Errorf("op %d: corrupt recorded as %s", i, op.Value)
			}
		case FStart:
			if f.Kind != "" || len(f.Targets) == 0 {
				t.Errorf("op %d: start recorded as %s", i, op.Value)
			}
			clear(down)
		case FBumpClock, FStrobeClock:
			for _, x := range f.Targets {
				if down[x] {
					t.Errorf("op %d: %s %s shifts %s, which is down", i, op.F, op.Value, x)
				}
			}
		}
		if op.F == FPowerLoss || op.F == FCorrupt {
			if len(down) != 0 {
				t.Errorf("op %d: %s while %v are down", i, op.F, down)
			}
			for _, x := range f.Targets {
				down[x] = true
			}
		}
	}
	if powerLosses < 3 || corrupts < 3 {
		t.Errorf("%d power losses and %d corruptions in %d ops", powerLosses, corrupts, len(log.ops))
	}
	if len(disk.corruptions) != corrupts {
		t.Errorf("%d corruptions done, %d recorded", len(disk.corruptions), corrupts)
	}
}

// TestCorruptReproducible: the same seed damages the same files at the
// same offsets.
func TestCorruptReproducible(t *testing.T) {
	values := func(seed int64) []string {
		m := newMem(5)
		n, err := New(m, m, Options{Kinds: []Kind{KindCorrupt}, Seed: seed, Disk: newMemDisk(m)})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for i := 0; i < 20; i++ {
			if err := n.Inject(ctx, KindCorrupt); err != nil {
				t.Fatal(err)
			}
			if got := n.Active(); len(got) != 1 || !strings.HasPrefix(got[0], "corrupt n") || n.Down() != 1 {
				t.Fatalf("active %v, %d down", got, n.Down())
			}
			if err := n.Heal(ctx); err != nil {
				t.Fatal(err)
			}
			m.assertHealed(t)
		}
		var out []string
		for _, a := range n.Actions() {
			out = append(out, a.F+" "+string(a.Value))
		}
		return out
	}
	a, b, c := values(4), values(4), values(5)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("same seed, different damage:\n%v\n%v", a, b)
	}
	if reflect.DeepEqual(a, c) {
		t.Errorf("different seeds, same damage: %v", a)
	}
}

// TestCorruptFailures: a node whose kill failed is not damaged (it may
// still run) but is started again; a failed corruption is recorded with
// its node stopped.
func TestCorruptFailures(t *testing.T) {
	for _, tc := range []struct {
		name        string
		failKill    bool
		failCorrupt bool
		value       string
		corrupted   bool
	}{
		{"kill fails", true, false, `{"kind":"corrupt"}`, false},
		{"corruption fails", false, true, `{"kind":"corrupt","nodes":["n1"]}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMem(3)
			disk := newMemDisk(m)
			disk.failCorrupt = tc.failCorrupt
			n, err := New(m, m, Options{Kinds: []Kind{KindCorrupt}, Seed: 1, Disk: disk})
			if err != nil {
				t.Fatal(err)
			}
			var log opLog
			n.sink = log.add
			n.nodes = []string{"n1"}
			if tc.failKill {
				m.failOn = "n1"
			}
			if err := n.Inject(context.Background(), KindCorrupt); err == nil {
				t.Fatal("corrupt should have failed")
			}
			if info := log.ops[1]; info.Error == "" || string(info.Value) != tc.value {
				t.Errorf("recorded as %s (%q), want %s", info.Value, info.Error, tc.value)
			}
			calls := strings.Join(m.calls, ";")
			if strings.Contains(calls, "corrupt n1") != tc.corrupted {
				t.Errorf("calls %s", calls)
			}
			if err := n.Heal(context.Background()); err != nil {
				t.Fatal(err)
			}
			m.assertHealed(t)
		})
	}
}

func TestPowerLossDown(t *testing.T) {
	m := newMem(5)
	disk := newMemDisk(m)
	n, err := New(m, m, Options{Kinds: []Kind{KindPowerLoss}, Seed: 2, Disk: disk})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		if err := n.Inject(ctx, KindPowerLoss); err != nil {
			t.Fatal(err)
		}
		if n.Down() == 0 || n.Down() != len(disk.lost) {
			t.Fatalf("Down() = %d, %d nodes lost power", n.Down(), len(disk.lost))
		}
		if act := n.Active(); len(act) != 1 || !strings.HasPrefix(act[0], "power-loss n") {
			t.Errorf("active %v", act)
		}
		if err := n.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		m.assertHealed(t)
		clear(disk.lost)
	}
}
