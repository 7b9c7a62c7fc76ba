package main

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// copyFile copies src to dst, making dst's directory.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// headless starts a headless Chromium for the test; it skips the test when
// there is none, unless CI is set.
func headless(t *testing.T) (context.Context, *browserLog) {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed and CI is set: install Debian's chromium package")
		}
		t.Skip("chromium is not installed; apt-get install chromium to run the browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	l := &browserLog{}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeAssert {
				l.add(&l.errors, "console."+string(e.Type))
			}
		case *runtime.EventExceptionThrown:
			l.add(&l.errors, "exception: "+e.ExceptionDetails.Text)
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.LevelError {
				l.add(&l.errors, e.Entry.Text+" "+e.Entry.URL)
			}
		case *network.EventRequestWillBeSent:
			l.add(&l.requests, e.Request.URL)
		}
	})
	if err := chromedp.Run(ctx, network.Enable(), cdplog.Enable(), runtime.Enable()); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx, l
}

// browserLog records console errors and requests of a page.
type browserLog struct {
	mu               sync.Mutex
	errors, requests []string
}

func (l *browserLog) add(list *[]string, s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	*list = append(*list, s)
}

func (l *browserLog) take() (errs, reqs []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	errs, reqs = l.errors, l.requests
	l.errors, l.requests = nil, nil
	return errs, reqs
}

// jepsen check on a history with nothing beside it: the verdict as the exit
// code, and a report next to the history (or in --out) that opens offline
// in a browser with no console error and says what is unknown.
func TestCheckWritesReport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bctx, blog := headless(t)
	tmp := t.TempDir()
	copyFile(t, "testdata/handwritten.jsonl", filepath.Join(tmp, "jsonl", "history.jsonl"))
	copyFile(t, "../../history/testdata/knossos-list-stale.edn", filepath.Join(tmp, "edn", "stale.edn"))
	copyFile(t, "../../history/testdata/jepsen-nemesis.edn", filepath.Join(tmp, "jepsen", "history.edn"))
	copyFile(t, "../../history/testdata/knossos-vector.edn", filepath.Join(tmp, "valid", "h.edn"))
	tests := []struct {
		name    string
		args    []string
		code    int
		report  string   // where the report must be
		files   []string // other files that must be there
		stdout  []string
		page    []string // text the report shows
		notPage []string
	}{
		{
			name: "directory holding only a history.jsonl", args: []string{filepath.Join(tmp, "jsonl")}, code: 1,
			report: filepath.Join(tmp, "jsonl", "report.html"), files: []string{filepath.Join(tmp, "jsonl", "results.json")},
			stdout: []string{"violations by kind: 2 stale reads", "✗ key k2, stale read: 2 operations prove it (of 3 on this key)"},
			page: []string{"Invalid: the store is not linearizable", "settings unknown: no test.json", "This history came without test.json",
				"start-partition ×1, stop-partition ×1", "stale read", "2 operations prove it (of 3 on this key)", "history.jsonl — every operation"},
			notPage: []string{"test.json —", "jepsen run --seed"},
		},
		{
			name: "EDN file without times", args: []string{filepath.Join(tmp, "edn", "stale.edn")}, code: 1,
			report: filepath.Join(tmp, "edn", "report.html"),
			stdout: []string{"returned 1 at op 5", "the history has no times"},
			page:   []string{"This history has no times", "at op 5", "stale.edn — every operation, in EDN", "throughput cannot be measured", "No fault is recorded in the history"},
		},
		{
			name: "Jepsen EDN with nemesis info ops", args: []string{filepath.Join(tmp, "jepsen")}, code: 1,
			report: filepath.Join(tmp, "jepsen", "report.html"),
			page:   []string{"start ×2, stop ×2", "4 nemesis operations had no invocation", "1 operations had a time earlier", "impossible cas failure"},
		},
		{
			name: "valid EDN into --out", args: []string{"--out", filepath.Join(tmp, "out"), filepath.Join(tmp, "valid", "h.edn")}, code: 0,
			report: filepath.Join(tmp, "out", "report.html"), files: []string{filepath.Join(tmp, "out", "results.json")},
			page: []string{"Valid: all", "settings unknown"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := jepsen(t, ctx, append([]string{"check"}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
			for _, f := range append([]string{tt.report}, tt.files...) {
				if _, err := os.Stat(f); err != nil {
					t.Errorf("%s was not written: %v\n%s", f, err, r.stdout)
				}
			}
			abs, _ := filepath.Abs(tt.report)
			u := (&url.URL{Scheme: "file", Path: abs}).String()
			var text string
			if err := chromedp.Run(bctx, chromedp.Navigate(u), chromedp.WaitReady("#files"),
				chromedp.Evaluate(`document.querySelectorAll('details').forEach(d => d.open = true)`, nil),
				chromedp.Sleep(300*time.Millisecond),
				chromedp.Evaluate(`document.body.innerText`, &text)); err != nil {
				t.Fatalf("open %s: %v", u, err)
			}
			errs, reqs := blog.take()
			if len(errs) > 0 {
				t.Errorf("console errors: %q", errs)
			}
			for _, req := range reqs {
				if req != u {
					t.Errorf("the report requested %s", req)
				}
			}
			for _, w := range tt.page {
				if !strings.Contains(text, w) {
					t.Errorf("the report does not show %q", w)
				}
			}
			for _, w := range tt.notPage {
				if strings.Contains(text, w) {
					t.Errorf("the report shows %q", w)
				}
			}
			// Every link of the report leads to a file that exists.
			var links []string
			if err := chromedp.Run(bctx, chromedp.Evaluate(`[...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')).filter(h => !h.startsWith('#'))`, &links)); err != nil {
				t.Fatal(err)
			}
			for _, l := range links {
				if _, err := os.Stat(filepath.Join(filepath.Dir(tt.report), l)); err != nil {
					t.Errorf("dead link %s", l)
				}
			}
		})
	}
}

// jepsen report takes a run directory, a directory holding only a history,
// or a history file.
func TestReportWithoutTestJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tmp := t.TempDir()
	copyFile(t, "testdata/handwritten.jsonl", filepath.Join(tmp, "dir", "history.jsonl"))
	copyFile(t, "../../history/testdata/knossos-vector.edn", filepath.Join(tmp, "file", "knossos.edn"))
	if err := os.MkdirAll(filepath.Join(tmp, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tmp, "bad.edn"), []byte("[{:type :invoke, :f :read, :process 0}\n {:type :ok, :f :read\n"), 0o644)
	for _, tt := range []struct {
		arg, report string
		code        int
		out         string
	}{
		{filepath.Join(tmp, "dir"), filepath.Join(tmp, "dir", "report.html"), 0, "INVALID"},
		{filepath.Join(tmp, "file", "knossos.edn"), filepath.Join(tmp, "file", "report.html"), 0, "VALID"},
		{filepath.Join(tmp, "empty"), "", 2, "has no history.jsonl or history.edn"},
		{filepath.Join(tmp, "bad.edn"), "", 2, filepath.Join(tmp, "bad.edn") + ":2: bad EDN: the map that starts here is never closed"},
	} {
		r := jepsen(t, ctx, "report", tt.arg)
		if r.code != tt.code || !strings.Contains(r.stdout+r.stderr, tt.out) {
			t.Errorf("report %s: exit %d (want %d), output lacks %q:\n%s%s", tt.arg, r.code, tt.code, tt.out, r.stdout, r.stderr)
		}
		if tt.code == 2 && strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("report %s: want one line on stderr, got %q", tt.arg, r.stderr)
		}
		if tt.report != "" {
			if _, err := os.Stat(tt.report); err != nil {
				t.Errorf("report %s wrote no %s", tt.arg, tt.report)
			}
		}
	}
}

func TestServingLine(t *testing.T) {
	store := t.TempDir()
	got := servingLine(store, "127.0.0.1:8080")
	want := "Serving " + store + "/ (no runs yet) at http://127.0.0.1:8080/ (Ctrl-C to stop)"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if strings.Contains(servingLine("store", "x"), "store store") {
		t.Error("says the store store")
	}
}

// TestKnossosCorpus checks Knossos's register corpus (data/cas-register of
// github.com/jepsen-io/knossos, not in this repository: its licence is not
// ours) when JEPSEN_KNOSSOS_CORPUS names a copy of that directory: every
// history in good/ must be linearizable and every one in bad/ not, as
// Knossos says. The exit codes are logged: a history can also be unknown
// (exit 3) when the checkers find it tested too little.
func TestKnossosCorpus(t *testing.T) {
	corpus := os.Getenv("JEPSEN_KNOSSOS_CORPUS")
	if corpus == "" {
		t.Skip("JEPSEN_KNOSSOS_CORPUS is not set (a copy of knossos's data/cas-register)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	for _, tt := range []struct{ dir, want string }{{"good", "valid"}, {"bad", "invalid"}} {
		files, _ := filepath.Glob(filepath.Join(corpus, tt.dir, "*.edn"))
		if len(files) == 0 {
			t.Fatalf("no histories in %s", filepath.Join(corpus, tt.dir))
		}
		agree, codes := 0, map[int]int{}
		for _, f := range files {
			out := t.TempDir()
			r := jepsen(t, ctx, "check", "--out", out, f)
			codes[r.code]++
			b, err := os.ReadFile(filepath.Join(out, "results.json"))
			if err != nil {
				t.Errorf("%s: exit %d, no results.json: %s", f, r.code, r.stderr)
				continue
			}
			var res struct {
				Linear struct {
					Valid any `json:"valid"` // true, false or "unknown"
				} `json:"linear"`
			}
			if err := json.Unmarshal(b, &res); err != nil {
				t.Fatal(err)
			}
			if got := map[any]string{true: "valid", false: "invalid"}[res.Linear.Valid]; got != tt.want {
				t.Errorf("%s: linearizability %v, Knossos says %s", f, res.Linear.Valid, tt.want)
				continue
			}
			if _, err := os.Stat(filepath.Join(out, "report.html")); err != nil {
				t.Errorf("%s: no report", f)
			}
			agree++
		}
		t.Logf("%s: %d of %d agree with Knossos (%s); exit codes %v", tt.dir, agree, len(files), tt.want, codes)
	}
}
