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

// Meta is test.json, the description of a run that the harness writes. It
// is defined here, not imported, because the harness imports this package.
// Every field may be missing in a run that crashed early.
type Meta struct {
	RunID     string    `json:"run_id"`
	Target    string    `json:"target"`
	Config    Config    `json:"config"`
	Seed      uint64    `json:"seed"`
	Image     string    `json:"image"`
	Jepsen    string    `json:"jepsen_version"`
	Go        string    `json:"go_version"`
	Created   time.Time `json:"created"`
	Start     time.Time `json:"start"` // wall time of history time 0
	End       time.Time `json:"end"`
	Phases    []Phase   `json:"phases"`
	Nemesis   []Action  `json:"nemesis"`
	Verdict   string    `json:"verdict"`
	Completed bool      `json:"completed"`
}

// Config holds the settings of a run as test.json records them.
type Config struct {
	TargetDir       string        `json:"target_dir"`
	Workload        string        `json:"workload"`
	Nemesis         string        `json:"nemesis"`
	NemesisInterval time.Duration `json:"nemesis_interval"`
	Nodes           int           `json:"nodes"`
	Concurrency     int           `json:"concurrency"`
	Rate            float64       `json:"rate"`
	TimeLimit       time.Duration `json:"time_limit"`
	Seed            uint64        `json:"seed"`
	Store           string        `json:"store"`
	Env             []string      `json:"env"`
	OpTimeout       time.Duration `json:"op_timeout"`
	OpsPerKey       int           `json:"ops_per_key"`
	Recovery        time.Duration `json:"recovery"`
	CheckTimeout    time.Duration `json:"check_timeout"`
	Command         string        `json:"command"`
}

// Phase is the timing of one phase of a run (build, start, run, ...).
type Phase struct {
	Name    string    `json:"name"`
	Start   time.Time `json:"start"`
	Seconds float64   `json:"seconds"`
}

// Action is one nemesis action as test.json records it.
type Action struct {
	F        string          `json:"f"`
	Value    json.RawMessage `json:"value"`
	Start    int64           `json:"start"`    // ns since the test started
	Duration time.Duration   `json:"duration"` // how long the action took
	Error    string          `json:"error"`
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
