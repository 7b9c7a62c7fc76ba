package clockfault

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Supported reports whether this build can patch processes, and if not,
// why.
func Supported() error { return nil }

// Process is a process whose vDSO clock functions jump to this package's
// trampolines; Set changes the shift it sees. Its methods are not safe for
// concurrent use.
type Process struct {
	// Pid is the process id (in the caller's PID namespace).
	Pid  int
	data uint64   // address of the data page in the process
	mem  *os.File // /proc/PID/mem
}

// errGone reports that a thread exited while it was being traced.
var errGone = errors.New("thread exited")

// stopTimeout bounds how long a thread may take to stop once interrupted;
// a frozen (paused) process never stops.
const stopTimeout = 5 * time.Second

// Patch redirects pid's vDSO clock functions (clock_gettime, gettimeofday,
// time) to trampolines mapped into the process, unless an earlier Patch
// already did, and returns a handle on the shift. A freshly patched
// process sees no shift; a process patched before keeps its shift. While
// patching, every thread of the process is stopped with ptrace for a few
// milliseconds; afterwards the process runs untraced.
func Patch(pid int) (*Process, error) {
	mem, err := os.OpenFile(fmt.Sprintf("/proc/%d/mem", pid), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("patch %d: %w", pid, explainPerm(err))
	}
	p := &Process{Pid: pid, mem: mem}
	if err := p.patch(); err != nil {
		mem.Close()
		return nil, fmt.Errorf("patch %d: %w", pid, err)
	}
	return p, nil
}

// Close releases the handle; the process stays patched with its current
// shift.
func (p *Process) Close() error { return p.mem.Close() }

// Set makes the process see s from now on. It writes only the data page
// (no ptrace stop): the idle slot first, then the selector byte.
func (p *Process) Set(s Shift) error {
	var sel [1]byte
	if _, err := p.mem.ReadAt(sel[:], int64(p.data+dataSelector)); err != nil {
		return fmt.Errorf("set shift of %d: read selector: %w", p.Pid, err)
	}
	next := (sel[0] ^ 1) & 1
	if _, err := p.mem.WriteAt(s.slot(), int64(p.data+dataSlots+uint64(next)*slotSize)); err != nil {
		return fmt.Errorf("set shift of %d: write slot: %w", p.Pid, err)
	}
	if _, err := p.mem.WriteAt([]byte{next}, int64(p.data+dataSelector)); err != nil {
		return fmt.Errorf("set shift of %d: write selector: %w", p.Pid, err)
	}
	return nil
}

// Shift reads the shift the process sees now.
func (p *Process) Shift() (Shift, error) {
	b := make([]byte, dataSlots+2*slotSize)
	if _, err := p.mem.ReadAt(b, int64(p.data)); err != nil {
		return Shift{}, fmt.Errorf("read shift of %d: %w", p.Pid, err)
	}
	if binary.LittleEndian.Uint64(b[dataMagic:]) != magicWord {
		return Shift{}, fmt.Errorf("read shift of %d: data page lost its magic", p.Pid)
	}
	sel := int(b[dataSelector] & 1)
	return shiftFromSlot(b[dataSlots+sel*slotSize:]), nil
}

// vdso reads and parses the process's vDSO.
func (p *Process) vdso() (*VDSO, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/maps", p.Pid))
	if err != nil {
		return nil, explainPerm(err)
	}
	maps, err := ParseMaps(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	m, err := findVDSO(maps)
	if err != nil {
		return nil, err
	}
	img := make([]byte, m.End-m.Start)
	if _, err := p.mem.ReadAt(img, int64(m.Start)); err != nil {
		return nil, fmt.Errorf("read vdso at %#x: %w", m.Start, err)
	}
	return ParseVDSO(img, m.Start)
}

// existing returns the data page of an earlier patch, or 0.
func (p *Process) existing(v *VDSO) (uint64, error) {
	fn := v.Funcs[FuncClockGettime]
	b := make([]byte, jumpSize)
	if _, err := p.mem.ReadAt(b, int64(fn.Addr)); err != nil {
		return 0, fmt.Errorf("read clock_gettime: %w", err)
	}
	target, ok := jumpTarget(b)
	if !ok {
		return 0, nil
	}
	data := target&^(pageSize-1) + pageSize
	var magic [8]byte
	if _, err := p.mem.ReadAt(magic[:], int64(data+dataMagic)); err != nil {
		return 0, fmt.Errorf("clock_gettime jumps to %#x, whose data page cannot be read: %w", target, err)
	}
	if binary.LittleEndian.Uint64(magic[:]) != magicWord {
		return 0, fmt.Errorf("clock_gettime jumps to %#x, which is not a clockfault trampoline (another tool patched this process)", target)
	}
	return data, nil
}

func (p *Process) patch() error {
	v, err := p.vdso()
	if err != nil {
		return err
	}
	if p.data, err = p.existing(v); err != nil || p.data != 0 {
		return err
	}
	if v.Syscall == 0 {
		return errors.New("vdso has no syscall instruction to borrow")
	}
	code, err := codePage()
	if err != nil {
		return err
	}
	var patches []VDSOFunc
	var targets []uint64
	for name, fn := range v.Funcs {
		if fn.Size != 0 && fn.Size < jumpSize {
			if name == FuncClockGettime {
				return fmt.Errorf("vdso %s is %d bytes, too short for a %d-byte jump", name, fn.Size, jumpSize)
			}
			continue
		}
		patches = append(patches, fn)
		targets = append(targets, uint64(trampolineOf[name]))
	}

	// Every ptrace request must come from the thread that attached.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	g, err := stopAll(p.Pid)
	if err != nil {
		return err
	}
	defer g.detach()
	// Another agent may have patched it between our check and the stop.
	if p.data, err = p.existing(v); err != nil || p.data != 0 {
		return err
	}
	for _, t := range g.threads {
		if err := t.leave(patches); err != nil {
			return err
		}
	}
	inj := g.injector()
	if inj == nil {
		return errors.New("every thread exited")
	}
	base, err := inj.syscall(v.Syscall, sysMmap, 0, patchSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uint64(0), 0)
	if err != nil {
		return fmt.Errorf("map trampoline pages: %w", err)
	}
	if _, err := p.mem.WriteAt(code, int64(base)); err != nil {
		return fmt.Errorf("write trampolines at %#x: %w", base, err)
	}
	if _, err := p.mem.WriteAt(dataPage(), int64(base+pageSize)); err != nil {
		return fmt.Errorf("write data page at %#x: %w", base+pageSize, err)
	}
	if _, err := inj.syscall(v.Syscall, sysMprotect, base, pageSize, unix.PROT_READ|unix.PROT_EXEC); err != nil {
		return fmt.Errorf("make trampolines executable: %w", err)
	}
	for i, fn := range patches {
		if _, err := p.mem.WriteAt(jumpTo(base+targets[i]), int64(fn.Addr)); err != nil {
			return fmt.Errorf("write jump at %#x: %w", fn.Addr, err)
		}
	}
	p.data = base + pageSize
	return nil
}

// group is the set of stopped threads of one process.
type group struct {
	pid     int
	threads map[int]*thread
}

// thread is one stopped thread.
type thread struct {
	tid int
	// sig is a signal the thread was about to receive when it stopped; it
	// is delivered on detach.
	sig syscall.Signal
}

// stopAll seizes and stops every thread of pid, looking again until no new
// thread appeared. On error the threads stopped so far are released.
func stopAll(pid int) (*group, error) {
	g := &group{pid: pid, threads: map[int]*thread{}}
	for round := 0; ; round++ {
		tids, err := tasks(pid)
		if err != nil {
			g.detach()
			return nil, err
		}
		fresh := 0
		for _, tid := range tids {
			if _, ok := g.threads[tid]; ok {
				continue
			}
			fresh++
			if err := unix.PtraceSeize(tid); err != nil {
				if errors.Is(err, unix.ESRCH) {
					continue
				}
				g.detach()
				return nil, fmt.Errorf("ptrace thread %d: %w", tid, explainPerm(err))
			}
			t := &thread{tid: tid}
			g.threads[tid] = t
			if err := unix.PtraceInterrupt(tid); err != nil && !errors.Is(err, unix.ESRCH) {
				g.detach()
				return nil, fmt.Errorf("interrupt thread %d: %w", tid, err)
			}
			sig, err := waitStop(tid)
			if errors.Is(err, errGone) {
				delete(g.threads, tid)
				continue
			}
			if err != nil {
				g.detach()
				return nil, err
			}
			t.sig = sig
		}
		if fresh == 0 {
			break
		}
		if round > 50 {
			g.detach()
			return nil, fmt.Errorf("threads of %d keep appearing", pid)
		}
	}
	if len(g.threads) == 0 {
		return nil, fmt.Errorf("process %d: %w", pid, errGone)
	}
	return g, nil
}

// detach releases every thread, delivering the signals they held.
func (g *group) detach() {
	for tid, t := range g.threads {
		_, _, _ = unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_DETACH, uintptr(tid), 0, uintptr(t.sig), 0, 0)
	}
	g.threads = map[int]*thread{}
}

// injector picks the thread that runs injected system calls: the main
// thread if it is there.
func (g *group) injector() *thread {
	if t, ok := g.threads[g.pid]; ok {
		return t
	}
	for _, t := range g.threads {
		return t
	}
	return nil
}

// waitStop waits until tid stops, and returns the signal of a
// signal-delivery stop (0 for the stop PTRACE_INTERRUPT causes).
func waitStop(tid int) (syscall.Signal, error) {
	deadline := time.Now().Add(stopTimeout)
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(tid, &ws, unix.WALL|unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.ECHILD) {
			return 0, errGone
		}
		if err != nil {
			return 0, fmt.Errorf("wait for thread %d: %w", tid, err)
		}
		if got == tid {
			switch {
			case ws.Exited(), ws.Signaled():
				return 0, errGone
			case ws.Stopped():
				if uint32(ws)>>16 == unix.PTRACE_EVENT_STOP {
					return 0, nil // interrupt or group stop
				}
				return ws.StopSignal(), nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("thread %d did not stop within %v (is the process frozen, e.g. a paused container?)", tid, stopTimeout)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// step executes one instruction of t. A signal that arrives first is kept
// for delivery at detach, and the step is tried again.
func (t *thread) step() error {
	for i := 0; i < 100; i++ {
		if err := unix.PtraceSingleStep(t.tid); err != nil {
			return fmt.Errorf("single-step thread %d: %w", t.tid, err)
		}
		sig, err := waitStop(t.tid)
		if err != nil {
			return err
		}
		if sig == unix.SIGTRAP {
			return nil
		}
		if sig != 0 {
			t.sig = sig
		}
	}
	return fmt.Errorf("single-step thread %d: signals keep arriving", t.tid)
}

// leave single-steps t until it is not inside the first jumpSize bytes of
// a function about to be overwritten (it would resume in the middle of the
// jump).
func (t *thread) leave(fns []VDSOFunc) error {
	for i := 0; i < 64; i++ {
		var regs unix.PtraceRegs
		if err := unix.PtraceGetRegs(t.tid, &regs); err != nil {
			return fmt.Errorf("registers of thread %d: %w", t.tid, err)
		}
		inside := false
		for _, fn := range fns {
			if regs.Rip > fn.Addr && regs.Rip < fn.Addr+jumpSize {
				inside = true
			}
		}
		if !inside {
			return nil
		}
		if err := t.step(); err != nil {
			return err
		}
	}
	return fmt.Errorf("thread %d stays inside the bytes to patch", t.tid)
}

// syscall makes t run the system call nr with args at the syscall
// instruction at insn, and restores its registers. It returns the result
// or the errno.
func (t *thread) syscall(insn uint64, nr uint64, args ...uint64) (uint64, error) {
	var saved unix.PtraceRegs
	if err := unix.PtraceGetRegs(t.tid, &saved); err != nil {
		return 0, fmt.Errorf("registers of thread %d: %w", t.tid, err)
	}
	regs := saved
	a := make([]uint64, 6)
	copy(a, args)
	regs.Rax, regs.Orig_rax, regs.Rip = nr, ^uint64(0), insn
	regs.Rdi, regs.Rsi, regs.Rdx, regs.R10, regs.R8, regs.R9 = a[0], a[1], a[2], a[3], a[4], a[5]
	if err := unix.PtraceSetRegs(t.tid, &regs); err != nil {
		return 0, fmt.Errorf("set registers of thread %d: %w", t.tid, err)
	}
	stepErr := t.step()
	var after unix.PtraceRegs
	getErr := unix.PtraceGetRegs(t.tid, &after)
	if err := unix.PtraceSetRegs(t.tid, &saved); err != nil {
		return 0, fmt.Errorf("restore registers of thread %d: %w", t.tid, err)
	}
	if stepErr != nil {
		return 0, stepErr
	}
	if getErr != nil {
		return 0, fmt.Errorf("registers of thread %d: %w", t.tid, getErr)
	}
	if after.Rip != insn+2 {
		return 0, fmt.Errorf("injected syscall %d: thread %d stopped at %#x, not after the instruction at %#x", nr, t.tid, after.Rip, insn)
	}
	if r := int64(after.Rax); r < 0 && r > -4096 {
		return 0, fmt.Errorf("injected syscall %d: %w", nr, unix.Errno(-r))
	}
	return after.Rax, nil
}

// Probe checks that pid can be patched without changing it: ptrace may
// stop it, its memory can be opened, and its vDSO has clock_gettime.
func Probe(pid int) error {
	mem, err := os.OpenFile(fmt.Sprintf("/proc/%d/mem", pid), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("probe %d: %w", pid, explainPerm(err))
	}
	defer mem.Close()
	p := &Process{Pid: pid, mem: mem}
	v, err := p.vdso()
	if err != nil {
		return fmt.Errorf("probe %d: %w", pid, err)
	}
	if _, err := p.existing(v); err != nil {
		return fmt.Errorf("probe %d: %w", pid, err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.PtraceSeize(pid); err != nil {
		return fmt.Errorf("probe %d: ptrace: %w", pid, explainPerm(err))
	}
	g := &group{pid: pid, threads: map[int]*thread{pid: {tid: pid}}}
	defer g.detach()
	if err := unix.PtraceInterrupt(pid); err != nil {
		return fmt.Errorf("probe %d: interrupt: %w", pid, err)
	}
	sig, err := waitStop(pid)
	if err != nil {
		return fmt.Errorf("probe %d: %w", pid, err)
	}
	g.threads[pid].sig = sig
	return nil
}

// explainPerm adds the usual causes to a permission error.
func explainPerm(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w (ptrace is forbidden here: the agent needs CAP_SYS_PTRACE and a seccomp profile that allows ptrace "+
			"(Docker's default does on kernels >= 4.8), and kernel.yama.ptrace_scope < 3 and no AppArmor/SELinux rule denying it)", err)
	}
	return err
}

// tasks lists the thread ids of pid.
func tasks(pid int) ([]int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, fmt.Errorf("threads of %d: %w", pid, err)
	}
	var out []int
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, tid)
		}
	}
	return out, nil
}
