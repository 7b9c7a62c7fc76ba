package main

// End-to-end tests of the jepsen binary against real Docker: they build the
// binary, run it as a user would, and check exit codes, output, the store
// directory and that nothing is left behind in Docker.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/harness/docker/dockertest"
)

var jepsenBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jepsen-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	jepsenBin = filepath.Join(dir, "jepsen")
	// The default build (cgo on where a C compiler exists) is what a user
	// gets from go install; the image builder copies its libraries.
	out, err := exec.Command("go", "build", "-o", jepsenBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build jepsen: %v\n%s", err, out)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func jepsen(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(ctx, jepsenBin, args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("jepsen %v: %v", args, err)
	}
	return result{code, so.String(), se.String()}
}

// runID reads the run id of a run directory.
func runID(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "test.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		RunID string `json:"run_id"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.RunID == "" {
		t.Fatalf("test.json has no run_id: %v", err)
	}
	return m.RunID
}

// leftovers lists the Docker objects labelled with run id, using the
// docker CLI as an independent witness.
func leftovers(t *testing.T, id string) string {
	t.Helper()
	var all []string
	for _, kind := range [][]string{
		{"ps", "-a", "--format", "{{.Names}}"},
		{"network", "ls", "--format", "{{.Name}}"},
		{"volume", "ls", "--format", "{{.Name}}"},
	} {
		args := append(kind[:len(kind):len(kind)], "--filter", "label=jepsen.run="+id)
		out, err := exec.Command("docker", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker %v: %v\n%s", args, err, out)
		}
		if s := strings.TrimSpace(string(out)); s != "" {
			all = append(all, s)
		}
	}
	return strings.Join(all, " ")
}

func latestRun(t *testing.T, store string) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(filepath.Join(store, "latest"))
	if err != nil {
		t.Fatalf("store/latest: %v", err)
	}
	return dir
}

func TestRunReferenceStore(t *testing.T) {
	dockertest.RequireDocker(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"register valid", []string{"--time-limit", "10s"}, 0, "VALID"},
		{"set valid", []string{"--time-limit", "8s", "--workload", "set"}, 0, "VALID"},
		{"racy-cas found", []string{"--time-limit", "20s", "--env", "RAFTKV_BUG=racy-cas"}, 1, "✗ key"},
		// Faults: a bug that partitions expose is found, and the correct
		// store survives every fault kind without a false positive.
		{"stale-read found under partitions", []string{"--time-limit", "25s", "--nemesis", "partition", "--nemesis-interval", "4s",
			"--env", "RAFTKV_BUG=stale-read"}, 1, "✗ key"},
		{"all faults no false positive", []string{"--time-limit", "30s", "--nemesis", "partition,kill,pause,packet",
			"--nemesis-interval", "4s"}, 0, "VALID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			r := jepsen(t, ctx, append([]string{"run", "--store", store}, tt.args...)...)
			if r.code != tt.wantCode || !strings.Contains(r.stdout, tt.wantOut) {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			dir := latestRun(t, store)
			for _, f := range []string{"test.json", "history.jsonl", "results.json", "jepsen.log", "nodes/n1.log", "nodes/n5.log"} {
				if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
					t.Errorf("run directory lacks a non-empty %s: %v", f, err)
				}
			}
			if l := leftovers(t, runID(t, dir)); l != "" {
				t.Errorf("left behind in Docker: %s", l)
			}
			// Re-checking the recorded run gives the same verdict.
			if c := jepsen(t, ctx, "check", dir); c.code != tt.wantCode {
				t.Errorf("jepsen check %s: exit %d, want %d\n%s%s", dir, c.code, tt.wantCode, c.stdout, c.stderr)
			}
		})
	}
}

// waitForOps waits until a run in store has recorded at least n lines.
func waitForOps(t *testing.T, store string, n int, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if dir, err := filepath.EvalSymlinks(filepath.Join(store, "latest")); err == nil {
			if b, err := os.ReadFile(filepath.Join(dir, "history.jsonl")); err == nil && bytes.Count(b, []byte("\n")) >= n {
				return dir
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no run recorded %d ops within %s", n, within)
	return ""
}

func TestInterruptAndKill(t *testing.T) {
	dockertest.RequireDocker(t)
	t.Run("ctrl-c exits 130 and leaves nothing", func(t *testing.T) {
		store := t.TempDir()
		cmd := exec.Command(jepsenBin, "run", "--store", store, "--time-limit", "60s")
		var se bytes.Buffer
		cmd.Stderr = &se
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		dir := waitForOps(t, store, 200, 2*time.Minute)
		cmd.Process.Signal(os.Interrupt)
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
			t.Fatalf("after Ctrl-C: %v, want exit 130\n%s", err, se.String())
		}
		if l := leftovers(t, runID(t, dir)); l != "" {
			t.Errorf("left behind after Ctrl-C: %s", l)
		}
	})
	t.Run("sigkill then check and clean", func(t *testing.T) {
		store := t.TempDir()
		cmd := exec.Command(jepsenBin, "run", "--store", store, "--time-limit", "60s")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		dir := waitForOps(t, store, 200, 2*time.Minute)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		id := runID(t, dir)
		if l := leftovers(t, id); l == "" {
			t.Log("note: nothing was left to clean (the kill came after teardown?)")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if c := jepsen(t, ctx, "check", dir); c.code != 0 || !strings.Contains(c.stdout, "VALID") {
			t.Errorf("jepsen check of the killed run: exit %d\n%s%s", c.code, c.stdout, c.stderr)
		}
		if c := jepsen(t, ctx, "clean"); c.code != 0 {
			t.Errorf("jepsen clean: exit %d\n%s%s", c.code, c.stdout, c.stderr)
		}
		if l := leftovers(t, id); l != "" {
			t.Errorf("left behind after jepsen clean: %s", l)
		}
	})
}

// writeTarget makes a target directory with a jepsen.yaml and a main.go.
func writeTarget(t *testing.T, spec, mainGo string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"jepsen.yaml": spec}
	if mainGo != "" {
		files["go.mod"] = "module badkv\n\ngo 1.22\n"
		files["main.go"] = mainGo
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const goodSpec = `name: badkv
nodes: 3
build:
  go: .
command: ["/target"]
`

func TestBadTargets(t *testing.T) {
	dockertest.RequireDocker(t)
	tests := []struct {
		name   string
		spec   string
		mainGo string
		noDir  bool
		want   []string
	}{
		{name: "missing jepsen.yaml", noDir: true, want: []string{"jepsen.yaml", "no such file"}},
		{name: "spec mistake", spec: "name: x\nbuild: {go: .}\ncommand: [\"/target\"]\nport: eighty\n", mainGo: "package main\nfunc main() {}\n",
			want: []string{"jepsen.yaml:4", "port"}},
		{name: "does not compile", spec: goodSpec, mainGo: "package main\nfunc main() { undefinedThing() }\n",
			want: []string{"undefined: undefinedThing"}},
		{name: "exits at start", spec: goodSpec, mainGo: "package main\nimport (\"fmt\"; \"os\")\nfunc main() { fmt.Println(\"config file /etc/badkv.conf is missing\"); os.Exit(3) }\n",
			want: []string{"config file /etc/badkv.conf is missing"}},
		{name: "never ready", spec: goodSpec + "ready: /health\n", mainGo: `package main
import ("fmt"; "net/http")
func main() {
	fmt.Println("waiting for a quorum that never comes")
	http.ListenAndServe(":8080", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
}
`, want: []string{"waiting for a quorum that never comes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if !tt.noDir {
				dir = writeTarget(t, tt.spec, tt.mainGo)
			}
			store := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			r := jepsen(t, ctx, "run", "--target", dir, "--store", store, "--time-limit", "5s", "--ready-timeout", "8s")
			if r.code != 2 {
				t.Fatalf("exit %d, want 2\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic:") {
				t.Errorf("stack trace on stderr:\n%s", r.stderr)
			}
			if d, err := filepath.EvalSymlinks(filepath.Join(store, "latest")); err == nil {
				if l := leftovers(t, runID(t, d)); l != "" {
					t.Errorf("left behind: %s", l)
				}
			}
		})
	}
}
