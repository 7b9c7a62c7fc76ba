package durafs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// requireFUSE skips the test when this process cannot mount FUSE (not
// root, no /dev/fuse), unless CI is set: there it fails.
func requireFUSE(tb testing.TB) {
	tb.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not root"
	} else if fd, err := unix.Open("/dev/fuse", unix.O_RDWR, 0); err != nil {
		why = "/dev/fuse: " + err.Error()
	} else {
		unix.Close(fd)
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("cannot mount FUSE and CI is set: %s", why)
	}
	tb.Skipf("cannot mount FUSE: %s", why)
}

// testMount mounts a Mount of a fresh backing directory over a fresh
// mount point; it is unmounted when the test ends.
func testMount(tb testing.TB, opts Options) (m *Mount, backing, mnt string) {
	tb.Helper()
	requireFUSE(tb)
	dir := tb.TempDir()
	backing, mnt = filepath.Join(dir, "backing"), filepath.Join(dir, "mnt")
	for _, d := range []string{backing, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	m, err := NewMount(backing, mnt, -1, opts)
	if err != nil {
		tb.Fatalf("mount: %v", err)
	}
	tb.Cleanup(func() { unmount(tb, m, mnt) })
	return m, backing, mnt
}

// unmount detaches mnt and waits for m to end.
func unmount(tb testing.TB, m *Mount, mnt string) {
	tb.Helper()
	select {
	case <-m.Done():
		return
	default:
	}
	if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
		tb.Errorf("unmount %s: %v", mnt, err)
	}
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		tb.Fatalf("mount of %s did not end 10 s after unmount", mnt)
	}
}

func TestSmoke(t *testing.T) {
	m, backing, mnt := testMount(t, Options{})
	f, err := os.Create(filepath.Join(mnt, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(backing, "a"))
	t.Logf("backing before sync: %q; through mount: %q; cached %d", b, must(os.ReadFile(filepath.Join(mnt, "a"))), m.Cached())
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(backing, "a"))
	t.Logf("after syncfs: backing %q, stats %+v", b, m.Stats())
	unix.Sync()
	b, _ = os.ReadFile(filepath.Join(backing, "a"))
	t.Logf("after sync: backing %q, stats %+v", b, m.Stats())
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(backing, "a"))
	if !bytes.Equal(b, []byte("hello")) {
		t.Fatalf("after fsync backing holds %q", b)
	}
	f.Close()
	t.Logf("stats %+v", m.Stats())
}

func must(b []byte, err error) []byte { return b }
