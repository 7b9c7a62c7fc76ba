package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/harness/docker/dockertest"
)

// TestMistakes runs jepsen on the stores of testdata/stores, each a correct
// one-node store but for one classic first-store mistake, and checks that
// none passes (exit 0) and that the output names the mistake, so that a
// newcomer learns what to fix without opening history.jsonl.
func TestMistakes(t *testing.T) {
	dockertest.RequireDocker(t)
	tests := []struct {
		store string
		args  []string
		// code is the exit code wanted; 0 means any code but 0 (and 130).
		code int
		// want are texts the output (stdout and stderr) must hold.
		want []string
		// never matches what the output must not hold.
		never *regexp.Regexp
		// within, when set, bounds the whole run, build included.
		within time.Duration
	}{
		{store: "bare-get", want: []string{"malformed", `{"value": V}`}},
		{store: "put-201", want: []string{"status 201", "expected 200, 204"}},
		{store: "crash-100", want: []string{"n1 exited with status 1"}},
		// A ready path that answers 404 will never answer 200: the run
		// stops at once instead of waiting out --ready-timeout.
		{store: "no-health", args: []string{"--ready-timeout", "60s"}, code: 2,
			want: []string{"/health", "404", "200"}, within: 45 * time.Second},
		// The port a user knows is jepsen.yaml's, not the host port
		// Docker published.
		{store: "wrong-port", args: []string{"--ready-timeout", "10s"}, code: 2,
			want: []string{"port 8080", "n1"}, never: regexp.MustCompile(`127\.0\.0\.1:\d+`)},
	}
	for _, tt := range tests {
		t.Run(tt.store, func(t *testing.T) {
			store := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			target := filepath.Join("..", "..", "testdata", "stores", tt.store)
			args := append([]string{"run", "--target", target, "--store", store, "--nemesis", "none", "--time-limit", "10s"}, tt.args...)
			t0 := time.Now()
			r := jepsen(t, ctx, args...)
			took := time.Since(t0)
			out := r.stdout + r.stderr
			switch {
			case tt.code == 0 && (r.code == 0 || r.code == 130):
				t.Errorf("exit %d, want a verdict that is not VALID (1, 2 or 3)", r.code)
			case tt.code != 0 && r.code != tt.code:
				t.Errorf("exit %d, want %d", r.code, tt.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("the output does not say %q", w)
				}
			}
			if tt.never != nil {
				if m := tt.never.FindString(out); m != "" {
					t.Errorf("the output names %q, which the user never chose", m)
				}
			}
			if tt.within > 0 && took > tt.within {
				t.Errorf("took %s, want at most %s", took.Round(time.Second), tt.within)
			}
			if strings.Contains(out, "goroutine ") || strings.Contains(out, "panic:") {
				t.Errorf("stack trace in the output")
			}
			if t.Failed() {
				t.Logf("jepsen %s\nexit %d after %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, took.Round(time.Second), r.stdout, r.stderr)
			}
			if d, err := filepath.EvalSymlinks(filepath.Join(store, "latest")); err == nil {
				if l := leftovers(t, runID(t, d)); l != "" {
					t.Errorf("left behind in Docker: %s", l)
				}
			}
		})
	}
}
