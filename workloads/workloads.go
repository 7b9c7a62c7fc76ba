// Package workloads defines what the clients of a run do: which operations
// they invoke, on which keys, with which values, what happens in the final
// phase after the faults are healed, and which checker judges the
// resulting history. A workload is one bundle (Def) in the list All.
//
// Every client thread gets its own Generator whose sequence of operations
// depends only on the run's seed and the thread's number, never on timing or
// on the other threads, so a seed reproduces the same invocations.
package workloads

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/jepsen-go/jepsen/checkers"
	"github.com/jepsen-go/jepsen/history"
)

// Names of the workloads.
const (
	Register = "register"
	Set      = "set"
)

// Def is one workload: its name, the ops its clients may issue, the
// checker that judges its histories, and how to make it. Its final phase,
// if any, is the Finisher its workload implements.
type Def struct {
	// Name is what --workload says.
	Name string
	// Doc says in one line what the clients do and what is checked.
	Doc string
	// Ops are the fs the clients issue; Options.Ops may choose a subset.
	Ops []string
	// Checker judges the histories of this workload.
	Checker *checkers.Checker
	// new makes the workload from checked options.
	new func(opts Options) Workload
}

// All is every workload: the one place that names them.
var All = []*Def{
	{Name: Register, Doc: "read, write and cas on a few keys at a time, checked for linearizability",
		Ops: []string{history.FRead, history.FWrite, history.FCAS}, Checker: checkers.Linearizable,
		new: func(o Options) Workload { return &register{opts: o, weights: opWeights(o.Ops)} }},
	{Name: Set, Doc: "adds of unique keys, read back after the faults are healed, checked for lost writes",
		Ops: []string{history.FAdd}, Checker: checkers.LostWrites,
		new: func(o Options) Workload { return &set{opts: o, adds: make([][]string, o.Concurrency)} }},
}

// Names lists the workloads, for help texts and errors.
var Names = func() []string {
	var n []string
	for _, d := range All {
		n = append(n, d.Name)
	}
	return n
}()

// Lookup returns the workload called name.
func Lookup(name string) (*Def, error) {
	for _, d := range All {
		if d.Name == name {
			return d, nil
		}
	}
	return nil, fmt.Errorf("unknown workload %q: choose one of %s", name, strings.Join(Names, ", "))
}

// ParseOps parses a comma-separated op list (--ops) for workload d: a
// non-empty subset of d.Ops. "" means all of them.
func (d *Def) ParseOps(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return slices.Clone(d.Ops), nil
	}
	var ops []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(d.Ops, f) {
			return nil, fmt.Errorf("op %q is not one the %s workload issues; choose from %s", f, d.Name, strings.Join(d.Ops, ","))
		}
		if !slices.Contains(ops, f) {
			ops = append(ops, f)
		}
	}
	return ops, nil
}

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
	// Ops are the fs the clients issue, a subset of the workload's Def.Ops
	// (see ParseOps); nil means all of them.
	Ops []string
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

// Workload is one run's instance of a workload: the generators of its
// client threads. One with a final phase also implements Finisher.
type Workload interface {
	// Name is the workload's name, as given to --workload.
	Name() string
	// Thread returns the generator of client thread i (0 <= i <
	// Concurrency). It is called once per thread.
	Thread(i int) Generator
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
	d, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	for _, f := range opts.Ops {
		if !slices.Contains(d.Ops, f) {
			return nil, fmt.Errorf("workload %s: op %q is not one it issues; choose from %s", name, f, strings.Join(d.Ops, ","))
		}
	}
	return d.new(opts), nil
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
type register struct {
	opts    Options
	weights [3]int // of read, write, cas; see opWeights
}

func (w *register) Name() string { return Register }

// opWeights returns the weights of read, write and cas: 4, 3 and 3 out of
// 10, with the ops left out of ops weighing 0. With all three ops the draw
// is the same as it always was, so a seed keeps its sequence.
func opWeights(ops []string) [3]int {
	w := [3]int{4, 3, 3}
	if ops == nil {
		return w
	}
	for i, f := range []string{history.FRead, history.FWrite, history.FCAS} {
		if !slices.Contains(ops, f) {
			w[i] = 0
		}
	}
	return w
}

func (w *register) Thread(i int) Generator {
	k := w.opts.KeysAtOnce
	group := i % k
	size := w.opts.Concurrency / k
	if group < w.opts.Concurrency%k {
		size++
	}
	return &registerGen{
		weights: w.weights,
		rng:     threadRand(w.opts.Seed, i),
		group:   group,
		groups:  k,
		perKey:  max(1, w.opts.OpsPerKey/size),
	}
}

type registerGen struct {
	weights          [3]int
	rng              *rand.Rand
	group, groups, n int
	perKey           int
}

const registerValues = 5

func (g *registerGen) Next() Invocation {
	key := "k" + itoa(g.group+g.groups*(g.n/g.perKey))
	g.n++
	switch r := g.rng.IntN(g.weights[0] + g.weights[1] + g.weights[2]); {
	case r < g.weights[0]:
		return Invocation{F: "read", Key: key}
	case r < g.weights[0]+g.weights[1]:
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

// keys returns every key the threads generated, in order.
func (w *set) keys() []string {
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
