package durafs

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel does not forward sync(2) and syncfs(2) to a FUSE server.
// Exec therefore installs, just before it execs the node's command, a
// seccomp filter that reports these two system calls of the node's
// processes to a listener, which it hands to the server: the server makes
// the node's mount durable (Mount.SyncAll) and lets the call proceed.

// seccompNotif is struct seccomp_notif.
type seccompNotif struct {
	ID    uint64
	PID   uint32
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

// seccompNotifResp is struct seccomp_notif_resp.
type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// auditArch returns the seccomp architecture of this build's system
// calls.
func auditArch() (uint32, error) {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64, nil
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64, nil
	}
	return 0, fmt.Errorf("no sync filter for %s", runtime.GOARCH)
}

// installSyncFilter installs on the calling thread, which must be locked
// to its goroutine and exec next, a filter that reports sync and syncfs
// to a listener, and returns the listener. It sets no_new_privs, which
// a seccomp filter needs without CAP_SYS_ADMIN: the node's command cannot
// gain privileges through set-user-ID files.
func installSyncFilter() (int, error) {
	arch, err := auditArch()
	if err != nil {
		return -1, err
	}
	const (
		ld  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret = unix.BPF_RET | unix.BPF_K
	)
	prog := []unix.SockFilter{
		{Code: ld, K: 4},                            // 0: seccomp_data.arch
		{Code: jeq, Jt: 0, Jf: 3, K: arch},          // 1: another ABI: allow
		{Code: ld, K: 0},                            // 2: seccomp_data.nr
		{Code: jeq, Jt: 2, K: unix.SYS_SYNC},        // 3
		{Code: jeq, Jt: 1, K: unix.SYS_SYNCFS},      // 4
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},      // 5
		{Code: ret, K: unix.SECCOMP_RET_USER_NOTIF}, // 6
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return -1, fmt.Errorf("no_new_privs: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER,
		uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return -1, fmt.Errorf("seccomp filter: %w", errno)
	}
	return int(fd), nil
}

// serveSyncs answers the sync and syncfs calls reported on listener fd
// (which it owns) by calling sync first, until every process of the
// filter has exited; then it takes one off active.
func serveSyncs(fd int, active *atomic.Int32, sync func() error, logf func(string, ...any)) {
	defer active.Add(-1)
	defer unix.Close(fd)
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			logf("durafs: sync relay: poll: %v", err)
			return
		}
		if pfd[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 && pfd[0].Revents&unix.POLLIN == 0 {
			return // the node's processes are gone
		}
		var req seccompNotif
		if err := ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(&req)); err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOENT) {
				continue // the caller died meanwhile
			}
			logf("durafs: sync relay: receive: %v", err)
			return
		}
		if err := sync(); err != nil {
			logf("durafs: sync relay: %v", err)
		}
		resp := seccompNotifResp{ID: req.ID, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
		_ = ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&resp)) // ENOENT: the caller died
	}
}

func ioctl(fd int, req uint, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}
