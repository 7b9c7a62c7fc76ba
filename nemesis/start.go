package nemesis

import (
	"slices"
	"time"
)

// Warmup is how long a run goes without faults at its start, so that the
// cluster settles and the clients get going: a fifth of the interval, at
// least 1 s and at most the interval. A 20 s run at the default 10 s
// interval thus sees a fault of every family it enables.
func Warmup(interval time.Duration) time.Duration {
	return min(interval, max(interval/5, time.Second))
}

// firstFault is when the first fault of the j-th of n active families
// starts: after the warm-up, staggered by a share of the interval so that
// families overlap without starting together.
func firstFault(j, n int, interval time.Duration) time.Duration {
	return Warmup(interval) + interval*time.Duration(j)/time.Duration(n)
}

// FirstFaults returns, for each family that kinds enable, when its first
// fault starts after the clients do (for warnings about short runs).
func FirstFaults(kinds []Kind, interval time.Duration) map[string]time.Duration {
	var active []string
	for _, f := range familySpecs() {
		if slices.ContainsFunc(f.kinds, func(k Kind) bool { return slices.Contains(kinds, k) }) {
			active = append(active, f.name)
		}
	}
	out := make(map[string]time.Duration, len(active))
	for j, name := range active {
		out[name] = firstFault(j, len(active), interval)
	}
	return out
}
