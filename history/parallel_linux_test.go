package history

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ReadFile returns at a malformed line of a named pipe without waiting for
// its writer to write more or to close it, as Reader.Next would.
func TestReadFileStopsOnAPipe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	writer := make(chan *os.File, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			writer <- nil
			return
		}
		f.Write([]byte(inv0 + "{bad\n"))
		writer <- f
	}()
	done := make(chan error, 1)
	go func() {
		_, err := ReadFile(path)
		done <- err
	}()
	closeWriter := sync.OnceFunc(func() {
		if f := <-writer; f != nil {
			f.Close()
		}
	})
	defer closeWriter()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Error("ReadFile still waits on the pipe after a malformed line")
		closeWriter()
		err = <-done
	}
	if err == nil || !strings.HasPrefix(err.Error(), path+":2: bad JSON") {
		t.Errorf("err = %v, want bad JSON at line 2", err)
	}
}
