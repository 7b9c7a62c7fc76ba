package clockfault

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/jepsen-go/jepsen/harness/docker"
	"github.com/jepsen-go/jepsen/harness/docker/dockertest"
)

// *docker.Cluster is what the controller needs.
var _ Cluster = (*docker.Cluster)(nil)

// testImages are the time node target and the agent image (this test
// binary, which dispatches `clockfault ...` to Main in TestMain).
var testImages = dockertest.Images{Dir: "testdata/timenode", Name: "time node"}

// startCluster starts n time nodes and a clock controller, torn down when
// the test ends; the test fails if anything is left.
func startCluster(t *testing.T, n int) (*docker.Cluster, *Controller) {
	t.Helper()
	dockertest.RequireDocker(t)
	target, _ := testImages.Get(t)
	return startClusterOf(t, n, target, func(node string) []string { return []string{"/target", "--id", node, "--port", "8080"} })
}

// startClusterOf is startCluster for any target image and command.
func startClusterOf(t *testing.T, n int, target string, command func(node string) []string) (*docker.Cluster, *Controller) {
	t.Helper()
	dockertest.RequireDocker(t)
	_, agent := testImages.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := dockertest.StartCluster(ctx, t, "cftest", target, n, command)
	ctl := NewController(cl, ControllerOptions{Image: agent, Log: dockertest.Logger(t)})
	t.Cleanup(func() {
		if err := ctl.Close(context.Background()); err != nil {
			t.Errorf("close controller: %v", err)
		}
	})
	return cl, ctl
}

// skew asks node for its wall clock and returns how far ahead of the
// host's it is (measured against the middle of the request), and the
// node's monotonic nanoseconds since it started.
func skew(t *testing.T, cl *docker.Cluster, node string) (time.Duration, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+cl.Endpoint(node)+"/time", nil)
	before := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s /time: %v", node, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	after := time.Now()
	f := strings.Fields(string(b))
	if resp.StatusCode != 200 || len(f) != 2 {
		t.Fatalf("%s /time: %d %q", node, resp.StatusCode, b)
	}
	wall, err1 := strconv.ParseInt(f[0], 10, 64)
	mono, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("%s /time: %q", node, b)
	}
	mid := before.Add(after.Sub(before) / 2)
	return time.Unix(0, wall).Sub(mid), time.Duration(mono)
}

// targetSum returns the SHA-256 of /target in node's container.
func targetSum(t *testing.T, cl *docker.Cluster, node string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := dockertest.Client(t).CopyFromContainer(ctx, cl.ContainerID(node), client.CopyFromContainerOptions{SourcePath: "/target"})
	if err != nil {
		t.Fatalf("copy /target from %s: %v", node, err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	if _, err := tr.Next(); err != nil {
		t.Fatalf("copy /target from %s: %v", node, err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, tr); err != nil {
		t.Fatalf("copy /target from %s: %v", node, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func imageID(t *testing.T, ref string) string {
	t.Helper()
	res, err := dockertest.Client(t).ImageInspect(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

// TestDockerBumpResetStaticGo is the acceptance test of issue 7 item 1 on
// a static Go target: bump n2 by +20s, check every node's clock against
// the host's, reset, and check that neither the target's image nor its
// binary nor the host's clock changed.
func TestDockerBumpResetStaticGo(t *testing.T) {
	hostStart := time.Now()
	cl, ctl := startCluster(t, 3)
	target, _ := testImages.Get(t)
	ctx := context.Background()
	idBefore := imageID(t, target)
	sumBefore := targetSum(t, cl, "n2")

	t0 := time.Now()
	if err := ctl.Check(ctx); err != nil {
		t.Fatalf("check: %v", err)
	}
	t.Logf("check (agent start + ptrace probe) took %v", time.Since(t0).Round(time.Millisecond))

	const tol = time.Second
	steps := []struct {
		name string
		do   func() error
		want map[string]time.Duration
	}{
		{"before any fault", func() error { return nil }, map[string]time.Duration{"n1": 0, "n2": 0, "n3": 0}},
		{"bump n2 +20s", func() error { return ctl.SetClock(ctx, map[string]time.Duration{"n2": 20 * time.Second}) },
			map[string]time.Duration{"n1": 0, "n2": 20 * time.Second, "n3": 0}},
		{"bump n3 -12s, n2 keeps", func() error { return ctl.SetClock(ctx, map[string]time.Duration{"n3": -12 * time.Second}) },
			map[string]time.Duration{"n1": 0, "n2": 20 * time.Second, "n3": -12 * time.Second}},
		{"reset", func() error { return ctl.ResetClock(ctx) }, map[string]time.Duration{"n1": 0, "n2": 0, "n3": 0}},
	}
	for _, st := range steps {
		t0 := time.Now()
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		took := time.Since(t0)
		var seen []string
		for _, n := range cl.Nodes() {
			got, _ := skew(t, cl, n)
			seen = append(seen, fmt.Sprintf("%s %+.3fs", n, got.Seconds()))
			if d := got - st.want[n]; d < -tol || d > tol {
				t.Errorf("%s: %s is %v ahead of the host, want %v", st.name, n, got, st.want[n])
			}
		}
		t.Logf("%s (took %v): %s", st.name, took.Round(time.Millisecond), strings.Join(seen, ", "))
	}
	if got := ctl.Offsets(); len(got) != 0 {
		t.Errorf("offsets after reset = %v, want none", got)
	}
	if id := imageID(t, target); id != idBefore {
		t.Errorf("target image changed: %s -> %s", idBefore, id)
	}
	if sum := targetSum(t, cl, "n2"); sum != sumBefore {
		t.Errorf("/target of n2 changed: %s -> %s", sumBefore, sum)
	}
	hostEnd := time.Now()
	wall := hostEnd.Round(0).Sub(hostStart.Round(0))
	mono := hostEnd.Sub(hostStart)
	if d := wall - mono; d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Errorf("host clock moved: wall clock advanced %v while the monotonic clock advanced %v", wall, mono)
	}
	t.Logf("host: wall %v, monotonic %v over the test", wall.Round(time.Millisecond), mono.Round(time.Millisecond))
}

// TestDockerRestartStrobeMonotonic checks that a shift is installed again
// after the node is killed and started, also one set while it was down,
// that a strobe flips the clock and ends at the base offset, and that
// --monotonic moves the monotonic clock.
func TestDockerRestartStrobeMonotonic(t *testing.T) {
	cl, ctl := startCluster(t, 2)
	ctx := context.Background()
	if err := ctl.SetClock(ctx, map[string]time.Duration{"n1": 15 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if got, _ := skew(t, cl, "n1"); got < 14*time.Second || got > 16*time.Second {
		t.Fatalf("n1 is %v ahead, want 15s", got)
	}
	if err := cl.Kill(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := cl.Start(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	t.Logf("n1 restarted (and shifted again by the hook) in %v", time.Since(t0).Round(time.Millisecond))
	if got, _ := skew(t, cl, "n1"); got < 14*time.Second || got > 16*time.Second {
		t.Errorf("after restart n1 is %v ahead, want 15s", got)
	}
	// A shift set while the node is down (the nemesis's faults overlap)
	// is no error and follows it when it restarts.
	if err := cl.Kill(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if err := ctl.SetClock(ctx, map[string]time.Duration{"n1": -8 * time.Second}); err != nil {
		t.Fatalf("shift n1 while it is down: %v", err)
	}
	if err := cl.Start(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := skew(t, cl, "n1"); got < -9*time.Second || got > -7*time.Second {
		t.Errorf("shifted by -8s while down, after restart n1 is %v ahead", got)
	}

	// Strobe n2 between 0 and +10s, then 0 and -10s (the nemesis dips a
	// leader's clock back), every 5ms for 1.5s.
	for _, delta := range []time.Duration{10 * time.Second, -10 * time.Second} {
		if err := ctl.StrobeClock(ctx, []string{"n2"}, delta, 5*time.Millisecond, 1500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		var low, high, other int
		for i := 0; i < 100; i++ {
			got, _ := skew(t, cl, "n2")
			switch {
			case got > -tolStrobe && got < tolStrobe:
				low++
			case got > delta-tolStrobe && got < delta+tolStrobe:
				high++
			default:
				other++
			}
			time.Sleep(3 * time.Millisecond)
		}
		t.Logf("strobe samples: %d at 0, %d at %v, %d elsewhere", low, high, delta, other)
		if low == 0 || high == 0 || other != 0 {
			t.Errorf("strobe samples: %d at 0, %d at %v, %d elsewhere; want both values and nothing else", low, high, delta, other)
		}
		time.Sleep(1500 * time.Millisecond)
		for i := 0; i < 10; i++ {
			if got, _ := skew(t, cl, "n2"); got < -time.Second || got > time.Second {
				t.Fatalf("after the strobe by %v n2 is %v ahead, want 0", delta, got)
			}
		}
	}

	// The monotonic option moves time.Since too.
	mctl := NewController(cl, ControllerOptions{Image: ctl.opts.Image, Monotonic: true, Log: dockertest.Logger(t)})
	t.Cleanup(func() { _ = mctl.Close(context.Background()) })
	_, mono0 := skew(t, cl, "n2")
	if err := mctl.SetClock(ctx, map[string]time.Duration{"n2": time.Hour}); err != nil {
		t.Fatal(err)
	}
	wall, mono1 := skew(t, cl, "n2")
	if wall < time.Hour-time.Second || mono1-mono0 < time.Hour-time.Second || mono1-mono0 > time.Hour+5*time.Second {
		t.Errorf("monotonic shift of 1h: wall %v ahead, monotonic moved %v", wall, mono1-mono0)
	}
	if err := mctl.ResetClock(ctx); err != nil {
		t.Fatal(err)
	}
	if wall, _ := skew(t, cl, "n2"); wall < -time.Second || wall > time.Second {
		t.Errorf("after reset n2 is %v ahead", wall)
	}
}

const tolStrobe = 500 * time.Millisecond
