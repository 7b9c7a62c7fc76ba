package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Meta is test.json, the description of a run: its settings, seed,
// versions, phase timings, nemesis actions and verdict. This is the one
// declaration of the schema: the harness fills a Meta in and writes it
// with Write; the report, serve and check read it with ReadMeta. Every
// field may be missing in a run that crashed early, or in one written by
// an older version.
type Meta struct {
	// RunID names the run: target, start stamp and a random suffix.
	RunID string `json:"run_id"`
	// Target is the target's name, or its directory when it has one.
	Target string `json:"target"`
	// Config holds the run's settings.
	Config Settings `json:"config"`
	// Seed is the seed the run used (also Config.Seed).
	Seed uint64 `json:"seed"`
	// Image is the nodes' image.
	Image string `json:"image,omitempty"`
	// Jepsen is the harness version.
	Jepsen string `json:"jepsen_version"`
	// Go is the Go version the harness was built with.
	Go string `json:"go_version"`
	// Created is when the run directory was made.
	Created time.Time `json:"created"`
	// Start is the wall time of history time 0.
	Start time.Time `json:"start,omitzero"`
	// End is when the run ended.
	End time.Time `json:"end,omitzero"`
	// Phases are the timings of the run's phases, in order.
	Phases []Phase `json:"phases"`
	// Nemesis is what the nemesis did.
	Nemesis []Action `json:"nemesis,omitempty"`
	// Verdict is the checker's verdict ("" until there is one).
	Verdict string `json:"verdict,omitempty"`
	// Completed is true once the run has a verdict.
	Completed bool `json:"completed"`
}

// Settings holds the settings of a run as test.json records them under
// "config": the flags of `jepsen run`. harness.Config embeds it.
type Settings struct {
	// TargetDir holds the target's jepsen.yaml; "" tests the reference
	// store carried inside the jepsen binary.
	TargetDir string `json:"target_dir"`
	// Workload is register or set.
	Workload string `json:"workload"`
	// Ops are the ops the clients issue, comma-separated (register:
	// a subset of read,write,cas); "" means all the workload has.
	Ops string `json:"ops,omitempty"`
	// Nemesis lists the fault kinds, comma-separated, or "none"; ""
	// means the default mix, without clock faults where they cannot work.
	Nemesis string `json:"nemesis"`
	// NemesisInterval is the time between a fault and its healing, and
	// between healing and the next fault of the same family.
	NemesisInterval time.Duration `json:"nemesis_interval"`
	// ClockMax bounds the clock offsets of the clock nemesis.
	ClockMax time.Duration `json:"clock_max,omitempty"`
	// Nodes is the node count; 0 means the target's default.
	Nodes int `json:"nodes"`
	// Concurrency is the number of client threads; 0 means 2 per node.
	Concurrency int `json:"concurrency"`
	// Rate caps the total op rate (ops/s); 0 means unlimited.
	Rate float64 `json:"rate"`
	// TimeLimit is how long the clients run.
	TimeLimit time.Duration `json:"time_limit"`
	// Seed makes the op sequence and the fault schedule reproducible.
	Seed uint64 `json:"seed"`
	// Store is the store directory.
	Store string `json:"store"`
	// MetricsAddr serves Prometheus /metrics during the run ("" = off).
	MetricsAddr string `json:"metrics_addr,omitempty"`
	// Env holds KEY=VALUE entries given to every node.
	Env []string `json:"env,omitempty"`
	// ProtocolOptions are KEY=VALUE options of the target's client
	// protocol; they override the target's protocol_options.
	ProtocolOptions []string `json:"protocol_options,omitempty"`
	// OpTimeout is the deadline of one op; past it the op is info.
	OpTimeout time.Duration `json:"op_timeout"`
	// OpsPerKey retires a register key after this many ops.
	OpsPerKey int `json:"ops_per_key"`
	// Recovery is how long the healed cluster settles before the final
	// phase.
	Recovery time.Duration `json:"recovery"`
	// CheckTimeout is the checker's time budget.
	CheckTimeout time.Duration `json:"check_timeout"`
	// ReadyTimeout bounds the wait for each node to become ready.
	ReadyTimeout time.Duration `json:"ready_timeout"`
	// Command is the command line that reproduces this run, for the report.
	Command string `json:"command,omitempty"`
}

// Phase is the timing of one phase of a run (build, start, run, ...).
type Phase struct {
	// Name is the phase: sweep, build, start, run, ...
	Name string `json:"name"`
	// Start is when it began.
	Start time.Time `json:"start"`
	// Seconds is how long it took.
	Seconds float64 `json:"seconds"`
}

// Action is one nemesis action as test.json records it.
type Action struct {
	// F is the nemesis op: start-partition, kill, resume, ...
	F string `json:"f"`
	// Value is what was done, as recorded in the history.
	Value json.RawMessage `json:"value,omitempty"`
	// Start is when the action began, in ns since the test started.
	Start int64 `json:"start"`
	// Duration is how long the action took.
	Duration time.Duration `json:"duration"`
	// Error is why the action failed, if it did.
	Error string `json:"error,omitempty"`
}

// MetaFile is the name of test.json in a run directory.
const MetaFile = "test.json"

// Write writes m as dir/test.json, atomically. It sets Completed when m
// has a verdict.
func (m *Meta) Write(dir string) error {
	m.Completed = m.Verdict != ""
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", MetaFile, err)
	}
	return WriteFileAtomic(filepath.Join(dir, MetaFile), append(b, '\n'))
}

// WriteFileAtomic writes data to path through a temporary file beside it
// and a rename, so that a reader of path sees the old content or the new,
// never a part. The error names the file.
func WriteFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// ErrNotRunDir is returned (wrapped) for a directory that is not a run
// directory of the store.
var ErrNotRunDir = errors.New("not a run directory")

// CheckRunDir returns nil if dir looks like a run directory: a directory
// holding test.json and history.jsonl. Otherwise its error wraps
// ErrNotRunDir and says in one line what is missing.
func CheckRunDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: no such directory: %w", dir, ErrNotRunDir)
		}
		return fmt.Errorf("%s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is a file, %w (want store/<target>/<time>/ with test.json and history.jsonl)", dir, ErrNotRunDir)
	}
	for _, name := range []string{"test.json", "history.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("%s is %w: it has no %s", dir, ErrNotRunDir, name)
		}
	}
	return nil
}

// ReadMeta reads dir/test.json.
func ReadMeta(dir string) (*Meta, error) {
	path := filepath.Join(dir, "test.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read test.json: %w", err)
	}
	return ParseMeta(b, path)
}

// ParseMeta decodes test.json; name is used in error messages.
func ParseMeta(b []byte, name string) (*Meta, error) {
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("%s: bad JSON at byte %d: %v", name, se.Offset, se)
		case errors.As(err, &te):
			return nil, fmt.Errorf("%s: field %q has the wrong type: got a JSON %s", name, te.Field, te.Value)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &m, nil
}

// Duration returns how long the run took from its creation to its end, or
// 0 if test.json does not say.
func (m *Meta) Duration() time.Duration {
	switch {
	case !m.Created.IsZero() && !m.End.IsZero() && m.End.After(m.Created):
		return m.End.Sub(m.Created)
	case len(m.Phases) > 0:
		var s float64
		for _, p := range m.Phases {
			s += p.Seconds
		}
		return time.Duration(s * float64(time.Second))
	}
	return 0
}

// NodeNames returns n1..nN for the configured node count.
func (m *Meta) NodeNames() []string {
	var out []string
	for i := 1; i <= m.Config.Nodes && i <= 1000; i++ {
		out = append(out, fmt.Sprintf("n%d", i))
	}
	return out
}
