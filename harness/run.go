// Package harness runs one test: it loads the target, builds its image,
// starts the cluster, runs the clients and the nemesis for the time limit,
// heals, runs the final phase, stops the cluster, checks the history and
// writes the run directory (README.md, "What a run leaves behind").
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/jepsen-go/jepsen/checkers"
	"github.com/jepsen-go/jepsen/harness/agent"
	"github.com/jepsen-go/jepsen/harness/durafs"
	"github.com/jepsen-go/jepsen/history"
	"github.com/jepsen-go/jepsen/nemesis"
	"github.com/jepsen-go/jepsen/reports"
	"github.com/jepsen-go/jepsen/targets"
	"github.com/jepsen-go/jepsen/workloads"
)

// ErrInterrupted is returned by Run when its context was cancelled (Ctrl-C,
// SIGTERM) before the run finished. Everything was torn down.
var ErrInterrupted = errors.New("interrupted")

// TroubleError is a failure that leaves no verdict: bad input, Docker
// unreachable, a target that would not build or start.
type TroubleError struct{ Err error }

func (e *TroubleError) Error() string { return e.Err.Error() }
func (e *TroubleError) Unwrap() error { return e.Err }

func trouble(format string, args ...any) error {
	return &TroubleError{Err: fmt.Errorf(format, args...)}
}

// Config holds the settings of a run: the flags of `jepsen run`. The
// settings test.json records are reports.Settings, embedded; the other
// fields are what only the running harness needs.
type Config struct {
	reports.Settings
	// Backend runs the nodes (cmd/jepsen gives Docker's).
	Backend Backend `json:"-"`
	// Binary is the jepsen executable put into images for the embedded
	// reference store and the fault agents; "" means os.Executable().
	Binary string `json:"-"`
	// Progress receives the live status and the phase lines; nil discards.
	Progress io.Writer `json:"-"`
	// Terminal makes progress a live status line rather than a line every
	// 5 seconds.
	Terminal bool `json:"-"`
	// Abort, once done (a second Ctrl-C), skips the check of a run whose
	// context was cancelled; nil means never.
	Abort context.Context `json:"-"`
}

// Defaults of a run.
const (
	DefaultTimeLimit       = 30 * time.Second
	DefaultOpTimeout       = time.Second
	DefaultRecovery        = 10 * time.Second
	DefaultNemesisInterval = 10 * time.Second
	DefaultOpsPerKey       = 200
	// DefaultSetRate is the op rate the command line gives the set
	// workload when --rate is not set (Config.Rate 0 stays unlimited): its
	// final phase reads every added key back one by one, as slowly as they
	// were added, so unbounded adds would make it long.
	DefaultSetRate = 200
	// finalStall ends the set workload's final reads when no read has
	// succeeded for this long.
	finalStall = 30 * time.Second
)

func (c *Config) fill() {
	if c.Workload == "" {
		c.Workload = workloads.Register
	}
	if c.TimeLimit <= 0 {
		c.TimeLimit = DefaultTimeLimit
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	if c.Recovery < 0 {
		c.Recovery = 0
	}
	if c.NemesisInterval <= 0 {
		c.NemesisInterval = DefaultNemesisInterval
	}
	if c.OpsPerKey <= 0 {
		c.OpsPerKey = DefaultOpsPerKey
	}
	if c.CheckTimeout <= 0 {
		c.CheckTimeout = checkers.DefaultTimeout
	}
	if c.Store == "" {
		c.Store = "store"
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Abort == nil {
		c.Abort = context.Background()
	}
}

// Outcome is what a finished run found.
type Outcome struct {
	// Dir is the run's store directory.
	Dir string
	// Result is the checker's result.
	Result *checkers.Result
	// Seed is the seed the run used.
	Seed uint64
	// Report is the path of report.html ("" if it could not be written).
	Report string
}

// run is the state of one run in progress.
type run struct {
	cfg     Config
	spec    *targets.Spec
	dir     string
	log     *slog.Logger
	logFile *os.File
	meta    *testMeta
	rec     *Recorder
	cluster Cluster
	metrics *metrics

	proto     targets.Protocol
	protoOpts map[string]string
	def       *workloads.Def
	work      workloads.Workload
	faults    []nemesis.Kind
	tornDown  bool
	disk      *durafs.Controller // the durability faults' filesystem, or nil
	// defaultFaults is set when --nemesis was not given.
	defaultFaults bool
	// interrupted is when ctx was first seen cancelled, in ns since the
	// history began; 0 if it was not.
	interrupted int64

	clientsMu sync.Mutex
	clients   map[string]targets.Conn // by endpoint
}

// Run performs one test run and returns its outcome. Errors are a
// *TroubleError (no verdict), ErrInterrupted, or an I/O error writing the
// store. Everything created in Docker is removed on every path.
//
// When ctx is cancelled (Ctrl-C) the run heals and tears down as on any
// path, then still checks the history recorded so far and writes its
// results and report, marked interrupted, unless cfg.Abort is done too (a
// second Ctrl-C): it returns that outcome together with ErrInterrupted.
func Run(ctx context.Context, cfg Config) (_ *Outcome, err error) {
	cfg.fill()
	r := &run{cfg: cfg}
	if cfg.Backend == nil {
		return nil, trouble("no backend to run the nodes (harness.Config.Backend is nil)")
	}
	if err := r.prepare(); err != nil {
		return nil, err
	}
	if err := r.openStore(); err != nil {
		return nil, err
	}
	defer r.closeLog()
	r.progressf("jepsen: testing %s with %d nodes, workload %s, nemesis %s, seed %d", r.spec.Name, r.cfg.Nodes, r.work.Name(), r.cfg.Nemesis, r.cfg.Seed)
	r.progressf("jepsen: run directory %s", r.dir)
	defer func() {
		r.meta.End = time.Now()
		if werr := r.meta.write(r.dir); werr != nil && err == nil {
			err = werr
		}
	}()

	if err := r.startCluster(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, ErrInterrupted
		}
		return nil, err
	}
	defer r.teardown(ctx) // on every path; a no-op once done
	exits, err := r.exercise(ctx)
	r.teardown(ctx)
	if err != nil {
		return nil, err
	}
	if r.interrupted == 0 {
		return r.verdict(ctx, exits)
	}
	r.progressf("jepsen: interrupted at %.1f s; the cluster was torn down", time.Duration(r.interrupted).Seconds())
	if r.cfg.Abort.Err() != nil {
		return nil, ErrInterrupted
	}
	r.progressf("jepsen: checking the history recorded so far (Ctrl-C again to skip)")
	out, err := r.verdict(r.cfg.Abort, exits)
	if err != nil || r.cfg.Abort.Err() != nil {
		return nil, ErrInterrupted
	}
	return out, ErrInterrupted
}

// prepare loads the target and the workload and checks the settings.
func (r *run) prepare() error {
	if err := r.loadTarget(); err != nil {
		return err
	}
	if r.cfg.Nodes <= 0 {
		r.cfg.Nodes = r.spec.Nodes
	}
	if r.cfg.Concurrency <= 0 {
		r.cfg.Concurrency = 2 * r.cfg.Nodes
	}
	def, err := workloads.Lookup(r.cfg.Workload)
	if err != nil {
		return &TroubleError{Err: err}
	}
	ops, err := def.ParseOps(r.cfg.Ops)
	if err != nil {
		return trouble("--ops: %w", err)
	}
	w, err := workloads.New(def.Name, workloads.Options{Seed: r.cfg.Seed, Concurrency: r.cfg.Concurrency, OpsPerKey: r.cfg.OpsPerKey, Ops: ops})
	if err != nil {
		return &TroubleError{Err: err}
	}
	r.def, r.work = def, w
	if r.cfg.Nemesis == "" {
		r.defaultFaults = true
		r.cfg.Nemesis = kindNames(nemesis.Kinds)
	}
	if r.faults, err = parseFaults(r.cfg.Nemesis); err != nil {
		return &TroubleError{Err: err}
	}
	r.warnShortRun()
	return nil
}

// warnShortRun says when the time limit leaves a family of faults no
// time to act.
func (r *run) warnShortRun() {
	if len(r.faults) == 0 {
		return
	}
	first := nemesis.FirstFaults(r.faults, r.cfg.NemesisInterval)
	var late []string
	for fam, at := range first {
		if at >= r.cfg.TimeLimit {
			late = append(late, fmt.Sprintf("%s (first at %s)", fam, at.Round(100*time.Millisecond)))
		}
	}
	if len(late) > 0 {
		slices.Sort(late)
		r.progressf("jepsen: warning: --time-limit %s is too short for --nemesis-interval %s: no %s fault will happen; give a longer --time-limit or a shorter --nemesis-interval",
			r.cfg.TimeLimit, r.cfg.NemesisInterval, strings.Join(late, ", "))
	}
}

// phase runs f and records its timing in test.json as name.
func (r *run) phase(name string, f func() error) error {
	t0 := time.Now()
	err := f()
	r.meta.phase(name, t0)
	return err
}

// stopped reports whether ctx was cancelled (Ctrl-C), noting when the
// first time.
func (r *run) stopped(ctx context.Context) bool {
	if ctx.Err() == nil {
		return false
	}
	if r.interrupted == 0 && r.rec != nil {
		r.interrupted = max(1, r.rec.Now())
	}
	return true
}

// exercise records the history: the clients and the nemesis until the
// time limit, healing, recovery and the workload's final phase. It stops
// early, healed, when ctx is cancelled (see stopped). It returns the
// nodes that died on their own, as problems.
func (r *run) exercise(ctx context.Context) ([]checkers.Problem, error) {
	r.meta.Start = time.Now()
	rec, err := NewRecorder(filepath.Join(r.dir, "history.jsonl"), r.meta.Start)
	if err != nil {
		return nil, err
	}
	r.rec = rec
	defer rec.Close()
	if r.cfg.MetricsAddr != "" {
		m, err := startMetrics(r.cfg.MetricsAddr)
		if err != nil {
			return nil, &TroubleError{Err: err}
		}
		r.metrics = m
		defer m.close()
		rec.observe = m.observe
		m.nodesUp.Set(float64(r.cfg.Nodes))
	}
	nem, err := r.newNemesis(ctx, r.faults)
	if err != nil {
		if r.stopped(ctx) {
			return nil, ErrInterrupted
		}
		return nil, err
	}
	dial := r.dialer()
	var threads []*thread
	_ = r.phase("run", func() error {
		threads = r.mainPhase(ctx, nem, dial)
		return nil
	})
	if nem != nil {
		_ = r.phase("heal", func() error {
			if herr := nem.Heal(context.WithoutCancel(ctx)); herr != nil {
				r.log.Error("heal", "err", herr)
				r.progressf("jepsen: warning: healing failed: %v", herr)
			}
			return nil
		})
		r.meta.Nemesis = reportActions(nem.Actions())
	}
	if fin, ok := r.work.(workloads.Finisher); ok && !r.stopped(ctx) {
		r.finalPhase(ctx, fin, nem != nil, threads, dial)
	}
	r.stopped(ctx)
	exits := r.nodeExits()
	if err := rec.Close(); err != nil {
		return nil, err
	}
	return exits, nil
}

// mainPhase runs the clients and the nemesis until the time limit or ctx
// ends, and returns the client threads.
func (r *run) mainPhase(ctx context.Context, nem nemesisRunner, dial Dialer) []*thread {
	gen, stopGen := context.WithTimeout(ctx, r.cfg.TimeLimit)
	defer stopGen()
	stopProgress := r.startProgress(gen, nem)
	defer stopProgress()
	var nemWG sync.WaitGroup
	if nem != nil {
		nemWG.Add(1)
		go func() {
			defer nemWG.Done()
			nem.Run(gen)
		}()
	}
	var limiter *rate.Limiter
	if r.cfg.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(r.cfg.Rate), max(1, int(r.cfg.Rate/10)))
	}
	threads := runClients(gen, ctx, r.work, r.cluster.Nodes(), dial, r.rec, clientOptions{
		Concurrency: r.cfg.Concurrency, OpTimeout: r.cfg.OpTimeout, Limiter: limiter,
	})
	r.stopped(ctx)
	nemWG.Wait()
	return threads
}

// finalPhase lets the healed cluster recover, then runs the workload's
// final phase.
func (r *run) finalPhase(ctx context.Context, fin workloads.Finisher, faulted bool, threads []*thread, dial Dialer) {
	if r.cfg.Recovery > 0 && faulted {
		r.progressf("jepsen: faults healed; letting the cluster recover for %s", r.cfg.Recovery)
		_ = r.phase("recovery", func() error {
			pause(ctx, r.cfg.Recovery)
			return nil
		})
		if r.stopped(ctx) {
			return
		}
	}
	var done, total int
	_ = r.phase("final", func() error {
		done, total = fin.Final(ctx, workloads.FinalEnv{
			Nodes:        r.cluster.Nodes(),
			Threads:      finalConcurrency(len(threads)),
			FirstProcess: nextProcess(threads),
			Invoke: func(ctx context.Context, p int, node string, inv workloads.Invocation) history.Op {
				return invoke(ctx, r.rec, dial(node), node, p, inv, r.cfg.OpTimeout)
			},
			Stall: finalStall,
			Progress: func(done, total int) {
				if done == 0 {
					r.progressf("jepsen: final phase: reading back %d keys", total)
					return
				}
				r.progressf("  final reads: %d of %d keys read", done, total)
			},
		})
		return nil
	})
	if done < total && !r.stopped(ctx) {
		r.progressf("jepsen: final phase: gave up after %s without a successful read; %d of %d keys were read",
			finalStall, done, total)
	}
}

// teardown removes the cluster, once.
func (r *run) teardown(ctx context.Context) {
	if r.tornDown || r.cluster == nil {
		return
	}
	r.tornDown = true
	r.closeClients()
	_ = r.phase("teardown", func() error {
		t0 := time.Now()
		if cerr := r.cluster.Close(context.WithoutCancel(ctx)); cerr != nil {
			r.log.Error("teardown", "err", cerr)
		}
		r.closeDisk(ctx)
		r.log.Info("teardown done", "seconds", time.Since(t0).Seconds())
		return nil
	})
}

// verdict checks the recorded history and writes results.json, test.json
// and the report. ctx bounds the check.
func (r *run) verdict(ctx context.Context, exits []checkers.Problem) (*Outcome, error) {
	var res *checkers.Result
	err := r.phase("check", func() error {
		r.progressf("jepsen: checking %d ops", r.rec.Ops())
		hist, err := history.ReadFile(filepath.Join(r.dir, "history.jsonl"))
		if err != nil {
			return fmt.Errorf("read back the history: %w", err)
		}
		res = checkers.Check(ctx, hist, checkers.Options{Checker: r.def.Checker, Timeout: r.cfg.CheckTimeout})
		res.AddProblems(exits...)
		if r.interrupted > 0 {
			res.Interrupted = fmt.Sprintf("interrupted at %.1f s", time.Duration(r.interrupted).Seconds())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ErrInterrupted
	}
	if err := WriteResults(r.dir, res); err != nil {
		return nil, err
	}
	r.log.Info("verdict", "valid", res.Valid.String())
	r.meta.Verdict = res.Valid.String()
	out := &Outcome{Dir: r.dir, Result: res, Seed: r.cfg.Seed}

	// The report reads test.json: bring it up to date first.
	r.meta.End = time.Now()
	if err := r.meta.write(r.dir); err != nil {
		return nil, err
	}
	_ = r.phase("report", func() error {
		report, err := reports.Write(ctx, r.dir, res)
		if err != nil {
			// The verdict stands; the report can be made again with jepsen report.
			r.log.Error("report", "err", err)
			r.progressf("jepsen: warning: could not write the report: %v (run jepsen report %s)", err, r.dir)
			return nil
		}
		out.Report = report
		return nil
	})
	return out, nil
}

// nodeExits returns the nodes that died when no fault killed them, as
// problems of the run.
func (r *run) nodeExits() []checkers.Problem {
	var out []checkers.Problem
	corrupted := r.corruptions()
	for _, e := range r.cluster.Exits() {
		at := e.At.Sub(r.meta.Start)
		if c, ok := corrupted[e.Node]; ok && c.at <= int64(at) {
			// A store may refuse to start on a damaged file: that is the
			// corrupt fault's doing, and a fair answer to it.
			r.progressf("jepsen: %s exited with status %d at %.1f s after the corrupt fault damaged %s (%s at %d): the store refused its damaged data (see nodes/%s.log)",
				e.Node, e.Code, at.Seconds(), c.file, c.kind, c.offset, e.Node)
			continue
		}
		msg := fmt.Sprintf("%s exited with status %d at %.1f s; no fault was acting on it (its last log lines follow; the whole log is nodes/%s.log)",
			e.Node, e.Code, at.Seconds(), e.Node)
		if len(e.Log) == 0 {
			msg = fmt.Sprintf("%s exited with status %d at %.1f s; no fault was acting on it, and it wrote no log lines", e.Node, e.Code, at.Seconds())
		}
		log := e.Log
		if len(log) > 10 {
			log = log[len(log)-10:]
		}
		r.progressf("jepsen: %s", msg)
		out = append(out, checkers.Problem{Kind: checkers.ProblemNodeExit, Node: e.Node, Example: -1, Time: int64(at), Log: log, Message: msg})
	}
	return out
}

// corruption is a corrupt fault as nodeExits needs it.
type corruption struct {
	at         int64 // ns since the test started
	file, kind string
	offset     int64
}

// corruptions returns, for each node, the first corrupt fault it
// suffered, from the nemesis's actions.
func (r *run) corruptions() map[string]corruption {
	out := map[string]corruption{}
	for _, a := range r.meta.Nemesis {
		if a.F != history.FCorrupt || a.Error != "" {
			continue
		}
		f, err := history.DecodeFault(history.Op{Process: history.NemesisProcess, F: a.F, Value: a.Value})
		if err != nil || f.Corruption == nil {
			continue
		}
		for _, n := range f.Targets {
			if _, seen := out[n]; !seen {
				out[n] = corruption{at: a.Start, file: f.Corruption.File, kind: f.Corruption.Kind, offset: f.Corruption.Offset}
			}
		}
	}
	return out
}

// referenceSpec is the reference store carried inside the jepsen binary:
// the image holds the jepsen executable, which runs it as `jepsen raftkv`.
func referenceSpec() *targets.Spec {
	return &targets.Spec{
		Name:     "raftkv",
		Nodes:    targets.DefaultNodes,
		Command:  []string{"/jepsen", "raftkv", "--id", "{{.Node}}", "--nodes", "{{.Nodes}}", "--port", "{{.Port}}", "--data", "{{.DataDir}}"},
		Port:     targets.DefaultPort,
		DataDir:  targets.DefaultDataDir,
		Protocol: targets.DefaultProtocol,
		Ready:    targets.DefaultReady,
	}
}

func (r *run) loadTarget() error {
	if r.cfg.TargetDir == "" {
		r.spec = referenceSpec()
		return r.loadProtocol()
	}
	s, err := targets.Load(r.cfg.TargetDir)
	if err != nil {
		return &TroubleError{Err: err}
	}
	r.spec = s
	return r.loadProtocol()
}

// loadProtocol finds the spec's protocol and checks its options, those of
// jepsen.yaml overridden by --protocol-option.
func (r *run) loadProtocol() error {
	p, ok := targets.Lookup(r.spec.Protocol)
	if !ok {
		return trouble("protocol %q is not supported; supported: %s", r.spec.Protocol, strings.Join(targets.ProtocolNames(), ", "))
	}
	opts, err := targets.MergeOptions(r.spec.ProtocolOptions, r.cfg.ProtocolOptions)
	if err != nil {
		return &TroubleError{Err: err}
	}
	if err := p.CheckOptions(opts); err != nil {
		var oe *targets.OptionError
		if errors.As(err, &oe) && !slices.ContainsFunc(r.cfg.ProtocolOptions, func(kv string) bool { return strings.HasPrefix(kv, oe.Key+"=") }) {
			return trouble("%s: protocol_options: %w", filepath.Join(r.spec.Dir, targets.SpecFile), err)
		}
		return trouble("--protocol-option: %w", err)
	}
	r.proto, r.protoOpts = p, opts
	return nil
}

// buildImage returns the image of the target, building it if needed.
func (r *run) buildImage(ctx context.Context) (string, error) {
	if r.cfg.TargetDir == "" {
		return r.selfImage(ctx)
	}
	switch b := r.spec.Build; {
	case b.Go != "":
		r.progressf("jepsen: building %s (go build %s)", r.spec.Name, b.Go)
	case b.Dockerfile != "":
		r.progressf("jepsen: building %s (docker build -f %s)", r.spec.Name, b.Dockerfile)
	}
	ref, err := r.cfg.Backend.Image(ctx, r.spec.Dir, r.spec.Build)
	if err != nil {
		return "", trouble("build %s: %w", r.spec.Name, err)
	}
	return ref, nil
}

// selfImage returns an image holding the jepsen binary.
func (r *run) selfImage(ctx context.Context) (string, error) {
	bin := r.cfg.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", trouble("find the jepsen executable: %w", err)
		}
		bin = exe
	}
	ref, err := r.cfg.Backend.SelfImage(ctx, bin)
	if err != nil {
		return "", trouble("build the image of the jepsen binary: %w", err)
	}
	return ref, nil
}

func (r *run) startCluster(ctx context.Context) error {
	if err := r.cfg.Backend.Available(ctx); err != nil {
		return &TroubleError{Err: err}
	}
	t0 := time.Now()
	if rep, err := r.cfg.Backend.Sweep(ctx); err != nil {
		r.log.Warn("sweep of leftovers failed", "err", err)
	} else if rep != "" {
		r.progressf("jepsen: cleaned up after crashed runs: %s", rep)
	}
	if n, err := agent.SweepSocketDirs(agent.SocketDirMinAge); err != nil {
		r.log.Warn("sweep of agent socket directories failed", "err", err)
	} else if n > 0 {
		r.log.Info("removed agent socket directories of crashed runs", "count", n)
	}
	r.meta.phase("sweep", t0)

	t0 = time.Now()
	ref, err := r.buildImage(ctx)
	if err != nil {
		return err
	}
	r.meta.Image = ref
	r.meta.phase("build", t0)
	r.log.Info("image ready", "ref", ref, "seconds", time.Since(t0).Seconds())

	nodes := r.spec.NodeNames(r.cfg.Nodes)
	r.progressf("jepsen: starting %d nodes", len(nodes))
	// Commands are made here, not in the callback that Start calls from
	// one goroutine per node.
	cmds := make(map[string][]string, len(nodes))
	for _, node := range nodes {
		cmd, err := r.spec.CommandFor(node, nodes)
		if err != nil {
			return trouble("%s: %w", r.spec.Name, err)
		}
		cmds[node] = cmd
	}
	t0 = time.Now()
	env := make(map[string][]string, len(nodes))
	for _, node := range nodes {
		env[node] = r.spec.EnvFor(node, nodes, r.cfg.Env)
	}
	wrap, err := r.prepareDisk(ctx)
	if err != nil {
		return err
	}
	c, err := r.cfg.Backend.Start(ctx, ClusterConfig{
		Wrap:    wrap,
		RunID:   r.meta.RunID,
		Image:   ref,
		Nodes:   nodes,
		Command: cmds,
		Env:     env,
		Port:    r.spec.Port,
		DataDir: r.spec.DataDir,
		Ready: func(ctx context.Context, node, endpoint string) error {
			c, err := r.dial(node, endpoint)
			if err != nil {
				return err
			}
			return c.Ready(ctx)
		},
		ReadyTimeout: r.cfg.ReadyTimeout,
		LogDir:       filepath.Join(r.dir, "nodes"),
		Log:          r.log,
	})
	if err != nil {
		r.closeDisk(ctx)
		return trouble("start %s: %w", r.spec.Name, err)
	}
	r.cluster = c
	if r.disk != nil {
		r.disk.Attach(c)
	}
	r.meta.phase("start", t0)
	r.log.Info("cluster ready", "nodes", len(nodes), "seconds", time.Since(t0).Seconds())
	return nil
}

// client returns the protocol connection of node at its current endpoint
// (a restarted container may have a new one), one per endpoint; nil and
// an error if the protocol cannot dial it.
func (r *run) client(node string) (targets.Conn, error) {
	return r.dial(node, r.cluster.Endpoint(node))
}

// dial returns the connection to node at endpoint, made once.
func (r *run) dial(node, endpoint string) (targets.Conn, error) {
	r.clientsMu.Lock()
	defer r.clientsMu.Unlock()
	if c, ok := r.clients[endpoint]; ok {
		return c, nil
	}
	c, err := r.proto.Dial(targets.DialConfig{
		Node: node, Addr: endpoint, Port: r.spec.Port, Ready: r.spec.Ready,
		Concurrency: finalConcurrency(r.cfg.Concurrency), Options: r.protoOpts,
	})
	if err != nil {
		return nil, fmt.Errorf("%s client of %s: %w", r.proto.Name, node, err)
	}
	if r.clients == nil {
		r.clients = map[string]targets.Conn{}
	}
	r.clients[endpoint] = c
	return c, nil
}

// closeClients closes every protocol connection.
func (r *run) closeClients() {
	r.clientsMu.Lock()
	defer r.clientsMu.Unlock()
	for ep, c := range r.clients {
		c.Close()
		delete(r.clients, ep)
	}
}

// dialer returns the Dialer of the client threads. A node with no address
// (stopped) gets a client that fails every op at once.
func (r *run) dialer() Dialer {
	return func(node string) Client {
		if r.cluster.Endpoint(node) == "" {
			return downClient{node: node}
		}
		c, err := r.client(node)
		if err != nil {
			return downClient{node: node, why: err.Error()}
		}
		return c
	}
}

func (r *run) progressf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if r.log != nil {
		r.log.Info(strings.TrimPrefix(msg, "jepsen: "))
	}
	fmt.Fprintln(r.cfg.Progress, msg)
}

// goVersion is recorded in test.json.
func goVersion() string { return runtime.Version() }
