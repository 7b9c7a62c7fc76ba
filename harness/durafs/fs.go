package durafs

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// SyncAttr is the extended attribute whose lookup on the mount's root
// makes every unsynced write durable: the syncfs relay (see Exec) asks
// for it when the store calls sync(2) or syncfs(2), which the kernel does
// not forward to a FUSE server.
const SyncAttr = "user.jepsen.durafs.syncfs"

// DefaultMaxCached bounds the unsynced bytes a mount holds when
// Options.MaxCached is zero.
const DefaultMaxCached = 64 << 20

// maxWrite is the largest write request the kernel sends.
const maxWrite = 1 << 20

// Options configure a mount.
type Options struct {
	// SyncBacking makes a durable write fdatasync the backing file too,
	// so that an fsync costs what it costs on the real disk. Without it
	// the backing file's page cache stands for the disk.
	SyncBacking bool
	// MaxCached bounds the unsynced bytes held (default
	// DefaultMaxCached): past it the files holding most are written back
	// and become durable, as the kernel writes back dirty pages under
	// memory pressure.
	MaxCached int64
	// Written, if set, collects the backing inode numbers of the files
	// written through the mount (the candidates for Corrupt).
	Written *InodeSet
}

// Stats count what a mount did.
type Stats struct {
	Writes      int64 `json:"writes"`       // write requests
	Syncs       int64 `json:"syncs"`        // fsync and fdatasync requests
	SyncFS      int64 `json:"syncfs"`       // sync and syncfs, through the relay
	Flushed     int64 `json:"flushed"`      // bytes made durable by a sync
	WrittenBack int64 `json:"written_back"` // bytes made durable by MaxCached or a crash
	Dropped     int64 `json:"dropped"`      // bytes lost to a power loss
}

// InodeSet is a set of inode numbers, safe for concurrent use.
type InodeSet struct {
	mu sync.Mutex
	m  map[uint64]bool
}

// Add adds ino.
func (s *InodeSet) Add(ino uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[uint64]bool{}
	}
	s.m[ino] = true
}

// Has reports whether ino was added.
func (s *InodeSet) Has(ino uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[ino]
}

// Mount is one FUSE mount of a backing directory: it passes every
// operation through to the backing directory except the data of regular
// files, whose writes and size changes it keeps until they are made
// durable (see the package documentation).
type Mount struct {
	backing string // backing directory path (may be /proc/self/fd/N)
	opts    Options
	srv     *fuse.Server
	done    chan struct{} // closed when the kernel ended the connection

	mu     sync.Mutex
	files  map[inoKey]*file // by FUSE inode
	cached atomic.Int64
	lost   atomic.Bool // PowerLoss armed: drop, not write back, at the end
	err    error       // from the end of the connection

	writes, syncs, syncfs, flushed, writtenBack, dropped atomic.Int64
}

// NewMount mounts a Mount of backing (a directory) over target. nsFd,
// if not negative, is a mount namespace (an open /proc/PID/ns/mnt) in
// which target is looked up and the mount made; the calling process needs
// CAP_SYS_ADMIN (and CAP_SYS_CHROOT for nsFd). The mount serves until the
// kernel ends the connection: when target is unmounted, or when the last
// process of the namespace exits.
func NewMount(backing, target string, nsFd int, opts Options) (*Mount, error) {
	if opts.MaxCached <= 0 {
		opts.MaxCached = DefaultMaxCached
	}
	if opts.Written == nil {
		opts.Written = &InodeSet{}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		return nil, fmt.Errorf("backing directory: %w", err)
	}
	m := &Mount{backing: backing, opts: opts, files: map[inoKey]*file{}, done: make(chan struct{})}
	lr := &fs.LoopbackRoot{Path: backing, Dev: uint64(st.Dev)}
	lr.NewNode = func(r *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
		return &node{LoopbackNode: fs.LoopbackNode{RootData: r}, m: m}
	}
	root := lr.NewNode(lr, nil, "", &st)
	lr.RootNode = root
	fuseFd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/fuse: %w", err)
	}
	if err := mountIn(nsFd, target, fuseFd); err != nil {
		unix.Close(fuseFd)
		return nil, err
	}
	timeout := time.Second
	mo := fuse.MountOptions{Name: "durafs", FsName: "durafs", MaxWrite: maxWrite, MaxReadAhead: maxWrite}
	raw := fs.NewNodeFS(root, &fs.Options{MountOptions: mo, EntryTimeout: &timeout, AttrTimeout: &timeout})
	srv, err := fuse.NewServer(raw, "/dev/fd/"+strconv.Itoa(fuseFd), &mo)
	if err != nil {
		unix.Close(fuseFd)
		return nil, fmt.Errorf("fuse server: %w", err)
	}
	m.srv = srv
	go func() {
		srv.Serve()
		m.end()
		close(m.done)
	}()
	if nsFd < 0 {
		// This process may use the mount itself: make the kernel learn
		// now that it does not poll, or Go's poller in this process
		// could wait on its own server.
		if err := srv.WaitMount(); err == nil {
			pollHack(target)
		}
	}
	return m, nil
}

// pollHack opens go-fuse's magic poll file on the mount and polls it, so
// that the server answers the kernel's first POLL with ENOSYS (what
// go-fuse's own WaitMount does for the mounts it makes itself).
func pollHack(target string) {
	fd, err := unix.Open(filepath.Join(target, ".go-fuse-epoll-hack"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLPRI | unix.POLLOUT}}, 0)
	unix.Close(fd)
}

// mountIn mounts the FUSE connection fuseFd over target, in the mount
// namespace nsFd if it is not negative. It works on a thread of its own,
// which it never gives back (the thread ends with it), so that no thread
// of this process stays in that namespace and keeps it alive.
func mountIn(nsFd int, target string, fuseFd int) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if nsFd >= 0 {
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				errc <- fmt.Errorf("unshare CLONE_FS: %w", err)
				return
			}
			if err := unix.Setns(nsFd, unix.CLONE_NEWNS); err != nil {
				errc <- fmt.Errorf("enter the node's mount namespace: %w", err)
				return
			}
		}
		var st unix.Stat_t
		if err := unix.Stat(target, &st); err != nil {
			errc <- fmt.Errorf("mount point: %w", err)
			return
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			errc <- fmt.Errorf("mount point %s: not a directory", target)
			return
		}
		data := fmt.Sprintf("fd=%d,rootmode=%o,user_id=%d,group_id=%d,allow_other,default_permissions,max_read=%d",
			fuseFd, st.Mode&unix.S_IFMT, unix.Geteuid(), unix.Getegid(), maxWrite)
		if err := unix.Mount("durafs", target, "fuse.durafs", unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
			errc <- fmt.Errorf("mount fuse on %s: %w", target, err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

// Done is closed when the kernel has ended the mount's connection and
// the mount wrote back (or, after PowerLoss, dropped) what it held.
func (m *Mount) Done() <-chan struct{} { return m.done }

// Err returns the error of writing back at the end, once Done is closed.
func (m *Mount) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// PowerLoss arms the mount: when its connection ends (the node's last
// process died), everything not yet durable is dropped instead of
// written back. Writes and syncs until then proceed as usual.
func (m *Mount) PowerLoss() { m.lost.Store(true) }

// Stats returns the mount's counters.
func (m *Mount) Stats() Stats {
	return Stats{Writes: m.writes.Load(), Syncs: m.syncs.Load(), SyncFS: m.syncfs.Load(), Flushed: m.flushed.Load(),
		WrittenBack: m.writtenBack.Load(), Dropped: m.dropped.Load()}
}

// Cached returns the unsynced bytes held (in whole pages).
func (m *Mount) Cached() int64 { return m.cached.Load() }

// end runs when the connection has ended: it drops (after PowerLoss) or
// writes back every file.
func (m *Mount) end() {
	lost := m.lost.Load()
	var errs []error
	for _, f := range m.snapshot() {
		f.mu.Lock()
		if !f.dead {
			n := f.cachedBytes()
			if lost {
				m.dropped.Add(n)
			} else {
				m.writtenBack.Add(n)
				if err := f.flush(false); err != nil {
					errs = append(errs, err)
				}
			}
			m.cached.Add(-n)
			m.forget(f)
		}
		f.mu.Unlock()
	}
	m.mu.Lock()
	m.err = errors.Join(errs...)
	m.mu.Unlock()
}

// snapshot returns the files held now.
func (m *Mount) snapshot() []*file {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*file, 0, len(m.files))
	for _, f := range m.files {
		out = append(out, f)
	}
	return out
}

// lock returns the state of inode ino, locked, creating it with a
// backing file from open if it has none.
func (m *Mount) lock(ino inoKey, open func() (int, error)) (*file, error) {
	for {
		m.mu.Lock()
		f := m.files[ino]
		if f == nil {
			fd, err := open()
			if err != nil {
				m.mu.Unlock()
				return nil, err
			}
			if f, err = newFile(fd); err != nil {
				unix.Close(fd)
				m.mu.Unlock()
				return nil, err
			}
			f.key = ino
			m.files[ino] = f
			m.opts.Written.Add(f.ino)
		}
		m.mu.Unlock()
		f.mu.Lock()
		if !f.dead {
			return f, nil
		}
		f.mu.Unlock()
	}
}

// peek returns the state of inode ino, locked, or nil if it has none.
func (m *Mount) peek(ino inoKey) *file {
	m.mu.Lock()
	f := m.files[ino]
	m.mu.Unlock()
	if f == nil {
		return nil
	}
	f.mu.Lock()
	if f.dead {
		f.mu.Unlock()
		return nil
	}
	return f
}

// forget removes f, which is locked and clean or dropped; the caller
// took its bytes off the count.
func (m *Mount) forget(f *file) {
	m.mu.Lock()
	if m.files[f.key] == f {
		delete(m.files, f.key)
	}
	m.mu.Unlock()
	f.dead = true
	f.close()
}

// syncFile makes f durable and forgets it; f is locked.
func (m *Mount) syncFile(f *file, counter *atomic.Int64) error {
	n := f.cachedBytes()
	if err := f.flush(m.opts.SyncBacking); err != nil {
		return err
	}
	m.cached.Add(-n)
	counter.Add(n)
	m.forget(f)
	return nil
}

// SyncAll makes every unsynced write durable, as sync(2) would.
func (m *Mount) SyncAll() error {
	m.syncfs.Add(1)
	var errs []error
	for _, f := range m.snapshot() {
		f.mu.Lock()
		if !f.dead {
			errs = append(errs, m.syncFile(f, &m.flushed))
		}
		f.mu.Unlock()
	}
	return errors.Join(errs...)
}

// writeback makes the files holding most durable until at most half of
// MaxCached is held.
func (m *Mount) writeback() {
	if m.cached.Load() <= m.opts.MaxCached {
		return
	}
	fs := m.snapshot()
	slices.SortFunc(fs, func(a, b *file) int { return int(b.cachedBytes()/pageSize - a.cachedBytes()/pageSize) })
	for _, f := range fs {
		if m.cached.Load() <= m.opts.MaxCached/2 {
			return
		}
		f.mu.Lock()
		if !f.dead {
			_ = m.syncFile(f, &m.writtenBack) // a failure shows at the next sync
		}
		f.mu.Unlock()
	}
}

// node is a file or directory of a Mount.
type node struct {
	fs.LoopbackNode
	m *Mount
}

// path returns the node's backing path.
func (n *node) path() string {
	return filepath.Join(n.RootData.Path, n.Path(nil))
}

// inoKey identifies an inode of a Mount: its number and generation (a
// number the backing filesystem reuses gets another generation).
type inoKey struct{ ino, gen uint64 }

func keyOf(a fs.StableAttr) inoKey { return inoKey{a.Ino, a.Gen} }

// ino returns the key of the node's unsynced state.
func (n *node) ino() inoKey { return keyOf(n.StableAttr()) }

// openPath opens the node's backing file read-write, for a size change
// without an open file.
func (n *node) openPath() (int, error) {
	return unix.Open(n.path(), unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
}

// fixSize sets the size in attr to the one the node sees.
func (m *Mount) fixSize(ino inoKey, attr *fuse.Attr) {
	if f := m.peek(ino); f != nil {
		attr.Size = uint64(f.size)
		attr.Blocks = (attr.Size + 511) / 512
		f.mu.Unlock()
	}
}

var (
	_ fs.NodeLookuper   = (*node)(nil)
	_ fs.NodeGetattrer  = (*node)(nil)
	_ fs.NodeSetattrer  = (*node)(nil)
	_ fs.NodeOpener     = (*node)(nil)
	_ fs.NodeCreater    = (*node)(nil)
	_ fs.NodeGetxattrer = (*node)(nil)
	_ fs.NodeUnlinker   = (*node)(nil)
	_ fs.NodeRenamer    = (*node)(nil)
)

// Lookup looks name up, with the size the node sees.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Lookup(ctx, name, out)
	if errno == 0 {
		n.m.fixSize(keyOf(ch.StableAttr()), &out.Attr)
	}
	return ch, errno
}

// Getattr returns the attributes, with the size the node sees.
func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	errno := n.LoopbackNode.Getattr(ctx, f, out)
	if errno == 0 {
		n.m.fixSize(n.ino(), &out.Attr)
	}
	return errno
}

// Setattr keeps a size change with the unsynced writes and passes the
// other changes (mode, owner, times) through.
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok {
		open := n.openPath
		if h, ok := f.(*handle); ok {
			open = h.reopen
		}
		st, err := n.m.lock(n.ino(), open)
		if err != nil {
			return fs.ToErrno(err)
		}
		before := st.cachedBytes()
		st.truncate(int64(sz))
		n.m.cached.Add(st.cachedBytes() - before)
		st.mu.Unlock()
		in.Valid &^= fuse.FATTR_SIZE
	}
	if errno := n.LoopbackNode.Setattr(ctx, f, in, out); errno != 0 {
		return errno
	}
	n.m.fixSize(n.ino(), &out.Attr)
	return 0
}

// openFlags are the flags a node's open keeps for the backing file:
// truncation, creation and appending are the mount's business.
const droppedFlags = unix.O_TRUNC | unix.O_CREAT | unix.O_EXCL | unix.O_APPEND | unix.O_ACCMODE |
	unix.O_DIRECT | unix.O_SYNC | unix.O_DSYNC | fuse.FMODE_EXEC

// openBacking opens a regular file's backing file, read-write if it can.
func openBacking(path string, flags uint32) (int, error) {
	base := int(flags)&^droppedFlags | unix.O_CLOEXEC | unix.O_NOFOLLOW
	fd, err := unix.Open(path, base|unix.O_RDWR, 0)
	if err == nil {
		return fd, nil
	}
	return unix.Open(path, base|int(flags)&unix.O_ACCMODE, 0)
}

// Open opens the backing file; O_TRUNC becomes an unsynced truncation.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fd, err := openBacking(n.path(), flags)
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	h := &handle{n: n, fd: fd}
	if flags&unix.O_TRUNC != 0 && flags&unix.O_ACCMODE != unix.O_RDONLY {
		if errno := h.truncate(0); errno != 0 {
			unix.Close(fd)
			return nil, 0, errno
		}
	}
	return h, 0, 0
}

// Create creates the file in the backing directory at once (a creation
// is durable) and opens it; O_TRUNC of an existing file becomes an
// unsynced truncation.
func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	ch, lf, _, errno := n.LoopbackNode.Create(ctx, name, flags&^unix.O_TRUNC, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	if r, ok := lf.(fs.FileReleaser); ok {
		r.Release(ctx)
	}
	cn, ok := ch.Operations().(*node)
	if !ok {
		return nil, nil, 0, syscall.EIO
	}
	// The child is not in the tree yet: its path is the parent's and
	// name.
	fd, err := openBacking(filepath.Join(n.path(), name), flags)
	if err != nil {
		return nil, nil, 0, fs.ToErrno(err)
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil {
		n.m.opts.Written.Add(st.Ino)
	}
	h := &handle{n: cn, fd: fd}
	if flags&unix.O_TRUNC != 0 && out.Attr.Size > 0 {
		if errno := h.truncate(0); errno != 0 {
			unix.Close(fd)
			return nil, nil, 0, errno
		}
	}
	n.m.fixSize(cn.ino(), &out.Attr)
	return ch, h, 0, 0
}

// Unlink removes name at once; a file whose last link it was gives up its
// unsynced state (written back to the dead inode, which open descriptors
// may still read).
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	ch := n.GetChild(name)
	errno := n.LoopbackNode.Unlink(ctx, name)
	if errno == 0 && ch != nil {
		n.m.settle(keyOf(ch.StableAttr()))
	}
	return errno
}

// Rename renames at once; a file it replaces is settled as by Unlink.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	var ch *fs.Inode
	if flags&unix.RENAME_EXCHANGE == 0 {
		ch = newParent.EmbeddedInode().GetChild(newName)
	}
	errno := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
	if errno == 0 && ch != nil {
		n.m.settle(keyOf(ch.StableAttr()))
	}
	return errno
}

// settle writes back and forgets the unsynced state of an inode that has
// no link left.
func (m *Mount) settle(key inoKey) {
	f := m.peek(key)
	if f == nil {
		return
	}
	defer f.mu.Unlock()
	var st unix.Stat_t
	if unix.Fstat(f.fd, &st) != nil || st.Nlink > 0 {
		return
	}
	n := f.cachedBytes()
	_ = f.flush(false) // into an unlinked inode: nothing durable depends on it
	m.cached.Add(-n)
	m.forget(f)
}

// Getxattr answers SyncAttr on the root by making everything durable;
// other attributes pass through.
func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if attr == SyncAttr && n.IsRoot() {
		if err := n.m.SyncAll(); err != nil {
			return 0, syscall.EIO
		}
		return 0, 0
	}
	return n.LoopbackNode.Getxattr(ctx, attr, dest)
}

// handle is an open regular file of a Mount.
type handle struct {
	n  *node
	fd int
}

var (
	_ fs.FileReader    = (*handle)(nil)
	_ fs.FileWriter    = (*handle)(nil)
	_ fs.FileFsyncer   = (*handle)(nil)
	_ fs.FileFlusher   = (*handle)(nil)
	_ fs.FileReleaser  = (*handle)(nil)
	_ fs.FileGetattrer = (*handle)(nil)
	_ fs.FileAllocater = (*handle)(nil)
)

// reopen opens the handle's file again, read-write, for its unsynced
// state (which outlives the handle).
func (h *handle) reopen() (int, error) {
	return unix.Open("/proc/self/fd/"+strconv.Itoa(h.fd), unix.O_RDWR|unix.O_CLOEXEC, 0)
}

func (h *handle) truncate(size int64) syscall.Errno {
	m := h.n.m
	f, err := m.lock(h.n.ino(), h.reopen)
	if err != nil {
		return fs.ToErrno(err)
	}
	before := f.cachedBytes()
	f.truncate(size)
	m.cached.Add(f.cachedBytes() - before)
	f.mu.Unlock()
	return 0
}

// Read reads what the node sees: the unsynced writes over the backing
// file.
func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if f := h.n.m.peek(h.n.ino()); f != nil {
		n, err := f.readAt(dest, off)
		f.mu.Unlock()
		if err != nil {
			return nil, fs.ToErrno(err)
		}
		return fuse.ReadResultData(dest[:n]), 0
	}
	n, err := unix.Pread(h.fd, dest, off)
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// Write keeps data with the unsynced writes.
func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	m := h.n.m
	m.writes.Add(1)
	f, err := m.lock(h.n.ino(), h.reopen)
	if err != nil {
		return 0, fs.ToErrno(err)
	}
	before := f.cachedBytes()
	err = f.writeAt(data, off)
	m.cached.Add(f.cachedBytes() - before)
	f.mu.Unlock()
	if err != nil {
		return 0, fs.ToErrno(err)
	}
	m.writeback()
	return uint32(len(data)), 0
}

// Fsync makes the file's unsynced writes and size durable (fsync and
// fdatasync alike).
func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	m := h.n.m
	m.syncs.Add(1)
	f := m.peek(h.n.ino())
	if f == nil {
		return 0
	}
	defer f.mu.Unlock()
	if err := m.syncFile(f, &m.flushed); err != nil {
		return fs.ToErrno(err)
	}
	return 0
}

// Flush (at each close) makes nothing durable.
func (h *handle) Flush(ctx context.Context) syscall.Errno { return 0 }

// Release closes the backing file; unsynced writes stay.
func (h *handle) Release(ctx context.Context) syscall.Errno {
	if h.fd >= 0 {
		unix.Close(h.fd)
		h.fd = -1
	}
	return 0
}

// Getattr returns the backing file's attributes (the node fixes the
// size).
func (h *handle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Fstat(h.fd, &st); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStat(&st)
	return 0
}

// Allocate: mode 0 grows the file (unsynced, like a write of zeros);
// FALLOC_FL_KEEP_SIZE reserves backing space and changes nothing the
// node sees; other modes are not supported.
func (h *handle) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	switch mode {
	case 0:
		m := h.n.m
		f, err := m.lock(h.n.ino(), h.reopen)
		if err != nil {
			return fs.ToErrno(err)
		}
		if end := int64(off + size); end > f.size {
			f.truncate(end)
		}
		f.mu.Unlock()
		return 0
	case unix.FALLOC_FL_KEEP_SIZE:
		return fs.ToErrno(unix.Fallocate(h.fd, unix.FALLOC_FL_KEEP_SIZE, int64(off), int64(size)))
	}
	return syscall.EOPNOTSUPP
}
