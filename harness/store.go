package harness

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/jepsen-go/jepsen/checkers"
)

// Version is the harness version recorded in test.json; cmd/jepsen sets it.
var Version = "(devel)"

// Phase is the timing of one phase of a run, for test.json.
type Phase struct {
	Name    string    `json:"name"`
	Start   time.Time `json:"start"`
	Seconds float64   `json:"seconds"`
}

// testMeta is test.json: the run's settings, seed, versions and timings.
type testMeta struct {
	RunID     string    `json:"run_id"`
	Target    string    `json:"target"`
	Config    Config    `json:"config"`
	Seed      uint64    `json:"seed"`
	Image     string    `json:"image,omitempty"`
	Jepsen    string    `json:"jepsen_version"`
	Go        string    `json:"go_version"`
	Created   time.Time `json:"created"`
	Start     time.Time `json:"start,omitzero"`
	End       time.Time `json:"end,omitzero"`
	Phases    []Phase   `json:"phases"`
	Nemesis   any       `json:"nemesis,omitempty"`
	Verdict   string    `json:"verdict,omitempty"`
	Completed bool      `json:"completed"`
}

func (m *testMeta) phase(name string, start time.Time) {
	m.Phases = append(m.Phases, Phase{Name: name, Start: start, Seconds: time.Since(start).Seconds()})
}

func (m *testMeta) write(dir string) error {
	m.Completed = m.Verdict != ""
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode test.json: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, "test.json"), append(b, '\n'))
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// openStore creates store/<target>/<YYYYMMDDTHHMMSS>/ with its nodes/
// directory and jepsen.log, points store/latest at it and writes a first
// test.json (so a crashed run is still described).
func (r *run) openStore() error {
	now := time.Now()
	name := unsafeName.ReplaceAllString(r.spec.Name, "_")
	parent := filepath.Join(r.cfg.Store, name)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return trouble("create the store directory: %w", err)
	}
	stamp := now.Format("20060102T150405")
	dir := filepath.Join(parent, stamp)
	for i := 2; ; i++ {
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return trouble("create the run directory: %w", err)
		}
		dir = filepath.Join(parent, fmt.Sprintf("%s-%d", stamp, i))
	}
	if err := os.Mkdir(filepath.Join(dir, "nodes"), 0o755); err != nil {
		return trouble("create the run directory: %w", err)
	}
	r.dir = dir
	lf, err := os.OpenFile(filepath.Join(dir, "jepsen.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return trouble("create jepsen.log: %w", err)
	}
	r.logFile = lf
	r.log = slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.meta = &testMeta{
		RunID:   name + "-" + stamp + "-" + randomHex(3),
		Target:  r.spec.Name,
		Config:  r.cfg,
		Seed:    r.cfg.Seed,
		Jepsen:  Version,
		Go:      goVersion(),
		Created: now,
	}
	if r.cfg.TargetDir != "" {
		r.meta.Target = r.spec.Dir
	}
	if err := r.meta.write(dir); err != nil {
		return err
	}
	if err := pointLatest(r.cfg.Store, dir); err != nil {
		r.log.Warn("could not update store/latest", "err", err)
	}
	return nil
}

func (r *run) closeLog() {
	if r.logFile != nil {
		r.logFile.Close()
	}
}

// pointLatest makes store/latest a relative symlink to dir.
func pointLatest(store, dir string) error {
	rel, err := filepath.Rel(store, dir)
	if err != nil {
		return err
	}
	tmp := filepath.Join(store, ".latest-"+randomHex(4))
	if err := os.Symlink(rel, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(store, "latest"))
}

// WriteResults writes results.json into dir.
func WriteResults(dir string, res *checkers.Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results.json: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, "results.json"), append(b, '\n'))
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
