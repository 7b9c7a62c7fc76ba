package reports

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	if i, j := strings.Index(string(body), "20260102T030400/results.json"), strings.Index(string(body), "20260101T000000/results.json"); i < 0 || j < 0 || i > j {
		t.Errorf("runs not newest first (positions %d, %d)", i, j)
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
