package docker

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrepareCommand(t *testing.T) {
	for _, tc := range []struct {
		name, dockerfile, want string
	}{
		{"first line", "# jepsen-prepare: sh prepare.sh\nFROM scratch\n", "sh prepare.sh"},
		{"after comments and blanks", "# Redis\n\n#jepsen-prepare:   ./gen  \nFROM scratch\n", "./gen"},
		{"none", "# just a comment\nFROM scratch\n", ""},
		{"after an instruction", "FROM scratch\n# jepsen-prepare: sh prepare.sh\n", ""},
		{"empty", "", ""},
	} {
		if got := PrepareCommand([]byte(tc.dockerfile)); got != tc.want {
			t.Errorf("%s: PrepareCommand = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestRunPrepare(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	if err := runPrepare(ctx, dir, "Dockerfile", "echo made > made.txt"); err != nil {
		t.Fatalf("runPrepare: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "made.txt")); err != nil || string(b) != "made\n" {
		t.Fatalf("the command did not run in dir: %q, %v", b, err)
	}
	err := runPrepare(ctx, dir, "Dockerfile", "echo working; echo 'redis-server is not installed: run apt-get install redis-server' >&2; exit 1")
	if err == nil || !strings.HasSuffix(err.Error(), "failed: redis-server is not installed: run apt-get install redis-server") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("runPrepare of a failing command = %v; want one line ending with its last output line", err)
	}
}

// FuzzPrepareCommand: the command is one trimmed line, found only where
// the directive is written.
func FuzzPrepareCommand(f *testing.F) {
	f.Fuzz(func(t *testing.T, dockerfile []byte) {
		c := PrepareCommand(dockerfile)
		if c == "" {
			return
		}
		if strings.ContainsAny(c, "\n") || c != strings.TrimSpace(c) || !strings.Contains(string(dockerfile), prepareDirective) {
			t.Fatalf("PrepareCommand(%q) = %q", dockerfile, c)
		}
	})
}
