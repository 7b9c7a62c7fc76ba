package clockfault

import (
	"encoding/binary"
	"fmt"
)

// The patch a process receives is two pages mapped into it: a code page
// (read+exec) holding one trampoline per patched vDSO function, and a data
// page (read+write) right after it holding the shift. Each patched vDSO
// function starts with an absolute jump to its trampoline.
//
// A trampoline issues the real system call (so it never depends on the
// bytes it displaced) and then adds the shift of the current slot when the
// clock asked for is in the slot's mask. The data page has two slots and a
// selector byte: a writer fills the idle slot, then flips the selector with
// a one-byte store, so a reader never sees half of a shift.
const (
	pageSize = 4096
	// patchSize is the size of the mapping: code page + data page.
	patchSize = 2 * pageSize

	// Offsets inside the data page.
	dataMagic    = 0  // 8 bytes: magicWord
	dataSelector = 16 // 1 byte: 0 or 1, the active slot
	dataSlots    = 64 // two slots of slotSize bytes
	slotSize     = 32

	// Offsets inside a slot.
	slotMask = 0  // uint64: bit i set = shift clock id i
	slotSec  = 8  // int64: whole seconds of the offset (floor)
	slotNsec = 16 // int64: the rest, in [0, 1e9) nanoseconds
	slotUsec = 24 // int64: slotNsec/1000, for gettimeofday

	// Offsets of the trampolines inside the code page.
	codeClockGettime = 0x000
	codeGettimeofday = 0x100
	codeTime         = 0x200

	// jumpSize is the length of the jump written over a vDSO function:
	// movabs rax, imm64; jmp rax.
	jumpSize = 12
)

// magicWord marks a data page written by this package ("jepclk01").
var magicWord = binary.LittleEndian.Uint64([]byte("jepclk01"))

// System call numbers of linux/amd64 that the trampolines and the injector use.
const (
	sysMmap         = 9
	sysMprotect     = 10
	sysGettimeofday = 96
	sysClockGettime = 228
)

// Clock ids (linux/time.h).
const (
	clockRealtime       = 0
	clockMonotonic      = 1
	clockMonotonicRaw   = 4
	clockRealtimeCoarse = 5
	clockMonotonicCoars = 6
	clockBoottime       = 7
	clockRealtimeAlarm  = 8
	clockBoottimeAlarm  = 9
	clockTAI            = 11
)

// Clocks is a set of clock ids (bit i = clock id i) that a shift applies
// to.
type Clocks uint64

// The clock sets a Shift can select.
const (
	// RealtimeClocks are the wall clocks: CLOCK_REALTIME, its coarse and
	// alarm variants, and CLOCK_TAI; gettimeofday and time follow them.
	RealtimeClocks Clocks = 1<<clockRealtime | 1<<clockRealtimeCoarse | 1<<clockRealtimeAlarm | 1<<clockTAI
	// MonotonicClocks are CLOCK_MONOTONIC, its raw and coarse variants and
	// CLOCK_BOOTTIME (and its alarm variant).
	MonotonicClocks Clocks = 1<<clockMonotonic | 1<<clockMonotonicRaw | 1<<clockMonotonicCoars |
		1<<clockBoottime | 1<<clockBoottimeAlarm
)

// asm is a tiny amd64 emitter: raw bytes, short conditional jumps to named
// labels, and RIP-relative references to offsets of the patch mapping.
type asm struct {
	base   int // offset of buf[0] in the patch mapping
	buf    []byte
	labels map[string]int
	fixups []fixup
}

type fixup struct {
	at    int // index of the rel8 byte
	label string
}

func newAsm(base int) *asm { return &asm{base: base, labels: map[string]int{}} }

func (a *asm) b(bs ...byte) { a.buf = append(a.buf, bs...) }

func (a *asm) u32(v uint32) { a.buf = binary.LittleEndian.AppendUint32(a.buf, v) }

// imm32 emits op followed by the 32-bit immediate v.
func (a *asm) imm32(v uint32, op ...byte) {
	a.b(op...)
	a.u32(v)
}

func (a *asm) label(name string) { a.labels[name] = len(a.buf) }

// jcc emits a short jump with opcode op (0x74 jz, 0x75 jnz, 0x7c jl, 0x73
// jnc, 0x77 ja, 0xeb jmp) to label.
func (a *asm) jcc(op byte, label string) {
	a.b(op, 0)
	a.fixups = append(a.fixups, fixup{at: len(a.buf) - 1, label: label})
}

// ripRel emits prefix followed by a 32-bit displacement from the end of
// the instruction to target, an offset in the patch mapping.
func (a *asm) ripRel(target int, prefix ...byte) {
	a.b(prefix...)
	end := a.base + len(a.buf) + 4
	a.u32(uint32(int32(target - end)))
}

func (a *asm) finish() ([]byte, error) {
	for _, f := range a.fixups {
		to, ok := a.labels[f.label]
		if !ok {
			return nil, fmt.Errorf("trampoline: undefined label %q", f.label)
		}
		d := to - (f.at + 1)
		if d < -128 || d > 127 {
			return nil, fmt.Errorf("trampoline: jump to %q out of rel8 range (%d)", f.label, d)
		}
		a.buf[f.at] = byte(int8(d))
	}
	return a.buf, nil
}

// slotPtr loads the address of the active slot into r9. Clobbers ecx.
func (a *asm) slotPtr() {
	a.ripRel(pageSize+dataSelector, 0x4c, 0x8d, 0x0d) // lea r9, [rip+selector]
	a.b(0x41, 0x0f, 0xb6, 0x09)                       // movzx ecx, byte [r9]
	a.b(0x83, 0xe1, 0x01)                             // and ecx, 1
	a.b(0xc1, 0xe1, 0x05)                             // shl ecx, 5 (slotSize)
	a.ripRel(pageSize+dataSlots, 0x4c, 0x8d, 0x0d)    // lea r9, [rip+slots]
	a.b(0x49, 0x01, 0xc9)                             // add r9, rcx
}

// adjustTimespec adds the active shift to the struct timespec at [rsi] if
// the clock id in edi is in the slot's mask. Clobbers rax, rcx, r9.
func (a *asm) adjustTimespec(skip string) {
	a.b(0x83, 0xff, 63) // cmp edi, 63
	a.jcc(0x77, skip)   // ja skip (negative ids are CPU-time clocks)
	a.slotPtr()
	a.b(0x89, 0xf9)                    // mov ecx, edi
	a.b(0x49, 0x8b, 0x01)              // mov rax, [r9] (mask)
	a.b(0x48, 0x0f, 0xa3, 0xc8)        // bt rax, rcx
	a.jcc(0x73, skip)                  // jnc skip
	a.b(0x49, 0x8b, 0x41, slotSec)     // mov rax, [r9+sec]
	a.b(0x48, 0x01, 0x06)              // add [rsi], rax
	a.b(0x49, 0x8b, 0x41, slotNsec)    // mov rax, [r9+nsec]
	a.b(0x48, 0x03, 0x46, 0x08)        // add rax, [rsi+8]
	a.imm32(1_000_000_000, 0x48, 0x3d) // cmp rax, 1e9
	a.jcc(0x7c, skip+".st")            // jl st
	a.imm32(1_000_000_000, 0x48, 0x2d) // sub rax, 1e9
	a.b(0x48, 0xff, 0x06)              // inc qword [rsi]
	a.label(skip + ".st")
	a.b(0x48, 0x89, 0x46, 0x08) // mov [rsi+8], rax
	a.label(skip)
}

// clockGettimeCode is int clock_gettime(clockid_t clk /*edi*/, struct
// timespec *ts /*rsi*/).
func clockGettimeCode() ([]byte, error) {
	a := newAsm(codeClockGettime)
	a.imm32(sysClockGettime, 0xb8) // mov eax, SYS_clock_gettime
	a.b(0x0f, 0x05)                // syscall
	a.b(0x48, 0x85, 0xc0)          // test rax, rax
	a.jcc(0x75, "ret")             // jnz ret (-errno, as the vDSO returns it)
	a.adjustTimespec("adj")
	a.b(0x31, 0xc0) // xor eax, eax
	a.label("ret")
	a.b(0xc3) // ret
	return a.finish()
}

// gettimeofdayCode is int gettimeofday(struct timeval *tv /*rdi*/, struct
// timezone *tz /*rsi*/).
func gettimeofdayCode() ([]byte, error) {
	a := newAsm(codeGettimeofday)
	a.imm32(sysGettimeofday, 0xb8) // mov eax, SYS_gettimeofday
	a.b(0x0f, 0x05)                // syscall
	a.b(0x48, 0x85, 0xc0)          // test rax, rax
	a.jcc(0x75, "ret")             // jnz ret
	a.b(0x48, 0x85, 0xff)          // test rdi, rdi
	a.jcc(0x74, "ok")              // jz ok
	a.slotPtr()
	a.b(0x41, 0xf6, 0x01, 1<<clockRealtime) // test byte [r9], 1 (CLOCK_REALTIME in mask)
	a.jcc(0x74, "ok")                       // jz ok
	a.b(0x49, 0x8b, 0x41, slotSec)          // mov rax, [r9+sec]
	a.b(0x48, 0x01, 0x07)                   // add [rdi], rax
	a.b(0x49, 0x8b, 0x41, slotUsec)         // mov rax, [r9+usec]
	a.b(0x48, 0x03, 0x47, 0x08)             // add rax, [rdi+8]
	a.imm32(1_000_000, 0x48, 0x3d)          // cmp rax, 1e6
	a.jcc(0x7c, "st")                       // jl st
	a.imm32(1_000_000, 0x48, 0x2d)          // sub rax, 1e6
	a.b(0x48, 0xff, 0x07)                   // inc qword [rdi]
	a.label("st")
	a.b(0x48, 0x89, 0x47, 0x08) // mov [rdi+8], rax
	a.label("ok")
	a.b(0x31, 0xc0) // xor eax, eax
	a.label("ret")
	a.b(0xc3) // ret
	return a.finish()
}

// timeCode is time_t time(time_t *tloc /*rdi*/): CLOCK_REALTIME through
// the system call on a scratch timespec on the stack, shifted, in seconds.
func timeCode() ([]byte, error) {
	a := newAsm(codeTime)
	a.b(0x49, 0x89, 0xf8)          // mov r8, rdi
	a.b(0x48, 0x83, 0xec, 0x18)    // sub rsp, 24
	a.b(0x31, 0xff)                // xor edi, edi (CLOCK_REALTIME)
	a.b(0x48, 0x89, 0xe6)          // mov rsi, rsp
	a.imm32(sysClockGettime, 0xb8) // mov eax, SYS_clock_gettime
	a.b(0x0f, 0x05)                // syscall
	a.adjustTimespec("adj")
	a.b(0x48, 0x8b, 0x04, 0x24) // mov rax, [rsp]
	a.b(0x48, 0x83, 0xc4, 0x18) // add rsp, 24
	a.b(0x4d, 0x85, 0xc0)       // test r8, r8
	a.jcc(0x74, "ret")          // jz ret
	a.b(0x49, 0x89, 0x00)       // mov [r8], rax
	a.label("ret")
	a.b(0xc3) // ret
	return a.finish()
}

// codePage returns the code page with every trampoline at its offset; the
// rest is int3.
func codePage() ([]byte, error) {
	page := make([]byte, pageSize)
	for i := range page {
		page[i] = 0xcc
	}
	for _, t := range []struct {
		off  int
		code func() ([]byte, error)
	}{{codeClockGettime, clockGettimeCode}, {codeGettimeofday, gettimeofdayCode}, {codeTime, timeCode}} {
		b, err := t.code()
		if err != nil {
			return nil, err
		}
		if len(b) > 0x100 {
			return nil, fmt.Errorf("trampoline at %#x: %d bytes do not fit", t.off, len(b))
		}
		copy(page[t.off:], b)
	}
	return page, nil
}

// jumpTo encodes movabs rax, addr; jmp rax (jumpSize bytes).
func jumpTo(addr uint64) []byte {
	b := []byte{0x48, 0xb8}
	b = binary.LittleEndian.AppendUint64(b, addr)
	return append(b, 0xff, 0xe0)
}

// jumpTarget decodes a jump written by jumpTo; ok is false for any other
// bytes.
func jumpTarget(b []byte) (addr uint64, ok bool) {
	if len(b) < jumpSize || b[0] != 0x48 || b[1] != 0xb8 || b[10] != 0xff || b[11] != 0xe0 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[2:10]), true
}

// Shift is a clock fault: Offset is added to the time a process reads
// from the wall clocks, and also to the monotonic clocks if Monotonic is
// set (a backwards monotonic clock is a harsher fault).
type Shift struct {
	Offset    int64 `json:"offset_ns"`
	Monotonic bool  `json:"monotonic,omitempty"`
}

// IsZero reports whether s shifts nothing.
func (s Shift) IsZero() bool { return s.Offset == 0 }

// clocks returns the clock set s shifts.
func (s Shift) clocks() Clocks {
	if s.Offset == 0 {
		return 0
	}
	if s.Monotonic {
		return RealtimeClocks | MonotonicClocks
	}
	return RealtimeClocks
}

// slot encodes s as a data page slot.
func (s Shift) slot() []byte {
	sec := s.Offset / 1e9
	nsec := s.Offset % 1e9
	if nsec < 0 {
		sec--
		nsec += 1e9
	}
	b := make([]byte, slotSize)
	binary.LittleEndian.PutUint64(b[slotMask:], uint64(s.clocks()))
	binary.LittleEndian.PutUint64(b[slotSec:], uint64(sec))
	binary.LittleEndian.PutUint64(b[slotNsec:], uint64(nsec))
	binary.LittleEndian.PutUint64(b[slotUsec:], uint64(nsec/1000))
	return b
}

// shiftFromSlot decodes a data page slot.
func shiftFromSlot(b []byte) Shift {
	mask := Clocks(binary.LittleEndian.Uint64(b[slotMask:]))
	sec := int64(binary.LittleEndian.Uint64(b[slotSec:]))
	nsec := int64(binary.LittleEndian.Uint64(b[slotNsec:]))
	if mask == 0 {
		return Shift{}
	}
	return Shift{Offset: sec*1e9 + nsec, Monotonic: mask&MonotonicClocks != 0}
}

// dataPage returns a fresh data page: magic, selector 0, both slots zero.
func dataPage() []byte {
	b := make([]byte, pageSize)
	binary.LittleEndian.PutUint64(b[dataMagic:], magicWord)
	return b
}
