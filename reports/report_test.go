package reports

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jepsen-go/jepsen/checkers"
	"github.com/jepsen-go/jepsen/history"
)

// makeRun writes a synthetic run into a new directory, checks it and
// writes its report. It returns the run directory and the result.
func makeRun(t testing.TB, s synth) (string, *checkers.Result) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "synthkv", "20260102T030400")
	s.write(t, dir)
	ops, err := history.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	res := checkers.Check(context.Background(), ops, checkers.Options{})
	if res.Error != "" {
		t.Fatal(res.Error)
	}
	if _, err := Write(context.Background(), dir, res); err != nil {
		t.Fatal(err)
	}
	return dir, res
}

func TestWriteReport(t *testing.T) {
	tests := []struct {
		name      string
		s         synth
		verdict   checkers.Validity
		contains  []string
		porcupine int
	}{
		{
			name:    "valid with faults",
			s:       synth{ops: 3000, seed: 1, nemesis: true},
			verdict: checkers.Valid,
			contains: []string{`class="verdict valid"`, "Valid: all", "under partition, kill faults", `id="latency-plot"`,
				`id="throughput-plot"`, `id="nodes-plot"`, "partition n1 n2 | n3 n4 n5", "kill n4", "jepsen run --nemesis partition,kill --seed 1"},
		},
		{
			name:    "stale reads under a partition",
			s:       synth{ops: 3000, seed: 2, nemesis: true, violations: []string{"kv1", "kv2"}},
			verdict: checkers.Invalid,
			contains: []string{`class="verdict invalid"`, "on 2 of", `id="violation-1"`, `id="violation-2"`, "during partition n1 n2 | n3 n4 n5",
				"✗ read → 1 (impossible)", "porcupine/01-kv1.html", "Node logs around this violation", "raftkv: heartbeat: node=n1"},
			porcupine: 2,
		},
		{
			name:      "no faults, one violation",
			s:         synth{ops: 500, seed: 3, violations: []string{"kv1"}},
			verdict:   checkers.Invalid,
			contains:  []string{"the first at", "No faults were injected in this run.", "no fault in effect"},
			porcupine: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, res := makeRun(t, tt.s)
			if res.Valid != tt.verdict {
				t.Fatalf("verdict %s, want %s", res.Valid, tt.verdict)
			}
			b, err := os.ReadFile(filepath.Join(dir, ReportFile))
			if err != nil {
				t.Fatal(err)
			}
			html := string(b)
			for _, want := range tt.contains {
				if !strings.Contains(html, want) {
					t.Errorf("report lacks %q", want)
				}
			}
			// No script and no reference to anything outside the page.
			for _, bad := range []string{"<script", "href=\"http", "src=", "@import", "url("} {
				if strings.Contains(html, bad) {
					t.Errorf("report contains %q", bad)
				}
			}
			if !strings.Contains(html, `http-equiv="Content-Security-Policy" content="default-src 'none'`) {
				t.Error("report has no Content Security Policy")
			}
			files, _ := filepath.Glob(filepath.Join(dir, PorcupineDir, "*.html"))
			if len(files) != tt.porcupine {
				t.Errorf("%d porcupine files, want %d", len(files), tt.porcupine)
			}
			for _, f := range files {
				p, _ := os.ReadFile(f)
				if !strings.Contains(string(p), "script-src 'sha256-") {
					t.Errorf("%s has no script hash policy", f)
				}
			}
		})
	}
}
