package docker

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// TestBuildGoCompileError checks that the compiler's lines are returned.
func TestBuildGoCompileError(t *testing.T) {
	requireDocker(t)
	_, err := BuildGo(context.Background(), "testdata/broken", ".")
	if err == nil {
		t.Fatal("BuildGo of a broken package succeeded")
	}
	for _, w := range []string{"go build . in testdata/broken", "main.go:6:", "not an int", "undefined: undefinedFunction"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

// TestBuildGoReuses checks that a second build of unchanged source gives
// the same reference and does not build a new image.
func TestBuildGoReuses(t *testing.T) {
	requireDocker(t)
	ctx := context.Background()
	ref1 := echoImage(t)
	if !strings.HasPrefix(ref1, "jepsen-target/echonode:") || len(ref1) != len("jepsen-target/echonode:")+12 {
		t.Errorf("ref = %q", ref1)
	}
	c, _ := dockerClient()
	img1, err := c.ImageInspect(ctx, ref1)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	ref2, err := BuildGo(ctx, "testdata/echonode", ".")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second BuildGo: %v", time.Since(t0))
	img2, err := c.ImageInspect(ctx, ref2)
	if err != nil {
		t.Fatal(err)
	}
	if ref1 != ref2 || img1.ID != img2.ID || img1.Created != img2.Created {
		t.Errorf("rebuilt: %s %s %s -> %s %s %s", ref1, img1.ID, img1.Created, ref2, img2.ID, img2.Created)
	}
}

// TestEnsureImage checks the message for an image that is not local.
func TestEnsureImage(t *testing.T) {
	requireDocker(t)
	ctx := context.Background()
	err := EnsureImage(ctx, "jepsen-no-such/mykv:dev")
	want := "image jepsen-no-such/mykv:dev is not in the local Docker daemon and no registry is reachable here; build it first with docker build -t jepsen-no-such/mykv:dev ."
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if err := EnsureImage(ctx, echoImage(t)); err != nil {
		t.Errorf("EnsureImage(built image): %v", err)
	}
}

// TestBuildDockerfile builds from a local base image with .dockerignore,
// checks reuse, that ignored files do not change the tag, and that a failed
// build returns the builder's output.
func TestBuildDockerfile(t *testing.T) {
	requireDocker(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "dfctx")
	if err := os.MkdirAll(filepath.Join(dir, "ignored"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Dockerfile", "FROM "+echoImage(t)+"\nCOPY hello.txt /hello.txt\n")
	write("hello.txt", "hello\n")
	write(".dockerignore", "ignored\n*.secret\n")
	write("ignored/big", "x")
	write("a.secret", "s1")
	ref1, err := BuildDockerfile(ctx, dir, "")
	if err != nil {
		t.Fatalf("BuildDockerfile: %v", err)
	}
	if !strings.HasPrefix(ref1, "jepsen-target/dfctx:") {
		t.Errorf("ref = %q", ref1)
	}
	write("a.secret", "s2")
	write("ignored/big", "y")
	ref2, err := BuildDockerfile(ctx, dir, "Dockerfile")
	if err != nil || ref2 != ref1 {
		t.Errorf("ignored change: ref %q -> %q, %v", ref1, ref2, err)
	}
	out := runImage(t, ref1, []string{"/target", "--ps"})
	if !strings.Contains(out, "/target --ps") {
		t.Errorf("built image output %q", out)
	}

	write("Dockerfile.bad", "FROM "+echoImage(t)+"\nCOPY missing.txt /x\n")
	_, err = BuildDockerfile(ctx, dir, "Dockerfile.bad")
	if err == nil || !strings.Contains(err.Error(), "missing.txt") || !strings.Contains(err.Error(), ": COPY missing.txt /x") {
		t.Errorf("failed build error: %v", err)
	}
	if _, err := BuildDockerfile(ctx, dir, "Nope"); err == nil || !strings.Contains(err.Error(), "Nope") {
		t.Errorf("missing Dockerfile error: %v", err)
	}
}

// TestSelfImage packs a static and a dynamically linked (cgo) binary and
// runs each in a container.
func TestSelfImage(t *testing.T) {
	requireDocker(t)
	if _, err := exec.LookPath("gcc"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("gcc not found: cannot build the cgo variant")
		}
		t.Skip("gcc not found")
	}
	for _, tc := range []struct {
		name    string
		cgo     string
		dynamic bool
	}{
		{"static", "0", false},
		{"cgo", "1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "selfprog")
			cmd := exec.Command("go", "build", "-o", bin, ".")
			cmd.Dir = "testdata/selfprog"
			cmd.Env = append(os.Environ(), "CGO_ENABLED="+tc.cgo)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, out)
			}
			deps, err := elfDeps(bin)
			if err != nil {
				t.Fatal(err)
			}
			if (len(deps) > 0) != tc.dynamic {
				t.Fatalf("elfDeps = %v, dynamic want %v", deps, tc.dynamic)
			}
			t.Logf("deps: %v", deps)
			ref, err := SelfImage(context.Background(), bin)
			if err != nil {
				t.Fatalf("SelfImage: %v", err)
			}
			if !strings.HasPrefix(ref, "jepsen-self/selfprog:") {
				t.Errorf("ref = %q", ref)
			}
			out := runImage(t, ref, []string{"/jepsen", "hello"})
			if !strings.Contains(out, "selfprog ok args=[hello]") {
				t.Errorf("container output %q", out)
			}
		})
	}
}

// runImage runs cmd in a labelled container of img to completion and
// returns its output; the container is removed.
func runImage(t *testing.T, img string, cmd []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := newRunID(t)
	c, _ := dockerClient()
	res, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: img, Cmd: cmd, Labels: labels(run, "test", "")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer removeContainer(context.Background(), c, res.ID)
	if _, err := c.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start %s: %v", img, err)
	}
	w := c.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	var code int64
	select {
	case r := <-w.Result:
		code = r.StatusCode
	case err := <-w.Error:
		t.Fatal(err)
	}
	rc, err := c.ContainerLogs(ctx, res.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if code != 0 {
		t.Errorf("%s %v exited %d: %s", img, cmd, code, buf.String())
	}
	return buf.String()
}
