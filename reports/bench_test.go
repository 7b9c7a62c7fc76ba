package reports

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// bigRun writes a 200,000-operation register run (400,000 events) with
// partitions, a kill and one violation.
func bigRun(b *testing.B) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "synthkv", "20260102T030400")
	synth{ops: 200_000, seed: 42, nemesis: true, violations: []string{"kv1"}}.write(b, dir)
	return dir
}

// BenchmarkRebuild200k measures `jepsen report` on a 200,000-operation
// history: read it, check it again, write the report. Target: ≤ 10 s per
// op, report < 20 MB (the report-MB metric).
func BenchmarkRebuild200k(b *testing.B) {
	dir := bigRun(b)
	b.ResetTimer()
	for b.Loop() {
		if _, res, err := Rebuild(context.Background(), dir); err != nil {
			b.Fatal(err)
		} else if len(res.Linear.Failures) != 1 {
			b.Fatalf("%d invalid keys, want 1", len(res.Linear.Failures))
		}
	}
	b.StopTimer()
	fi, err := os.Stat(filepath.Join(dir, ReportFile))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size())/1e6, "report-MB")
}

// BenchmarkBrowserLoad200k measures how long headless Chromium takes to
// open the report of a 200,000-operation run until its load event and
// the last section are there. Target: < 5 s per op.
func BenchmarkBrowserLoad200k(b *testing.B) {
	dir := bigRun(b)
	if _, _, err := Rebuild(context.Background(), dir); err != nil {
		b.Fatal(err)
	}
	ctx, log := openBrowser(b)
	url := fileURL(filepath.Join(dir, ReportFile))
	b.ResetTimer()
	for b.Loop() {
		// Navigate away first so that every iteration loads the page anew.
		if err := chromedp.Run(ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(url), chromedp.WaitReady("#files")); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if errs, _, _ := log.snapshot(); len(errs) > 0 {
		b.Fatalf("console errors: %q", errs)
	}
}
