package clockfault

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// selfVDSO returns the vDSO image of the test process and its base.
func selfVDSO(t testing.TB) ([]byte, uint64) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("no vDSO outside Linux")
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	maps, err := ParseMaps(f)
	if err != nil {
		t.Fatal(err)
	}
	m, err := findVDSO(maps)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	img := make([]byte, m.End-m.Start)
	if _, err := mem.ReadAt(img, int64(m.Start)); err != nil {
		t.Fatal(err)
	}
	return img, m.Start
}

func TestParseVDSOSelf(t *testing.T) {
	img, base := selfVDSO(t)
	v, err := ParseVDSO(img, base)
	if err != nil {
		t.Fatal(err)
	}
	want := []Func{FuncClockGettime, FuncGettimeofday}
	if runtime.GOARCH == "amd64" {
		want = append(want, FuncTime)
	}
	for _, name := range want {
		fn, ok := v.Funcs[name]
		if !ok {
			t.Errorf("no %s in the vDSO", name)
			continue
		}
		if fn.Addr < base || fn.Addr+fn.Size > base+uint64(len(img)) {
			t.Errorf("%s at %#x+%d lies outside the mapping %#x+%d", name, fn.Addr, fn.Size, base, len(img))
		}
		if runtime.GOARCH == "amd64" && fn.Size < jumpSize {
			t.Errorf("%s is %d bytes, shorter than the jump", name, fn.Size)
		}
	}
	if runtime.GOARCH == "amd64" {
		if v.Syscall == 0 {
			t.Fatal("no syscall instruction found")
		}
		off := v.Syscall - base
		if !bytes.Equal(img[off:off+2], []byte{0x0f, 0x05}) {
			t.Errorf("syscall at %#x is % x", v.Syscall, img[off:off+2])
		}
	}
	// The same image at another base moves every address by the difference.
	w, err := ParseVDSO(img, base+0x10000)
	if err != nil {
		t.Fatal(err)
	}
	if w.Funcs[FuncClockGettime].Addr != v.Funcs[FuncClockGettime].Addr+0x10000 {
		t.Errorf("rebased clock_gettime at %#x, want %#x", w.Funcs[FuncClockGettime].Addr, v.Funcs[FuncClockGettime].Addr+0x10000)
	}
}

func TestParseVDSOBad(t *testing.T) {
	img, base := selfVDSO(t)
	otherMachine := bytes.Clone(img)
	otherMachine[18], otherMachine[19] = 3, 0 // EM_386
	cases := []struct {
		name string
		img  []byte
		want string
	}{
		{"empty", nil, "vdso:"},
		{"not ELF", []byte("hello, world, this is not an ELF file at all"), "vdso:"},
		{"truncated", img[:200], "vdso:"},
		{"other machine", otherMachine, "unsupported machine"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseVDSO(tc.img, base)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("ParseVDSO = %v, want one line containing %q", err, tc.want)
			}
		})
	}
}

func TestParseMaps(t *testing.T) {
	cases := []struct {
		name, in string
		want     []Mapping
		err      string
	}{
		{"vdso and file", "7ffd1000-7ffd3000 r-xp 00000000 00:00 0                          [vdso]\n" +
			"55d0a000-55d0b000 r--p 00000000 08:01 1234 /usr/bin/my prog\n",
			[]Mapping{{0x7ffd1000, 0x7ffd3000, "r-xp", "[vdso]"}, {0x55d0a000, 0x55d0b000, "r--p", "/usr/bin/my prog"}}, ""},
		{"anonymous", "1000-2000 rw-p 00000000 00:00 0\n", []Mapping{{0x1000, 0x2000, "rw-p", ""}}, ""},
		{"blank lines", "\n\n", nil, ""},
		{"short", "1000-2000 rw-p\n", nil, "line 1: want at least 5 fields"},
		{"no dash", "10002000 rw-p 0 00:00 0\n", nil, "has no '-'"},
		{"bad hex", "10x0-2000 rw-p 0 00:00 0\n", nil, "start address"},
		{"reversed", "2000-1000 rw-p 0 00:00 0\n", nil, "before start"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMaps(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := findVDSO([]Mapping{{0, 0x1000, "r-xp", "/bin/x"}}); err == nil {
		t.Error("findVDSO found a vdso in a list without one")
	}
}

func TestParseStat(t *testing.T) {
	rest := " S 1 7 7 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 123456 1000 100 18446744073709551615"
	cases := []struct {
		name, in string
		want     Stat
		err      string
	}{
		{"plain", "42 (target)" + rest, Stat{Pid: 42, PPid: 1, Comm: "target", StartTime: "123456"}, ""},
		{"spaces and parens in comm", "43 (a (b) c)" + rest, Stat{Pid: 43, PPid: 1, Comm: "a (b) c", StartTime: "123456"}, ""},
		{"no comm", "44 target S 1", Stat{}, "no (comm)"},
		{"bad pid", "x (t)" + rest, Stat{}, "pid"},
		{"too short", "45 (t) S 1 2 3", Stat{}, "fields after comm"},
		{"bad ppid", "46 (t) S x" + rest[4:], Stat{}, "ppid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStat(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ParseStat = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzParseVDSO(f *testing.F) {
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, img []byte) {
		v, err := ParseVDSO(img, 0x7fff0000)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error %q", err)
			}
			return
		}
		for name, fn := range v.Funcs {
			if fn.Addr < v.Base || fn.Addr+fn.Size > v.Base+v.Size {
				t.Errorf("%s at %#x+%d outside the image", name, fn.Addr, fn.Size)
			}
		}
	})
}

func FuzzParseMaps(f *testing.F) {
	f.Add("7ffd1000-7ffd3000 r-xp 00000000 00:00 0 [vdso]\n")
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseMaps(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.End < m.Start {
				t.Errorf("mapping %+v ends before it starts", m)
			}
		}
	})
}

func FuzzParseStat(f *testing.F) {
	f.Add("42 (target) S 1 7 7 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 123456 1000 100 1")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStat(s)
		if err == nil && strings.ContainsAny(st.StartTime, " \t\n") {
			t.Errorf("start time %q has spaces", st.StartTime)
		}
	})
}
