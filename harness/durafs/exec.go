package durafs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// errNoServer says that no server listens on the socket.
var errNoServer = errors.New("no server")

// call sends req to the server on socket and returns its answer; fds, if
// any, go along. It waits up to wait for the server to listen.
func call(socket string, req request, fds []int, wait, timeout time.Duration) (reply, error) {
	deadline := time.Now().Add(wait)
	var conn *net.UnixConn
	for {
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: socket, Net: "unix"})
		if err == nil {
			conn = c
			break
		}
		if time.Now().After(deadline) {
			return reply{}, fmt.Errorf("durafs %s: %w at %s: %w", req.Op, errNoServer, socket, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	b, err := json.Marshal(req)
	if err != nil {
		return reply{}, fmt.Errorf("durafs %s: %w", req.Op, err)
	}
	b = append(b, '\n')
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := conn.WriteMsgUnix(b, oob, nil); err != nil {
		return reply{}, fmt.Errorf("durafs %s: send: %w", req.Op, err)
	}
	var rep reply
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&rep); err != nil {
		return reply{}, fmt.Errorf("durafs %s: read answer: %w", req.Op, err)
	}
	if rep.Error != "" {
		return rep, errors.New(rep.Error)
	}
	return rep, nil
}

// ExecConfig is what Exec needs.
type ExecConfig struct {
	Socket  string        // the server's socket
	Node    string        // this node's name
	Dir     string        // the data directory
	Timeout time.Duration // for the server to mount it
	Argv    []string      // the node's command
	Env     []string      // its environment
	// NoSyncRelay leaves sync and syncfs unseen (no seccomp filter).
	NoSyncRelay bool
}

// Exec runs in a node's container before its command: it hands the
// server this process's mount namespace and the data directory, waits
// until the server has mounted the filesystem over it, checks that
// /proc/self/mountinfo shows it, and then replaces itself with the
// node's command (which thus runs as the container's PID 1, with its
// environment and working directory). It returns only on failure.
func Exec(cfg ExecConfig) error {
	if len(cfg.Argv) == 0 {
		return errors.New("durafs exec: no command to run")
	}
	dir := filepath.Clean(cfg.Dir)
	dirFd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("durafs exec: data directory: %w", err)
	}
	nsFd, err := unix.Open("/proc/self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(dirFd)
		return fmt.Errorf("durafs exec: mount namespace: %w", err)
	}
	_, err = call(cfg.Socket, request{Op: "attach", Node: cfg.Node, Dir: dir}, []int{nsFd, dirFd}, cfg.Timeout, cfg.Timeout)
	unix.Close(nsFd)
	unix.Close(dirFd)
	if err != nil {
		return err
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("durafs exec: %w", err)
	}
	if fstype := MountType(string(b), dir); fstype != "fuse.durafs" {
		return fmt.Errorf("durafs exec: %s is not mounted by durafs after the server said so (type %q)", dir, fstype)
	}
	// A working directory inside the data directory still names the
	// directory under the mount: look it up again.
	if wd, err := os.Getwd(); err == nil {
		_ = os.Chdir(wd)
	}
	path, err := lookPath(cfg.Argv[0], cfg.Env)
	if err != nil {
		return fmt.Errorf("durafs exec: %w", err)
	}
	// The filter is the calling thread's: this goroutine stays on it
	// until the exec.
	runtime.LockOSThread()
	if cfg.NoSyncRelay {
		// nothing
	} else if lfd, err := installSyncFilter(); err != nil {
		fmt.Fprintf(os.Stderr, "durafs exec: sync and syncfs will make nothing durable: %v\n", err)
	} else {
		_, err := call(cfg.Socket, request{Op: "relay", Node: cfg.Node}, []int{lfd}, cfg.Timeout, cfg.Timeout)
		unix.Close(lfd)
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("durafs exec %s: %w", path, unix.Exec(path, cfg.Argv, cfg.Env))
}

// lookPath finds a command as execvp would, in PATH from env.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, d := range filepath.SplitList(path) {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH %s", name, path)
}

// MountType returns the filesystem type of the topmost mount on dir in
// the text of a /proc/PID/mountinfo file, or "" if nothing is mounted
// there. Malformed lines are skipped.
func MountType(mountinfo, dir string) string {
	fstype := ""
	for _, line := range strings.Split(mountinfo, "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
		f := strings.Fields(line)
		sep := -1
		for i, x := range f {
			if x == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(f) {
			continue
		}
		if unescapeMountinfo(f[4]) == dir {
			fstype = f[sep+1] // later lines are mounted on top
		}
	}
	return fstype
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of a
// mountinfo path.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
