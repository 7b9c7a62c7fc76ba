package docker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// tailLines is how many of a node's last log lines are kept for errors.
const tailLines = 20

// nodeLog collects the output of one node's container across all its
// lifetimes into one file. A follower streams the daemon's log of the
// current lifetime with timestamps; the next follower starts just after the
// last line written, so no line is lost or written twice.
type nodeLog struct {
	mu   sync.Mutex
	file *os.File // nil when no LogDir was configured
	ring []string
	last time.Time // latest timestamp of a line written

	fmu    sync.Mutex // guards done and cancel
	done   chan struct{}
	cancel context.CancelFunc
}

// newNodeLog opens (appending) path, or keeps lines only in memory if
// path is "".
func newNodeLog(path string) (*nodeLog, error) {
	l := &nodeLog{}
	if path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open node log: %w", err)
		}
		l.file = f
	}
	return l, nil
}

// follow starts streaming the logs of container id after the last line
// already written. A previous follower is first allowed to drain (the
// stream of a stopped container ends by itself), then stopped.
func (l *nodeLog) follow(parent context.Context, c *client.Client, id string) {
	l.stop(3 * time.Second)
	l.fmu.Lock()
	defer l.fmu.Unlock()
	ctx, cancel := context.WithCancel(parent)
	done := make(chan struct{})
	l.done, l.cancel = done, cancel
	l.mu.Lock()
	since := ""
	threshold := l.last
	if !threshold.IsZero() {
		t := threshold.Add(time.Nanosecond)
		since = fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
	}
	l.mu.Unlock()
	go func() {
		defer close(done)
		defer cancel()
		rc, err := c.ContainerLogs(ctx, id, client.ContainerLogsOptions{
			ShowStdout: true, ShowStderr: true, Follow: true, Timestamps: true, Since: since,
		})
		if err != nil {
			return
		}
		defer rc.Close()
		pr, pw := io.Pipe()
		go func() {
			_, err := stdcopy.StdCopy(pw, pw, rc)
			pw.CloseWithError(err)
		}()
		r := bufio.NewReaderSize(pr, 64<<10)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				l.add(line, threshold)
			}
			if err != nil {
				pr.CloseWithError(err)
				return
			}
		}
	}()
}

// add records one "TIMESTAMP text" line from the daemon, unless its
// timestamp is not after threshold: then an earlier follower (an earlier
// lifetime of the container) wrote it already. Within one stream lines are
// kept in stream order even if their timestamps are not (the daemon stamps
// stdout and stderr on separate goroutines).
func (l *nodeLog) add(line string, threshold time.Time) {
	ts, text, ok := strings.Cut(line, " ")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if !ok || err != nil {
		text, t = line, time.Time{}
	}
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !t.IsZero() {
		if !threshold.IsZero() && !t.After(threshold) {
			return // already written by an earlier follower
		}
		if t.After(l.last) {
			l.last = t
		}
	}
	if l.file != nil {
		_, _ = l.file.WriteString(text)
	}
	l.ring = append(l.ring, strings.TrimRight(text, "\n"))
	if len(l.ring) > tailLines {
		l.ring = append(l.ring[:0], l.ring[len(l.ring)-tailLines:]...)
	}
}

// wait waits up to d for the current follower to finish by itself (its
// container stopped). It reports whether it finished.
func (l *nodeLog) wait(d time.Duration) bool {
	l.fmu.Lock()
	done := l.done
	l.fmu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// stop waits up to d for the current follower to drain, then cancels it
// and waits for it to exit.
func (l *nodeLog) stop(d time.Duration) {
	l.wait(d)
	l.fmu.Lock()
	done, cancel := l.done, l.cancel
	l.done, l.cancel = nil, nil
	l.fmu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// tail returns the last lines seen, oldest first.
func (l *nodeLog) tail() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ring...)
}

// close stops following and closes the file.
func (l *nodeLog) close(d time.Duration) error {
	l.stop(d)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		err := l.file.Close()
		l.file = nil
		return err
	}
	return nil
}
