package docker

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// libDirs is the search path of ld.so on a Debian-like x86-64 or arm64
// system, in order, after DT_RUNPATH.
var libDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib",
}

// elfDeps returns the absolute paths, as the dynamic loader opens them, of
// the ELF interpreter and every shared library binary needs, directly or
// through other libraries. A statically linked binary has none.
func elfDeps(binary string) ([]string, error) {
	f, err := elf.Open(binary)
	if err != nil {
		return nil, fmt.Errorf("read ELF: %w", err)
	}
	defer f.Close()
	interp := ""
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return nil, fmt.Errorf("read ELF interpreter: %w", err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if interp == "" {
		return nil, nil
	}
	dirs := append(extraLibDirs(), libDirs...)
	seen := map[string]bool{interp: true}
	out := []string{interp}
	var visit func(path string, f *elf.File) error
	visit = func(path string, f *elf.File) error {
		needed, err := f.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("%s: DT_NEEDED: %w", path, err)
		}
		search := append(runPaths(f, filepath.Dir(path)), dirs...)
		for _, lib := range needed {
			p, err := findLib(lib, search, f.Machine)
			if err != nil {
				return fmt.Errorf("%s needs %s: %w", path, lib, err)
			}
			if seen[p] {
				continue
			}
			seen[p] = true
			out = append(out, p)
			lf, err := elf.Open(p)
			if err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			err = visit(p, lf)
			lf.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(binary, f); err != nil {
		return nil, err
	}
	sort.Strings(out[1:])
	return out, nil
}

// runPaths returns the DT_RUNPATH and DT_RPATH directories of f, with
// $ORIGIN expanded to origin.
func runPaths(f *elf.File, origin string) []string {
	var dirs []string
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		vals, _ := f.DynString(tag)
		for _, v := range vals {
			for _, d := range strings.Split(v, ":") {
				d = strings.ReplaceAll(strings.ReplaceAll(d, "${ORIGIN}", origin), "$ORIGIN", origin)
				if filepath.IsAbs(d) {
					dirs = append(dirs, d)
				}
			}
		}
	}
	return dirs
}

// findLib finds the library name in dirs, skipping files of another machine.
func findLib(name string, dirs []string, machine elf.Machine) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		lf, err := elf.Open(p)
		if err != nil {
			continue
		}
		m := lf.Machine
		lf.Close()
		if m == machine {
			return p, nil
		}
	}
	return "", fmt.Errorf("not found in %s", strings.Join(dirs, ":"))
}

// extraLibDirs reads the directories listed in /etc/ld.so.conf.d/*.conf.
func extraLibDirs() []string {
	files, _ := filepath.Glob("/etc/ld.so.conf.d/*.conf")
	sort.Strings(files)
	var dirs []string
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if filepath.IsAbs(line) {
				dirs = append(dirs, line)
			}
		}
		f.Close()
	}
	return dirs
}
