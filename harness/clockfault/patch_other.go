//go:build !(linux && amd64)

package clockfault

import (
	"errors"
	"fmt"
	"runtime"
)

// ErrUnsupported is returned on platforms where processes cannot be
// patched: only linux/amd64 is implemented.
var ErrUnsupported = errors.New("clock faults need linux/amd64")

// Supported reports whether this build can patch processes, and if not,
// why.
func Supported() error {
	return fmt.Errorf("%w; this agent runs on %s/%s", ErrUnsupported, runtime.GOOS, runtime.GOARCH)
}

// Process is a patched process; on this platform none can be made.
type Process struct {
	// Pid is the process id.
	Pid int
}

// Patch fails on this platform.
func Patch(pid int) (*Process, error) { return nil, fmt.Errorf("patch %d: %w", pid, Supported()) }

// Probe fails on this platform.
func Probe(pid int) error { return fmt.Errorf("probe %d: %w", pid, Supported()) }

// Set fails on this platform.
func (p *Process) Set(Shift) error { return Supported() }

// Shift fails on this platform.
func (p *Process) Shift() (Shift, error) { return Shift{}, Supported() }

// Close does nothing.
func (p *Process) Close() error { return nil }
