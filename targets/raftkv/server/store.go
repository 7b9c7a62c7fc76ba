package server

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"time"
	"unsafe"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// logStore is what a node keeps its Raft log and vote/term in.
type logStore interface {
	raft.LogStore
	raft.StableStore
	// Close closes the files.
	Close() error
}

// openLogStore opens DIR/raft.db. The correct store fsyncs every commit
// (bolt's default) and every growth of the file. With noFsync (the
// no-fsync bug) bolt never calls fsync: NoSync skips it after a commit and
// NoGrowSync after growing the file, so an entry Raft is told is stored
// (and then acknowledged to a client) may live only in the kernel's page
// cache. A killed process loses nothing; a machine that loses power (the
// power-loss nemesis) loses what the kernel had not yet written back.
//
// bolt panics on some damaged files (a bad freelist page), or faults on
// its memory map of a file cut short, instead of returning an error: both
// are returned as an error naming the file (the fault through
// debug.SetPanicOnFault), so that a node refuses to start on a corrupt
// raft.db with one line saying so.
func openLogStore(dir string, noFsync bool) (_ *raftboltdb.BoltStore, err error) {
	path := filepath.Join(dir, "raft.db")
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("open %s: the file is corrupt: %v", path, p)
		}
	}()
	s, err := raftboltdb.New(raftboltdb.Options{
		Path:        path,
		NoSync:      noFsync,
		BoltOptions: &bbolt.Options{Timeout: 2 * time.Second, NoSync: noFsync, NoGrowSync: noFsync},
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// openSnapshotStore opens DIR/snapshots, keeping the 2 newest snapshots.
// The correct store fsyncs each snapshot's files and directory before Raft
// uses it to compact the log. With noFsync it does not: raft's
// FileSnapshotStore has that mode for its own tests only (an unexported
// field, set here through reflection; an upgrade of raft that renames it
// makes every no-fsync start fail with this error, never silently sync).
func openSnapshotStore(dir string, noFsync bool, logger hclog.Logger) (*raft.FileSnapshotStore, error) {
	s, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(dir, "snapshots"), 2, logger)
	if err != nil {
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	if noFsync {
		f := reflect.ValueOf(s).Elem().FieldByName("noSync")
		if !f.IsValid() || f.Kind() != reflect.Bool {
			return nil, errors.New("open snapshot store: raft.FileSnapshotStore has no noSync field any more; the no-fsync bug cannot turn its fsyncs off")
		}
		reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().SetBool(true)
	}
	return s, nil
}
