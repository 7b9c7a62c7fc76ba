package httpkv_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/history"
	"github.com/jepsen-go/jepsen/targets"
	"github.com/jepsen-go/jepsen/targets/httpkv"
	"github.com/jepsen-go/jepsen/targets/httpkv/httpkvtest"
)

func read(key string) history.Op {
	return history.Op{Type: history.Invoke, Process: history.Client(1), F: history.FRead, Key: key, Time: 7}
}

func write(key string, v any) history.Op {
	return history.Op{Type: history.Invoke, Process: history.Client(1), F: history.FWrite, Key: key, Value: history.MustValue(v), Time: 7}
}

func add(key string, v any) history.Op {
	op := write(key, v)
	op.F = history.FAdd
	return op
}

func cas(key string, from, to any) history.Op {
	return history.Op{Type: history.Invoke, Process: history.Client(1), F: history.FCAS, Key: key, Value: history.MustValue([]any{from, to}), Time: 7}
}

// fixed answers every request with status and body, and records the last
// request.
type fixed struct {
	status int
	body   string

	mu     sync.Mutex
	method string
	path   string
	req    string
}

func (f *fixed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.method, f.path, f.req = r.Method, r.URL.EscapedPath(), string(b)
	f.mu.Unlock()
	w.WriteHeader(f.status)
	io.WriteString(w, f.body)
}

// TestInvokeMapping checks every answer of the contract, and answers out
// of it, for every f.
func TestInvokeMapping(t *testing.T) {
	tests := []struct {
		name   string
		op     history.Op
		status int
		body   string

		wantMethod, wantPath, wantReq string
		wantType                      history.Type
		wantValue                     string // "" = null
		wantErr                       string // substring; "" = no error
	}{
		// read
		{"read 200", read("k1"), 200, `{"value":3}`, "GET", "/kv/k1", "", history.OK, "3", ""},
		{"read 200 spaced", read("k1"), 200, ` { "value" : [1, 2] , "term": 4 }` + "\n", "GET", "/kv/k1", "", history.OK, "[1,2]", ""},
		{"read 200 string", read("k1"), 200, `{"value":"a b"}`, "GET", "/kv/k1", "", history.OK, `"a b"`, ""},
		{"read 200 null", read("k1"), 200, `{"value":null}`, "GET", "/kv/k1", "", history.OK, "", ""},
		{"read 404 absent", read("k1"), 404, `not found`, "GET", "/kv/k1", "", history.OK, "", ""},
		{"read 503", read("k1"), 503, `no leader`, "GET", "/kv/k1", "", history.Fail, "", "unavailable"},
		{"read 500", read("k1"), 500, "boom\nat line 3", "GET", "/kv/k1", "", history.Info, "", "status 500: boom at line 3 (expected 200, 404 or 503)"},
		{"read 409", read("k1"), 409, ``, "GET", "/kv/k1", "", history.Info, "", "status 409 (expected 200, 404 or 503)"},
		{"read 204", read("k1"), 204, ``, "GET", "/kv/k1", "", history.Info, "", "status 204 (expected 200, 404 or 503)"},
		{"read 302", read("k1"), 302, ``, "GET", "/kv/k1", "", history.Info, "", "status 302"},
		{"read malformed", read("k1"), 200, `{"value":`, "GET", "/kv/k1", "", history.Info, "", "malformed body: not JSON"},
		{"read not object", read("k1"), 200, `[1]`, "GET", "/kv/k1", "", history.Info, "", `malformed body: expected a JSON object {"value": V}, got a JSON array`},
		{"read no value field", read("k1"), 200, `{"val":1}`, "GET", "/kv/k1", "", history.Info, "", `malformed body: no "value" field`},
		{"read empty body", read("k1"), 200, ``, "GET", "/kv/k1", "", history.Info, "", "malformed body: empty"},
		{"read trailing junk", read("k1"), 200, `{"value":1}x`, "GET", "/kv/k1", "", history.Info, "", "malformed body: not JSON"},
		{"read binary", read("k1"), 200, "\x00\xff\xfe", "GET", "/kv/k1", "", history.Info, "", `malformed body: not JSON`},
		{"read escaped key", read("a/b c"), 200, `{"value":1}`, "GET", "/kv/a%2Fb%20c", "", history.OK, "1", ""},
		// write
		{"write 200", write("k2", 5), 200, `ok`, "PUT", "/kv/k2", `{"value":5}`, history.OK, "5", ""},
		{"write 204", write("k2", 5), 204, ``, "PUT", "/kv/k2", `{"value":5}`, history.OK, "5", ""},
		{"write 503", write("k2", 5), 503, ``, "PUT", "/kv/k2", `{"value":5}`, history.Fail, "5", "unavailable"},
		{"write 500", write("k2", 5), 500, `raft: not leader`, "PUT", "/kv/k2", `{"value":5}`, history.Info, "5", "status 500: raft: not leader (expected 200, 204 or 503)"},
		{"write 404", write("k2", 5), 404, ``, "PUT", "/kv/k2", `{"value":5}`, history.Info, "5", "status 404"},
		{"write 409", write("k2", 5), 409, ``, "PUT", "/kv/k2", `{"value":5}`, history.Info, "5", "status 409"},
		{"write 200 garbage body", write("k2", 5), 200, "\x00\xff", "PUT", "/kv/k2", `{"value":5}`, history.OK, "5", ""},
		// add: a PUT of the element
		{"add 200", add("s17", 17), 200, ``, "PUT", "/kv/s17", `{"value":17}`, history.OK, "17", ""},
		{"add 204", add("s17", 17), 204, ``, "PUT", "/kv/s17", `{"value":17}`, history.OK, "17", ""},
		{"add 503", add("s17", 17), 503, ``, "PUT", "/kv/s17", `{"value":17}`, history.Fail, "17", "unavailable"},
		{"add 502", add("s17", 17), 502, `bad gateway`, "PUT", "/kv/s17", `{"value":17}`, history.Info, "17", "status 502: bad gateway"},
		// cas
		{"cas 200", cas("k3", 1, 2), 200, ``, "POST", "/kv/k3/cas", `{"from":1,"to":2}`, history.OK, "[1,2]", ""},
		{"cas 409", cas("k3", 1, 2), 409, `{"value":4}`, "POST", "/kv/k3/cas", `{"from":1,"to":2}`, history.Fail, "[1,2]", history.ErrPreconditionFailed},
		{"cas 404", cas("k3", 1, 2), 404, ``, "POST", "/kv/k3/cas", `{"from":1,"to":2}`, history.Fail, "[1,2]", history.ErrNotFound},
		{"cas 503", cas("k3", 1, 2), 503, ``, "POST", "/kv/k3/cas", `{"from":1,"to":2}`, history.Fail, "[1,2]", history.ErrUnavailable},
		{"cas 204", cas("k3", 1, 2), 204, ``, "POST", "/kv/k3/cas", `{"from":1,"to":2}`, history.Info, "[1,2]", "status 204 (expected 200, 409, 404 or 503)"},
		{"cas 500", cas("k3", 1, 2), 500, `oops`, "POST", "/kv/k3/cas", `{"from":1,"to":2}`, history.Info, "[1,2]", "status 500: oops (expected 200, 409, 404 or 503)"},
		{"cas 400", cas("k3", 1, 2), 400, "bad\x00request\xff", "POST", "/kv/k3/cas", `{"from":1,"to":2}`, history.Info, "[1,2]", `status 400: bad\x00request\xff`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &fixed{status: tt.status, body: tt.body}
			srv := httptest.NewServer(h)
			defer srv.Close()
			c := httpkv.New(strings.TrimPrefix(srv.URL, "http://"), httpkv.Options{Node: "n3"})
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got := c.Invoke(ctx, tt.op)
			h.mu.Lock()
			method, path, req := h.method, h.path, h.req
			h.mu.Unlock()
			if method != tt.wantMethod || path != tt.wantPath || req != tt.wantReq {
				t.Errorf("request %s %s %q, want %s %s %q", method, path, req, tt.wantMethod, tt.wantPath, tt.wantReq)
			}
			checkOp(t, got, tt.op, tt.wantType, tt.wantValue, tt.wantErr)
			if got.Node != "n3" {
				t.Errorf("Node = %q, want n3", got.Node)
			}
		})
	}
}

// checkOp checks a completion against its invocation.
func checkOp(t *testing.T, got, inv history.Op, typ history.Type, value, errSub string) {
	t.Helper()
	if got.Type != typ {
		t.Errorf("Type = %s (error %q), want %s", got.Type, got.Error, typ)
	}
	if gv := string(got.Value); gv != value {
		t.Errorf("Value = %q, want %q", gv, value)
	}
	switch {
	case errSub == "" && got.Error != "":
		t.Errorf("Error = %q, want none", got.Error)
	case errSub != "" && !strings.Contains(got.Error, errSub):
		t.Errorf("Error = %q, want it to contain %q", got.Error, errSub)
	}
	if strings.ContainsAny(got.Error, "\n\r") {
		t.Errorf("Error is not one line: %q", got.Error)
	}
	if len(got.Error) > 300 {
		t.Errorf("Error is %d bytes long", len(got.Error))
	}
	if got.Process != inv.Process || got.F != inv.F || got.Key != inv.Key || got.Time != inv.Time {
		t.Errorf("completion %+v does not match invocation %+v", got, inv)
	}
}

// TestInvokeAgainstFake runs the contract against the fake node's correct
// store: absent reads, writes, cas that swap, conflict and find nothing.
func TestInvokeAgainstFake(t *testing.T) {
	srv := httpkvtest.NewServer(nil)
	defer srv.Close()
	var clock atomic.Int64
	c := httpkv.New(srv.Endpoint, httpkv.Options{Now: func() int64 { return clock.Add(1) + 100 }})
	defer c.Close()
	steps := []struct {
		op    history.Op
		typ   history.Type
		value string
		err   string
	}{
		{read("x"), history.OK, "", ""},
		{cas("x", 1, 2), history.Fail, "[1,2]", history.ErrNotFound},
		{write("x", 1), history.OK, "1", ""},
		{read("x"), history.OK, "1", ""},
		{cas("x", 3, 4), history.Fail, "[3,4]", history.ErrPreconditionFailed},
		{cas("x", 1, 2), history.OK, "[1,2]", ""},
		{read("x"), history.OK, "2", ""},
		{add("s1", 1), history.OK, "1", ""},
		{read("s1"), history.OK, "1", ""},
		{write("y", map[string]any{"a": []int{1, 2}}), history.OK, `{"a":[1,2]}`, ""},
		{read("y"), history.OK, `{"a":[1,2]}`, ""},
		{cas("y", map[string]any{"a": []int{1, 2}}, "z"), history.OK, `[{"a":[1,2]},"z"]`, ""},
		{read("y"), history.OK, `"z"`, ""},
	}
	for i, s := range steps {
		got := c.Invoke(context.Background(), s.op)
		inv := s.op
		inv.Time = got.Time
		checkOp(t, got, inv, s.typ, s.value, s.err)
		if got.Time != int64(101+i) {
			t.Errorf("step %d: Time = %d, want the Now stamp %d", i, got.Time, 101+i)
		}
	}
}

// TestInvokeMisbehaving drives a fake node in each bad mode: every op ends
// with the right type and a clear error, within the op's timeout.
func TestInvokeMisbehaving(t *testing.T) {
	tests := []struct {
		mode     httpkvtest.Mode
		op       history.Op
		wantType history.Type
		wantErr  string
	}{
		{httpkvtest.Garbage, read("k"), history.Info, "malformed body: not JSON"},
		{httpkvtest.Garbage, write("k", 1), history.OK, ""},
		{httpkvtest.Garbage, cas("k", 1, 2), history.OK, ""},
		{httpkvtest.Huge, read("k"), history.Info, "response body larger than 64 KiB"},
		{httpkvtest.Huge, write("k", 1), history.OK, ""},
		{httpkvtest.Hang, read("k"), history.Info, "timeout after 200ms"},
		{httpkvtest.Hang, write("k", 1), history.Info, "timeout after 200ms"},
		{httpkvtest.Hang, cas("k", 1, 2), history.Info, "timeout after 200ms"},
		{httpkvtest.Unavailable, write("k", 1), history.Fail, "unavailable"},
		{httpkvtest.Unavailable, read("k"), history.Fail, "unavailable"},
		{httpkvtest.Reset, write("k", 1), history.Info, "connection"},
		{httpkvtest.Reset, read("k"), history.Info, "connection"},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String()+" "+tt.op.F, func(t *testing.T) {
			srv := httpkvtest.NewServer(nil)
			defer srv.Close()
			srv.Store().Put("k", json.RawMessage("1"))
			srv.SetMode(tt.mode)
			c := httpkv.New(srv.Endpoint, httpkv.Options{Timeout: 200 * time.Millisecond})
			defer c.Close()
			start := time.Now()
			got := c.Invoke(context.Background(), tt.op)
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("Invoke took %v", el)
			}
			if got.Type != tt.wantType || !strings.Contains(got.Error, tt.wantErr) {
				t.Errorf("got %s %q, want %s containing %q", got.Type, got.Error, tt.wantType, tt.wantErr)
			}
			if strings.ContainsAny(got.Error, "\n\r") {
				t.Errorf("error is not one line: %q", got.Error)
			}
		})
	}
}

// TestContextDeadline: without Options.Timeout the ctx deadline is the
// op's timeout, and the error says how long the op had.
func TestContextDeadline(t *testing.T) {
	srv := httpkvtest.NewServer(nil)
	defer srv.Close()
	srv.SetMode(httpkvtest.Hang)
	c := httpkv.New(srv.Endpoint, httpkv.Options{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	got := c.Invoke(ctx, write("k", 1))
	if got.Type != history.Info || !strings.HasPrefix(got.Error, "timeout after ") {
		t.Errorf("got %s %q, want info \"timeout after ...\"", got.Type, got.Error)
	}
	// A caller's cancel is not a timeout.
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel2)
	got = c.Invoke(ctx2, write("k", 1))
	if got.Type != history.Info || !strings.HasPrefix(got.Error, "canceled after ") {
		t.Errorf("got %s %q, want info \"canceled after ...\"", got.Type, got.Error)
	}
}

// TestHugeBodyBoundedMemory shows that a node streaming a 1 GiB body costs
// the client about MaxBody bytes, not the body: 50 reads allocate less than
// 50 x 256 KiB in the whole process (server included).
func TestHugeBodyBoundedMemory(t *testing.T) {
	srv := httpkvtest.NewServer(nil)
	defer srv.Close()
	srv.SetMode(httpkvtest.Huge)
	c := httpkv.New(srv.Endpoint, httpkv.Options{})
	defer c.Close()
	const n = 50
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got := c.Invoke(ctx, read("k"))
		cancel()
		if got.Type != history.Info || got.Error != "response body larger than 64 KiB" {
			t.Fatalf("got %s %q", got.Type, got.Error)
		}
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d huge reads: %d KiB allocated in total, %d KiB per read; the node wrote %d MiB of body",
		n, alloc>>10, alloc/n>>10, srv.Stats().BodyBytes>>20)
	if alloc > n*256<<10 {
		t.Errorf("allocated %d KiB for %d reads of a huge body: not bounded by MaxBody", alloc>>10, n)
	}
	// The node's counter shows the body really was large: more than the
	// client read, so the client stopped reading, not the node writing.
	if srv.Stats().BodyBytes < n*64<<10 {
		t.Errorf("node wrote only %d bytes", srv.Stats().BodyBytes)
	}
}

func TestMaxBodyOption(t *testing.T) {
	h := &fixed{status: 200, body: `{"value":"` + strings.Repeat("x", 2000) + `"}`}
	srv := httptest.NewServer(h)
	defer srv.Close()
	ep := strings.TrimPrefix(srv.URL, "http://")
	small := httpkv.New(ep, httpkv.Options{MaxBody: 1000})
	defer small.Close()
	if got := small.Invoke(context.Background(), read("k")); got.Type != history.Info || got.Error != "response body larger than 1000 bytes" {
		t.Errorf("MaxBody 1000: got %s %q", got.Type, got.Error)
	}
	big := httpkv.New(ep, httpkv.Options{MaxBody: 4000})
	defer big.Close()
	if got := big.Invoke(context.Background(), read("k")); got.Type != history.OK || len(got.Value) != 2002 {
		t.Errorf("MaxBody 4000: got %s %q, %d bytes", got.Type, got.Error, len(got.Value))
	}
}

// TestNoConnection: a request that could not connect never reached the
// node, so it is fail, never info.
func TestNoConnection(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := l.Addr().String()
	l.Close() // nothing listens there now: connect is refused
	c := httpkv.New(ep, httpkv.Options{})
	defer c.Close()
	for _, op := range []history.Op{read("k"), write("k", 1), cas("k", 1, 2), add("s", 1)} {
		got := c.Invoke(context.Background(), op)
		if got.Type != history.Fail || got.Error != "connection refused" {
			t.Errorf("%s: got %s %q, want fail \"connection refused\"", op.F, got.Type, got.Error)
		}
	}
	// A context that is over before the op starts: nothing is sent.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := c.Invoke(ctx, write("k", 1)); got.Type != history.Fail || !strings.Contains(got.Error, "canceled before sending") {
		t.Errorf("canceled ctx: got %s %q", got.Type, got.Error)
	}
}

// TestConnectionClosedAfterRequest: the node read the request and closed
// the connection: it may have applied it, so info.
func TestConnectionClosedAfterRequest(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			conn.Read(buf)
			conn.Close()
		}
	}()
	c := httpkv.New(l.Addr().String(), httpkv.Options{})
	defer c.Close()
	got := c.Invoke(context.Background(), write("k", 1))
	if got.Type != history.Info || !strings.Contains(got.Error, "connection") {
		t.Errorf("got %s %q, want info about the connection", got.Type, got.Error)
	}
	if string(got.Value) != "1" {
		t.Errorf("info write lost its value: %q", got.Value)
	}
}

// TestNotHTTP: a node that answers with bytes that are not HTTP.
func TestNotHTTP(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			conn.Read(buf)
			conn.Write([]byte("\x00\xff\xfeSSH-2.0-OpenSSH\r\n\r\n"))
			conn.Close()
		}
	}()
	c := httpkv.New(l.Addr().String(), httpkv.Options{})
	defer c.Close()
	got := c.Invoke(context.Background(), cas("k", 1, 2))
	if got.Type != history.Info || !strings.Contains(got.Error, "malformed HTTP") {
		t.Errorf("got %s %q, want info about a malformed HTTP answer", got.Type, got.Error)
	}
}

// TestStallMidBody: a node that sends a 200 and part of the body, then
// stalls, makes the op info with a timeout while reading the body.
func TestStallMidBody(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		io.WriteString(w, `{"value":`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c := httpkv.New(strings.TrimPrefix(srv.URL, "http://"), httpkv.Options{Timeout: 200 * time.Millisecond})
	defer c.Close()
	got := c.Invoke(context.Background(), read("k"))
	if got.Type != history.Info || got.Error != "timeout after 200ms while reading the body of a status 200 answer" {
		t.Errorf("got %s %q", got.Type, got.Error)
	}
}

// TestHugeHeaders: a node sending endless headers is cut off.
func TestHugeHeaders(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 2000 {
			w.Header().Set("X-Junk-"+strings.Repeat("a", 10)+string(rune('a'+i%26))+strings.Repeat("b", i%50), strings.Repeat("v", 100))
		}
		w.WriteHeader(200)
	}))
	defer srv.Close()
	c := httpkv.New(strings.TrimPrefix(srv.URL, "http://"), httpkv.Options{})
	defer c.Close()
	got := c.Invoke(context.Background(), read("k"))
	if got.Type != history.Info || !strings.Contains(got.Error, "headers exceeded") {
		t.Errorf("got %s %q", got.Type, got.Error)
	}
}

func TestBadInvocations(t *testing.T) {
	c := httpkv.New("127.0.0.1:1", httpkv.Options{})
	defer c.Close()
	bad := []struct {
		op   history.Op
		want string
	}{
		{history.Op{F: "increment", Key: "k"}, `operation "increment" is not one of read, write, cas, add`},
		{history.Op{F: history.FCAS, Key: "k", Value: json.RawMessage(`[1]`)}, "is not a pair"},
		{history.Op{F: history.FCAS, Key: "k"}, "is not a pair"},
		{history.Op{F: history.FWrite, Key: "k", Value: json.RawMessage(`{`)}, "is not JSON"},
		{history.Op{F: history.FRead}, "the op has no key"},
	}
	for _, b := range bad {
		got := c.Invoke(context.Background(), b.op)
		if got.Type != history.Fail || !strings.Contains(got.Error, b.want) || !strings.Contains(got.Error, "nothing was sent") {
			t.Errorf("%+v: got %s %q", b.op, got.Type, got.Error)
		}
	}
}

func TestReady(t *testing.T) {
	proto, ok := targets.Lookup("http")
	if !ok {
		t.Fatal("http is not registered")
	}
	srv := httpkvtest.NewServer(nil)
	defer srv.Close()
	dial := func(addr, ready string) targets.Conn {
		c, err := proto.Dial(targets.DialConfig{Node: "n1", Addr: addr, Port: 8080, Ready: ready})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctx := context.Background()
	c := dial(srv.Endpoint, "/health")
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("Ready of a ready node: %v", err)
	}
	srv.SetReady(false)
	if err := c.Ready(ctx); err == nil || !strings.Contains(err.Error(), "503") || errors.Is(err, targets.ErrNeverReady) {
		t.Errorf("Ready of an unready node: %v (want a 503 worth waiting on)", err)
	}
	srv.SetReady(true)
	tests := []struct {
		addr, path string
		want       string
		never      bool
	}{
		{srv.Endpoint, "health", "must start with /", true},
		{srv.Endpoint, "/nope", "answered 404", true},
		{"127.0.0.1:1", "/health", "nothing answers on port 8080 (jepsen.yaml `port`) inside n1", false},
	}
	for _, tt := range tests {
		err := dial(tt.addr, tt.path).Ready(ctx)
		if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, targets.ErrNeverReady) != tt.never {
			t.Errorf("Ready(%s %s) = %v; want %q, never ready %v", tt.addr, tt.path, err, tt.want, tt.never)
		}
	}
}

func TestLeader(t *testing.T) {
	srv := httpkvtest.NewServer(nil)
	defer srv.Close()
	c := httpkv.New(srv.Endpoint, httpkv.Options{})
	defer c.Close()
	ctx := context.Background()
	if l, ok := c.Leader(ctx); ok {
		t.Errorf("Leader without /leader = %q, true", l)
	}
	srv.SetLeader("n3")
	if l, ok := c.Leader(ctx); !ok || l != "n3" {
		t.Errorf("Leader = %q, %v; want n3, true", l, ok)
	}
	for _, body := range []string{`{"leader":""}`, `{"leader":3}`, `garbage`, `{"leader":"` + strings.Repeat("x", 300) + `"}`} {
		h := &fixed{status: 200, body: body}
		s := httptest.NewServer(h)
		cc := httpkv.New(strings.TrimPrefix(s.URL, "http://"), httpkv.Options{})
		if l, ok := cc.Leader(ctx); ok {
			t.Errorf("Leader of body %q = %q, true", body, l)
		}
		cc.Close()
		s.Close()
	}
}

// TestConcurrentInvoke checks that concurrent ops on one client all
// complete correctly (run with -race).
func TestConcurrentInvoke(t *testing.T) {
	cl := httpkvtest.NewCluster([]string{"n1", "n2", "n3"})
	defer cl.Close()
	clients := map[string]*httpkv.Client{}
	for _, n := range cl.Nodes() {
		clients[n] = httpkv.New(cl.Endpoint(n), httpkv.Options{Node: n, Concurrency: 8})
		defer clients[n].Close()
	}
	var wg sync.WaitGroup
	var oks atomic.Int64
	for g := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[cl.Nodes()[g%3]]
			for i := range 50 {
				key := "k" + string(rune('a'+g%4))
				var op history.Op
				switch i % 3 {
				case 0:
					op = write(key, i)
				case 1:
					op = read(key)
				default:
					op = cas(key, i-1, i)
				}
				got := c.Invoke(context.Background(), op)
				switch {
				case got.Type == history.OK:
					oks.Add(1)
				case got.Type == history.Fail && op.F == history.FCAS && (got.Error == history.ErrPreconditionFailed || got.Error == history.ErrNotFound):
				default:
					t.Errorf("%s: %s %q", op.F, got.Type, got.Error)
				}
			}
		}()
	}
	wg.Wait()
	if oks.Load() < 24*50*2/3 {
		t.Errorf("only %d ok", oks.Load())
	}
}

// BenchmarkInvoke measures ops/s of 20 goroutines (1 client, as one node's
// worth of the harness) against an in-process fake node: a mix of 50%
// reads, 30% writes, 20% cas over 10 keys.
func BenchmarkInvoke(b *testing.B) {
	srv := httpkvtest.NewServer(nil)
	defer srv.Close()
	c := httpkv.New(srv.Endpoint, httpkv.Options{Concurrency: 20})
	defer c.Close()
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((20 + procs - 1) / procs) // 20 goroutines
	var id atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		g := int(id.Add(1))
		keys := []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"}
		i := g
		for pb.Next() {
			i++
			key := keys[i%len(keys)]
			var op history.Op
			switch i % 10 {
			case 0, 1, 2, 3, 4:
				op = read(key)
			case 5, 6, 7:
				op = write(key, i%5)
			default:
				op = cas(key, i%5, (i+1)%5)
			}
			got := c.Invoke(context.Background(), op)
			if got.Type == history.Info {
				b.Errorf("%s: info %q", op.F, got.Error)
			}
		}
	})
	b.StopTimer()
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	// CPU time of the whole process (client and fake node) per op: unlike
	// ops/s it does not depend on what else the machine runs. Two idle
	// cores give at most 2s / cpu-µs/op ops per second.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
