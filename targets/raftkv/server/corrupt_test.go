package server

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// TestOpenCorruptLogStore: a damaged raft.db (cut short, or its pages
// zeroed, as jepsen's corrupt nemesis leaves it) is refused with an error
// naming the file, never a panic nor a silently empty log.
func TestOpenCorruptLogStore(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"truncated", func(t *testing.T, path string) {
			if err := os.Truncate(path, 3*4096+100); err != nil {
				t.Fatal(err)
			}
		}},
		// bolt panics on a freelist page that is not one: zero the
		// freelist page named by each of the two meta pages (the page id
		// is at byte 48 of a meta page: 16 bytes of page header, then
		// magic, version, page size, flags and the 16-byte root bucket).
		{"freelist zeroed", func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, meta := range []int{0, 4096} {
				pg := int(binary.LittleEndian.Uint64(b[meta+48:]))
				if pg < 2 || (pg+1)*4096 > len(b) {
					t.Fatalf("meta page at %d names freelist page %d of a %d-byte file", meta, pg, len(b))
				}
				clear(b[pg*4096 : (pg+1)*4096])
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := openLogStore(dir, false)
			if err != nil {
				t.Fatal(err)
			}
			logs := make([]*raft.Log, 200)
			for i := range logs {
				logs[i] = &raft.Log{Index: uint64(i + 1), Term: 1, Data: []byte(strings.Repeat("x", 500))}
			}
			if err := s.StoreLogs(logs); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "raft.db")
			tc.damage(t, path)
			s, err = openLogStore(dir, false)
			if err == nil {
				s.Close()
				t.Fatalf("open of a damaged raft.db succeeded")
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name %s", err, path)
			}
			t.Logf("refused: %v", err)
		})
	}
}
