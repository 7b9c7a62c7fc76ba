package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// dockerAvailable reports whether a Docker daemon answers and a compose
// command (plugin or docker-compose) is installed.
func dockerAvailable() bool {
	if err := exec.Command("docker", "info").Run(); err != nil {
		return false
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return true
	}
	_, err := exec.LookPath("docker-compose")
	return err == nil
}

// TestComposeSmoke runs the README's command: the five-node compose cluster
// is built offline and started, a PUT through n1 is read through n5, and
// everything is removed again (compose down -v), also on failure.
func TestComposeSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("compose smoke test builds an image and starts five containers")
	}
	if !dockerAvailable() {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set but Docker or docker compose is not available")
		}
		t.Skip("Docker or docker compose not available")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		out, err := exec.Command("sh", "compose-up.sh", "down").CombinedOutput()
		if err != nil {
			t.Errorf("compose-up.sh down: %v\n%s", err, out)
		}
	})
	cmd := exec.CommandContext(ctx, "sh", "compose-up.sh", "smoke")
	cmd.Env = append(os.Environ(), "RAFTKV_BUG=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("compose-up.sh smoke: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `GET via n5 = {"value":42}`) {
		t.Fatalf("compose-up.sh smoke did not report the read:\n%s", out)
	}
	for _, kind := range []string{"ps", "volume", "network"} {
		args := []string{kind, "ls", "-q", "--filter", "label=jepsen.compose=raftkv"}
		if kind == "ps" {
			args = []string{"ps", "-aq", "--filter", "label=jepsen.compose=raftkv"}
		}
		left, err := exec.Command("docker", args...).Output()
		if err != nil {
			t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
		}
		if s := strings.TrimSpace(string(left)); s != "" {
			t.Errorf("compose smoke left %s objects behind: %s", kind, s)
		}
	}
}
