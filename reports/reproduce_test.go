package reports

import (
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
)

// cmdDefaults are the defaults cmd/jepsen gives Reproduce (harness and
// nemesis defaults, which this package cannot import).
var cmdDefaults = Settings{NemesisInterval: 10 * time.Second, ClockMax: 5 * time.Second, OpsPerKey: 200, OpTimeout: time.Second, Recovery: 10 * time.Second}

func TestReproduce(t *testing.T) {
	base := Settings{Workload: "register", TimeLimit: 30 * time.Second, Seed: 7, NemesisInterval: 10 * time.Second, ClockMax: 5 * time.Second,
		OpsPerKey: 200, OpTimeout: time.Second, Recovery: 10 * time.Second}
	with := func(f func(*Settings)) Settings {
		s := base
		f(&s)
		return s
	}
	tests := []struct {
		name     string
		s        Settings
		defaults Settings
		want     string
	}{
		{"defaults left out", base, cmdDefaults, "jepsen run --workload register --time-limit 30s --seed 7"},
		{"as the acceptance logs print it", with(func(s *Settings) {
			s.Nemesis, s.TimeLimit, s.Env = "clock,partition", time.Minute, []string{"RAFTKV_BUG=lease-read"}
		}), cmdDefaults, "jepsen run --workload register --nemesis clock,partition --time-limit 1m0s --seed 7 --env RAFTKV_BUG=lease-read"},
		{"every flag", with(func(s *Settings) {
			s.TargetDir, s.Ops, s.Nemesis = "./my kv", "read,write", "clock,kill"
			s.NemesisInterval, s.ClockMax, s.Nodes, s.Concurrency, s.Rate, s.OpsPerKey = 5*time.Second, time.Second, 3, 4, 12.5, 50
			s.OpTimeout, s.Recovery = 2*time.Second, 0
			s.ProtocolOptions, s.Env = []string{"reads=serializable"}, []string{"A=it's"}
		}), cmdDefaults, "jepsen run --target './my kv' --workload register --ops read,write --nemesis clock,kill --time-limit 30s --seed 7" +
			" --nemesis-interval 5s --clock-max 1s --nodes 3 --concurrency 4 --rate 12.5 --ops-per-key 50 --op-timeout 2s --recovery 0s" +
			" --protocol-option reads=serializable --env 'A=it'\\''s'"},
		{"no interval without faults", with(func(s *Settings) { s.Nemesis, s.NemesisInterval = "none", time.Second }), cmdDefaults,
			"jepsen run --workload register --nemesis none --time-limit 30s --seed 7"},
		{"no clock bound without clock faults", with(func(s *Settings) { s.Nemesis, s.ClockMax = "partition", time.Second }), cmdDefaults,
			"jepsen run --workload register --nemesis partition --time-limit 30s --seed 7"},
		{"the default mix has clock faults", with(func(s *Settings) { s.ClockMax = time.Second }), cmdDefaults,
			"jepsen run --workload register --time-limit 30s --seed 7 --clock-max 1s"},
		{"zero defaults: every setting recorded", with(func(s *Settings) { s.Nodes, s.Concurrency, s.Rate = 5, 10, 200 }), Settings{},
			"jepsen run --workload register --time-limit 30s --seed 7 --nemesis-interval 10s --clock-max 5s --nodes 5 --concurrency 10 --rate 200" +
				" --ops-per-key 200 --op-timeout 1s --recovery 10s"},
		{"an old test.json without the newer settings", Settings{Workload: "set", Nemesis: "kill", TimeLimit: time.Second, Seed: 3}, Settings{},
			"jepsen run --workload set --nemesis kill --time-limit 1s --seed 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.Reproduce(tc.defaults); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestShellQuote: a POSIX shell splits a quoted word back into exactly the
// word.
func TestShellQuote(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	words := []string{"plain", "", "two words", "it's", `a"b`, "$HOME", "`id`", "a\\b", "*", "x;y", "tab\there", "new\nline", "ünïcode", "~", "#c", "a=b,c:d/e.f_g-h", "!x", "{a,b}"}
	var line []string
	for _, w := range words {
		q := ShellQuote(w)
		if w == "plain" && q != w || w == "a=b,c:d/e.f_g-h" && q != w {
			t.Errorf("ShellQuote(%q) = %q, want it unchanged", w, q)
		}
		line = append(line, q)
	}
	out, err := exec.Command(sh, "-c", `for a in `+strings.Join(line, " ")+`; do printf '%s\0' "$a"; done`).Output()
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if !reflect.DeepEqual(got, words) {
		t.Errorf("the shell read back %q\nwant %q", got, words)
	}
}
