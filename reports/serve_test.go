package reports

import (
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// makeStore builds a store with two runs, store/latest, and a symbolic
// link that leads out of the store.
func makeStore(t *testing.T) string {
	t.Helper()
	store := t.TempDir()
	old := filepath.Join(store, "synthkv", "20260101T000000")
	synth{ops: 300, seed: 5}.write(t, old)
	newer := filepath.Join(store, "synthkv", "20260102T030400")
	synth{ops: 300, seed: 6, violations: []string{"kv1"}}.write(t, newer)
	// Make the older run older and valid.
	m, err := ReadMeta(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, "test.json"), []byte(strings.Replace(mustRead(t, filepath.Join(old, "test.json")), `"verdict": "invalid"`, `"verdict": "valid"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = m
	if err := os.WriteFile(filepath.Join(newer, ReportFile), []byte("<!doctype html><p>report</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("synthkv/20260102T030400", filepath.Join(store, "latest")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(store, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(newer, "passwd.log")); err != nil {
		t.Fatal(err)
	}
	return store
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBrowser(t *testing.T) {
	store := makeStore(t)
	b, err := NewBrowser(store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)

	tests := []struct {
		name       string
		rawPath    string
		wantStatus int
		wantBody   []string
		wantType   string
	}{
		{"index", "/", 200, []string{"2 runs", `href="synthkv/20260102T030400/report.html"`, "latest", `class="v invalid"`, `class="v valid"`, "register", "synthkv"}, "text/html"},
		{"report", "/synthkv/20260102T030400/report.html", 200, []string{"<p>report</p>"}, "text/html"},
		{"latest link inside the store", "/latest/test.json", 200, []string{`"run_id"`}, "application/json"},
		{"node log as plain text", "/synthkv/20260102T030400/nodes/n1.log", 200, []string{"raftkv: heartbeat"}, "text/plain"},
		{"history as plain text", "/synthkv/20260102T030400/history.jsonl", 200, []string{`"f":"write"`}, "text/plain"},
		{"run directory listing", "/synthkv/20260102T030400/", 200, []string{"history.jsonl", "test.json"}, "text/html"},
		{"dot-dot", "/../../etc/passwd", 400, nil, ""},
		{"dot-dot inside", "/synthkv/../../../etc/passwd", 400, nil, ""},
		{"encoded dot-dot", "/%2e%2e/%2e%2e/etc/passwd", 400, nil, ""},
		{"encoded upper case", "/%2E%2E/%2E%2E/etc/passwd", 400, nil, ""},
		{"encoded slash", "/..%2f..%2fetc%2fpasswd", 400, nil, ""},
		{"mixed encoding", "/.%2e/.%2e/etc/passwd", 400, nil, ""},
		{"double encoded", "/%252e%252e/%252e%252e/etc/passwd", 400, nil, ""},
		{"backslash", "/..\\..\\etc\\passwd", 400, nil, ""},
		{"symlink out of the store", "/escape/passwd", 403, nil, ""},
		{"symlinked file out of the store", "/synthkv/20260102T030400/passwd.log", 403, nil, ""},
		{"missing", "/nope.txt", 404, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Send the path exactly as written: no client-side cleaning.
			req, err := http.NewRequest("GET", srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.URL.Opaque = tt.rawPath
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("GET %s: status %d, want %d (%s)", tt.rawPath, resp.StatusCode, tt.wantStatus, body)
			}
			if strings.Contains(string(body), "root:") {
				t.Fatalf("GET %s served /etc/passwd", tt.rawPath)
			}
			for _, w := range tt.wantBody {
				if !strings.Contains(string(body), w) {
					t.Errorf("GET %s: body lacks %q", tt.rawPath, w)
				}
			}
			if ct := resp.Header.Get("Content-Type"); tt.wantType != "" && !strings.HasPrefix(ct, tt.wantType) {
				t.Errorf("GET %s: Content-Type %q, want %s", tt.rawPath, ct, tt.wantType)
			}
			if resp.StatusCode == 200 && resp.Header.Get("Content-Security-Policy") == "" {
				t.Errorf("GET %s: no Content-Security-Policy", tt.rawPath)
			}
		})
	}
	// Newest first.
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if i, j := strings.Index(string(body), "20260102T030400/test.json"), strings.Index(string(body), "20260101T000000/test.json"); i < 0 || j < 0 || i > j {
		t.Errorf("runs not newest first (positions %d, %d)", i, j)
	}
}

// Runs that ended without a verdict show as such, with why, and the
// index links only to files that exist.
func TestBrowserTroubleRuns(t *testing.T) {
	store := makeStore(t)
	write := func(p, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	// Ended without a verdict: the target failed to start.
	failed := filepath.Join(store, "brokenkv", "20260103T000000")
	write(filepath.Join(failed, "test.json"), `{"run_id":"f1","target":"brokenkv","created":"2026-01-03T00:00:00Z","end":"2026-01-03T00:00:31Z","completed":false}`)
	write(filepath.Join(failed, "jepsen.log"), "time=2026-01-03T00:00:01Z level=INFO msg=\"starting n1\"\ntime=2026-01-03T00:00:31Z level=ERROR msg=\"n1 never became ready: GET /health answered 404\"\n")
	// Killed harness: no end, files old.
	crashed := filepath.Join(store, "brokenkv", "20260104T000000")
	write(filepath.Join(crashed, "test.json"), `{"run_id":"c1","target":"brokenkv","created":"2026-01-04T00:00:00Z"}`)
	write(filepath.Join(crashed, "history.jsonl"), `{"type":"invoke","process":0,"f":"read","key":"k","time":1}`+"\n")
	// Still running: no end, history written just now.
	running := filepath.Join(store, "brokenkv", "20260105T000000")
	write(filepath.Join(running, "test.json"), `{"run_id":"r1","target":"brokenkv","created":"2026-01-05T00:00:00Z"}`)
	write(filepath.Join(running, "history.jsonl"), "")
	// Interrupted.
	stopped := filepath.Join(store, "brokenkv", "20260106T000000")
	write(filepath.Join(stopped, "test.json"), `{"run_id":"i1","target":"brokenkv","created":"2026-01-06T00:00:00Z","end":"2026-01-06T00:00:20Z","interrupted":true}`)
	for _, d := range []string{failed, crashed, stopped} {
		filepath.Walk(d, func(p string, _ os.FileInfo, _ error) error { return os.Chtimes(p, old, old) })
	}

	runs, err := ListRuns(os.DirFS(store))
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]RunSummary{}
	for _, r := range runs {
		byPath[r.Path] = r
	}
	for _, tt := range []struct {
		path, status, reason string
	}{
		{"brokenkv/20260103T000000", "trouble", "the run ended without a verdict: n1 never became ready: GET /health answered 404"},
		{"brokenkv/20260104T000000", "trouble", "the run stopped before its end (the harness was killed or crashed)"},
		{"brokenkv/20260105T000000", "running", "still writing its history"},
		{"brokenkv/20260106T000000", "interrupted", "stopped with Ctrl-C"},
		{"synthkv/20260102T030400", "invalid", ""},
	} {
		r := byPath[tt.path]
		if r.Status != tt.status || !strings.Contains(r.Reason, tt.reason) || (tt.reason == "" && r.Reason != "") {
			t.Errorf("%s: status %q, reason %q; want %q, %q", tt.path, r.Status, r.Reason, tt.status, tt.reason)
		}
	}

	b, err := NewBrowser(store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	for _, want := range []string{"6 runs, newest first: 1 valid, 1 invalid, 2 trouble, 1 interrupted, 1 running.", `class="v trouble"`, "GET /health answered 404"} {
		if !strings.Contains(page, want) {
			t.Errorf("index lacks %q", want)
		}
	}
	if strings.Contains(page, "unfinished") {
		t.Error("index still says unfinished")
	}
	// No dead links.
	links := regexp.MustCompile(`href="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(links) < 10 {
		t.Fatalf("only %d links in the index", len(links))
	}
	for _, l := range links {
		resp, err := http.Get(srv.URL + "/" + html.UnescapeString(l[1]))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("link %s: status %d", l[1], resp.StatusCode)
		}
	}
}

func TestNewBrowserErrors(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	for _, p := range []string{filepath.Join(t.TempDir(), "missing"), f} {
		if _, err := NewBrowser(p); err == nil {
			t.Errorf("NewBrowser(%s) succeeded", p)
		}
	}
}
