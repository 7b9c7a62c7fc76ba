package clockfault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Strobe flips a clock between its shift and its shift plus Delta every
// Period, for Duration, then leaves it at its shift.
type Strobe struct {
	Delta    time.Duration `json:"delta"`
	Period   time.Duration `json:"period"`
	Duration time.Duration `json:"duration"`
}

// Validate checks s for values that cannot work.
func (s Strobe) Validate() error {
	switch {
	case s.Delta == 0:
		return errors.New("strobe: delta is 0")
	case s.Period < time.Millisecond:
		return fmt.Errorf("strobe: period %v is below 1ms", s.Period)
	case s.Duration < s.Period:
		return fmt.Errorf("strobe: duration %v is shorter than the period %v", s.Duration, s.Period)
	}
	return nil
}

// Agent shifts the clocks of one process tree: a root process and all its
// descendants (in a node's PID namespace, pid 1 and its children). It
// patches a process the first time a non-zero shift must reach it and
// keeps a handle to change the shift later without stopping it again. It
// is safe for concurrent use.
type Agent struct {
	root int

	mu      sync.Mutex
	shift   Shift
	procs   map[int]*tracked
	strobe  context.CancelFunc
	strobeN int
	done    chan struct{} // closed when the current strobe ends
}

type tracked struct {
	p     *Process
	start string // start time from /proc/PID/stat, tells a reused pid apart
}

// NewAgent returns an agent for the process tree rooted at pid root.
func NewAgent(root int) *Agent {
	return &Agent{root: root, procs: map[int]*tracked{}}
}

// Set cancels any strobe and makes every process of the tree see s.
func (a *Agent) Set(s Shift) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopStrobeLocked()
	a.shift = s
	return a.syncLocked(s)
}

// Shift returns the shift the agent maintains.
func (a *Agent) Shift() Shift {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.shift
}

// Strobe starts flipping the clocks of the tree between the current shift
// and the current shift plus st.Delta, in the background, for
// st.Duration; a later Set or Strobe ends it early. The tree is patched
// before Strobe returns.
func (a *Agent) Strobe(st Strobe) error {
	if err := st.Validate(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopStrobeLocked()
	base := a.shift
	alt := Shift{Offset: base.Offset + int64(st.Delta), Monotonic: base.Monotonic}
	if err := a.syncLocked(alt); err != nil {
		_ = a.syncLocked(base)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), st.Duration)
	a.strobe = cancel
	a.strobeN++
	done := make(chan struct{})
	a.done = done
	go a.runStrobe(ctx, done, a.strobeN, st.Period, base, alt)
	return nil
}

func (a *Agent) runStrobe(ctx context.Context, done chan struct{}, n int, period time.Duration, base, alt Shift) {
	defer close(done)
	tick := time.NewTicker(period)
	defer tick.Stop()
	on := true
	lastScan := time.Now()
	for {
		select {
		case <-ctx.Done():
			a.mu.Lock()
			if a.strobeN == n { // not superseded: back to the base shift
				a.strobe = nil
				_ = a.syncLocked(base)
			}
			a.mu.Unlock()
			return
		case <-tick.C:
		}
		on = !on
		s := base
		if on {
			s = alt
		}
		a.mu.Lock()
		if a.strobeN != n {
			a.mu.Unlock()
			return
		}
		if time.Since(lastScan) > time.Second {
			_ = a.syncLocked(s) // reach new processes too
			lastScan = time.Now()
		} else {
			for _, t := range a.procs {
				_ = t.p.Set(s)
			}
		}
		a.mu.Unlock()
	}
}

// Strobing reports whether a strobe is running.
func (a *Agent) Strobing() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.strobe != nil
}

func (a *Agent) stopStrobeLocked() {
	if a.strobe != nil {
		a.strobe()
		a.strobe = nil
		a.strobeN++
		done := a.done
		a.mu.Unlock()
		<-done
		a.mu.Lock()
	}
}

// Resync applies the current shift to processes that appeared (or
// exec'd) since the last change; serve calls it periodically.
func (a *Agent) Resync() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.strobe != nil {
		return nil // the strobe rescans by itself
	}
	return a.syncLocked(a.shift)
}

// syncLocked makes every process of the tree see s.
func (a *Agent) syncLocked(s Shift) error {
	pids, err := Tree(a.root)
	if err != nil {
		return err
	}
	var errs []error
	seen := map[int]bool{}
	for _, pid := range pids {
		seen[pid] = true
		start, err := startTime(pid)
		if err != nil {
			continue // exited
		}
		t := a.procs[pid]
		if t != nil && t.start != start {
			t.p.Close()
			delete(a.procs, pid)
			t = nil
		}
		if t != nil {
			if err := t.p.Set(s); err == nil {
				continue
			}
			// exec'd: its old memory is gone; patch the new image
			t.p.Close()
			delete(a.procs, pid)
		}
		if s.IsZero() {
			continue // an unpatched process already sees no shift
		}
		p, err := Patch(pid)
		if err != nil {
			if _, serr := os.Stat(fmt.Sprintf("/proc/%d", pid)); serr != nil {
				continue // exited meanwhile
			}
			errs = append(errs, err)
			continue
		}
		a.procs[pid] = &tracked{p: p, start: start}
		if err := p.Set(s); err != nil {
			errs = append(errs, err)
		}
	}
	for pid, t := range a.procs {
		if !seen[pid] {
			t.p.Close()
			delete(a.procs, pid)
		}
	}
	return errors.Join(errs...)
}

// ProcessStatus is what one process of the tree sees.
type ProcessStatus struct {
	Pid   int    `json:"pid"`
	Shift Shift  `json:"shift"`
	Error string `json:"error,omitempty"`
}

// AgentStatus is an agent's state, as `clockfault status` prints it.
type AgentStatus struct {
	Shift     Shift           `json:"shift"`
	Strobing  bool            `json:"strobing"`
	Processes []ProcessStatus `json:"processes"`
}

// Status reports the maintained shift and what each patched process
// holds now (read back from its memory).
func (a *Agent) Status() AgentStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := AgentStatus{Shift: a.shift, Strobing: a.strobe != nil}
	for pid, t := range a.procs {
		ps := ProcessStatus{Pid: pid}
		s, err := t.p.Shift()
		ps.Shift = s
		if err != nil {
			ps.Error = err.Error()
		}
		st.Processes = append(st.Processes, ps)
	}
	sort.Slice(st.Processes, func(i, j int) bool { return st.Processes[i].Pid < st.Processes[j].Pid })
	return st
}

// Close ends any strobe and releases the handles; the processes keep the
// shift they have.
func (a *Agent) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopStrobeLocked()
	for pid, t := range a.procs {
		t.p.Close()
		delete(a.procs, pid)
	}
}

// Tree returns root and every descendant of it, by the parent pids in
// /proc. Processes joined to the namespace from outside (docker exec, the
// agent's own sidecar) have parent 0 and are not part of it.
func Tree(root int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // exited
		}
		st, err := ParseStat(string(b))
		if err != nil {
			return nil, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		children[st.PPid] = append(children[st.PPid], pid)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", root)); err != nil {
		return nil, fmt.Errorf("root process %d: %w", root, err)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		for _, c := range children[out[i]] {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// Stat holds the fields of /proc/PID/stat the agent uses.
type Stat struct {
	Pid, PPid int
	Comm      string
	StartTime string // in clock ticks since boot
}

// ParseStat parses the contents of /proc/PID/stat. The command name may
// contain spaces and parentheses; it ends at the last ')'.
func ParseStat(s string) (Stat, error) {
	open := strings.IndexByte(s, '(')
	end := strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return Stat{}, fmt.Errorf("stat %.40q: no (comm)", s)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return Stat{}, fmt.Errorf("stat %.40q: pid: %w", s, err)
	}
	rest := strings.Fields(s[end+1:])
	// rest[0] is field 3 (state); ppid is field 4, starttime field 22.
	if len(rest) < 20 {
		return Stat{}, fmt.Errorf("stat %.40q: %d fields after comm, want at least 20", s, len(rest))
	}
	ppid, err := strconv.Atoi(rest[1])
	if err != nil {
		return Stat{}, fmt.Errorf("stat %.40q: ppid: %w", s, err)
	}
	return Stat{Pid: pid, PPid: ppid, Comm: s[open+1 : end], StartTime: rest[19]}, nil
}

func startTime(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	st, err := ParseStat(string(b))
	if err != nil {
		return "", err
	}
	return st.StartTime, nil
}
