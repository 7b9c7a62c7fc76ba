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
	"github.com/jepsen-go/jepsen/nemesis"
	"github.com/jepsen-go/jepsen/reports"
)

// Version is the harness version recorded in test.json; cmd/jepsen sets it.
var Version = "(devel)"

// testMeta is the run's test.json (reports.Meta, whose package declares
// the schema) as the harness fills it in.
type testMeta struct{ reports.Meta }

func (m *testMeta) phase(name string, start time.Time) {
	m.Phases = append(m.Phases, reports.Phase{Name: name, Start: start, Seconds: time.Since(start).Seconds()})
}

func (m *testMeta) write(dir string) error { return m.Meta.Write(dir) }

// reportActions converts the nemesis's record of actions for test.json.
func reportActions(v any) []reports.Action {
	actions, _ := v.([]nemesis.Action)
	out := make([]reports.Action, len(actions))
	for i, a := range actions {
		out[i] = reports.Action{F: a.F, Value: a.Value, Start: a.Start, Duration: a.Duration, Error: a.Error}
	}
	return out
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
	r.meta = &testMeta{reports.Meta{
		RunID:   name + "-" + stamp + "-" + randomHex(3),
		Target:  r.spec.Name,
		Config:  r.cfg.Settings,
		Seed:    r.cfg.Seed,
		Jepsen:  Version,
		Go:      goVersion(),
		Created: now,
	}}
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
	return reports.WriteFileAtomic(filepath.Join(dir, "results.json"), append(b, '\n'))
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
