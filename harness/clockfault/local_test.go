package clockfault

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// timeChild is the child process of the local tests: for each line on
// stdin it prints its wall clock and its monotonic clock in nanoseconds.
func timeChild() {
	start := time.Now()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		now := time.Now()
		fmt.Printf("%d %d\n", now.UnixNano(), now.Sub(start).Nanoseconds())
	}
}

// child is a running timeChild.
type child struct {
	cmd *exec.Cmd
	in  io.Writer
	out *bufio.Scanner
}

func startChild(t *testing.T) *child {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("clock patching is implemented for linux/amd64 only, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), roleEnv+"=timechild")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	c := &child{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	c.now(t) // it runs
	return c
}

// now asks the child for its clocks.
func (c *child) now(t *testing.T) (wall time.Time, mono time.Duration) {
	t.Helper()
	if _, err := io.WriteString(c.in, "\n"); err != nil {
		t.Fatalf("child: %v", err)
	}
	if !c.out.Scan() {
		t.Fatalf("child exited: %v", c.out.Err())
	}
	f := strings.Fields(c.out.Text())
	w, err1 := strconv.ParseInt(f[0], 10, 64)
	m, err2 := strconv.ParseInt(f[1], 10, 64)
	if len(f) != 2 || err1 != nil || err2 != nil {
		t.Fatalf("child said %q", c.out.Text())
	}
	return time.Unix(0, w), time.Duration(m)
}

func TestPatchChildProcess(t *testing.T) {
	c := startChild(t)
	p, err := Patch(c.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cases := []struct {
		name  string
		shift Shift
	}{
		{"zero after patch", Shift{}},
		{"forward 20s", Shift{Offset: int64(20 * time.Second)}},
		{"back 7.3s", Shift{Offset: int64(-7300 * time.Millisecond)}},
		{"forward 1h monotonic too", Shift{Offset: int64(time.Hour), Monotonic: true}},
		{"reset", Shift{}},
	}
	var lastMono time.Duration
	var lastShift Shift
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name != "zero after patch" {
				if err := p.Set(tc.shift); err != nil {
					t.Fatal(err)
				}
			}
			got, err := p.Shift()
			if err != nil || got != tc.shift {
				t.Fatalf("Shift() = %+v, %v; want %+v", got, err, tc.shift)
			}
			before := time.Now()
			wall, mono := c.now(t)
			after := time.Now()
			skew := wall.Sub(before)
			want := time.Duration(tc.shift.Offset)
			if skew < want-50*time.Millisecond || wall.Sub(after) > want+50*time.Millisecond {
				t.Errorf("child wall clock %v ahead of ours, want %v", skew, want)
			}
			jump := mono - lastMono
			wantJump := time.Duration(0)
			if tc.shift.Monotonic {
				wantJump += time.Duration(tc.shift.Offset)
			}
			if lastShift.Monotonic {
				wantJump -= time.Duration(lastShift.Offset)
			}
			if jump < wantJump-time.Second || jump > wantJump+time.Second {
				t.Errorf("child monotonic clock moved %v, want about %v", jump, wantJump)
			}
			lastMono, lastShift = mono, tc.shift
		})
	}
	// Patching again finds the existing patch and keeps the shift.
	if err := p.Set(Shift{Offset: int64(3 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	p2, err := Patch(c.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if s, err := p2.Shift(); err != nil || s.Offset != int64(3*time.Second) {
		t.Errorf("second Patch sees %+v, %v; want the 3s shift", s, err)
	}
}

// BenchmarkSet measures one shift change of a patched process (what a
// strobe does every period): a read and two writes of /proc/PID/mem.
func BenchmarkSet(b *testing.B) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		b.Skip("linux/amd64 only")
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), roleEnv+"=timechild")
	in, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { in.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	time.Sleep(100 * time.Millisecond)
	p, err := Patch(cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.Set(Shift{Offset: int64(i%2) * int64(time.Second)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPatch measures patching a fresh Go process (all threads
// stopped, two injected system calls, the jumps written).
func BenchmarkPatch(b *testing.B) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		b.Skip("linux/amd64 only")
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), roleEnv+"=timechild")
		in, _ := cmd.StdinPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		b.StartTimer()
		p, err := Patch(cmd.Process.Pid)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		p.Close()
		in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		b.StartTimer()
	}
}
