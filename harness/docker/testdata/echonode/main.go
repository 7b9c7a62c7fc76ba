// Command echonode is a tiny node used by the docker package's tests: an
// HTTP server with /health, a /kv store persisted to the data directory, a
// /peer endpoint that queries another node by host name, and flags that make
// it exit at start or never become ready.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	id := flag.String("id", os.Getenv("JEPSEN_NODE"), "node id")
	port := flag.Int("port", 8080, "listen port")
	data := flag.String("data", "/data", "data directory")
	exitAtStart := flag.Bool("exit-at-start", false, "print some lines and exit 3")
	neverReady := flag.Bool("never-ready", false, "answer 503 on /health forever")
	ps := flag.Bool("ps", false, "print the command lines of all visible processes and exit")
	flag.Parse()

	if *ps {
		dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, d := range dirs {
			b, _ := os.ReadFile(d)
			fmt.Println(strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " "))
		}
		return
	}

	if *exitAtStart {
		for i := 1; i <= 25; i++ {
			fmt.Printf("%s: fatal line %d\n", *id, i)
		}
		// stdout and stderr reach the daemon on separate pipes; let the
		// stdout lines be logged first.
		time.Sleep(100 * time.Millisecond)
		fmt.Fprintf(os.Stderr, "%s: giving up: cannot open the frobnicator\n", *id)
		os.Exit(3)
	}
	boot := 1
	if b, err := os.ReadFile(filepath.Join(*data, "boots")); err == nil {
		boot, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		boot++
	}
	if err := writeFile(filepath.Join(*data, "boots"), []byte(strconv.Itoa(boot))); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", *id, err)
		os.Exit(1)
	}
	fmt.Printf("%s: boot %d, env JEPSEN_NODES=%s, listening on :%d\n", *id, boot, os.Getenv("JEPSEN_NODES"), *port)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if *neverReady {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /exit", func(w http.ResponseWriter, r *http.Request) {
		fmt.Printf("%s: exiting with status 4 as asked\n", *id)
		os.Exit(4)
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, *id)
	})
	mux.HandleFunc("POST /log", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Printf("%s: log %s\n", *id, strings.TrimSpace(string(b)))
	})
	mux.HandleFunc("GET /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(filepath.Join(*data, "kv-"+r.PathValue("key")))
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"value\":%s}\n", b)
	})
	mux.HandleFunc("PUT /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Value json.RawMessage }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Value == nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if err := writeFile(filepath.Join(*data, "kv-"+r.PathValue("key")), body.Value); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /peer/{node}", func(w http.ResponseWriter, r *http.Request) {
		c := &http.Client{Timeout: 2 * time.Second}
		p := strconv.Itoa(*port)
		if q := r.URL.Query().Get("port"); q != "" {
			p = q
		}
		resp, err := c.Get(fmt.Sprintf("http://%s:%s/whoami", r.PathValue("node"), p))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		io.Copy(w, resp.Body)
	})
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		s := <-ch
		fmt.Printf("%s: stopping on %v\n", *id, s)
		os.Exit(0)
	}()
	if err := http.ListenAndServe(fmt.Sprintf(":%d", *port), mux); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", *id, err)
		os.Exit(1)
	}
}

// writeFile writes data durably (fsync of the file).
func writeFile(path string, data []byte) error {
	f, err := os.OpenFile(path+".tmp", os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
