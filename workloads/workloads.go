// Package workloads defines what the clients of a run do: which operations
// they invoke, on which keys, with which values, and which checker judges
// the resulting history.
//
// Every client thread gets its own Generator whose sequence of operations
// depends only on the run's seed and the thread's number, never on timing or
// on the other threads, so a seed reproduces the same invocations.
package workloads

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Names of the workloads.
const (
	Register = "register"
	Set      = "set"
)

// Names lists the workloads, for help texts and errors.
var Names = []string{Register, Set}

// Options configure a workload.
type Options struct {
	// Seed makes the op sequence reproducible.
	Seed uint64
	// Concurrency is the number of client threads.
	Concurrency int
	// OpsPerKey is how many ops a register key gets before it is retired
	// (default 200).
	OpsPerKey int
	// KeysAtOnce is how many register keys are live at a time (default: one
	// per 5 threads, at least 1).
	KeysAtOnce int
}

// Invocation is what a client thread asks the store to do next.
type Invocation struct {
	F     string
	Key   string
	Value json.RawMessage
}

// Generator produces the invocations of one client thread. It is used by
// that thread only.
type Generator interface {
	Next() Invocation
}

// Workload is a kind of test: its generators, its final phase and its
// checker.
type Workload interface {
	// Name is the workload's name, as given to --workload.
	Name() string
	// Thread returns the generator of client thread i (0 <= i <
	// Concurrency). It is called once per thread.
	Thread(i int) Generator
	// FinalReads returns the keys to read back after the faults are healed
	// (the set workload's final phase); nil if the workload has none.
	FinalReads() []string
}

// New returns the workload called name.
func New(name string, opts Options) (Workload, error) {
	if opts.Concurrency < 1 {
		return nil, fmt.Errorf("workload %s: concurrency must be at least 1, got %d", name, opts.Concurrency)
	}
	if opts.OpsPerKey <= 0 {
		opts.OpsPerKey = 200
	}
	if opts.KeysAtOnce <= 0 {
		opts.KeysAtOnce = max(1, opts.Concurrency/5)
	}
	opts.KeysAtOnce = min(opts.KeysAtOnce, opts.Concurrency)
	switch name {
	case Register:
		return &register{opts: opts}, nil
	case Set:
		return &set{opts: opts, adds: make([][]string, opts.Concurrency)}, nil
	}
	return nil, fmt.Errorf("unknown workload %q: choose one of %s", name, strings.Join(Names, ", "))
}

// threadRand returns the random source of thread i: a function of the seed
// and i only.
func threadRand(seed uint64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(i)*0x9E3779B97F4A7C15+1))
}

// register is the read/write/cas workload. Threads are split into
// KeysAtOnce groups; group g works on keys k<g>, k<g+K>, k<g+2K>, ... and each
// thread moves to its group's next key after its share of OpsPerKey ops.
// Values are small integers so that conflicts are likely.
type register struct{ opts Options }

func (w *register) Name() string         { return Register }
func (w *register) FinalReads() []string { return nil }

func (w *register) Thread(i int) Generator {
	k := w.opts.KeysAtOnce
	group := i % k
	size := w.opts.Concurrency / k
	if group < w.opts.Concurrency%k {
		size++
	}
	return &registerGen{
		rng:    threadRand(w.opts.Seed, i),
		group:  group,
		groups: k,
		perKey: max(1, w.opts.OpsPerKey/size),
	}
}

type registerGen struct {
	rng              *rand.Rand
	group, groups, n int
	perKey           int
}

const registerValues = 5

func (g *registerGen) Next() Invocation {
	key := "k" + itoa(g.group+g.groups*(g.n/g.perKey))
	g.n++
	switch r := g.rng.IntN(10); {
	case r < 4:
		return Invocation{F: "read", Key: key}
	case r < 7:
		return Invocation{F: "write", Key: key, Value: json.RawMessage(itoa(g.rng.IntN(registerValues)))}
	default:
		from, to := g.rng.IntN(registerValues), g.rng.IntN(registerValues)
		return Invocation{F: "cas", Key: key, Value: json.RawMessage("[" + itoa(from) + "," + itoa(to) + "]")}
	}
}

// set is the lost-write workload: every add writes a key never written
// again; the final phase reads every key back.
type set struct {
	opts Options
	mu   sync.Mutex
	adds [][]string // per thread, the keys it generated
}

func (w *set) Name() string { return Set }

func (w *set) Thread(i int) Generator { return &setGen{w: w, thread: i} }

func (w *set) FinalReads() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var keys []string
	for _, a := range w.adds {
		keys = append(keys, a...)
	}
	sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })
	return keys
}

type setGen struct {
	w      *set
	thread int
	n      int
}

func (g *setGen) Next() Invocation {
	e := g.thread + g.w.opts.Concurrency*g.n
	g.n++
	key := "s" + itoa(e)
	g.w.mu.Lock()
	g.w.adds[g.thread] = append(g.w.adds[g.thread], key)
	g.w.mu.Unlock()
	return Invocation{F: "add", Key: key, Value: json.RawMessage(itoa(e))}
}

// keyLess orders "s9" before "s10".
func keyLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func itoa(n int) string { return strconv.Itoa(n) }
