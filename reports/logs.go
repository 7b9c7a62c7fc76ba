package reports

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of the log excerpts around a violation.
const (
	logBefore     = 2 * time.Second // window start before the witness
	logAfter      = 1 * time.Second // window end after the witness
	maxLinesPre   = 8               // lines kept before the witness begins
	maxLinesIn    = 16              // lines kept from the witness on
	maxLineRunes  = 300             // longer lines are cut
	maxLogLineLen = 1 << 20         // a line longer than this ends the scan
)

// logTimeRE finds a timestamp at the start of a log line, after an
// optional "time=" (slog, logfmt) or {"time":" (JSON logs).
var logTimeRE = regexp.MustCompile(`^[\[\s]*(?:time=|ts=|t=|\{"(?:time|ts|timestamp)":")?"?(\d{4}[-/]\d\d[-/]\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?)(Z|[+-]\d\d:?\d\d)?`)

// parseLogTime returns the time at the start of line, if it has one. A
// time without a zone is taken as UTC (containers run in UTC).
func parseLogTime(line string) (time.Time, bool) {
	if len(line) > 96 {
		line = line[:96]
	}
	m := logTimeRE.FindStringSubmatch(line)
	if m == nil {
		return time.Time{}, false
	}
	s := strings.NewReplacer("/", "-", " ", "T", ",", ".").Replace(m[1])
	zone := m[2]
	if zone == "" {
		zone = "Z"
	} else if zone != "Z" && !strings.Contains(zone, ":") {
		zone = zone[:3] + ":" + zone[3:]
	}
	t, err := time.Parse(time.RFC3339Nano, s+zone)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// logWindow is the part of the logs to show for one violation.
type logWindow struct {
	from, at, to time.Time // window start, witness start, window end
	until        time.Time // witness end
}

// logLine is one line of an excerpt.
type logLine struct {
	N      int    // line number in the file
	Rel    string // time relative to the test start, "+12.301s"
	Text   string
	During bool // inside the witness's time span
}

// excerpt is the lines of one log file around one violation.
type excerpt struct {
	Source  string // "n1"
	Link    string // "nodes/n1.log"
	Lines   []logLine
	Skipped int // lines of the window not shown
	Note    string
	Active  bool // the node served an op of the witness
}

// logFile is one log file of the run.
type logFile struct {
	Source, Path, Link string
}

// runLogs lists the run's logs: nodes/*.log, then jepsen.log.
func runLogs(dir string) []logFile {
	var out []logFile
	paths, _ := filepath.Glob(filepath.Join(dir, "nodes", "*.log"))
	var names []string
	byName := map[string]string{}
	for _, p := range paths {
		n := strings.TrimSuffix(filepath.Base(p), ".log")
		names = append(names, n)
		byName[n] = p
	}
	sortNodes(names)
	for _, n := range names {
		out = append(out, logFile{Source: n, Path: byName[n], Link: "nodes/" + filepath.Base(byName[n])})
	}
	if _, err := os.Stat(filepath.Join(dir, "jepsen.log")); err == nil {
		out = append(out, logFile{Source: "jepsen.log (harness)", Path: filepath.Join(dir, "jepsen.log"), Link: "jepsen.log"})
	}
	return out
}

// excerpts reads one log file once and returns its excerpt for each
// window. start is the wall time of history time 0; run bounds the run's
// wall-clock period, to tell whether the log's clock can be trusted.
func excerpts(lf logFile, windows []logWindow, start time.Time, runFrom, runTo time.Time) []excerpt {
	out := make([]excerpt, len(windows))
	for i := range out {
		out[i] = excerpt{Source: lf.Source, Link: lf.Link}
	}
	note := func(s string) []excerpt {
		for i := range out {
			out[i].Note, out[i].Lines = s, nil
		}
		return out
	}
	if start.IsZero() {
		return note("test.json has no start time, so log lines cannot be placed on the test's timeline; see the full log")
	}
	f, err := os.Open(lf.Path)
	if err != nil {
		return note(fmt.Sprintf("cannot read the log: %v", err))
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxLogLineLen)
	pre := make([][]logLine, len(windows)) // ring of lines before at
	in := make([][]logLine, len(windows))
	var cur time.Time
	has, stamped, inRun := false, 0, 0
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if t, ok := parseLogTime(line); ok {
			cur, has = t, true
			stamped++
			if !t.Before(runFrom) && !t.After(runTo) {
				inRun++
			}
		}
		if !has {
			continue
		}
		for i, w := range windows {
			if cur.Before(w.from) || cur.After(w.to) {
				continue
			}
			ll := logLine{N: n, Rel: relTime(cur.Sub(start)), Text: clipLine(line), During: !cur.Before(w.at) && !cur.After(w.until)}
			if cur.Before(w.at) {
				pre[i] = append(pre[i], ll)
				if len(pre[i]) > maxLinesPre {
					pre[i] = pre[i][1:]
					out[i].Skipped++
				}
				continue
			}
			if len(in[i]) < maxLinesIn {
				in[i] = append(in[i], ll)
			} else {
				out[i].Skipped++
			}
		}
	}
	if err := sc.Err(); err != nil {
		msg := err.Error()
		if errors.Is(err, bufio.ErrTooLong) {
			msg = fmt.Sprintf("a line longer than %d bytes", maxLogLineLen)
		}
		for i := range out {
			out[i].Note = fmt.Sprintf("stopped reading at line %d: %s", n+1, msg)
		}
	}
	switch {
	case n == 0:
		return note("the log is empty")
	case stamped == 0:
		return note("no line of this log starts with a timestamp, so it cannot be aligned with the history; see the full log")
	case inRun == 0:
		return note("the timestamps of this log do not fall within the run (another clock or time zone?), so it cannot be aligned; see the full log")
	}
	for i := range out {
		out[i].Lines = append(pre[i], in[i]...)
		if len(out[i].Lines) == 0 && out[i].Note == "" {
			out[i].Note = "no lines around this time"
		}
	}
	return out
}

func relTime(d time.Duration) string {
	s := fmt.Sprintf("%.3fs", d.Seconds())
	if d >= 0 {
		s = "+" + s
	}
	return s
}

// clipLine keeps a line printable and short.
func clipLine(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "�")
	}
	if utf8.RuneCountInString(s) > maxLineRunes {
		r := []rune(s)
		s = string(r[:maxLineRunes]) + " …"
	}
	return s
}
