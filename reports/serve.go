package reports

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RunSummary describes one run of the store, for the store browser.
type RunSummary struct {
	// Path is the run directory relative to the store: "raftkv/20260101T120000".
	Path string
	// Verdict is valid, invalid, unknown, or "" if the run did not finish.
	Verdict string
	// Target, Workload, Faults and Seed are the run's settings.
	Target, Workload, Faults string
	Seed                     uint64
	// Created is when the run began; Duration how long it took.
	Created  time.Time
	Duration time.Duration
	// HasReport says whether report.html exists.
	HasReport bool
	// Latest marks the run store/latest points at.
	Latest bool
	// Status is the verdict if there is one, else "running" (its files
	// are still being written), "interrupted" or "trouble" (it ended
	// without a verdict).
	Status string
	// Reason says why a run has no verdict, when known.
	Reason string
	// Files are the links to the run's files that exist, report first.
	Files []RunFile
}

// RunFile is a link to a file of a run, relative to the store.
type RunFile struct {
	Name, Link string
}

// runningWindow is how recently a run without an end must have written
// its history to count as still running.
const runningWindow = 2 * time.Minute

// ListRuns lists the runs of a store directory, newest first, reading only
// files inside fsys (a store opened with os.Root, see NewBrowser). A run
// whose test.json is unreadable is listed with what is known.
func ListRuns(fsys fs.FS) ([]RunSummary, error) {
	targets, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("list the store: %w", err)
	}
	latest := ""
	if fi, err := fs.Stat(fsys, "latest"); err == nil && fi.IsDir() {
		if b, err := fs.ReadFile(fsys, "latest/test.json"); err == nil {
			if m, err := ParseMeta(b, "latest/test.json"); err == nil {
				latest = m.RunID
			}
		}
	}
	var runs []RunSummary
	for _, t := range targets {
		if !t.IsDir() || t.Name() == "latest" || strings.HasPrefix(t.Name(), ".") {
			continue
		}
		entries, err := fs.ReadDir(fsys, t.Name())
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			p := t.Name() + "/" + e.Name()
			b, err := fs.ReadFile(fsys, p+"/test.json")
			if err != nil {
				continue // not a run directory
			}
			r := RunSummary{Path: p, Target: t.Name()}
			if m, err := ParseMeta(b, p+"/test.json"); err == nil {
				r.Verdict, r.Workload, r.Faults, r.Seed = m.Verdict, m.Config.Workload, m.Config.Nemesis, m.Seed
				r.Created, r.Duration = m.Created, m.Duration()
				if m.Target != "" {
					r.Target = m.Target
				}
				r.Latest = latest != "" && m.RunID == latest
			}
			if _, err := fs.Stat(fsys, p+"/"+ReportFile); err == nil {
				r.HasReport = true
			}
			r.status(fsys, b)
			runs = append(runs, r)
		}
	}
	slices.SortStableFunc(runs, func(a, b RunSummary) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(b.Path, a.Path)
	})
	return runs, nil
}

// status works out the run's status, why it has no verdict, and which of
// its files exist. meta is its test.json.
func (r *RunSummary) status(fsys fs.FS, meta []byte) {
	var m struct {
		End         time.Time `json:"end"`
		Verdict     string    `json:"verdict"`
		Interrupted any       `json:"interrupted"`
		Error       string    `json:"error"`
	}
	_ = json.Unmarshal(meta, &m)
	for _, f := range []RunFile{
		{"report", ReportFile}, {"results", "results.json"}, {"history", "history.jsonl"}, {"history", "history.edn"},
		{"test.json", "test.json"}, {"log", "jepsen.log"}, {"nodes", "nodes"},
	} {
		if _, err := fs.Stat(fsys, r.Path+"/"+f.Link); err == nil {
			if f.Link == "nodes" {
				f.Link += "/"
			}
			r.Files = append(r.Files, RunFile{Name: f.Name, Link: r.Path + "/" + f.Link})
		}
	}
	r.Files = append(r.Files, RunFile{Name: "all files", Link: r.Path + "/"})
	switch {
	case r.Verdict != "":
		r.Status = r.Verdict
		if why, ok := m.Interrupted.(string); ok && why != "" {
			r.Reason = clipLine(why)
		} else if m.Interrupted == true {
			r.Reason = "interrupted"
		}
		return
	case m.Interrupted != nil && m.Interrupted != false && m.Interrupted != "":
		r.Status, r.Reason = "interrupted", "stopped with Ctrl-C before a verdict"
	case m.End.IsZero() && recentlyWritten(fsys, r.Path):
		r.Status, r.Reason = "running", "still writing its history"
		return
	case m.End.IsZero():
		r.Status, r.Reason = "trouble", "the run stopped before its end (the harness was killed or crashed)"
	default:
		r.Status, r.Reason = "trouble", "the run ended without a verdict"
	}
	if m.Error != "" {
		r.Reason = clipLine(m.Error)
	} else if last := lastLogError(fsys, r.Path+"/jepsen.log"); last != "" {
		r.Reason += ": " + last
	}
}

// recentlyWritten reports whether the run wrote a file within runningWindow.
func recentlyWritten(fsys fs.FS, dir string) bool {
	for _, n := range []string{"history.jsonl", "jepsen.log", "test.json"} {
		if fi, err := fs.Stat(fsys, dir+"/"+n); err == nil && time.Since(fi.ModTime()) < runningWindow {
			return true
		}
	}
	return false
}

// maxLogTail is how much of the end of jepsen.log is read for the reason
// a run failed.
const maxLogTail = 16 << 10

// lastLogError returns the last line of the end of a log that reports an
// error (level ERROR, or "error" in its message), clipped; "" if none.
func lastLogError(fsys fs.FS, name string) string {
	f, err := fsys.Open(name)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	buf := make([]byte, min(fi.Size(), maxLogTail))
	if s, ok := f.(io.Seeker); ok && fi.Size() > maxLogTail {
		if _, err := s.Seek(fi.Size()-maxLogTail, io.SeekStart); err != nil {
			return ""
		}
	}
	n, _ := io.ReadFull(f, buf)
	lines := strings.Split(string(buf[:n]), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.Contains(l, "level=ERROR") || strings.Contains(strings.ToLower(l), "error") {
			if j := strings.Index(l, "msg="); j >= 0 {
				l = l[j+len("msg="):]
				if q, err := strconv.QuotedPrefix(l); err == nil {
					l, _ = strconv.Unquote(q)
				}
			}
			return clipLine(l)
		}
	}
	return ""
}

// Browser is the web UI of `jepsen serve`: an index of the runs of a
// store directory and its files. It serves only files inside the store:
// paths with ".." are refused, and the store is opened with os.Root, so
// that a symbolic link cannot lead out of it (store/latest, a link inside
// the store, works).
type Browser struct {
	root  *os.Root
	fsys  fs.FS
	files http.Handler
}

// NewBrowser opens the store directory. Close it when done.
func NewBrowser(store string) (*Browser, error) {
	fi, err := os.Stat(store)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("store %s does not exist (run jepsen run first, or pass --store)", store)
		}
		return nil, fmt.Errorf("open store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("store %s is not a directory", store)
	}
	root, err := os.OpenRoot(store)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	fsys := confined{root.FS()}
	return &Browser{root: root, fsys: fsys, files: http.FileServerFS(fsys)}, nil
}

// Close releases the store directory.
func (b *Browser) Close() error { return b.root.Close() }

// confined maps every error other than "not found" (notably os.Root's
// "path escapes from parent") to a permission error, so that the file
// server answers 403 rather than 500.
type confined struct{ fs.FS }

// Open implements fs.FS.
func (c confined) Open(name string) (fs.File, error) {
	f, err := c.FS.Open(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return f, err
}

// badPath reports whether a request path could climb out of the store: a
// ".." segment (raw or percent-encoded), a backslash or a NUL.
func badPath(raw, decoded string) bool {
	for _, p := range []string{raw, decoded, strings.ToLower(raw)} {
		if strings.ContainsAny(p, "\\\x00") {
			return true
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == ".." || seg == "%2e%2e" || seg == ".%2e" || seg == "%2e." {
				return true
			}
		}
		if strings.Contains(p, "%2f") || strings.Contains(p, "%5c") || strings.Contains(p, "%00") {
			return true
		}
	}
	return false
}

// Content Security Policies: the index has no scripts at all; stored
// pages (report.html, porcupine's views) may run their own inline
// scripts but never load anything.
const (
	cspIndex = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
	cspFiles = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
)

// ServeHTTP implements http.Handler: "/" is the index of runs; any other
// path is a file or directory of the store.
func (b *Browser) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if badPath(r.URL.EscapedPath(), r.URL.Path) || badPath(r.RequestURI, r.URL.Path) {
		http.Error(w, "bad path: it must stay inside the store", http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if r.URL.Path == "/" {
		b.index(w)
		return
	}
	h.Set("Content-Security-Policy", cspFiles)
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	if fi, err := fs.Stat(b.fsys, name); err == nil && !fi.IsDir() {
		// Never let a browser sniff a log or a history as HTML: only the
		// pages jepsen writes are served as HTML.
		switch path.Ext(name) {
		case ".html":
			h.Set("Content-Type", "text/html; charset=utf-8")
		case ".json":
			h.Set("Content-Type", "application/json")
		case ".svg":
			h.Set("Content-Type", "image/svg+xml")
		default:
			h.Set("Content-Type", "text/plain; charset=utf-8")
		}
	}
	b.files.ServeHTTP(w, r)
}

//go:embed index.html.tmpl
var indexFS embed.FS

var indexTmpl = template.Must(template.New("index.html.tmpl").Funcs(template.FuncMap{
	"dur": func(d time.Duration) string {
		if d <= 0 {
			return "—"
		}
		return d.Round(time.Second).String()
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
}).ParseFS(indexFS, "index.html.tmpl"))

func (b *Browser) index(w http.ResponseWriter) {
	runs, err := ListRuns(b.fsys)
	w.Header().Set("Content-Security-Policy", cspIndex)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	latest := false
	if fi, err := fs.Stat(b.fsys, "latest"); err == nil && fi.IsDir() {
		latest = true
	}
	_ = indexTmpl.Execute(w, struct {
		Runs   []RunSummary
		Count  string
		Latest bool
	}{runs, countStatus(runs), latest})
}

// statusOrder is the order in which the index counts the runs.
var statusOrder = []string{"valid", "invalid", "unknown", "trouble", "interrupted", "running"}

// countStatus counts the runs by status: "3 valid, 1 trouble", in
// statusOrder, leaving out the statuses no run has.
func countStatus(runs []RunSummary) string {
	m := map[string]int{}
	for _, r := range runs {
		m[r.Status]++
	}
	var parts []string
	for _, st := range statusOrder {
		if m[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", m[st], st))
		}
	}
	return strings.Join(parts, ", ")
}
