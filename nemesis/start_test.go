package nemesis

import (
	"testing"
	"time"
)

func TestFirstFaults(t *testing.T) {
	tests := []struct {
		kinds    []Kind
		interval time.Duration
		want     map[string]time.Duration
	}{
		{Kinds, 10 * time.Second, map[string]time.Duration{"network": 2 * time.Second, "process": 7 * time.Second, "clock": 3 * time.Second}},
		{[]Kind{KindClock, KindPartition}, 10 * time.Second, map[string]time.Duration{"network": 2 * time.Second, "clock": 3 * time.Second}},
		{[]Kind{KindKill}, 10 * time.Second, map[string]time.Duration{"process": 2 * time.Second}},
		{[]Kind{KindPartition, KindPacket}, 3 * time.Second, map[string]time.Duration{"network": time.Second}},
		{[]Kind{KindPause, KindClock}, 500 * time.Millisecond, map[string]time.Duration{"process": 500 * time.Millisecond, "clock": 750 * time.Millisecond}},
		{nil, 10 * time.Second, map[string]time.Duration{}},
	}
	for _, tt := range tests {
		got := FirstFaults(tt.kinds, tt.interval)
		if len(got) != len(tt.want) {
			t.Errorf("FirstFaults(%v, %v) = %v, want %v", tt.kinds, tt.interval, got, tt.want)
			continue
		}
		for f, at := range tt.want {
			if got[f] != at {
				t.Errorf("FirstFaults(%v, %v)[%s] = %v, want %v", tt.kinds, tt.interval, f, got[f], at)
			}
		}
	}
	// The default mix in a 20 s run at the default interval: every family
	// acts before the end.
	for f, at := range FirstFaults(Kinds, DefaultInterval) {
		if at >= 20*time.Second-time.Second {
			t.Errorf("the first %s fault comes at %v: too late for a 20 s run", f, at)
		}
	}
}
