// Command nosync-primary is a test store with one classic mistake: it
// appends every write to its log with write() and answers without calling
// fsync, so an acknowledged write lives only in the page cache until the
// kernel writes it back. A crash of the process loses nothing (the kernel
// keeps the page cache); a power loss loses the writes not yet written back.
//
// Otherwise it is correct: node n1 holds every key, in memory and in the
// log, and every other node forwards each request to n1, as the example
// store examples/kvstore does. With --fsync it syncs the log before every
// answer and is correct under power loss too: testdata/stores/fsync-primary
// runs it so.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
)

var (
	mu       sync.Mutex            // held through every operation
	data     = map[string]string{} // key -> JSON value, as the client sent it
	store    *os.File              // the log: one JSON object {"key": "value"} per write
	fsyncLog bool                  // --fsync: sync the log before every answer
)

// open opens DIR/kv.log and replays it into data.
func open(dir string) {
	f, err := os.OpenFile(dir+"/kv.log", os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		log.Fatalf("open the log: %v", err)
	}
	dec, good := json.NewDecoder(f), int64(0)
	n := 0
	for err = dec.Decode(&data); err == nil; err = dec.Decode(&data) {
		good, n = dec.InputOffset(), n+1
	}
	if fsyncLog {
		if d, err := os.Open(dir); err == nil {
			d.Sync() // the new file's name must be durable too
			d.Close()
		}
	}
	if err == io.ErrUnexpectedEOF || errors.As(err, new(*json.SyntaxError)) {
		err = f.Truncate(good) // drop a last line cut short by a crash
	}
	if err != nil && err != io.EOF {
		log.Fatalf("replay the log: %v", err)
	}
	log.Printf("replayed %d records (%d bytes) from %s/kv.log; fsync=%v", n, good, dir, fsyncLog)
	store = f
}

// set appends key=v to the log (and fsyncs it with --fsync), then applies
// it; on error, exit.
func set(key string, v json.RawMessage) {
	line, _ := json.Marshal(map[string]string{key: string(v)})
	if _, err := store.Write(append(line, '\n')); err != nil {
		log.Fatalf("append to the log: %v", err)
	}
	if fsyncLog {
		if err := store.Sync(); err != nil {
			log.Fatalf("fsync the log: %v", err)
		}
	}
	data[key] = string(v)
}

func main() {
	id := flag.String("id", "", "this node's name: n1..nN")
	nodes := flag.String("nodes", "", "every node's name, comma-separated: n1,n2,n3")
	port := flag.String("port", "8080", "port to serve clients and other nodes on")
	dir := flag.String("data", "/data", "data directory, kept across restarts")
	flag.BoolVar(&fsyncLog, "fsync", false, "fsync the log before answering a write (the fix)")
	flag.Parse()
	primary, _, _ := strings.Cut(*nodes, ",")
	http.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {})
	http.HandleFunc("GET /leader", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, `{"leader":%q}`, primary) })
	if *id != primary {
		// Forward to n1: 503 if no connection was made (surely not run), else 502 (may have run).
		p := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: net.JoinHostPort(primary, *port)})
		p.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			code, op := http.StatusBadGateway, (*net.OpError)(nil)
			if errors.As(err, &op) && op.Op == "dial" {
				code = http.StatusServiceUnavailable
			}
			http.Error(w, err.Error(), code)
		}
		http.Handle("/kv/", p)
		log.Fatal(http.ListenAndServe(":"+*port, nil))
	}
	open(*dir)
	http.HandleFunc("GET /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if v, ok := data[r.PathValue("key")]; ok {
			fmt.Fprintf(w, `{"value":%s}`, v)
		} else {
			http.Error(w, "no such key", http.StatusNotFound)
		}
	})
	// PUT /kv/{key} {"value": V}, and POST /kv/{key}/cas {"from": A, "to": B}.
	update := func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Value, From, To json.RawMessage }
		cas := r.Method == http.MethodPost
		if json.NewDecoder(r.Body).Decode(&b) != nil || cas && (b.From == nil || b.To == nil) || !cas && b.Value == nil {
			http.Error(w, `expected {"value": V}, or {"from": A, "to": B} for a cas`, http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch cur, ok := data[r.PathValue("key")]; {
		case !cas:
			set(r.PathValue("key"), b.Value) // then 200, empty
		case !ok:
			http.Error(w, "no such key", http.StatusNotFound)
		case cur != string(b.From): // as JSON text
			http.Error(w, "the value is "+cur, http.StatusConflict)
		default:
			set(r.PathValue("key"), b.To)
		}
	}
	http.HandleFunc("PUT /kv/{key}", update)
	http.HandleFunc("POST /kv/{key}/cas", update)
	log.Fatal(http.ListenAndServe(":"+*port, nil))
}
