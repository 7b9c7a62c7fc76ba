package clockfault

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestCheckDenied runs the agent's check where ptrace is not allowed: as
// an unprivileged user against a root process. It must fail with one line
// that says why, the error a run prints before it starts.
func TestCheckDenied(t *testing.T) {
	if err := Supported(); err != nil {
		t.Skip(err)
	}
	if os.Geteuid() != 0 {
		// Not root: init (pid 1) belongs to root and cannot be traced.
		err := Check(1)
		if err == nil || !strings.Contains(err.Error(), "CAP_SYS_PTRACE") {
			t.Fatalf("Check(1) as uid %d = %v, want an error naming CAP_SYS_PTRACE", os.Geteuid(), err)
		}
		return
	}
	// Root: run this test binary as nobody against this (root) process.
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} { // nobody must reach the binary
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "agent")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "clockfault", "check", "--root", strconv.Itoa(os.Getpid()))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	msg := strings.TrimSpace(string(out))
	if err == nil {
		t.Fatalf("check as nobody against a root process passed: %q", msg)
	}
	if !strings.Contains(msg, "CAP_SYS_PTRACE") || strings.Contains(msg, "\n") {
		t.Errorf("check output %q (%v): want one line naming CAP_SYS_PTRACE", msg, err)
	}
	t.Logf("%s (%v)", msg, err)

	// And the happy path: root may check itself... via a child it owns.
	c := startChild(t)
	if err := Check(c.cmd.Process.Pid); err != nil {
		t.Errorf("Check of our own child: %v", err)
	}
	if err := Check(1 << 30); err == nil || !strings.Contains(err.Error(), "probe") {
		t.Errorf("Check of a missing process = %v", err)
	}
}
