package docker

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// makeOwnedRun creates a network, a volume and a (never started)
// container labelled as run run, owned by the given pid, host and start.
func makeOwnedRun(t *testing.T, run string, pid int, host, start string) {
	t.Helper()
	ctx := context.Background()
	c, _ := dockerClient()
	l := map[string]string{
		LabelRun: run, LabelOwnerPID: strconv.Itoa(pid), LabelOwnerHost: host, LabelOwnerStart: start,
	}
	if _, err := c.NetworkCreate(ctx, "jepsen-"+run, client.NetworkCreateOptions{Driver: "bridge", Labels: l}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "jepsen-" + run, Labels: l}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   "jepsen-" + run + "-n1",
		Config: &container.Config{Image: echoImage(t), Cmd: []string{"/target"}, Labels: l},
		HostConfig: &container.HostConfig{
			Mounts: nil,
		},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"jepsen-" + run: {}}},
	}); err != nil {
		t.Fatal(err)
	}
}

// TestSweep checks that Sweep removes the objects of dead owners (a pid
// that does not exist, or a reused pid with another start time) and keeps
// those of live owners and, unless All, of other hosts.
func TestSweep(t *testing.T) {
	requireDocker(t)
	ctx := context.Background()
	me := self()
	// newRunID's cleanup checks that each run is gone at the end.
	prefix := newRunID(t)
	runs := map[string]string{}
	for _, k := range []string{"dead", "reused", "live", "foreign"} {
		runs[k] = prefix + "-" + k
		id := runs[k]
		t.Cleanup(func() {
			c, _ := dockerClient()
			_, _ = removeRun(context.Background(), c, id)
		})
	}
	makeOwnedRun(t, runs["dead"], 999999999, me.Host, "12345")
	makeOwnedRun(t, runs["reused"], os.Getpid(), me.Host, "1")
	makeOwnedRun(t, runs["live"], os.Getpid(), me.Host, me.Start)
	makeOwnedRun(t, runs["foreign"], 999999999, "some-other-host", "12345")

	rep, err := Sweep(ctx, SweepOptions{RunPrefix: prefix})
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	t.Logf("sweep: %s", rep)
	// The objects of dead owners are fair game for any sweep: a jepsen run
	// of another test package, running at the same time, may remove some
	// of them first. So the report may hold fewer than all six, but only
	// objects of the dead runs, and afterwards none of them is left.
	for _, r := range rep.Runs {
		if r != runs["dead"] && r != runs["reused"] {
			t.Errorf("swept run %s, want only %s and %s", r, runs["dead"], runs["reused"])
		}
	}
	if len(rep.Containers) > 2 || len(rep.Networks) > 2 || len(rep.Volumes) > 2 {
		t.Errorf("report %+v", rep)
	}
	for k, want := range map[string]int{"dead": 0, "reused": 0, "live": 3, "foreign": 3} {
		if got := runObjects(t, ctx, runs[k]); len(got) != want {
			t.Errorf("run %s: %d objects left (%v), want %d", k, len(got), got, want)
		}
	}

	rep, err = Sweep(ctx, SweepOptions{RunPrefix: prefix, All: true})
	if err != nil {
		t.Fatalf("Sweep All: %v", err)
	}
	if got := strings.Join(rep.Runs, ","); got != runs["foreign"] {
		t.Errorf("Sweep All removed runs %s, want only %s", got, runs["foreign"])
	}
	if got := runObjects(t, ctx, runs["live"]); len(got) != 3 {
		t.Errorf("live run touched by Sweep All: %v", got)
	}
	rep, err = Sweep(ctx, SweepOptions{RunPrefix: prefix, All: true})
	if err != nil || !rep.Empty() {
		t.Errorf("third sweep: %v %v", rep, err)
	}
}

// TestOwnerGone is the table of owner liveness decisions.
func TestOwnerGone(t *testing.T) {
	me := self()
	pid := strconv.Itoa(me.PID)
	// A zombie: a child that exited and that nobody has reaped yet, as a
	// SIGKILLed run is for a moment (or for good under an init that does
	// not reap).
	zombie := exec.Command("true")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	defer zombie.Wait()
	zpid := zombie.Process.Pid
	var zstart string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		state, start, err := procStat(zpid)
		if err != nil {
			t.Fatal(err)
		}
		if state == "Z" {
			zstart = start
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d still in state %s after 5s", zpid, state)
		}
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		all    bool
		want   bool
	}{
		{"self", map[string]string{LabelOwnerPID: pid, LabelOwnerHost: me.Host, LabelOwnerStart: me.Start}, true, false},
		{"no such pid", map[string]string{LabelOwnerPID: "999999999", LabelOwnerHost: me.Host, LabelOwnerStart: "1"}, false, true},
		{"reused pid", map[string]string{LabelOwnerPID: pid, LabelOwnerHost: me.Host, LabelOwnerStart: "1"}, false, true},
		{"zombie", map[string]string{LabelOwnerPID: strconv.Itoa(zpid), LabelOwnerHost: me.Host, LabelOwnerStart: zstart}, false, true},
		{"other host", map[string]string{LabelOwnerPID: "999999999", LabelOwnerHost: "elsewhere", LabelOwnerStart: "1"}, false, false},
		{"other host, all", map[string]string{LabelOwnerPID: "999999999", LabelOwnerHost: "elsewhere", LabelOwnerStart: "1"}, true, true},
		{"no labels", map[string]string{}, false, false},
		{"no labels, all", map[string]string{}, true, true},
		{"bad pid", map[string]string{LabelOwnerPID: "x", LabelOwnerHost: me.Host}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ownerGone(tc.labels, SweepOptions{All: tc.all}); got != tc.want {
				t.Errorf("ownerGone = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestParseStatStart covers /proc/PID/stat parsing.
func TestParseStatStart(t *testing.T) {
	tail := " S 1 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615"
	for _, tc := range []struct {
		name, in, want string
		ok             bool
	}{
		{"plain", "42 (jepsen)" + tail, "987654", true},
		{"spaces and parens in comm", "42 (a) b (c))" + tail, "987654", true},
		{"no paren", "42 jepsen" + tail, "", false},
		{"short", "42 (x) S 1 2", "", false},
		{"not a number", "42 (x) S 1 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 zz 1", "", false},
		{"empty", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatStart(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("parseStatStart = %q, %v; want %q ok=%v", got, err, tc.want, tc.ok)
			}
		})
	}
	if s, err := procStartTime(os.Getpid()); err != nil || s == "" {
		t.Errorf("procStartTime(self) = %q, %v", s, err)
	}
	if state, _, err := parseStat("42 (jepsen)" + tail); err != nil || state != "S" {
		t.Errorf("parseStat state = %q, %v; want S", state, err)
	}
}

// FuzzParseStatStart checks the parser never panics and only returns
// numbers.
func FuzzParseStatStart(f *testing.F) {
	f.Add("42 (jepsen) S 1 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000")
	f.Add("1 ((x)) R")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseStatStart(s)
		if err == nil {
			if _, perr := strconv.ParseUint(got, 10, 64); perr != nil {
				t.Fatalf("returned non-number %q", got)
			}
		}
	})
}

// TestSubnets covers candidate subnets, overlap checks and node addresses.
func TestSubnets(t *testing.T) {
	seen := map[netip.Prefix]bool{}
	for k := 0; k < 100; k++ {
		p := candidateSubnet("run", k)
		a := p.Addr().As4()
		if p.Bits() != 24 || a[0] != 10 || a[1] < 100 || a[1] > 163 || a[3] != 0 || seen[p] {
			t.Fatalf("candidate %d = %s", k, p)
		}
		seen[p] = true
	}
	used := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	if !overlaps(candidateSubnet("x", 0), used) {
		t.Error("10.0.0.0/8 does not overlap a 10.x/24")
	}
	if overlaps(netip.MustParsePrefix("10.100.1.0/24"), []netip.Prefix{netip.MustParsePrefix("172.17.0.0/16")}) {
		t.Error("unrelated prefixes overlap")
	}
	if got := nodeIP(netip.MustParsePrefix("10.100.7.0/24"), 4); got != netip.MustParseAddr("10.100.7.15") {
		t.Errorf("nodeIP = %s", got)
	}
	for _, r := range hostRoutes() {
		if !r.IsValid() {
			t.Errorf("invalid route %v", r)
		}
	}
}
