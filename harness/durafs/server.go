package durafs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jepsen-go/jepsen/history"
)

// request is one message to the server, one JSON line on a connection of
// its unix socket; attach also carries two file descriptors.
type request struct {
	Op   string `json:"op"`             // probe, attach, relay, power-loss, await, files, corrupt, status
	Node string `json:"node,omitempty"` // the node acted on
	// Dir is the data directory in the node's mount namespace (attach).
	Dir string `json:"dir,omitempty"`
	// TimeoutMS bounds await.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// Corruption is what corrupt does.
	Corruption *Corruption `json:"corruption,omitempty"`
}

// reply is the server's answer.
type reply struct {
	Error  string                `json:"error,omitempty"`
	Armed  bool                  `json:"armed,omitempty"` // power-loss: a mount was armed
	Stats  *Stats                `json:"stats,omitempty"`
	Files  []FileInfo            `json:"files,omitempty"`
	Status map[string]NodeStatus `json:"status,omitempty"`
}

// FileInfo is a regular file of a node's data directory.
type FileInfo struct {
	Path    string `json:"path"` // relative to the data directory
	Size    int64  `json:"size"`
	Written bool   `json:"written"` // written through the mount
}

// NodeStatus is what the server holds for a node.
type NodeStatus struct {
	Mounted bool  `json:"mounted"` // a mount serves now
	Mounts  int   `json:"mounts"`  // mounts so far
	Cached  int64 `json:"cached"`  // unsynced bytes held
	Stats   Stats `json:"stats"`   // of the current or last mount
	// LastMountMicros is how long the last mount took, from the node's
	// request to the mount serving.
	LastMountMicros int64 `json:"last_mount_us"`
	// Relays are the sync relays serving (one per live node process
	// tree; a relay ends when the processes do).
	Relays int `json:"relays"`
}

// Corruption is a disk fault done to one file while its node was down.
type Corruption struct {
	File   string `json:"file"`           // relative to the data directory
	Kind   string `json:"kind"`           // "bitflip" or "truncate"
	Offset int64  `json:"offset"`         // the byte flipped, or the new size
	Mask   byte   `json:"mask,omitempty"` // bitflip: the bits flipped
	Size   int64  `json:"size"`           // the file's size before
}

// Kinds of Corruption.
const (
	KindBitflip  = history.CorruptBitFlip
	KindTruncate = history.CorruptTruncate
)

// nodeState is what the server keeps for one node across its mounts.
type nodeState struct {
	mu        sync.Mutex // serialises attach, files and corrupt
	cur       *Mount     // the last mount (nil before the first)
	backingFd int        // the data directory of the last attach, or -1
	mounts    int
	lastMount time.Duration
	relays    atomic.Int32
	written   InodeSet
}

// server serves the mounts of every node of a run, and the controller's
// requests, on one unix socket.
type server struct {
	opts Options
	logf func(format string, args ...any)

	mu    sync.Mutex
	nodes map[string]*nodeState
}

// Serve runs the server on socket until ctx ends. Mounts it made end
// when this process exits (the kernel aborts their connections).
func Serve(ctx context.Context, socket string, opts Options, logf func(format string, args ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	s := &server{opts: opts, logf: logf, nodes: map[string]*nodeState{}}
	_ = os.Remove(socket)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		return fmt.Errorf("durafs serve: %w", err)
	}
	_ = os.Chmod(socket, 0o666) // the harness and the nodes' users connect
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	logf("durafs: serving on %s", socket)
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			continue
		}
		go s.serveConn(conn)
	}
}

// serveConn answers the one request on conn.
func (s *server) serveConn(conn *net.UnixConn) {
	defer conn.Close()
	req, fds, err := readRequest(conn)
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	var rep reply
	if err != nil {
		rep.Error = "bad request: " + err.Error()
	} else {
		_ = conn.SetDeadline(time.Time{})
		rep = s.handle(req, fds)
		fds = nil // handle owns them
	}
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_ = json.NewEncoder(conn).Encode(rep)
}

// readRequest reads one JSON line, with the file descriptors sent along.
func readRequest(conn *net.UnixConn) (request, []int, error) {
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	var fds []int
	if oobn > 0 {
		if msgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil {
			for _, m := range msgs {
				if rights, rerr := unix.ParseUnixRights(&m); rerr == nil {
					fds = append(fds, rights...)
				}
			}
		}
	}
	if err != nil {
		return request{}, fds, err
	}
	data := buf[:n]
	if !bytes.Contains(data, []byte{'\n'}) {
		rest, rerr := bufio.NewReader(io.LimitReader(conn, 64<<10)).ReadBytes('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return request{}, fds, rerr
		}
		data = append(data, rest...)
	}
	var req request
	if err := json.Unmarshal(data, &req); err != nil {
		return request{}, fds, err
	}
	return req, fds, nil
}

// node returns the state of name, creating it.
func (s *server) node(name string) *nodeState {
	s.mu.Lock()
	defer s.mu.Unlock()
	ns := s.nodes[name]
	if ns == nil {
		ns = &nodeState{backingFd: -1}
		s.nodes[name] = ns
	}
	return ns
}

// handle carries out req; it owns fds.
func (s *server) handle(req request, fds []int) reply {
	closeFds := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	fail := func(format string, args ...any) reply {
		return reply{Error: fmt.Sprintf(format, args...)}
	}
	if req.Op != "attach" && req.Op != "relay" {
		closeFds()
	}
	if req.Op != "probe" && req.Op != "status" && req.Node == "" {
		return fail("%s: no node named", req.Op)
	}
	switch req.Op {
	case "probe":
		if err := probe(); err != nil {
			return fail("%v", err)
		}
		return reply{}
	case "attach":
		if len(fds) != 2 {
			closeFds()
			return fail("attach %s: want 2 file descriptors (mount namespace, data directory), got %d", req.Node, len(fds))
		}
		if err := s.attach(req.Node, req.Dir, fds[0], fds[1]); err != nil {
			return fail("%v", err)
		}
		return reply{}
	case "relay":
		if len(fds) != 1 {
			closeFds()
			return fail("relay %s: want 1 file descriptor (a seccomp listener), got %d", req.Node, len(fds))
		}
		ns := s.node(req.Node)
		ns.relays.Add(1)
		go serveSyncs(fds[0], &ns.relays, func() error {
			ns.mu.Lock()
			cur := ns.cur
			ns.mu.Unlock()
			if cur == nil || isDone(cur) {
				return nil
			}
			return cur.SyncAll()
		}, s.logf)
		return reply{}
	case "power-loss":
		ns := s.node(req.Node)
		ns.mu.Lock()
		defer ns.mu.Unlock()
		if ns.cur == nil || isDone(ns.cur) {
			return reply{}
		}
		ns.cur.PowerLoss()
		return reply{Armed: true}
	case "await":
		ns := s.node(req.Node)
		ns.mu.Lock()
		cur := ns.cur
		ns.mu.Unlock()
		if cur == nil {
			return reply{}
		}
		select {
		case <-cur.Done():
		case <-time.After(time.Duration(req.TimeoutMS) * time.Millisecond):
			return fail("%s: its mount still serves %v after it was killed", req.Node, time.Duration(req.TimeoutMS)*time.Millisecond)
		}
		st := cur.Stats()
		if err := cur.Err(); err != nil {
			return reply{Stats: &st, Error: fmt.Sprintf("%s: write back: %v", req.Node, err)}
		}
		return reply{Stats: &st}
	case "files":
		ns := s.node(req.Node)
		ns.mu.Lock()
		defer ns.mu.Unlock()
		files, err := ns.files(req.Node)
		if err != nil {
			return fail("%v", err)
		}
		return reply{Files: files}
	case "corrupt":
		if req.Corruption == nil {
			return fail("corrupt %s: nothing to do", req.Node)
		}
		ns := s.node(req.Node)
		ns.mu.Lock()
		defer ns.mu.Unlock()
		if err := ns.corrupt(req.Node, req.Corruption); err != nil {
			return fail("%v", err)
		}
		return reply{}
	case "status":
		st := map[string]NodeStatus{}
		s.mu.Lock()
		names := make([]string, 0, len(s.nodes))
		for n := range s.nodes {
			names = append(names, n)
		}
		s.mu.Unlock()
		for _, n := range names {
			ns := s.node(n)
			ns.mu.Lock()
			x := NodeStatus{Mounts: ns.mounts, LastMountMicros: ns.lastMount.Microseconds(), Relays: int(ns.relays.Load())}
			if ns.cur != nil {
				x.Mounted = !isDone(ns.cur)
				x.Cached = ns.cur.Cached()
				x.Stats = ns.cur.Stats()
			}
			ns.mu.Unlock()
			st[n] = x
		}
		return reply{Status: st}
	}
	return fail("unknown op %q", req.Op)
}

func isDone(m *Mount) bool {
	select {
	case <-m.Done():
		return true
	default:
		return false
	}
}

// prevWait bounds how long an attach waits for the node's previous mount
// to end (its namespace died with the node's last process).
const prevWait = 10 * time.Second

// attach mounts node's data directory dirFd over dir in the mount
// namespace nsFd; it owns both descriptors.
func (s *server) attach(node, dir string, nsFd, dirFd int) error {
	defer unix.Close(nsFd) // an open namespace would outlive the node
	ns := s.node(node)
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if prev := ns.cur; prev != nil {
		select {
		case <-prev.Done():
		case <-time.After(prevWait):
			s.logf("durafs: %s: the previous mount still serves after %v; mounting anew", node, prevWait)
		}
	}
	if !filepath.IsAbs(dir) {
		unix.Close(dirFd)
		return fmt.Errorf("attach %s: data directory %q is not absolute", node, dir)
	}
	t0 := time.Now()
	opts := s.opts
	opts.Written = &ns.written
	m, err := NewMount("/proc/self/fd/"+strconv.Itoa(dirFd), dir, nsFd, opts)
	if err != nil {
		unix.Close(dirFd)
		return fmt.Errorf("attach %s: %w", node, err)
	}
	if ns.backingFd >= 0 {
		unix.Close(ns.backingFd)
	}
	ns.cur, ns.backingFd = m, dirFd
	ns.mounts++
	ns.lastMount = time.Since(t0)
	s.logf("durafs: %s: mounted over %s in %v (mount %d)", node, dir, time.Since(t0).Round(time.Microsecond), ns.mounts)
	return nil
}

// down returns an error unless the node's last mount has ended.
func (ns *nodeState) down(node string) error {
	if ns.backingFd < 0 {
		return fmt.Errorf("%s: its data directory was never mounted", node)
	}
	if ns.cur != nil && !isDone(ns.cur) {
		return fmt.Errorf("%s: still running (its data directory is mounted)", node)
	}
	return nil
}

// files lists the regular files of a stopped node's data directory.
func (ns *nodeState) files(node string) ([]FileInfo, error) {
	if err := ns.down(node); err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	// The trailing slash makes the walk follow the magic link.
	root := "/proc/self/fd/" + strconv.Itoa(ns.backingFd) + "/"
	var out []FileInfo
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // gone meanwhile
		}
		rel, _ := filepath.Rel(root, p)
		fi := FileInfo{Path: rel, Size: info.Size()}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			fi.Written = ns.written.Has(st.Ino)
		}
		out = append(out, fi)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("files of %s: %w", node, err)
	}
	slices.SortFunc(out, func(a, b FileInfo) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// corrupt does c to a stopped node's data directory, and fsyncs.
func (ns *nodeState) corrupt(node string, c *Corruption) error {
	if err := ns.down(node); err != nil {
		return fmt.Errorf("corrupt: %w", err)
	}
	fd, err := unix.Openat2(ns.backingFd, c.File, &unix.OpenHow{
		Flags: unix.O_RDWR | unix.O_CLOEXEC | unix.O_NOFOLLOW, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	})
	if err != nil {
		return fmt.Errorf("corrupt %s: open %s: %w", node, c.File, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("corrupt %s: %s: %w", node, c.File, err)
	}
	c.Size = st.Size
	switch c.Kind {
	case KindBitflip:
		if c.Offset < 0 || c.Offset >= st.Size || c.Mask == 0 {
			return fmt.Errorf("corrupt %s: %s: bitflip at %d (mask %#x) of a %d-byte file", node, c.File, c.Offset, c.Mask, st.Size)
		}
		b := []byte{0}
		if _, err := unix.Pread(fd, b, c.Offset); err != nil {
			return fmt.Errorf("corrupt %s: read %s: %w", node, c.File, err)
		}
		b[0] ^= c.Mask
		if _, err := unix.Pwrite(fd, b, c.Offset); err != nil {
			return fmt.Errorf("corrupt %s: write %s: %w", node, c.File, err)
		}
	case KindTruncate:
		if c.Offset < 0 || c.Offset >= st.Size {
			return fmt.Errorf("corrupt %s: %s: truncate to %d of a %d-byte file", node, c.File, c.Offset, st.Size)
		}
		if err := unix.Ftruncate(fd, c.Offset); err != nil {
			return fmt.Errorf("corrupt %s: truncate %s: %w", node, c.File, err)
		}
	default:
		return fmt.Errorf("corrupt %s: unknown kind %q", node, c.Kind)
	}
	return unix.Fsync(fd)
}

// probe mounts a Mount in this process's namespace and unmounts it: it
// fails when /dev/fuse or the mount is not available here.
func probe() error {
	_ = os.MkdirAll(os.TempDir(), 0o1777) // a scratch image has no /tmp
	dir, err := os.MkdirTemp("", "durafs-probe-")
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer os.RemoveAll(dir)
	backing, mnt := filepath.Join(dir, "b"), filepath.Join(dir, "m")
	if err := errors.Join(os.Mkdir(backing, 0o700), os.Mkdir(mnt, 0o700)); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	m, err := NewMount(backing, mnt, -1, Options{})
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	// Raw system calls: Go's poller must not touch this process's own
	// mount.
	werr := func() error {
		fd, err := unix.Open(filepath.Join(mnt, "x"), unix.O_WRONLY|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		_, err = unix.Write(fd, []byte("x"))
		return err
	}()
	uerr := unix.Unmount(mnt, unix.MNT_DETACH)
	select {
	case <-m.Done():
	case <-time.After(5 * time.Second):
		return errors.New("probe: the mount did not end 5 s after unmount")
	}
	if err := errors.Join(werr, uerr); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	return nil
}
