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

// firstFaults returns when the first fault of each of the active families
// (names, in registry order) starts: after the warm-up, staggered by a
// share of the interval so that families overlap without starting
// together. The clock family is the exception: when the network family is
// active it follows it by a tenth of the interval, so that each clock
// fault lands shortly after a partition begins, while a leader that the
// partition deposed still counts its lease. Lease bugs show exactly
// there; a clock fault late in a partition finds the old lease long gone.
func firstFaults(active []string, interval time.Duration) []time.Duration {
	out := make([]time.Duration, len(active))
	var others []int
	for j, name := range active {
		if name == familyClock && slices.Contains(active, familyNetwork) {
			out[j] = Warmup(interval) + interval/10
			continue
		}
		others = append(others, j)
	}
	for k, j := range others {
		out[j] = Warmup(interval) + interval*time.Duration(k)/time.Duration(len(others))
	}
	return out
}

// Family names, as the registry gives them.
const (
	familyNetwork = "network"
	familyClock   = "clock"
)

// activeFamilies returns the names of the families that kinds enable, in
// registry order.
func activeFamilies(kinds []Kind) []string {
	var active []string
	for _, f := range familySpecs() {
		if slices.ContainsFunc(f.kinds, func(k Kind) bool { return slices.Contains(kinds, k) }) {
			active = append(active, f.name)
		}
	}
	return active
}

// FirstFaults returns, for each family that kinds enable, when its first
// fault starts after the clients do (for warnings about short runs).
func FirstFaults(kinds []Kind, interval time.Duration) map[string]time.Duration {
	active := activeFamilies(kinds)
	at := firstFaults(active, interval)
	out := make(map[string]time.Duration, len(active))
	for j, name := range active {
		out[name] = at[j]
	}
	return out
}
