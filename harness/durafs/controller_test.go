package durafs

import (
	"context"
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/harness/docker"
	"github.com/jepsen-go/jepsen/harness/docker/dockertest"
	"github.com/jepsen-go/jepsen/nemesis"
)

// The controller is the nemesis's disk.
var _ nemesis.Disk = (*Controller)(nil)

func TestChooseCorruption(t *testing.T) {
	files := []FileInfo{
		{Path: "empty", Size: 0, Written: true},
		{Path: "lock", Size: 10},
		{Path: "wal/0001", Size: 4096, Written: true},
		{Path: "wal/0002", Size: 100, Written: true},
	}
	seen := map[string]bool{}
	for seed := int64(0); seed < 200; seed++ {
		c, err := ChooseCorruption(files, rand.New(rand.NewSource(seed)))
		if err != nil {
			t.Fatal(err)
		}
		again, _ := ChooseCorruption(files, rand.New(rand.NewSource(seed)))
		if c != again {
			t.Fatalf("seed %d: %+v then %+v", seed, c, again)
		}
		if !strings.HasPrefix(c.File, "wal/") {
			t.Fatalf("seed %d: chose %s, not a non-empty written file", seed, c.File)
		}
		if c.Offset < 0 || c.Offset >= c.Size || (c.Kind == KindBitflip && c.Mask == 0) {
			t.Fatalf("seed %d: %+v", seed, c)
		}
		seen[c.Kind] = true
		h := c.History()
		if h.File != c.File || h.Offset != c.Offset || (c.Kind == KindTruncate && h.Length != c.Size-c.Offset) {
			t.Fatalf("history %+v of %+v", h, c)
		}
	}
	if !seen[KindBitflip] || !seen[KindTruncate] {
		t.Errorf("kinds chosen: %v", seen)
	}
	// Nothing written through the mount: any non-empty file.
	c, err := ChooseCorruption([]FileInfo{{Path: "a", Size: 0}, {Path: "b", Size: 3}}, rand.New(rand.NewSource(1)))
	if err != nil || c.File != "b" {
		t.Errorf("got %+v, %v; want b", c, err)
	}
	if _, err := ChooseCorruption([]FileInfo{{Path: "a"}}, rand.New(rand.NewSource(1))); err == nil {
		t.Error("no error without a non-empty file")
	}
}

func TestSweepDirs(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	mk := func(owner map[string]string) string {
		dir, err := os.MkdirTemp("", DirPrefix)
		if err != nil {
			t.Fatal(err)
		}
		if owner != nil {
			b, _ := json.Marshal(owner)
			if err := os.WriteFile(filepath.Join(dir, ownerFile), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	live := mk(docker.OwnerLabels())
	dead := docker.OwnerLabels()
	dead[docker.LabelOwnerPID] = "999999999"
	gone := mk(dead)
	young := mk(nil)
	n, err := SweepDirs(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]bool{live: true, gone: false, young: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(dir), err == nil, want)
		}
	}
	if n != 1 {
		t.Errorf("removed %d, want 1", n)
	}
}

// TestDockerPrepareFails checks that a helper that cannot start gives one
// line and leaves nothing (no container, no host directory).
func TestDockerPrepareFails(t *testing.T) {
	dockertest.RequireDocker(t)
	t.Setenv("TMPDIR", t.TempDir())
	run := dockertest.NewRun(t, "durafs-fail")
	ctl := NewController(DockerRuntime(run), ControllerOptions{Image: "jepsen-self/absent:0", DataDir: "/data"})
	err := ctl.Prepare(context.Background())
	if err == nil {
		t.Fatal("Prepare with an absent image did not fail")
	}
	if strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "power-loss: ") {
		t.Errorf("error is not one line starting with power-loss: %q", err)
	}
	t.Logf("error: %v", err)
	left, _ := filepath.Glob(filepath.Join(os.TempDir(), DirPrefix+"*"))
	if len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
