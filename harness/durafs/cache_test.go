package durafs

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFileModel drives a file's unsynced state with random writes,
// truncations, syncs and power losses and compares every read with a
// plain byte slice: what the node sees (view) and what is durable.
func TestFileModel(t *testing.T) {
	for seed := int64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewSource(seed))
		path := filepath.Join(t.TempDir(), "f")
		initial := make([]byte, rng.Intn(3*pageSize))
		rng.Read(initial)
		if err := os.WriteFile(path, initial, 0o644); err != nil {
			t.Fatal(err)
		}
		open := func() *file {
			fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			f, err := newFile(fd)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
		f := open()
		durable := bytes.Clone(initial)
		view := bytes.Clone(initial)
		for step := 0; step < 200; step++ {
			switch op := rng.Intn(10); {
			case op < 5: // write
				off := rng.Intn(len(view) + 2*pageSize)
				b := make([]byte, 1+rng.Intn(2*pageSize))
				rng.Read(b)
				if err := f.writeAt(b, int64(off)); err != nil {
					t.Fatalf("seed %d step %d: write: %v", seed, step, err)
				}
				if end := off + len(b); end > len(view) {
					view = append(view, make([]byte, end-len(view))...)
				}
				copy(view[off:], b)
			case op < 7: // truncate
				size := rng.Intn(len(view) + 2*pageSize)
				f.truncate(int64(size))
				if size < len(view) {
					view = view[:size]
				} else {
					view = append(view, make([]byte, size-len(view))...)
				}
			case op < 8: // fsync
				if err := f.flush(false); err != nil {
					t.Fatalf("seed %d step %d: flush: %v", seed, step, err)
				}
				durable = bytes.Clone(view)
				got, _ := os.ReadFile(path)
				if !bytes.Equal(got, durable) {
					t.Fatalf("seed %d step %d: after a sync the backing file holds %d bytes, not the %d the node saw", seed, step, len(got), len(durable))
				}
			case op < 9: // power loss
				f.close()
				f = open()
				view = bytes.Clone(durable)
			default: // read a random range
				off := rng.Intn(len(view) + pageSize)
				b := make([]byte, rng.Intn(3*pageSize))
				n, err := f.readAt(b, int64(off))
				if err != nil {
					t.Fatal(err)
				}
				want := []byte{}
				if off < len(view) {
					want = view[off:min(off+len(b), len(view))]
				}
				if !bytes.Equal(b[:n], want) {
					t.Fatalf("seed %d step %d: read %d at %d: differs from the model", seed, step, len(b), off)
				}
			}
			if f.size != int64(len(view)) {
				t.Fatalf("seed %d step %d: size %d, model %d", seed, step, f.size, len(view))
			}
			all := make([]byte, len(view)+10)
			n, _ := f.readAt(all, 0)
			if !bytes.Equal(all[:n], view) {
				t.Fatalf("seed %d step %d: the file reads differently from the model", seed, step)
			}
		}
		f.close()
	}
}
