package clockfault

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/arch/x86/x86asm"
)

// decoded is one instruction of an emitted trampoline.
type decoded struct {
	off  int // offset in the patch mapping
	inst x86asm.Inst
	text string // Intel syntax
}

// decodeAll decodes b, which starts at offset base of the patch mapping,
// and fails the test if any byte does not decode.
func decodeAll(t *testing.T, b []byte, base int) []decoded {
	t.Helper()
	var out []decoded
	for i := 0; i < len(b); {
		inst, err := x86asm.Decode(b[i:], 64)
		if err != nil {
			t.Fatalf("offset %#x: % x: %v", base+i, b[i:min(i+8, len(b))], err)
		}
		out = append(out, decoded{off: base + i, inst: inst, text: x86asm.IntelSyntax(inst, uint64(base+i), nil)})
		i += inst.Len
	}
	return out
}

func TestTrampolinesDecode(t *testing.T) {
	cases := []struct {
		name string
		code func() ([]byte, error)
		base int
		// want are substrings of the instructions, in order (a subset).
		want []string
	}{
		{"clock_gettime", clockGettimeCode, codeClockGettime, []string{
			"mov eax, 0xe4", "syscall", "test rax, rax", "jnz", "cmp edi, 0x3f", "jnbe",
			"lea r9, ptr [rip+", "movzx ecx, byte ptr [r9]", "and ecx, 0x1", "shl ecx, 0x5",
			"add r9, rcx", "mov ecx, edi", "mov rax, qword ptr [r9]", "bt rax, rcx", "jnb",
			"mov rax, qword ptr [r9+0x8]", "add qword ptr [rsi], rax", "mov rax, qword ptr [r9+0x10]",
			"add rax, qword ptr [rsi+0x8]", "cmp rax, 0x3b9aca00", "jl", "sub rax, 0x3b9aca00",
			"inc qword ptr [rsi]", "mov qword ptr [rsi+0x8], rax", "xor eax, eax", "ret"}},
		{"gettimeofday", gettimeofdayCode, codeGettimeofday, []string{
			"mov eax, 0x60", "syscall", "test rax, rax", "jnz", "test rdi, rdi", "jz",
			"test byte ptr [r9], 0x1", "jz", "add qword ptr [rdi], rax", "mov rax, qword ptr [r9+0x18]",
			"add rax, qword ptr [rdi+0x8]", "cmp rax, 0xf4240", "sub rax, 0xf4240", "inc qword ptr [rdi]",
			"mov qword ptr [rdi+0x8], rax", "xor eax, eax", "ret"}},
		{"time", timeCode, codeTime, []string{
			"mov r8, rdi", "sub rsp, 0x18", "xor edi, edi", "mov rsi, rsp", "mov eax, 0xe4", "syscall",
			"bt rax, rcx", "add qword ptr [rsi], rax", "mov rax, qword ptr [rsp]", "add rsp, 0x18",
			"test r8, r8", "jz", "mov qword ptr [r8], rax", "ret"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.code()
			if err != nil {
				t.Fatal(err)
			}
			insts := decodeAll(t, b, tc.base)
			starts := map[int]bool{}
			for _, d := range insts {
				starts[d.off] = true
			}
			end := tc.base + len(b)
			starts[end] = true
			// Every branch lands on an instruction of the same trampoline,
			// and every RIP-relative operand points into the data page.
			for _, d := range insts {
				for _, a := range d.inst.Args {
					switch a := a.(type) {
					case x86asm.Rel:
						to := d.off + d.inst.Len + int(a)
						if !starts[to] || to < tc.base || to > end {
							t.Errorf("%#x %s: branch to %#x, not an instruction of this trampoline", d.off, d.text, to)
						}
					case x86asm.Mem:
						if a.Base == x86asm.RIP {
							to := d.off + d.inst.Len + int(a.Disp)
							if to != pageSize+dataSelector && to != pageSize+dataSlots {
								t.Errorf("%#x %s: RIP-relative operand %#x is neither the selector nor the slots", d.off, d.text, to)
							}
						}
					}
				}
			}
			if last := insts[len(insts)-1].text; last != "ret" {
				t.Errorf("last instruction %q, want ret", last)
			}
			i := 0
			for _, d := range insts {
				if i < len(tc.want) && strings.Contains(d.text, tc.want[i]) {
					i++
				}
			}
			if i < len(tc.want) {
				var all []string
				for _, d := range insts {
					all = append(all, d.text)
				}
				t.Errorf("instruction %q not found in order; got:\n%s", tc.want[i], strings.Join(all, "\n"))
			}
		})
	}
}

func TestCodePageLayout(t *testing.T) {
	page, err := codePage()
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != pageSize {
		t.Fatalf("code page is %d bytes", len(page))
	}
	for _, off := range []int{codeClockGettime, codeGettimeofday, codeTime} {
		if page[off] == 0xcc {
			t.Errorf("no trampoline at %#x", off)
		}
	}
	if page[pageSize-1] != 0xcc {
		t.Errorf("padding is %#x, want int3", page[pageSize-1])
	}
}

func TestJump(t *testing.T) {
	for _, addr := range []uint64{0, 0x7f12_3456_7000, ^uint64(0)} {
		b := jumpTo(addr)
		if len(b) != jumpSize {
			t.Fatalf("jump is %d bytes, want %d", len(b), jumpSize)
		}
		got, ok := jumpTarget(b)
		if !ok || got != addr {
			t.Errorf("jumpTarget(jumpTo(%#x)) = %#x, %v", addr, got, ok)
		}
		insts := decodeAll(t, b, 0)
		if len(insts) != 2 || insts[0].inst.Op != x86asm.MOV || insts[0].inst.Args[0] != x86asm.RAX ||
			insts[1].inst.Op != x86asm.JMP || insts[1].inst.Args[0] != x86asm.RAX {
			t.Errorf("jump to %#x decodes as %v", addr, insts)
		}
		if imm, ok := insts[0].inst.Args[1].(x86asm.Imm); !ok || uint64(imm) != addr {
			t.Errorf("jump to %#x loads %v", addr, insts[0].inst.Args[1])
		}
	}
	for _, b := range [][]byte{nil, make([]byte, 12), {0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8, 0xff, 0xe1}} {
		if _, ok := jumpTarget(b); ok {
			t.Errorf("jumpTarget(% x) accepted", b)
		}
	}
}

func TestShiftSlot(t *testing.T) {
	cases := []struct {
		shift          Shift
		mask           Clocks
		sec, nsec, use int64
	}{
		{Shift{}, 0, 0, 0, 0},
		{Shift{Offset: int64(20 * time.Second)}, RealtimeClocks, 20, 0, 0},
		{Shift{Offset: int64(1500 * time.Millisecond), Monotonic: true}, RealtimeClocks | MonotonicClocks, 1, 5e8, 5e5},
		{Shift{Offset: int64(-1500 * time.Millisecond)}, RealtimeClocks, -2, 5e8, 5e5},
		{Shift{Offset: -1}, RealtimeClocks, -1, 999_999_999, 999_999},
		{Shift{Offset: int64(-12 * time.Second)}, RealtimeClocks, -12, 0, 0},
	}
	for _, tc := range cases {
		b := tc.shift.slot()
		got := shiftFromSlot(b)
		if got != tc.shift {
			t.Errorf("round trip of %+v gave %+v", tc.shift, got)
		}
		le := func(off int) int64 {
			var v uint64
			for i := 7; i >= 0; i-- {
				v = v<<8 | uint64(b[off+i])
			}
			return int64(v)
		}
		if Clocks(le(slotMask)) != tc.mask || le(slotSec) != tc.sec || le(slotNsec) != tc.nsec || le(slotUsec) != tc.use {
			t.Errorf("%+v: slot mask %#x sec %d nsec %d usec %d; want %#x %d %d %d", tc.shift,
				le(slotMask), le(slotSec), le(slotNsec), le(slotUsec), tc.mask, tc.sec, tc.nsec, tc.use)
		}
	}
	if RealtimeClocks&(1<<clockRealtime) == 0 || RealtimeClocks&MonotonicClocks != 0 {
		t.Errorf("clock sets overlap or miss CLOCK_REALTIME: %#x %#x", RealtimeClocks, MonotonicClocks)
	}
}
