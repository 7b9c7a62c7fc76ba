package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMetaWriteRead: what Write writes, ReadMeta reads back whole, and no
// temporary file is left beside it.
func TestMetaWriteRead(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)
	m := &Meta{RunID: "raftkv-1", Target: "raftkv", Seed: 9, Image: "img:1", Jepsen: "v1", Go: "go1.24", Created: at, Start: at.Add(time.Second), End: at.Add(time.Minute),
		Config: Settings{TargetDir: "./t", Workload: "register", Ops: "read,write", Nemesis: "clock", NemesisInterval: time.Second, ClockMax: 2 * time.Second,
			Nodes: 3, Concurrency: 6, Rate: 1.5, TimeLimit: time.Minute, Seed: 9, Store: "store", MetricsAddr: ":9464", Env: []string{"A=b"},
			ProtocolOptions: []string{"reads=serializable"}, OpTimeout: time.Second, OpsPerKey: 10, Recovery: 3 * time.Second,
			CheckTimeout: time.Minute, ReadyTimeout: 30 * time.Second, Command: "jepsen run"},
		Phases:  []Phase{{Name: "build", Start: at, Seconds: 1.5}},
		Nemesis: []Action{{F: "bump-clock", Value: json.RawMessage(`"n1"`), Start: 5, Duration: time.Millisecond, Error: "x"}},
		Verdict: "valid",
	}
	if err := m.Write(dir); err != nil {
		t.Fatal(err)
	}
	if !m.Completed {
		t.Error("a Meta with a verdict is not completed")
	}
	got, err := ReadMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, m)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %d files, want test.json alone", len(entries))
	}
}

// TestSettingsJSONNames: the names test.json has always used, so that old
// run directories still read.
func TestSettingsJSONNames(t *testing.T) {
	want := []string{"check_timeout", "clock_max", "command", "concurrency", "env", "metrics_addr", "nemesis", "nemesis_interval", "nodes",
		"op_timeout", "ops", "ops_per_key", "protocol_options", "rate", "ready_timeout", "recovery", "seed", "store", "target_dir",
		"time_limit", "workload"}
	var got []string
	typ := reflect.TypeFor[Settings]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		got = append(got, name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("test.json config names\n%v\nwant\n%v", got, want)
	}
}

// TestReadOldMeta: a test.json written before the settings had one
// declaration (no ops, clock_max, ready_timeout, ...) still reads.
func TestReadOldMeta(t *testing.T) {
	dir := t.TempDir()
	old := `{"run_id":"r","target":"raftkv","config":{"target_dir":"","workload":"set","nemesis":"kill","nemesis_interval":10000000000,
"nodes":5,"concurrency":10,"rate":200,"time_limit":30000000000,"seed":4,"store":"store","op_timeout":1000000000,"ops_per_key":200,
"recovery":10000000000,"check_timeout":60000000000,"command":"jepsen run --workload set"},"seed":4,"jepsen_version":"(devel)",
"go_version":"go1.24","created":"2026-11-30T10:00:00Z","phases":[{"name":"build","start":"2026-11-30T10:00:00Z","seconds":1}],
"nemesis":[{"f":"kill","value":["n1"],"start":1,"duration":2}],"verdict":"valid","completed":true}`
	if err := os.WriteFile(filepath.Join(dir, MetaFile), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := ReadMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.Workload != "set" || m.Config.Rate != 200 || m.Config.ClockMax != 0 || len(m.Nemesis) != 1 || m.Nemesis[0].F != "kill" || !m.Completed {
		t.Errorf("read %+v", m)
	}
}

// TestWriteFileAtomic: the file is replaced whole; a failed write names the
// file and leaves nothing behind.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.json")
	for _, content := range []string{"first", "second"} {
		if err := WriteFileAtomic(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != content {
			t.Errorf("read %q, want %q", b, content)
		}
	}
	// A directory in the way of the rename.
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "d", "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := WriteFileAtomic(filepath.Join(dir, "d"), []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "write d:") {
		t.Errorf("error %v, want one naming d", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "d.tmp")); err == nil {
		t.Error("the temporary file was left behind")
	}
	if err := WriteFileAtomic(filepath.Join(dir, "nodir", "f"), nil); err == nil || !strings.Contains(err.Error(), "write f:") {
		t.Errorf("error %v, want one naming f", err)
	}
}
