package nemesis

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand"
	"slices"
	"strings"
	"time"

	"github.com/jepsen-go/jepsen/history"
)

// KindClock shifts the clocks the nodes' processes see: bump-clock (node
// -> offset), strobe-clock, and reset-clock (the nodes reset). Its faults
// persist: they are not healed between faults, and the clock family acts
// every interval.
const KindClock Kind = "clock"

// DefaultClockMax bounds the clock offsets of the clock kind.
const DefaultClockMax = 30 * time.Second

// clock is the clock kind at work.
type clock struct {
	n       *Nemesis
	offsets map[string]time.Duration // nodes whose clock is shifted
	strobed []string                 // nodes strobed since the last reset
}

func newClock(n *Nemesis) (fault, error) {
	if n.opts.Clocks == nil {
		return nil, fmt.Errorf("nemesis: clock faults need a clock shifter")
	}
	return &clock{n: n}, nil
}

// clockOptions fills in DefaultClockMax.
func clockOptions(o *Options) error {
	if o.ClockMax <= 0 {
		o.ClockMax = DefaultClockMax
	}
	return nil
}

// inject bumps the clocks of some nodes by random offsets (half the
// time), strobes them, or resets every clock. As in Jepsen, and as with
// real clock skew, offsets are not healed between faults: they stay until a
// reset or the end of the run, so a skewed clock meets the other faults.
// Only nodes that are up are shifted: a killed node has no process to
// shift (it gets its old offset back when it restarts), and a frozen one
// cannot be patched until it thaws. Half of the faults aim at the leader
// (targets); those move its clock back (back) or strobe it behind its
// offset.
func (c *clock) inject(ctx context.Context, rng *rand.Rand) error {
	n := c.n
	choice := rng.Intn(4)
	if choice == 3 {
		// Nothing to reset, or a deposed leader that may still count
		// its lease: bump instead.
		if len(c.offsets) == 0 && len(c.strobed) == 0 || n.cutLeader != "" {
			choice = 0
		} else {
			return c.reset(ctx)
		}
	}
	down := n.downLocked()
	up := slices.DeleteFunc(slices.Clone(n.nodes), func(x string) bool { return slices.Contains(down, x) })
	targets, drawn, leader := c.targets(ctx, up, rng)
	max := int64(n.opts.ClockMax / time.Millisecond)
	offset := func() time.Duration {
		// Uniform in [-max, max], at least 1 s away from 0 where max allows.
		ms := rng.Int63n(2*max+1) - max
		if ms > -1000 && ms < 1000 && max >= 1000 {
			ms = 1000 * (1 - 2*(ms&1))
		}
		return time.Duration(ms) * time.Millisecond
	}
	if choice < 2 {
		bump := map[string]time.Duration{}
		plan := history.Fault{Kind: string(KindClock), Offsets: map[string]int64{}}
		offsets := make([]time.Duration, drawn) // as many draws whoever is aimed at
		for i := range offsets {
			offsets[i] = offset()
		}
		if len(targets) == 0 {
			n.logf(slog.LevelInfo, "nemesis: no running node to shift the clock of")
			return nil
		}
		for i, node := range targets {
			bump[node] = offsets[i]
			if leader {
				bump[node] = back(c.offsets[node], offsets[i], n.opts.ClockMax)
			}
			plan.Offsets[node] = int64(bump[node])
		}
		plan.Targets = slices.Sorted(maps.Keys(bump))
		return n.act(ctx, FBumpClock, plan, func(ctx context.Context) (history.Fault, error) {
			if c.offsets == nil {
				c.offsets = map[string]time.Duration{}
			}
			for node, d := range bump {
				c.offsets[node] = d // even on error: part may be applied, reset it
			}
			return plan, n.opts.Clocks.SetClock(ctx, bump)
		})
	}
	delta := abs(offset())
	if leader {
		// The leader's clock dips behind its base every other period:
		// a deposed leader that still counts its lease sees it revived.
		delta = -delta
	}
	if len(targets) == 0 {
		n.logf(slog.LevelInfo, "nemesis: no running node to strobe the clock of")
		return nil
	}
	period := 10 * time.Millisecond
	duration := min(n.opts.Interval, 10*time.Second)
	plan := history.Fault{Kind: string(KindClock), Targets: targets,
		Strobe: &history.Strobe{Delta: delta, Period: period, Duration: duration}}
	return n.act(ctx, FStrobeClock, plan, func(ctx context.Context) (history.Fault, error) {
		c.strobed = union(c.strobed, targets)
		return plan, n.opts.Clocks.StrobeClock(ctx, targets, delta, period, duration)
	})
}

// heal resets the clocks at the end of the run (all), recording it if
// some clock is known to be off, and asking for it anyway otherwise.
// Scheduled healing leaves the offsets: only a reset or the end of the run
// removes them.
func (c *clock) heal(ctx context.Context, all bool) error {
	if !all {
		return nil
	}
	if len(c.offsets) > 0 || len(c.strobed) > 0 {
		return c.reset(ctx)
	}
	if err := c.n.opts.Clocks.ResetClock(ctx); err != nil {
		return fmt.Errorf("reset clocks: %w", err)
	}
	return nil
}

// reset sets every shifted clock back to true time, recording it.
func (c *clock) reset(ctx context.Context) error {
	plan := history.Fault{Kind: string(KindClock), Targets: union(slices.Sorted(maps.Keys(c.offsets)), c.strobed)}
	return c.n.act(ctx, FResetClock, plan, func(ctx context.Context) (history.Fault, error) {
		err := c.n.opts.Clocks.ResetClock(ctx)
		if err == nil {
			c.offsets, c.strobed = nil, nil
		}
		return plan, err
	})
}

func (c *clock) active() []string {
	var out []string
	if len(c.offsets) > 0 {
		var s []string
		for _, node := range slices.Sorted(maps.Keys(c.offsets)) {
			s = append(s, fmt.Sprintf("%s%+.1fs", node, c.offsets[node].Seconds()))
		}
		out = append(out, "clock "+strings.Join(s, ","))
	}
	if len(c.strobed) > 0 {
		out = append(out, "clock strobe "+strings.Join(c.strobed, ","))
	}
	return out
}

func (c *clock) down() []string { return nil }

// back returns the offset a leader-aimed bump sets a clock at offset cur
// to: |d| behind cur, but not beyond -max. A leader's clock goes back
// because a lease holder whose clock falls behind holds its lease too
// long, while a jump forward only shortens it; forward jumps still reach
// the leader among random targets. A clock that cannot go a second
// further back (it is at -max already) jumps |d| forward instead, so that
// the next bump has room again.
func back(cur, d, max time.Duration) time.Duration {
	d = abs(d)
	next := cur - d
	if next < -max {
		next = -max
	}
	if cur-next < time.Second {
		next = min(cur+d, max)
	}
	return next
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// targets chooses the nodes of a clock fault among up: one node, a
// minority or a majority of the cluster, and, when the leader is known and
// up, half of the time the leader alone (Jepsen's primaries target): its
// clock is the one a leader lease trusts, and skew elsewhere rarely
// matters to a leader-based store. While a partition keeps the node that
// led when it began away from a majority (the nemesis's cutLeader), every
// clock fault aims at that deposed leader, and none resets the clocks: it
// may still believe its lease, and a clock that jumps back stretches that
// lease over the new leader's writes. The random draws depend neither on whether the leader
// is known nor on which nodes are up, so a seed gives the same sequence of
// draws either way; drawn is the size of the random choice, for which the
// caller draws its offsets, and leader says the targets are the (deposed)
// leader alone.
func (c *clock) targets(ctx context.Context, up []string, rng *rand.Rand) (targets []string, drawn int, leader bool) {
	n := c.n
	targets = n.pick(false, rng)
	drawn = len(targets)
	targets = slices.DeleteFunc(targets, func(x string) bool { return !slices.Contains(up, x) })
	if n.opts.Leader == nil {
		return targets, drawn, false
	}
	aim := rng.Intn(2) == 0
	if n.cutLeader != "" && slices.Contains(up, n.cutLeader) {
		// Every fault while the leader is deposed goes to it: that window
		// is short, and it is where a stale lease shows.
		return []string{n.cutLeader}, drawn, true
	}
	if aim {
		if l, ok := n.opts.Leader(ctx); ok && slices.Contains(up, l) {
			return []string{l}, drawn, true
		}
	}
	return targets, drawn, false
}
