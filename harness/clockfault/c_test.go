package clockfault

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/harness/docker"
	"github.com/jepsen-go/jepsen/harness/docker/dockertest"
)

// buildCTime compiles testdata/ctime/ctime.c statically against glibc,
// or skips the test when no C toolchain with static libc is installed.
func buildCTime(t testing.TB) string {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("clock patching is implemented for linux/amd64 only, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed")
	}
	out := filepath.Join(t.TempDir(), "ctime")
	if b, err := exec.Command(gcc, "-static", "-O2", "-Wall", "-o", out, "testdata/ctime/ctime.c").CombinedOutput(); err != nil {
		t.Skipf("gcc -static failed (is libc6-dev installed?): %v\n%s", err, b)
	}
	return out
}

// cClocks is one line of ctime: realtime, gettimeofday, time(), monotonic.
type cClocks struct {
	realtime, tod time.Time
	secs          int64
	mono          time.Duration
}

func parseCClocks(s string) (cClocks, error) {
	f := strings.Fields(s)
	if len(f) != 4 {
		return cClocks{}, fmt.Errorf("ctime said %q", s)
	}
	var v [4]int64
	for i := range f {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return cClocks{}, fmt.Errorf("ctime said %q", s)
		}
		v[i] = n
	}
	return cClocks{time.Unix(0, v[0]), time.Unix(0, v[1]), v[2], time.Duration(v[3])}, nil
}

// TestPatchStaticGlibcProcess shifts a static glibc program and checks
// all three wall-clock entry points (clock_gettime, gettimeofday, time)
// and that the monotonic clock stays put unless asked.
func TestPatchStaticGlibcProcess(t *testing.T) {
	bin := buildCTime(t)
	cmd := exec.Command(bin)
	in, _ := cmd.StdinPipe()
	outp, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(outp)
	ask := func(t *testing.T) cClocks {
		t.Helper()
		if _, err := io.WriteString(in, "\n"); err != nil || !sc.Scan() {
			t.Fatalf("ctime: %v %v", err, sc.Err())
		}
		c, err := parseCClocks(sc.Text())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ask(t)
	p, err := Patch(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cases := []struct {
		name  string
		shift Shift
	}{
		{"+20s", Shift{Offset: int64(20 * time.Second)}},
		{"-90.75s", Shift{Offset: int64(-90750 * time.Millisecond)}},
		{"+2h monotonic", Shift{Offset: int64(2 * time.Hour), Monotonic: true}},
		{"reset", Shift{}},
	}
	prev := ask(t)
	prevShift := Shift{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := p.Set(tc.shift); err != nil {
				t.Fatal(err)
			}
			before := time.Now()
			c := ask(t)
			after := time.Now()
			want := time.Duration(tc.shift.Offset)
			for name, got := range map[string]time.Time{"clock_gettime": c.realtime, "gettimeofday": c.tod} {
				if got.Sub(before) < want-time.Millisecond || got.Sub(after) > want+time.Millisecond {
					t.Errorf("%s is %v ahead, want %v", name, got.Sub(before), want)
				}
			}
			lo, hi := before.Add(want).Unix(), after.Add(want).Unix()
			if c.secs < lo || c.secs > hi {
				t.Errorf("time() = %d, want within [%d, %d]", c.secs, lo, hi)
			}
			wantJump := time.Duration(0)
			if tc.shift.Monotonic {
				wantJump += want
			}
			if prevShift.Monotonic {
				wantJump -= time.Duration(prevShift.Offset)
			}
			if jump := c.mono - prev.mono; jump < wantJump || jump > wantJump+time.Second {
				t.Errorf("CLOCK_MONOTONIC moved %v, want about %v", jump, wantJump)
			}
			prev, prevShift = c, tc.shift
		})
	}
}

// TestDockerBumpStaticGlibc is the C variant of the acceptance test: a
// static glibc HTTP server in a FROM scratch image, n2 bumped by +20s and
// reset, every entry point checked against the host.
func TestDockerBumpStaticGlibc(t *testing.T) {
	dockertest.RequireDocker(t)
	bin := buildCTime(t)
	dir := t.TempDir()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "target"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY target /target\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	img, err := docker.BuildDockerfile(ctx, dir, "Dockerfile")
	if err != nil {
		t.Fatalf("build C target image: %v", err)
	}
	idBefore := imageID(t, img)
	cl, ctl := startClusterOf(t, 2, img, func(string) []string { return []string{"/target", "--http", "8080"} })
	clocks := func(node string) (cClocks, time.Time, time.Time) {
		t.Helper()
		before := time.Now()
		resp, err := http.Get("http://" + cl.Endpoint(node) + "/time")
		if err != nil {
			t.Fatalf("%s: %v", node, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		after := time.Now()
		c, err := parseCClocks(string(body))
		if err != nil {
			t.Fatalf("%s: %v", node, err)
		}
		return c, before, after
	}
	for _, step := range []struct {
		name string
		do   func() error
		n2   time.Duration
	}{
		{"bump n2 +20s", func() error { return ctl.SetClock(ctx, map[string]time.Duration{"n2": 20 * time.Second}) }, 20 * time.Second},
		{"reset", func() error { return ctl.ResetClock(ctx) }, 0},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		for _, n := range cl.Nodes() {
			want := time.Duration(0)
			if n == "n2" {
				want = step.n2
			}
			c, before, after := clocks(n)
			for name, got := range map[string]time.Time{"clock_gettime": c.realtime, "gettimeofday": c.tod, "time": time.Unix(c.secs, 0)} {
				tol := time.Second
				if d := got.Sub(before); d < want-tol || got.Sub(after) > want+tol {
					t.Errorf("%s: %s %s is %v ahead of the host, want %v", step.name, n, name, d, want)
				}
			}
			t.Logf("%s: %s clock_gettime %+.3fs gettimeofday %+.3fs time %+ds", step.name, n,
				c.realtime.Sub(before).Seconds(), c.tod.Sub(before).Seconds(), c.secs-before.Unix())
		}
	}
	if id := imageID(t, img); id != idBefore {
		t.Errorf("target image changed: %s -> %s", idBefore, id)
	}
}
