package clockfault

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Func is a vDSO function the patcher redirects.
type Func string

// The vDSO functions a shift reaches.
const (
	FuncClockGettime Func = "clock_gettime"
	FuncGettimeofday Func = "gettimeofday"
	FuncTime         Func = "time"
)

// trampolineOf maps each function to its trampoline's offset in the code
// page.
var trampolineOf = map[Func]int{
	FuncClockGettime: codeClockGettime,
	FuncGettimeofday: codeGettimeofday,
	FuncTime:         codeTime,
}

// VDSOFunc is one function of a parsed vDSO.
type VDSOFunc struct {
	// Addr is the function's address in the process (mapping base +
	// symbol value - link address).
	Addr uint64
	// Size is the symbol's size in bytes.
	Size uint64
}

// VDSO is what the patcher needs to know of a process's vDSO.
type VDSO struct {
	// Base is the start of the [vdso] mapping; Size its length.
	Base, Size uint64
	// Funcs are the functions found, by name. Aliases (__vdso_clock_gettime
	// and clock_gettime) share one entry.
	Funcs map[Func]VDSOFunc
	// Syscall is the address of a syscall instruction (0f 05) inside the
	// mapping, or 0 if none was found.
	Syscall uint64
}

// ParseVDSO parses the ELF image of a vDSO mapped at base. It finds the
// functions by their dynamic symbols (__vdso_X or its alias X). A malformed
// image gives an error, never a panic.
func ParseVDSO(img []byte, base uint64) (v *VDSO, err error) {
	defer func() {
		// debug/elf is hardened, but the input here comes from another
		// process's memory; a bug in it must not take the agent down.
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("vdso: malformed ELF image: %v", r)
		}
	}()
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		return nil, fmt.Errorf("vdso: %w", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 && f.Machine != elf.EM_AARCH64 {
		return nil, fmt.Errorf("vdso: unsupported machine %v", f.Machine)
	}
	linkAddr, found := uint64(0), false
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			linkAddr, found = p.Vaddr-p.Off, true
			break
		}
	}
	if !found {
		return nil, errors.New("vdso: no PT_LOAD segment")
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		return nil, fmt.Errorf("vdso: dynamic symbols: %w", err)
	}
	v = &VDSO{Base: base, Size: uint64(len(img)), Funcs: map[Func]VDSOFunc{}}
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Value == 0 {
			continue
		}
		name := Func(strings.TrimPrefix(s.Name, "__vdso_"))
		name = Func(strings.TrimPrefix(string(name), "__kernel_")) // arm64 naming
		if _, ok := trampolineOf[name]; !ok {
			continue
		}
		if s.Value < linkAddr || s.Value-linkAddr >= uint64(len(img)) || s.Size > uint64(len(img)) ||
			s.Value-linkAddr+s.Size > uint64(len(img)) {
			return nil, fmt.Errorf("vdso: symbol %s at %#x (size %d) lies outside the %d-byte image", s.Name, s.Value, s.Size, len(img))
		}
		fn := VDSOFunc{Addr: base + s.Value - linkAddr, Size: s.Size}
		if old, ok := v.Funcs[name]; ok && old.Addr != fn.Addr {
			return nil, fmt.Errorf("vdso: %s has two addresses, %#x and %#x", name, old.Addr, fn.Addr)
		}
		v.Funcs[name] = fn
	}
	if _, ok := v.Funcs[FuncClockGettime]; !ok {
		return nil, errors.New("vdso: no clock_gettime symbol")
	}
	if i := bytes.Index(img, []byte{0x0f, 0x05}); i >= 0 {
		v.Syscall = base + uint64(i)
	}
	return v, nil
}

// Mapping is one line of /proc/PID/maps.
type Mapping struct {
	Start, End uint64
	Perms      string
	Path       string
}

// ParseMaps parses the contents of /proc/PID/maps.
func ParseMaps(r io.Reader) ([]Mapping, error) {
	var out []Mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 5 {
			return nil, fmt.Errorf("maps line %d: want at least 5 fields, got %d", line, len(fields))
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			return nil, fmt.Errorf("maps line %d: address range %q has no '-'", line, fields[0])
		}
		start, err := strconv.ParseUint(lo, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("maps line %d: start address %q: %w", line, lo, err)
		}
		end, err := strconv.ParseUint(hi, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("maps line %d: end address %q: %w", line, hi, err)
		}
		if end < start {
			return nil, fmt.Errorf("maps line %d: end %#x before start %#x", line, end, start)
		}
		m := Mapping{Start: start, End: end, Perms: fields[1]}
		if len(fields) >= 6 {
			m.Path = strings.Join(fields[5:], " ")
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("maps: %w", err)
	}
	return out, nil
}

// findVDSO returns the [vdso] mapping of maps.
func findVDSO(maps []Mapping) (Mapping, error) {
	for _, m := range maps {
		if m.Path == "[vdso]" {
			if m.End-m.Start > 1<<20 {
				return Mapping{}, fmt.Errorf("vdso mapping of %d bytes is implausibly large", m.End-m.Start)
			}
			return m, nil
		}
	}
	return Mapping{}, errors.New("process has no [vdso] mapping (it reads time through system calls only)")
}
