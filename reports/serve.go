package reports

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path"
	"slices"
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
}

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
	_ = indexTmpl.Execute(w, struct {
		Runs  []RunSummary
		Count map[string]int
	}{runs, countVerdicts(runs)})
}

func countVerdicts(runs []RunSummary) map[string]int {
	m := map[string]int{}
	for _, r := range runs {
		m[r.Verdict]++
	}
	return m
}
