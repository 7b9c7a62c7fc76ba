package server

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// logStore is what a node keeps its Raft log and vote/term in.
type logStore interface {
	raft.LogStore
	raft.StableStore
	// Close flushes what is buffered (if anything) and closes the files.
	Close() error
	// crash drops what is not yet on disk, as a SIGKILL would, and
	// discards every later write; Close must still be called. Used by tests.
	crash()
}

// openLogStore opens DIR/raft.db. The correct store fsyncs every write
// (bolt's default). With noFsync, bolt does not fsync and, on top of it,
// writes are buffered in process memory and flushed every flushEvery.
func openLogStore(dir string, noFsync bool, flushEvery time.Duration) (logStore, error) {
	path := filepath.Join(dir, "raft.db")
	bolt, err := raftboltdb.New(raftboltdb.Options{
		Path:        path,
		NoSync:      noFsync,
		BoltOptions: &bbolt.Options{Timeout: 2 * time.Second, NoSync: noFsync},
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if !noFsync {
		return syncedStore{bolt}, nil
	}
	return newLazyStore(bolt, flushEvery), nil
}

// syncedStore is the correct store: every write is fsync'd before it returns.
type syncedStore struct {
	*raftboltdb.BoltStore
}

func (s syncedStore) crash() {}

// lazyStore implements the no-fsync bug: log entries and stable values are
// acknowledged to Raft while they are only in process memory, and written
// to bolt (itself without fsync) every flushEvery. A process killed with
// SIGKILL loses whatever was not flushed yet, exactly as an unsynced page
// cache would be lost by a machine crash.
type lazyStore struct {
	disk *raftboltdb.BoltStore

	mu         sync.Mutex
	logs       map[uint64]*raft.Log // pending entries by index
	minPending uint64
	maxPending uint64
	kv         map[string][]byte // pending Set
	u64        map[string]uint64 // pending SetUint64
	closed     bool
	crashed    bool // writes are discarded: the process is "dead"

	stop chan struct{}
	done chan struct{}
}

func newLazyStore(disk *raftboltdb.BoltStore, flushEvery time.Duration) *lazyStore {
	s := &lazyStore{
		disk: disk,
		logs: map[uint64]*raft.Log{},
		kv:   map[string][]byte{},
		u64:  map[string]uint64{},
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.mu.Lock()
				_ = s.flushLocked()
				s.mu.Unlock()
			}
		}
	}()
	return s
}

var errStoreClosed = errors.New("log store is closed")

// flushLocked writes every pending entry and value to bolt.
func (s *lazyStore) flushLocked() error {
	if s.closed {
		return errStoreClosed
	}
	if s.crashed {
		return nil
	}
	if len(s.logs) > 0 {
		idx := make([]uint64, 0, len(s.logs))
		for i := range s.logs {
			idx = append(idx, i)
		}
		sort.Slice(idx, func(a, b int) bool { return idx[a] < idx[b] })
		batch := make([]*raft.Log, len(idx))
		for i, j := range idx {
			batch[i] = s.logs[j]
		}
		if err := s.disk.StoreLogs(batch); err != nil {
			return fmt.Errorf("flush log entries: %w", err)
		}
		s.logs = map[uint64]*raft.Log{}
		s.minPending, s.maxPending = 0, 0
	}
	for k, v := range s.kv {
		if err := s.disk.Set([]byte(k), v); err != nil {
			return fmt.Errorf("flush %q: %w", k, err)
		}
		delete(s.kv, k)
	}
	for k, v := range s.u64 {
		if err := s.disk.SetUint64([]byte(k), v); err != nil {
			return fmt.Errorf("flush %q: %w", k, err)
		}
		delete(s.u64, k)
	}
	return nil
}

// FirstIndex implements raft.LogStore.
func (s *lazyStore) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first, err := s.disk.FirstIndex()
	if err != nil {
		return 0, err
	}
	if len(s.logs) > 0 && (first == 0 || s.minPending < first) {
		first = s.minPending
	}
	return first, nil
}

// LastIndex implements raft.LogStore.
func (s *lazyStore) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last, err := s.disk.LastIndex()
	if err != nil {
		return 0, err
	}
	if len(s.logs) > 0 && s.maxPending > last {
		last = s.maxPending
	}
	return last, nil
}

// GetLog implements raft.LogStore.
func (s *lazyStore) GetLog(index uint64, log *raft.Log) error {
	s.mu.Lock()
	if l, ok := s.logs[index]; ok {
		*log = *l
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	return s.disk.GetLog(index, log)
}

// StoreLog implements raft.LogStore.
func (s *lazyStore) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs implements raft.LogStore: the entries are only kept in memory.
func (s *lazyStore) StoreLogs(logs []*raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStoreClosed
	}
	if s.crashed {
		return nil
	}
	for _, l := range logs {
		cp := *l
		s.logs[l.Index] = &cp
		if s.minPending == 0 || l.Index < s.minPending {
			s.minPending = l.Index
		}
		if l.Index > s.maxPending {
			s.maxPending = l.Index
		}
	}
	return nil
}

// DeleteRange implements raft.LogStore. It flushes first so that the
// deletion applies to one place only.
func (s *lazyStore) DeleteRange(min, max uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.flushLocked(); err != nil {
		return err
	}
	if s.crashed {
		return nil
	}
	return s.disk.DeleteRange(min, max)
}

// Set implements raft.StableStore.
func (s *lazyStore) Set(key, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStoreClosed
	}
	if s.crashed {
		return nil
	}
	s.kv[string(key)] = append([]byte(nil), val...)
	return nil
}

// Get implements raft.StableStore.
func (s *lazyStore) Get(key []byte) ([]byte, error) {
	s.mu.Lock()
	if v, ok := s.kv[string(key)]; ok {
		s.mu.Unlock()
		return append([]byte(nil), v...), nil
	}
	s.mu.Unlock()
	return s.disk.Get(key)
}

// SetUint64 implements raft.StableStore.
func (s *lazyStore) SetUint64(key []byte, val uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStoreClosed
	}
	if s.crashed {
		return nil
	}
	s.u64[string(key)] = val
	return nil
}

// GetUint64 implements raft.StableStore.
func (s *lazyStore) GetUint64(key []byte) (uint64, error) {
	s.mu.Lock()
	if v, ok := s.u64[string(key)]; ok {
		s.mu.Unlock()
		return v, nil
	}
	s.mu.Unlock()
	return s.disk.GetUint64(key)
}

// Close flushes what is pending (a graceful shutdown keeps it) and closes.
func (s *lazyStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	ferr := s.flushLocked()
	s.closed = true
	s.logs, s.kv, s.u64 = nil, nil, nil
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	if err := s.disk.Close(); err != nil {
		return fmt.Errorf("close log store: %w", err)
	}
	return ferr
}

func (s *lazyStore) crash() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crashed = true
	s.logs = map[uint64]*raft.Log{}
	s.minPending, s.maxPending = 0, 0
	s.kv = map[string][]byte{}
	s.u64 = map[string]uint64{}
}
