package durafs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// appendFile appends data to name under dir (creating it), then syncs it
// as sync says: "", "fsync", "fdatasync" or "dsync" (opened O_DSYNC).
func appendFile(t *testing.T, dir, name, data, sync string) {
	t.Helper()
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if sync == "dsync" {
		flags |= unix.O_DSYNC
	}
	f, err := os.OpenFile(filepath.Join(dir, name), flags, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	switch sync {
	case "fsync":
		err = unix.Fsync(int(f.Fd()))
	case "fdatasync":
		err = unix.Fdatasync(int(f.Fd()))
	}
	if err != nil {
		t.Fatal(err)
	}
}

// truncateFile sets name's size, then fsyncs it if sync.
func truncateFile(t *testing.T, dir, name string, size int64, sync bool) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

// absent marks a file that must not exist.
const absent = "<absent>"

// readAll returns name's content under dir, or absent.
func readAll(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if os.IsNotExist(err) {
		return absent
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestModel checks what a power loss (or a crash) keeps, against the
// model of the package documentation.
func TestModel(t *testing.T) {
	big := strings.Repeat("x", 3*pageSize+100)
	tests := []struct {
		name  string
		crash bool // the process dies, the power stays: everything is kept
		do    func(t *testing.T, mnt string)
		want  map[string]string // after the power loss
	}{
		{"unsynced write of a new file", false, func(t *testing.T, mnt string) {
			appendFile(t, mnt, "a", "data", "")
		}, map[string]string{"a": ""}},
		{"fsync", false, func(t *testing.T, mnt string) {
			appendFile(t, mnt, "a", "data", "fsync")
		}, map[string]string{"a": "data"}},
		{"fdatasync", false, func(t *testing.T, mnt string) {
			appendFile(t, mnt, "a", "data", "fdatasync")
		}, map[string]string{"a": "data"}},
		{"O_DSYNC", false, func(t *testing.T, mnt string) {
			appendFile(t, mnt, "a", "data", "dsync")
		}, map[string]string{"a": "data"}},
		{"writes after the last fsync", false, func(t *testing.T, mnt string) {
			appendFile(t, mnt, "a", big, "fsync")
			appendFile(t, mnt, "a", "more", "")
		}, map[string]string{"a": big}},
		{"fsync through another descriptor", false, func(t *testing.T, mnt string) {
			appendFile(t, mnt, "a", "data", "")
			appendFile(t, mnt, "a", "", "fsync")
		}, map[string]string{"a": "data"}},
		{"unsynced truncation is undone", false, func(t *testing.T, mnt string) {
			appendFile(t, mnt, "a", "0123456789", "fsync")
			truncateFile(t, mnt, "a", 3, false)
		}, map[string]string{"a": "0123456789"}},
		{"synced truncation", false, func(t *testing.T, mnt string) {
			appendFile(t, mnt, "a", "0123456789", "fsync")
			truncateFile(t, mnt, "a", 3, true)
		}, map[string]string{"a": "012"}},
		{"truncation then extension reads zeros", false, func(t *testing.T, mnt string) {
			appendFile(t, mnt, "a", "0123456789", "fsync")
			truncateFile(t, mnt, "a", 3, false)
			truncateFile(t, mnt, "a", 6, true)
		}, map[string]string{"a": "012\x00\x00\x00"}},
		{"unsynced extension", false, func(t *testing.T, mnt string) {
			appendFile(t, mnt, "a", "0123", "fsync")
			truncateFile(t, mnt, "a", 1<<20, false)
		}, map[string]string{"a": "0123"}},
		{"rename of a synced file is durable", false, func(t *testing.T, mnt string) {
			appendFile(t, mnt, "old", "old", "fsync")
			appendFile(t, mnt, "tmp", "new", "fsync")
			if err := os.Rename(filepath.Join(mnt, "tmp"), filepath.Join(mnt, "old")); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"old": "new", "tmp": absent}},
		{"rename of an unsynced file: zero-length file", false, func(t *testing.T, mnt string) {
			appendFile(t, mnt, "old", "old", "fsync")
			appendFile(t, mnt, "tmp", "new", "")
			if err := os.Rename(filepath.Join(mnt, "tmp"), filepath.Join(mnt, "old")); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"old": "", "tmp": absent}},
		{"unlink is durable", false, func(t *testing.T, mnt string) {
			appendFile(t, mnt, "a", "data", "fsync")
			if err := os.Remove(filepath.Join(mnt, "a")); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"a": absent}},
		{"mkdir is durable", false, func(t *testing.T, mnt string) {
			if err := os.Mkdir(filepath.Join(mnt, "d"), 0o755); err != nil {
				t.Fatal(err)
			}
			appendFile(t, mnt, "d/a", "data", "fsync")
			appendFile(t, mnt, "d/b", "data", "")
		}, map[string]string{"d/a": "data", "d/b": ""}},
		{"hard link shares the unsynced data", false, func(t *testing.T, mnt string) {
			appendFile(t, mnt, "a", "data", "")
			if err := os.Link(filepath.Join(mnt, "a"), filepath.Join(mnt, "b")); err != nil {
				t.Fatal(err)
			}
			appendFile(t, mnt, "b", "", "fsync")
		}, map[string]string{"a": "data", "b": "data"}},
		{"sync attribute makes everything durable", false, func(t *testing.T, mnt string) {
			appendFile(t, mnt, "a", "data", "")
			appendFile(t, mnt, "b", big, "")
			if _, err := unix.Getxattr(mnt, SyncAttr, nil); err != nil {
				t.Fatal(err)
			}
			appendFile(t, mnt, "a", "more", "")
		}, map[string]string{"a": "data", "b": big}},
		{"unlinked files do not leak into new ones", false, func(t *testing.T, mnt string) {
			for i := 0; i < 20; i++ { // the backing filesystem reuses inode numbers
				appendFile(t, mnt, "old", "old data", "")
				f, err := os.Open(filepath.Join(mnt, "old"))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(filepath.Join(mnt, "old")); err != nil {
					t.Fatal(err)
				}
				b := make([]byte, 20)
				n, _ := f.ReadAt(b, 0)
				f.Close()
				if string(b[:n]) != "old data" {
					t.Fatalf("an open unlinked file reads %q", b[:n])
				}
				appendFile(t, mnt, "new", "", "")
				if got := readAll(t, mnt, "new"); got != "" {
					t.Fatalf("a new file reads %q", got)
				}
				if err := os.Remove(filepath.Join(mnt, "new")); err != nil {
					t.Fatal(err)
				}
			}
			appendFile(t, mnt, "new", "new", "")
		}, map[string]string{"old": absent, "new": ""}},
		{"a crash keeps everything", true, func(t *testing.T, mnt string) {
			appendFile(t, mnt, "a", "data", "")
			appendFile(t, mnt, "b", "0123456789", "fsync")
			truncateFile(t, mnt, "b", 3, false)
		}, map[string]string{"a": "data", "b": "012"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, backing, mnt := testMount(t, Options{})
			tt.do(t, mnt)
			if !tt.crash {
				m.PowerLoss()
			}
			unmount(t, m, mnt)
			if err := m.Err(); err != nil {
				t.Fatalf("end of the mount: %v", err)
			}
			if m.Cached() != 0 {
				t.Errorf("%d bytes still held after the end", m.Cached())
			}
			for name, want := range tt.want {
				if got := readAll(t, backing, name); got != want {
					t.Errorf("%s holds %q, want %q", name, trunc(got), trunc(want))
				}
			}
		})
	}
}

// TestMaxCached checks that a mount holding more than MaxCached writes
// the excess back (it becomes durable).
func TestMaxCached(t *testing.T) {
	m, backing, mnt := testMount(t, Options{MaxCached: 64 << 10})
	data := strings.Repeat("y", 1<<20)
	appendFile(t, mnt, "a", data, "")
	if c := m.Cached(); c > 64<<10 {
		t.Errorf("%d bytes held, more than MaxCached", c)
	}
	m.PowerLoss()
	unmount(t, m, mnt)
	got := readAll(t, backing, "a")
	if len(got) < 1<<20-64<<10 || got != data[:len(got)] {
		t.Errorf("after the power loss a holds %d bytes, want at least %d of the written ones", len(got), 1<<20-64<<10)
	}
	if st := m.Stats(); st.WrittenBack == 0 {
		t.Errorf("nothing written back: %+v", st)
	}
}

// TestSyncNotForwarded records the kernel's behaviour that the sync
// relay exists for: sync(2) and syncfs(2) do not reach a FUSE server.
// If a kernel starts forwarding them, this test says so.
func TestSyncNotForwarded(t *testing.T) {
	m, backing, mnt := testMount(t, Options{})
	f, err := os.Create(filepath.Join(mnt, "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("data"); err != nil {
		t.Fatal(err)
	}
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	if got := readAll(t, backing, "a"); got != "" {
		t.Logf("this kernel forwards sync or syncfs to FUSE (backing holds %q): the seccomp relay is redundant here", got)
	}
	if st := m.Stats(); st.Syncs != 0 || st.SyncFS != 0 {
		t.Errorf("stats %+v: no fsync was made", st)
	}
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:20] + "..." + s[len(s)-10:]
	}
	return s
}

// BenchmarkSeqWrite writes 4 KiB blocks sequentially, with an fsync after
// every write or every 100 writes, into a plain directory and through a
// Mount of a directory of the same filesystem (with and without
// SyncBacking, which fdatasyncs the backing file on every fsync).
func BenchmarkSeqWrite(b *testing.B) {
	block := make([]byte, 4096)
	for i := range block {
		block[i] = byte(i)
	}
	for _, every := range []int{1, 100} {
		for _, target := range []string{"plain", "durafs", "durafs-syncbacking"} {
			b.Run(fmt.Sprintf("fsync-every-%d/%s", every, target), func(b *testing.B) {
				dir := b.TempDir()
				if target != "plain" {
					_, _, dir = testMount(b, Options{SyncBacking: target == "durafs-syncbacking"})
				}
				fd, err := unix.Open(filepath.Join(dir, "f"), unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
				if err != nil {
					b.Fatal(err)
				}
				defer unix.Close(fd)
				b.SetBytes(int64(len(block)))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := unix.Write(fd, block); err != nil {
						b.Fatal(err)
					}
					if (i+1)%every == 0 {
						if err := unix.Fsync(fd); err != nil {
							b.Fatal(err)
						}
					}
				}
				if err := unix.Fsync(fd); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}
