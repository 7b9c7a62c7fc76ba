// Package httpkvtest provides in-process fake nodes that speak the http
// target protocol (docs/protocol.md), for tests and benchmarks of the
// harness without Docker.
//
// A Store is a linearizable in-memory map (one mutex). A Node serves a
// Store over the http protocol and can be switched, at any time, into a
// misbehaving Mode. A Server is a Node listening on 127.0.0.1; a Cluster is
// several Servers sharing one Store, so that a client may talk to any node
// and the history stays linearizable. Everything is deterministic: no
// randomness, fixed garbage.
package httpkvtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// Mode is how a node answers /kv/ requests. /health and /leader are not
// affected by the mode.
type Mode int32

const (
	// Normal answers correctly.
	Normal Mode = iota
	// Garbage answers 200 with a body of binary bytes that is not JSON.
	// Writes and cas are applied first (their 200 says so, and the client
	// rightly records them ok); reads become info ("malformed body").
	Garbage
	// Huge answers 200 with a body of HugeBytes bytes, streamed: a JSON
	// string that goes on and on. Writes and cas are applied first; reads
	// become info ("response body larger than ...").
	Huge
	// Hang never answers: the handler waits until the client gives up
	// (closes the connection) or the server is closed. Nothing is applied.
	Hang
	// Unavailable answers 503 to every request. Nothing is applied.
	Unavailable
	// Reset closes the connection without answering. Nothing is applied.
	Reset
)

// HugeBytes is the length of a Huge body: 1 GiB.
const HugeBytes = 1 << 30

var modeNames = []string{"normal", "garbage", "huge", "hang", "unavailable", "reset"}

// String returns the mode's name ("garbage").
func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", int32(m))
}

// ParseMode returns the mode named s.
func ParseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if s == n {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown mode %q: expected one of %s", s, strings.Join(modeNames, ", "))
}

// GarbageBody is what a node in Garbage mode answers: binary bytes, invalid
// UTF-8, that no JSON decoder accepts.
var GarbageBody = []byte("\x00\xff\xfe\x80garbage\x1b[31m<html>\x00{\"value\":")

// Store is a linearizable in-memory key-value map: every operation takes
// one mutex. Values are kept as compact JSON.
type Store struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{m: make(map[string][]byte)} }

// Get returns the value of key and whether it is present.
func (s *Store) Get(key string) (json.RawMessage, bool) {
	s.mu.Lock()
	v, ok := s.m[key]
	s.mu.Unlock()
	return v, ok
}

// Put sets key to the JSON value v.
func (s *Store) Put(key string, v json.RawMessage) {
	c := compact(v)
	s.mu.Lock()
	s.m[key] = c
	s.mu.Unlock()
}

// CAS sets key to to if it holds from. It reports whether it swapped and
// whether the key was present.
func (s *Store) CAS(key string, from, to json.RawMessage) (swapped, found bool) {
	f, t := compact(from), compact(to)
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.m[key]
	if !ok {
		return false, false
	}
	if !bytes.Equal(cur, f) {
		return false, true
	}
	s.m[key] = t
	return true, true
}

// Len returns the number of keys.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// compact returns v without insignificant white space, in a new slice.
func compact(v []byte) []byte {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return append([]byte(nil), v...)
	}
	return b.Bytes()
}

// Stats counts what a node did.
type Stats struct {
	// Requests is the number of /kv/ requests received.
	Requests int64
	// Applied is the number of writes and successful cas applied.
	Applied int64
	// BodyBytes is the number of response body bytes written to /kv/
	// requests (a Huge answer counts what the client accepted).
	BodyBytes int64
}

// Node serves a Store over the http protocol. It is an http.Handler; its
// methods are safe for concurrent use.
type Node struct {
	store    *Store
	mode     atomic.Int32
	notReady atomic.Bool
	leader   atomic.Pointer[string]
	stop     chan struct{}
	stopOnce sync.Once

	requests, applied, bodyBytes atomic.Int64
}

// NewNode returns a Normal, ready node serving store.
func NewNode(store *Store) *Node {
	return &Node{store: store, stop: make(chan struct{})}
}

// Store returns the store the node serves.
func (n *Node) Store() *Store { return n.store }

// SetMode switches how the node answers /kv/ requests from now on.
func (n *Node) SetMode(m Mode) { n.mode.Store(int32(m)) }

// Mode returns the node's current mode.
func (n *Node) Mode() Mode { return Mode(n.mode.Load()) }

// SetReady sets whether /health answers 200 (ready, the default) or 503.
func (n *Node) SetReady(ready bool) { n.notReady.Store(!ready) }

// SetLeader makes GET /leader answer 200 {"leader": name}; "" makes it
// answer 404 (a store that does not expose its leader).
func (n *Node) SetLeader(name string) { n.leader.Store(&name) }

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	return Stats{Requests: n.requests.Load(), Applied: n.applied.Load(), BodyBytes: n.bodyBytes.Load()}
}

// Stop ends every request the node holds (Hang, Huge); later Hang requests
// return at once. Server.Close calls it.
func (n *Node) Stop() { n.stopOnce.Do(func() { close(n.stop) }) }

var (
	jsonType  = []string{"application/json"}
	textType  = []string{"text/plain; charset=utf-8"}
	octetType = []string{"application/octet-stream"}
)

// maxRequestBody bounds what a node reads of a request.
const maxRequestBody = 1 << 20

// ServeHTTP answers the http protocol.
func (n *Node) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	switch {
	case strings.HasPrefix(p, "/kv/"):
		n.serveKV(w, r, p[len("/kv/"):])
	case p == "/health":
		if n.notReady.Load() {
			n.text(w, http.StatusServiceUnavailable, "not ready\n")
			return
		}
		n.text(w, http.StatusOK, "ok\n")
	case p == "/leader":
		l := n.leader.Load()
		if l == nil || *l == "" {
			n.text(w, http.StatusNotFound, "no leader endpoint\n")
			return
		}
		b, _ := json.Marshal(struct {
			Leader string `json:"leader"`
		}{*l})
		w.Header()["Content-Type"] = jsonType
		w.Write(b)
	default:
		n.text(w, http.StatusNotFound, "not found\n")
	}
}

func (n *Node) text(w http.ResponseWriter, status int, body string) {
	w.Header()["Content-Type"] = textType
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func (n *Node) serveKV(w http.ResponseWriter, r *http.Request, rest string) {
	n.requests.Add(1)
	escaped, cas := strings.CutSuffix(rest, "/cas")
	key, err := url.PathUnescape(escaped)
	if err != nil || key == "" || strings.Contains(escaped, "/") {
		n.text(w, http.StatusBadRequest, "bad key\n")
		return
	}
	mode := n.Mode()
	switch mode {
	case Hang:
		select {
		case <-r.Context().Done():
		case <-n.stop:
		}
		return
	case Unavailable:
		n.text(w, http.StatusServiceUnavailable, "unavailable\n")
		return
	case Reset:
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic(http.ErrAbortHandler)
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0) // a RST, not a FIN
			}
			conn.Close()
		}
		return
	}
	var status int
	var body []byte
	switch {
	case r.Method == http.MethodGet && !cas:
		v, ok := n.store.Get(key)
		if !ok {
			status, body = http.StatusNotFound, []byte("not found\n")
			break
		}
		status = http.StatusOK
		body = make([]byte, 0, len(v)+10)
		body = append(append(append(body, `{"value":`...), v...), '}')
	case r.Method == http.MethodPut && !cas:
		var req struct {
			Value json.RawMessage `json:"value"`
		}
		if msg := decode(r, &req); msg != "" || req.Value == nil {
			status, body = http.StatusBadRequest, []byte(`expected {"value": V}`+msg+"\n")
			break
		}
		n.store.Put(key, req.Value)
		n.applied.Add(1)
		status = http.StatusNoContent
	case r.Method == http.MethodPost && cas:
		var req struct {
			From json.RawMessage `json:"from"`
			To   json.RawMessage `json:"to"`
		}
		if msg := decode(r, &req); msg != "" || req.From == nil || req.To == nil {
			status, body = http.StatusBadRequest, []byte(`expected {"from": A, "to": B}`+msg+"\n")
			break
		}
		swapped, found := n.store.CAS(key, req.From, req.To)
		switch {
		case swapped:
			n.applied.Add(1)
			status = http.StatusOK
		case found:
			status, body = http.StatusConflict, []byte("precondition failed\n")
		default:
			status, body = http.StatusNotFound, []byte("not found\n")
		}
	default:
		w.Header()["Allow"] = []string{"GET, PUT, POST"}
		n.text(w, http.StatusMethodNotAllowed, "method not allowed\n")
		return
	}
	switch mode {
	case Garbage:
		w.Header()["Content-Type"] = octetType
		w.WriteHeader(http.StatusOK)
		m, _ := w.Write(GarbageBody)
		n.bodyBytes.Add(int64(m))
		return
	case Huge:
		n.huge(w)
		return
	}
	h := w.Header()
	if status == http.StatusOK || status == http.StatusNoContent {
		h["Content-Type"] = jsonType
	} else {
		h["Content-Type"] = textType
	}
	h["Date"] = nil // present and nil: not sent, not formatted
	w.WriteHeader(status)
	if len(body) > 0 && status != http.StatusNoContent {
		m, _ := w.Write(body)
		n.bodyBytes.Add(int64(m))
	}
}

// hugeChunk is the repeated part of a Huge body.
var hugeChunk = bytes.Repeat([]byte("a"), 32<<10)

// huge streams {"value":"aaaa...."} of HugeBytes bytes until the client
// stops reading or the node is stopped. It allocates nothing per chunk.
func (n *Node) huge(w http.ResponseWriter) {
	w.Header()["Content-Type"] = jsonType
	w.WriteHeader(http.StatusOK)
	written := int64(0)
	defer func() { n.bodyBytes.Add(written) }()
	m, err := io.WriteString(w, `{"value":"`)
	written += int64(m)
	for err == nil && written < HugeBytes-2 {
		select {
		case <-n.stop:
			return
		default:
		}
		chunk := hugeChunk
		if left := HugeBytes - 2 - written; left < int64(len(chunk)) {
			chunk = chunk[:left]
		}
		m, err = w.Write(chunk)
		written += int64(m)
	}
	if err == nil {
		m, _ = io.WriteString(w, `"}`)
		written += int64(m)
	}
}

var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decode reads a JSON request body into v; it returns "" or a problem.
func decode(r *http.Request, v any) string {
	b := bufs.Get().(*bytes.Buffer)
	defer bufs.Put(b)
	b.Reset()
	if _, err := b.ReadFrom(io.LimitReader(r.Body, maxRequestBody)); err != nil {
		return ": " + err.Error()
	}
	// json.Unmarshal copies what v keeps (RawMessage included), so the
	// buffer can be reused.
	if err := json.Unmarshal(b.Bytes(), v); err != nil {
		return ": " + err.Error()
	}
	return ""
}

// Server is a Node listening on 127.0.0.1 on a port of its own.
type Server struct {
	*Node
	// Endpoint is the server's address, "127.0.0.1:PORT".
	Endpoint string
	// URL is "http://" + Endpoint.
	URL string

	hs *httptest.Server
}

// NewServer starts a Normal node serving store (a new Store if nil) on
// 127.0.0.1. It panics if no loopback port can be had, like httptest.
func NewServer(store *Store) *Server {
	if store == nil {
		store = NewStore()
	}
	n := NewNode(store)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("httpkvtest: listen on 127.0.0.1: %v", err))
	}
	hs := httptest.NewUnstartedServer(n)
	hs.Listener.Close()
	hs.Listener = l
	hs.Config.ErrorLog = log.New(io.Discard, "", 0)
	hs.Start()
	ep := l.Addr().String()
	return &Server{Node: n, Endpoint: ep, URL: "http://" + ep, hs: hs}
}

// Close stops the node's pending requests, closes its connections and
// waits for its handlers to return.
func (s *Server) Close() {
	s.Node.Stop()
	s.hs.CloseClientConnections()
	s.hs.Close()
}

// Cluster is a set of Servers, one per node name, sharing one Store: a
// linearizable cluster in which any node serves any request.
type Cluster struct {
	// Store is the state all nodes serve.
	Store   *Store
	names   []string
	servers map[string]*Server
}

// NewCluster starts one Server per name, all serving a new Store.
func NewCluster(names []string) *Cluster {
	c := &Cluster{Store: NewStore(), names: append([]string(nil), names...), servers: make(map[string]*Server, len(names))}
	for _, name := range names {
		s := NewServer(c.Store)
		s.SetLeader(names[0])
		c.servers[name] = s
	}
	return c
}

// Nodes returns the node names, in the order given.
func (c *Cluster) Nodes() []string { return append([]string(nil), c.names...) }

// Endpoint returns the address of node, or "" if there is no such node.
func (c *Cluster) Endpoint(node string) string {
	if s := c.servers[node]; s != nil {
		return s.Endpoint
	}
	return ""
}

// Server returns the server of node, or nil.
func (c *Cluster) Server(node string) *Server { return c.servers[node] }

// Close closes every server.
func (c *Cluster) Close() {
	for _, name := range c.names {
		c.servers[name].Close()
	}
}
