// Command writer is the test store of harness/durafs: an HTTP server that
// writes files in its data directory as it is told, syncing them in the
// way it is told, so that a test can tell what a power loss keeps.
//
//	POST /append?file=NAME&sync=MODE   append the body to NAME (created if
//	     absent); MODE is none, fsync, fdatasync, syncfs, sync or dsync
//	     (opened with O_DSYNC)
//	POST /truncate?file=NAME&size=N&sync=MODE
//	POST /rename?from=A&to=B
//	GET  /read?file=NAME    the file's bytes, 404 if it does not exist
//	GET  /health            200
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

func main() {
	dir := flag.String("dir", "/data", "data directory")
	addr := flag.String("addr", ":8080", "listen address")
	flag.Parse()
	path := func(r *http.Request, key string) string {
		return filepath.Join(*dir, filepath.Base(r.URL.Query().Get(key)))
	}
	sync := func(f *os.File, mode string) error {
		switch mode {
		case "", "none", "dsync":
			return nil
		case "fsync":
			return unix.Fsync(int(f.Fd()))
		case "fdatasync":
			return unix.Fdatasync(int(f.Fd()))
		case "syncfs":
			return unix.Syncfs(int(f.Fd()))
		case "sync":
			unix.Sync()
			return nil
		}
		return fmt.Errorf("unknown sync mode %q", mode)
	}
	fail := func(w http.ResponseWriter, err error) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {})
	http.HandleFunc("/append", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mode := r.URL.Query().Get("sync")
		flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
		if mode == "dsync" {
			flags |= unix.O_DSYNC
		}
		f, err := os.OpenFile(path(r, "file"), flags, 0o644)
		if err != nil {
			fail(w, err)
			return
		}
		defer f.Close()
		if _, err := f.Write(body); err != nil {
			fail(w, err)
			return
		}
		if err := sync(f, mode); err != nil {
			fail(w, err)
		}
	})
	http.HandleFunc("/truncate", func(w http.ResponseWriter, r *http.Request) {
		size, _ := strconv.ParseInt(r.URL.Query().Get("size"), 10, 64)
		f, err := os.OpenFile(path(r, "file"), os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			fail(w, err)
			return
		}
		defer f.Close()
		if err := f.Truncate(size); err != nil {
			fail(w, err)
			return
		}
		if err := sync(f, r.URL.Query().Get("sync")); err != nil {
			fail(w, err)
		}
	})
	http.HandleFunc("/rename", func(w http.ResponseWriter, r *http.Request) {
		if err := os.Rename(path(r, "from"), path(r, "to")); err != nil {
			fail(w, err)
		}
	})
	http.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(path(r, "file"))
		if os.IsNotExist(err) {
			http.NotFound(w, r)
			return
		}
		if err != nil {
			fail(w, err)
			return
		}
		w.Write(b)
	})
	log.Printf("writer: serving %s on %s", *dir, *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
