package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// jepsen check on malformed input: exit 2, one line naming FILE:LINE, no
// stack trace, whatever the input.
func TestCheckMalformedInput(t *testing.T) {
	const inv = `{"type":"invoke","process":0,"f":"write","key":"k","value":1,"time":1}` + "\n"
	huge := strings.Repeat("x", 100<<20) // one 100 MB line
	tests := []struct {
		name, content string
		line          int
	}{
		{"truncated line", inv + `{"type":"ok","process":0,"f":"wr`, 2},
		{"bad json", `{"type": invoke}`, 1},
		{"wrong types", `{"type":"invoke","process":"zero","f":"read","time":1}`, 1},
		{"no invocation", `{"type":"ok","process":0,"f":"read","key":"k","value":1,"time":1}`, 1},
		{"empty file", "", 1},
		{"100 MB line", `{"type":"invoke","key":"` + huge, 1},
		{"binary garbage", "\x7fELF\x02\x01\x01\x00\x00\x00\xff\xfe\x00\x01", 1},
		{"cas not a pair", `{"type":"invoke","process":0,"f":"cas","key":"k","value":5,"time":1}`, 1},
		{"time backwards", inv + `{"type":"ok","process":0,"f":"write","key":"k","value":1,"time":0}`, 2},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".jsonl")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r := jepsen(t, ctx, "check", path)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2\n%s%s", r.code, r.stdout, r.stderr)
			}
			msg := strings.TrimSuffix(r.stderr, "\n")
			if strings.Contains(msg, "\n") || strings.Contains(msg, "goroutine") || len(msg) > 400 {
				t.Fatalf("want one short line, got:\n%s", r.stderr)
			}
			want := regexp.MustCompile("^jepsen: " + regexp.QuoteMeta(path) + ":" + strconv.Itoa(tt.line) + ": ")
			if !want.MatchString(msg) {
				t.Errorf("message %q does not start with FILE:%d:", msg, tt.line)
			}
		})
	}
}

func TestCheckExitCodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tt := range []struct {
		file string
		code int
		out  string
	}{
		{"../../examples/histories/valid.jsonl", 0, "VALID"},
		{"../../examples/histories/stale-read.jsonl", 1, "read of k1 by process 2 returned 1"},
		{"../../history/testdata/independent.edn", 1, "cas 3→4 on 0 by process 0 failed"},
		{"../../history/testdata/register.edn", 0, "VALID"},
		{"../../history/testdata/knossos-vector.edn", 0, "VALID"},
		{"../../history/testdata/knossos-list-stale.edn", 1, "read of r by process 2 returned 1 at op 5"},
		{"../../history/testdata/jepsen-nemesis.edn", 1, "✗ key r, impossible cas failure: 2 operations prove it (of 3 on this key)"},
		{"testdata/handwritten.jsonl", 1, "violations by kind: 2 stale reads"},
	} {
		// --out keeps the reports out of the repository.
		r := jepsen(t, ctx, "check", "--out", t.TempDir(), tt.file)
		if r.code != tt.code || !strings.Contains(r.stdout, tt.out) {
			t.Errorf("check %s: exit %d (want %d)\n%s%s", tt.file, r.code, tt.code, r.stdout, r.stderr)
		}
	}
}

// jepsen run refuses nonsensical numbers before it touches Docker: exit 2
// and one line naming the flag, never a silent fall-back to a default.
func TestRunFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--time-limit", "-3s"}, "--time-limit must be greater than 0, got -3s"},
		{[]string{"--time-limit", "0s"}, "--time-limit must be greater than 0"},
		{[]string{"--nodes", "0"}, "--nodes must be greater than 0, got 0"},
		{[]string{"--concurrency", "-2"}, "--concurrency must be greater than 0, got -2"},
		{[]string{"--rate", "-1"}, "--rate must not be negative"},
		{[]string{"--runs", "0"}, "--runs must be greater than 0"},
		{[]string{"--op-timeout", "0s"}, "--op-timeout must be greater than 0"},
		{[]string{"--nemesis-interval", "-1s"}, "--nemesis-interval must be greater than 0"},
		{[]string{"--ops-per-key", "0"}, "--ops-per-key must be greater than 0"},
		{[]string{"--recovery", "-1s"}, "--recovery must not be negative"},
		{[]string{"--seed", "-5"}, "--seed must not be negative"},
		{[]string{"--env", "NOEQUALS"}, "--env:"},
		{[]string{"--nemesis", "partition,typo"}, `unknown fault kind "typo"`},
		{[]string{"--workload", "queue"}, `unknown workload "queue"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r := jepsen(t, ctx, append([]string{"run", "--store", t.TempDir()}, tt.args...)...)
			msg := strings.TrimSuffix(r.stderr, "\n")
			if r.code != 2 || strings.Contains(msg, "\n") || !strings.Contains(msg, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and one line containing %q", r.code, r.stderr, tt.want)
			}
		})
	}
}
