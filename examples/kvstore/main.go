// Command kvstore is the smallest store that jepsen finds linearizable under
// partitions, crashes and pauses: node n1 holds every key, in memory and in
// a log it fsyncs before it answers a write, and every other node forwards
// each request to n1. It serves the contract of docs/protocol.md.
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
	mu    sync.Mutex            // held through every operation: that makes the store linearizable
	data  = map[string]string{} // key -> JSON value, as the client sent it
	store *os.File              // the log: one JSON object {"key": "value"} per write
)

// open opens DIR/kv.log and replays it into data.
func open(dir string) {
	f, err := os.OpenFile(dir+"/kv.log", os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		log.Fatalf("open the log: %v", err)
	}
	dec, good := json.NewDecoder(f), int64(0)
	for err = dec.Decode(&data); err == nil; err = dec.Decode(&data) {
		good = dec.InputOffset()
	}
	if d, err := os.Open(dir); err == nil {
		defer d.Close()
		d.Sync() // the new file's name must be durable too
	}
	if err == io.ErrUnexpectedEOF || errors.As(err, new(*json.SyntaxError)) {
		err = f.Truncate(good) // drop a last line cut short by a crash: it was never acknowledged
	}
	if err != nil && err != io.EOF {
		log.Fatalf("replay the log: %v", err)
	}
	store = f
}

// set appends key=v to the log, fsyncs it, then applies it; on error, exit.
func set(key string, v json.RawMessage) {
	line, _ := json.Marshal(map[string]string{key: string(v)})
	if _, err := store.Write(append(line, '\n')); err != nil {
		log.Fatalf("append to the log: %v", err)
	} else if err := store.Sync(); err != nil {
		log.Fatalf("fsync the log: %v", err)
	}
	data[key] = string(v)
}

func main() {
	id := flag.String("id", "", "this node's name: n1..nN")
	nodes := flag.String("nodes", "", "every node's name, comma-separated: n1,n2,n3")
	port := flag.String("port", "8080", "port to serve clients and other nodes on")
	dir := flag.String("data", "/data", "data directory, kept across restarts")
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
		case cur != string(b.From): // as JSON text: jepsen sends 3, never 3.0 or 3e0
			http.Error(w, "the value is "+cur, http.StatusConflict)
		default:
			set(r.PathValue("key"), b.To)
		}
	}
	http.HandleFunc("PUT /kv/{key}", update)
	http.HandleFunc("POST /kv/{key}/cas", update)
	log.Fatal(http.ListenAndServe(":"+*port, nil))
}
