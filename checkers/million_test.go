package checkers

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/history"
)

// genOptions shapes a generated register history.
type genOptions struct {
	Events     int     // history lines (each operation is two)
	Keys       int     // keys, each retired after Events/Keys lines
	Active     int     // keys in use at a time
	Threads    int     // client threads
	InfoRate   float64 // fraction of operations that end info
	FailRate   float64 // fraction that fail with "unavailable" (no effect)
	Seed       uint64
	StepMaxNs  int64 // time between events: uniform in [1, StepMaxNs]
	ValueRange int   // values are 0..ValueRange-1
}

// genRegister writes a linearizable register history: Threads client
// threads run overlapping read, write and cas operations on a handful of
// active keys; each operation takes effect at one instant between its
// invocation and completion, on a simulated register. An info write or cas
// takes effect (at that instant, or never) with even odds, and its thread
// continues under a new process number.
func genRegister(path string, o genOptions) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	hw := history.NewWriter(bw)
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))

	type thread struct {
		proc    int
		state   int // 0 idle, 1 invoked, 2 took effect (or decided not to)
		op      history.Op
		outcome history.Type
		result  []byte
		errStr  string
	}
	threads := make([]thread, o.Threads)
	for i := range threads {
		threads[i].proc = i
	}
	nextProc := o.Threads
	regs := make(map[string]int) // absent keys are missing
	perKey := o.Events / 2 / o.Keys
	active := make([]int, o.Active)
	used := make([]int, o.Keys)
	next := o.Active
	for i := range active {
		active[i] = i
	}
	invoked, inflight := 0, 0
	var now int64
	emit := func(op history.Op) error {
		now += 1 + rng.Int64N(o.StepMaxNs)
		op.Time = now
		return hw.Write(&op)
	}
	for invoked < o.Events/2 || inflight > 0 {
		t := &threads[rng.IntN(len(threads))]
		switch t.state {
		case 0:
			if invoked >= o.Events/2 {
				continue
			}
			slot := rng.IntN(len(active))
			k := active[slot]
			if k < 0 {
				continue
			}
			used[k]++
			if used[k] >= perKey {
				active[slot] = -1
				if next < o.Keys {
					active[slot] = next
					next++
				}
			}
			key := fmt.Sprintf("k%d", k)
			op := history.Op{Type: history.Invoke, Process: history.Client(t.proc), Key: key}
			switch x := rng.IntN(10); {
			case x < 5:
				op.F = history.FRead
			case x < 8:
				op.F, op.Value = history.FWrite, history.MustValue(rng.IntN(o.ValueRange))
			default:
				op.F, op.Value = history.FCAS, history.MustValue([2]int{rng.IntN(o.ValueRange), rng.IntN(o.ValueRange)})
			}
			t.op, t.state = op, 1
			invoked++
			inflight++
			if err := emit(op); err != nil {
				return err
			}
		case 1:
			// The operation's linearization point.
			t.state = 2
			t.outcome, t.result, t.errStr = history.OK, nil, ""
			x := rng.Float64()
			switch {
			case x < o.InfoRate:
				t.outcome, t.errStr = history.Info, "timeout"
				if t.op.F == history.FRead || rng.IntN(2) == 0 {
					continue // never takes effect
				}
			case x < o.InfoRate+o.FailRate:
				t.outcome, t.errStr = history.Fail, history.ErrUnavailable
				continue
			}
			v, present := regs[t.op.Key]
			switch t.op.F {
			case history.FRead:
				if present {
					t.result = history.MustValue(v)
				}
			case history.FWrite:
				var n int
				fmt.Sscan(string(t.op.Value), &n)
				regs[t.op.Key] = n
			case history.FCAS:
				var from, to int
				fmt.Sscanf(string(t.op.Value), "[%d,%d]", &from, &to)
				switch {
				case present && v == from:
					regs[t.op.Key] = to
				case t.outcome == history.Info:
				case !present:
					t.outcome, t.errStr = history.Fail, history.ErrNotFound
				default:
					t.outcome, t.errStr = history.Fail, history.ErrPreconditionFailed
				}
			}
		case 2:
			c := t.op
			c.Type, c.Error = t.outcome, t.errStr
			if c.F == history.FRead {
				c.Value = t.result
			}
			if err := emit(c); err != nil {
				return err
			}
			t.state = 0
			inflight--
			if t.outcome == history.Info {
				t.proc = nextProc
				nextProc++
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

var millionOps = genOptions{
	Events: 1_000_000, Keys: 1000, Active: 5, Threads: 20,
	InfoRate: 0.01, FailRate: 0.005, Seed: 1, StepMaxNs: 20_000, ValueRange: 5,
}

func TestGeneratedHistoryIsValid(t *testing.T) {
	small := millionOps
	small.Events, small.Keys = 20_000, 20
	path := filepath.Join(t.TempDir(), "h.jsonl")
	if err := genRegister(path, small); err != nil {
		t.Fatal(err)
	}
	ops, err := history.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != small.Events {
		t.Fatalf("%d events, want %d", len(ops), small.Events)
	}
	res := Check(context.Background(), ops, Options{})
	if res.Valid != Valid || res.Keys != small.Keys {
		t.Fatalf("generated history: %s, %d keys (%+v)", res.Valid, res.Keys, res.Linear)
	}
	if res.Stats.ByF["write"][history.Info] == 0 || res.Stats.ByF["cas"][history.Fail] == 0 {
		t.Errorf("no info writes or failed cas: %v", res.Stats.ByF)
	}
}

// peakHeap samples the live heap until stop is closed.
func peakHeap(stop <-chan struct{}, peak *atomic.Uint64) {
	var ms runtime.MemStats
	for {
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > peak.Load() {
			peak.Store(ms.HeapAlloc)
		}
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// BenchmarkMillionOps reads (history.ReadFile) and checks a generated
// history of 1,000,000 ops (history lines: 500,000 invocations and their
// completions) over 1,000 keys, 20 client threads and 1% info operations.
// It reports the wall and CPU time of each phase and the peak live heap.
// Target: at most 10s and 2GB on a 2-core machine.
func BenchmarkMillionOps(b *testing.B) { benchmarkRegister(b, millionOps) }

// BenchmarkMillionOperations is BenchmarkMillionOps with 1,000,000
// operations (2,000,000 history lines), for the stricter reading of the
// target.
func BenchmarkMillionOperations(b *testing.B) {
	o := millionOps
	o.Events *= 2
	benchmarkRegister(b, o)
}

func benchmarkRegister(b *testing.B, opts genOptions) {
	path := filepath.Join(b.TempDir(), "million.jsonl")
	if err := genRegister(path, opts); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	go peakHeap(stop, &peak)
	var read, check, readCPU, checkCPU time.Duration
	n := 0
	b.ResetTimer()
	for b.Loop() {
		t0, c0 := time.Now(), cpuTime()
		ops, err := history.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		t1, c1 := time.Now(), cpuTime()
		res := Check(context.Background(), ops, Options{})
		t2, c2 := time.Now(), cpuTime()
		readCPU += c1 - c0
		checkCPU += c2 - c1
		if res.Valid != Valid || res.Keys != opts.Keys || res.Ops != opts.Events {
			b.Fatalf("verdict %s, %d keys, %d ops", res.Valid, res.Keys, res.Ops)
		}
		read += t1.Sub(t0)
		check += t2.Sub(t1)
		n++
	}
	b.StopTimer()
	close(stop)
	b.ReportMetric(read.Seconds()/float64(n), "read-s/op")
	b.ReportMetric(check.Seconds()/float64(n), "check-s/op")
	b.ReportMetric(readCPU.Seconds()/float64(n), "read-cpu-s/op")
	b.ReportMetric(checkCPU.Seconds()/float64(n), "check-cpu-s/op")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
}

// cpuTime is the CPU time (user and system) this process has used: unlike
// wall time, it does not grow when other processes load the machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
