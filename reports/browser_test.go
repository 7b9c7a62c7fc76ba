package reports

import (
	"context"
	"fmt"
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
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath returns the headless browser to drive. Without one the test
// is skipped, unless CI is set: then it fails.
func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed and CI is set: install Debian's chromium package (.ci/run does)")
	}
	t.Skip("chromium is not installed; apt-get install chromium to run the browser tests")
	return ""
}

// pageLog records what a page did that a report must never do.
type pageLog struct {
	mu       sync.Mutex
	errors   []string // console errors, exceptions, browser log errors
	requests []string // URLs requested
	dialogs  []string // JavaScript dialogs (alert, confirm, prompt)
}

func (l *pageLog) add(list *[]string, s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	*list = append(*list, s)
}

func (l *pageLog) snapshot() (errs, reqs, dialogs []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errors...), append([]string(nil), l.requests...), append([]string(nil), l.dialogs...)
}

func (l *pageLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errors, l.requests, l.dialogs = nil, nil, nil
}

// openBrowser starts a headless Chromium for the test and returns a
// context to drive it and the log of its page's events.
func openBrowser(t testing.TB) (context.Context, *pageLog) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // the tests run as root
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	l := &pageLog{}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeAssert {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				l.add(&l.errors, "console."+string(e.Type)+": "+strings.Join(parts, " "))
			}
		case *runtime.EventExceptionThrown:
			msg := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
			l.add(&l.errors, "exception: "+msg)
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.LevelError {
				l.add(&l.errors, fmt.Sprintf("%s: %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL))
			}
		case *network.EventRequestWillBeSent:
			l.add(&l.requests, e.Request.URL)
		case *page.EventJavascriptDialogOpening:
			l.add(&l.dialogs, string(e.Type)+": "+e.Message)
			go func() { _ = chromedp.Run(ctx, page.HandleJavaScriptDialog(false)) }()
		}
	})
	if err := chromedp.Run(ctx, network.Enable(), cdplog.Enable(), runtime.Enable(), page.Enable()); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx, l
}

func fileURL(path string) string {
	abs, _ := filepath.Abs(path)
	return (&url.URL{Scheme: "file", Path: abs}).String()
}

// artifactDir is where screenshots go: $JEPSEN_ARTIFACTS, or the test's
// temporary directory.
func artifactDir(t testing.TB) string {
	if d := os.Getenv("JEPSEN_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// box is the rendered size of an element and how many elements it holds.
type box struct {
	W, H float64
	N    int
}

type pageFacts struct {
	Latency, Throughput, Nodes, Witness *box
	Bad                                 int
	Scripts                             int
	Injected                            int
	Text                                string
	Violation                           string
}

const factsJS = `(() => {
  const r = s => { const e = document.querySelector(s); if (!e) return null;
    const b = e.getBoundingClientRect(); return {W: b.width, H: b.height, N: e.querySelectorAll('*').length}; };
  return {Latency: r('#latency-plot svg'), Throughput: r('#throughput-plot svg'), Nodes: r('#nodes-plot svg'),
    Witness: r('#violation-1 svg.witness'), Bad: document.querySelectorAll('#violation-1 svg.witness rect.bad').length,
    Scripts: document.scripts.length, Injected: document.querySelectorAll('img, iframe, object, embed').length,
    Text: document.body.innerText, Violation: (document.querySelector('#violation-1') || {}).innerText || ''};
})()`

func TestReportInBrowser(t *testing.T) {
	tests := []struct {
		name     string
		s        synth
		wantText []string
		// wantViolation is shown as text in the first counterexample.
		wantViolation []string
	}{
		{
			name:          "stale reads under partitions",
			s:             synth{ops: 4000, seed: 11, nemesis: true, violations: []string{"kv1", "kv2"}},
			wantText:      []string{"Invalid: the store is not linearizable", "during partition n1 n2 | n3 n4 n5"},
			wantViolation: []string{"read → 1 (impossible)", "write 2 → ok", "cut off from n3 n4 n5"},
		},
		{
			name:          "hostile values",
			s:             synth{ops: 2000, seed: 12, nemesis: true, hostile: true, target: "<script>alert(1)</script>", violations: []string{`k<script>alert("key")</script>`}},
			wantText:      []string{`k<script>alert("key")</script>`, "client sent <script>alert(1)</script> and <img src=x onerror=alert(1)>"},
			wantViolation: []string{`✗ read → "<img src=x onerror=alert(1)><script>ale`, `client sent <script>alert(1)</script> and <img src=x onerror=alert(1)>`},
		},
	}
	ctx, log := openBrowser(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _ := makeRun(t, tt.s)
			report := fileURL(filepath.Join(dir, ReportFile))
			log.reset()
			var facts pageFacts
			var shot []byte
			err := chromedp.Run(ctx,
				chromedp.Navigate(report),
				chromedp.WaitReady("#files"),
				chromedp.Evaluate(`document.querySelectorAll('details').forEach(d => d.open = true)`, nil),
				chromedp.Sleep(500*time.Millisecond), // let any injected handler fire
				chromedp.Evaluate(factsJS, &facts),
				chromedp.FullScreenshot(&shot, 100),
			)
			if err != nil {
				t.Fatalf("open %s: %v", report, err)
			}
			name := strings.ReplaceAll(tt.name, " ", "-") + ".png"
			path := filepath.Join(artifactDir(t), name)
			if err := os.WriteFile(path, shot, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot: %s (%d bytes)", path, len(shot))
			for _, sel := range []string{"#violation-1", "#plots", "#faults"} {
				var part []byte
				if err := chromedp.Run(ctx, chromedp.Screenshot(sel, &part, chromedp.ByQuery)); err != nil {
					t.Fatalf("screenshot of %s: %v", sel, err)
				}
				p := strings.TrimSuffix(path, ".png") + "-" + sel[1:] + ".png"
				if err := os.WriteFile(p, part, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("screenshot of %s: %s", sel, p)
			}

			errs, reqs, dialogs := log.snapshot()
			if len(errs) > 0 {
				t.Errorf("console errors: %q", errs)
			}
			for _, u := range reqs {
				if u != report {
					t.Errorf("network request to %s", u)
				}
			}
			if len(dialogs) > 0 {
				t.Errorf("JavaScript dialogs opened: %q", dialogs)
			}
			for name, b := range map[string]*box{"latency plot": facts.Latency, "throughput plot": facts.Throughput, "node plot": facts.Nodes} {
				if b == nil || b.W < 100 || b.H < 50 || b.N < 20 {
					t.Errorf("%s did not render: %+v", name, b)
				}
			}
			if facts.Witness == nil || facts.Witness.W < 100 || facts.Witness.N < 5 || facts.Bad < 1 {
				t.Errorf("counterexample diagram did not render: %+v, %d impossible ops marked", facts.Witness, facts.Bad)
			}
			if facts.Scripts != 0 || facts.Injected != 0 {
				t.Errorf("report has %d scripts and %d images/frames; want none", facts.Scripts, facts.Injected)
			}
			for _, w := range tt.wantText {
				if !strings.Contains(facts.Text, w) {
					t.Errorf("the page does not show %q as text", w)
				}
			}
			for _, w := range tt.wantViolation {
				if !strings.Contains(facts.Violation, w) {
					t.Errorf("the first counterexample does not show %q as text", w)
				}
			}

			// porcupine's view of the first violation: it renders under its
			// policy, and markup injected the way its tooltips insert state
			// descriptions (innerHTML) cannot run.
			files, _ := filepath.Glob(filepath.Join(dir, PorcupineDir, "01-*.html"))
			if len(files) != 1 {
				t.Fatalf("porcupine views: %q", files)
			}
			log.reset()
			var drawn int
			err = chromedp.Run(ctx,
				chromedp.Navigate(fileURL(files[0])),
				chromedp.WaitReady("#canvas"),
				chromedp.Sleep(300*time.Millisecond),
				chromedp.Evaluate(`document.querySelectorAll('#canvas svg *').length`, &drawn),
			)
			if err != nil {
				t.Fatal(err)
			}
			if errs, _, dialogs := log.snapshot(); len(errs) > 0 || len(dialogs) > 0 {
				t.Errorf("porcupine view: console errors %q, dialogs %q", errs, dialogs)
			}
			if drawn < 10 {
				t.Errorf("porcupine view drew %d elements; its script did not run", drawn)
			}
			err = chromedp.Run(ctx,
				chromedp.Evaluate(`document.getElementById('calc').innerHTML = `+"`"+hostileValues[1]+hostileValues[0]+"`", nil),
				chromedp.Sleep(500*time.Millisecond),
			)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, dialogs := log.snapshot(); len(dialogs) > 0 {
				t.Errorf("markup injected into porcupine's view ran: %q", dialogs)
			}
		})
	}
}
