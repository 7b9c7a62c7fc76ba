// Package httpkv is the client of the http target protocol (docs/protocol.md
// section 4). It turns the invocation of a read, write, cas or add into its
// completion, mapping every answer a node can give, including none, to ok,
// fail or info exactly as the contract says:
//
//	GET  /kv/{key}                        200 {"value": V} ok V; 404 ok null (absent)
//	PUT  /kv/{key} {"value": V}           200 or 204 ok
//	POST /kv/{key}/cas {"from":A,"to":B}  200 ok; 409 fail precondition-failed; 404 fail not-found
//	any request                           503 fail unavailable
//
// Any other status, a malformed or oversized body, a timeout or a broken
// connection is info with an error saying what happened. A request that
// never reached the node (no connection could be made) is fail: see Invoke.
package httpkv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/jepsen-go/jepsen/history"
	"github.com/jepsen-go/jepsen/targets"
)

// DefaultMaxBody is the default cap on a response body.
const DefaultMaxBody = 64 << 10

// Options tune a Client. The zero value is usable.
type Options struct {
	// Node is recorded as the completion's Node when set; otherwise the
	// invocation's Node is kept.
	Node string
	// Concurrency is how many requests may be in flight to the node at
	// once; that many connections are kept for reuse. Default 64.
	Concurrency int
	// MaxBody caps a response body in bytes; a larger body makes the op
	// info. Default DefaultMaxBody (64 KiB).
	MaxBody int
	// DialTimeout bounds connecting to the node. Default 1s.
	DialTimeout time.Duration
	// Timeout, when positive, bounds each op (besides ctx's deadline), and
	// is what a timeout's error reports ("timeout after 1s"). Otherwise
	// the error reports the time from the op's start to ctx's deadline.
	Timeout time.Duration
	// Now, when set, stamps the completion's Time (nanoseconds since the
	// test started). Otherwise the caller must set Time.
	Now func() int64
}

// Client talks the http protocol to one node. It is safe for concurrent
// use; it keeps connections open for reuse until Close.
type Client struct {
	opts   Options
	target atomic.Pointer[target]
	tr     *http.Transport
	bufs   sync.Pool
}

// target is where requests go.
type target struct {
	endpoint string // "127.0.0.1:49153"
	base     string // "http://127.0.0.1:49153"
}

// New returns a client of the node whose client API listens at endpoint
// ("127.0.0.1:49153").
func New(endpoint string, opts Options) *Client {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 64
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = time.Second
	}
	d := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                  nil, // the nodes are local: never a proxy from the environment
		DialContext:            d.DialContext,
		MaxIdleConns:           0, // no global limit: MaxIdleConnsPerHost bounds it
		MaxIdleConnsPerHost:    opts.Concurrency,
		IdleConnTimeout:        90 * time.Second,
		DisableCompression:     true, // what we read is what the node sent: no gzip bomb
		MaxResponseHeaderBytes: 16 << 10,
		ResponseHeaderTimeout:  0, // the op's context bounds the wait
		ForceAttemptHTTP2:      false,
		WriteBufferSize:        4 << 10,
		ReadBufferSize:         4 << 10,
	}
	c := &Client{
		opts: opts,
		tr:   tr, // used directly: a redirect is an answer like any other, not followed
	}
	c.bufs.New = func() any { return new(bytes.Buffer) }
	c.target.Store(&target{endpoint: endpoint, base: "http://" + endpoint})
	return c
}

// Endpoint returns the address the client talks to.
func (c *Client) Endpoint() string { return c.target.Load().endpoint }

// Close closes the connections kept for reuse.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// Invoke performs the invocation op and returns its completion: a copy of
// op with Type ok, fail or info, Value and Error set (and Node and Time, see
// Options). f is read, write, cas or add (a PUT of the op's value at its
// key). ctx's deadline is the op's timeout. Invoke never panics and never
// holds more than Options.MaxBody bytes of a response.
//
// A request for which no connection to the node could be made (the dial
// failed: refused, unreachable, dial timeout) is fail: the request's bytes
// never left this process, so it cannot have reached the store, whatever f
// is. The error says why ("connection refused"); it is not "unavailable",
// which is the node's own 503. Any other failure to get a complete answer
// (reset, EOF, timeout, including a timeout while waiting for a connection,
// which cannot be told apart for sure) is info: the node may have applied
// it.
func (c *Client) Invoke(ctx context.Context, op history.Op) (done history.Op) {
	done = op
	done.Error = ""
	if op.F == history.FRead {
		done.Value = nil // a read's value is what it reads
	}
	if c.opts.Node != "" {
		done.Node = c.opts.Node
	}
	defer func() {
		if c.opts.Now != nil {
			done.Time = c.opts.Now()
		}
	}()
	var (
		method, path string
		body         []byte
	)
	if op.Key == "" && (op.F == history.FRead || op.F == history.FWrite || op.F == history.FCAS || op.F == history.FAdd) {
		return failed(done, "the op has no key; nothing was sent")
	}
	key := "/kv/" + url.PathEscape(op.Key)
	switch op.F {
	case history.FRead:
		method, path = http.MethodGet, key
	case history.FWrite, history.FAdd:
		v := op.Value
		if len(v) == 0 {
			v = json.RawMessage("null")
		}
		if !json.Valid(v) {
			return failed(done, fmt.Sprintf("value %s is not JSON; nothing was sent", clip(v, 40)))
		}
		method, path = http.MethodPut, key
		body = make([]byte, 0, len(v)+10)
		body = append(append(append(body, `{"value":`...), v...), '}')
	case history.FCAS:
		from, to, err := history.CASPair(op.Value)
		if err != nil || !json.Valid(from) || !json.Valid(to) {
			return failed(done, fmt.Sprintf("cas value %s is not a pair [from, to]; nothing was sent", clip(op.Value, 40)))
		}
		method, path = http.MethodPost, key+"/cas"
		body = make([]byte, 0, len(from)+len(to)+16)
		body = append(append(body, `{"from":`...), from...)
		body = append(append(append(body, `,"to":`...), to...), '}')
	default:
		return failed(done, fmt.Sprintf("operation %s is not one of read, write, cas, add; nothing was sent", clip([]byte(op.F), 40)))
	}

	if c.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
		ctx = context.WithValue(ctx, timeoutKey{}, c.opts.Timeout)
	}
	res, err := c.do(ctx, method, path, body)
	if err != nil {
		return err.complete(done)
	}
	defer c.bufs.Put(res.buf)
	if res.status == http.StatusServiceUnavailable {
		return failed(done, history.ErrUnavailable)
	}
	// Only a read's 200 needs its body; every other answer is decided by
	// its status, so a write's 200 stands whatever body follows it.
	switch op.F {
	case history.FRead:
		switch res.status {
		case http.StatusOK:
			if res.tooLarge {
				return info(done, "response body larger than "+size(c.opts.MaxBody))
			}
			v, problem := decodeValue(res.buf.Bytes())
			if problem != "" {
				return info(done, problem)
			}
			done.Type, done.Value = history.OK, v
			return done
		case http.StatusNotFound:
			done.Type = history.OK // the key is absent: a read of null
			return done
		}
	case history.FWrite, history.FAdd:
		if res.status == http.StatusOK || res.status == http.StatusNoContent {
			done.Type = history.OK
			return done
		}
	case history.FCAS:
		switch res.status {
		case http.StatusOK:
			done.Type = history.OK
			return done
		case http.StatusConflict:
			return failed(done, history.ErrPreconditionFailed)
		case http.StatusNotFound:
			return failed(done, history.ErrNotFound)
		}
	}
	return info(done, unexpected(op.F, res.status, res.buf.Bytes()))
}

// response is a read answer; buf belongs to the client's pool.
type response struct {
	status   int
	buf      *bytes.Buffer
	tooLarge bool
}

// reqError is a request that got no complete answer.
type reqError struct {
	sent bool   // a connection was made, so the node may have the request
	msg  string // what happened, for the op's error
}

func (e *reqError) complete(op history.Op) history.Op {
	if e.sent {
		return info(op, e.msg)
	}
	return failed(op, e.msg)
}

// do sends one request and reads at most MaxBody+1 bytes of the answer.
func (c *Client) do(ctx context.Context, method, path string, body []byte) (*response, *reqError) {
	if err := ctx.Err(); err != nil {
		return nil, &reqError{msg: "canceled before sending: " + err.Error()}
	}
	start := time.Now()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.target.Load().base+path, rd)
	if err != nil {
		return nil, &reqError{msg: "bad request: " + err.Error()}
	}
	if body != nil {
		req.Header["Content-Type"] = jsonType
	}
	req.Header["User-Agent"] = noUserAgent
	// The transport itself: no redirects to follow, no cookies, no header
	// copies. Nothing is retried unless nothing was written (the
	// transport's rule for non-idempotent requests with a rewindable body).
	resp, err := c.tr.RoundTrip(req)
	if err != nil {
		sent := !isDial(err)
		return nil, &reqError{sent: sent, msg: describe(ctx, err, start, sent, "")}
	}
	defer resp.Body.Close()
	buf := c.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, int64(c.opts.MaxBody)+1))
	if err != nil {
		c.bufs.Put(buf)
		if resp.StatusCode == http.StatusServiceUnavailable {
			// The status alone says the request was not applied.
			return &response{status: resp.StatusCode, buf: new(bytes.Buffer)}, nil
		}
		return nil, &reqError{sent: true, msg: describe(ctx, err, start, true, fmt.Sprintf(" while reading the body of a status %d answer", resp.StatusCode))}
	}
	res := &response{status: resp.StatusCode, buf: buf}
	if n > int64(c.opts.MaxBody) {
		res.tooLarge = true
		// Not drained: closing the body drops the connection.
		return res, nil
	}
	return res, nil
}

var (
	jsonType    = []string{"application/json"}
	noUserAgent = []string{""} // present and empty: the header is not sent
)

// isDial reports whether err happened while connecting: then no byte of
// the request left this process.
func isDial(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// timeoutKey carries Options.Timeout in an op's context, for its error.
type timeoutKey struct{}

// describe turns a transport error into the op's error string.
func describe(ctx context.Context, err error, start time.Time, connected bool, during string) string {
	var ne net.Error
	switch {
	case ctx.Err() == context.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded):
		el := "timeout after " + round(time.Since(start))
		if t, ok := ctx.Value(timeoutKey{}).(time.Duration); ok && ctx.Err() == context.DeadlineExceeded {
			el = "timeout after " + t.String()
		} else if d, ok := ctx.Deadline(); ok {
			el = "timeout after " + round(d.Sub(start))
		}
		if !connected {
			return el + " before a connection was made"
		}
		return el + during
	case ctx.Err() == context.Canceled || errors.Is(err, context.Canceled):
		return "canceled after " + round(time.Since(start)) + during
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the node" + during
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		if during != "" {
			return "connection closed by the node" + during
		}
		return "connection closed by the node before it answered"
	case errors.As(err, &ne) && ne.Timeout():
		if !connected {
			return "timeout after " + round(time.Since(start)) + " connecting"
		}
		return "timeout after " + round(time.Since(start)) + during
	}
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Err.Error()
	}
	if !connected {
		return "cannot connect: " + oneLine(msg, 200)
	}
	return "broken connection: " + oneLine(msg, 200) + during
}

// decodeValue reads a GET answer {"value": V} and returns V compacted, nil
// for null, or a problem.
func decodeValue(body []byte) (json.RawMessage, string) {
	var m struct {
		Value json.RawMessage `json:"value"`
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, `malformed body: empty; expected {"value": V}`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, "malformed body: " + jsonProblem(err) + "; body starts " + clip(body, 40)
	}
	if m.Value == nil {
		return nil, `malformed body: no "value" field; expected {"value": V}, got ` + clip(body, 40)
	}
	if history.IsNull(m.Value) {
		return nil, ""
	}
	var b bytes.Buffer
	b.Grow(len(m.Value))
	if err := json.Compact(&b, m.Value); err != nil {
		return nil, "malformed body: " + jsonProblem(err)
	}
	return json.RawMessage(b.Bytes()), ""
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("not JSON (%v at byte %d)", se, se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf(`expected a JSON object {"value": V}, got a JSON %s`, te.Value)
	}
	return oneLine(err.Error(), 100)
}

// unexpected describes a status the contract does not allow for f.
func unexpected(f string, status int, body []byte) string {
	var b strings.Builder
	b.WriteString("status ")
	b.WriteString(strconv.Itoa(status))
	if t := strings.TrimSpace(printable(body, 100)); t != "" {
		b.WriteString(": ")
		b.WriteString(t)
	}
	b.WriteString(" (expected ")
	switch f {
	case history.FRead:
		b.WriteString("200, 404 or 503")
	case history.FCAS:
		b.WriteString("200, 409, 404 or 503")
	default:
		b.WriteString("200, 204 or 503")
	}
	b.WriteString(")")
	return b.String()
}

// printable returns the start of b as one line of valid UTF-8 text of at
// most about n bytes, with control characters and invalid bytes escaped.
func printable(b []byte, n int) string {
	var s strings.Builder
	for len(b) > 0 {
		if s.Len() >= n {
			s.WriteString("...")
			break
		}
		r, size := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&s, `\x%02x`, b[0])
		case r == '\n' || r == '\r' || r == '\t':
			s.WriteByte(' ')
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&s, `\x%02x`, r)
		default:
			s.WriteRune(r)
		}
		b = b[size:]
	}
	return s.String()
}

func size(n int) string {
	if n%1024 == 0 {
		return strconv.Itoa(n>>10) + " KiB"
	}
	return strconv.Itoa(n) + " bytes"
}

// Leader asks the node which node leads, with GET /leader answering 200
// {"leader": "n3"}. It returns false if the node does not say (no such
// endpoint, any other answer, an error).
func (c *Client) Leader(ctx context.Context) (string, bool) {
	var m struct {
		Leader string `json:"leader"`
	}
	var body []byte
	status, err := c.get(ctx, "/leader", 1<<10, &body)
	if err != nil || status != http.StatusOK || json.Unmarshal(body, &m) != nil {
		return "", false
	}
	if m.Leader == "" || len(m.Leader) > 64 || strings.ContainsFunc(m.Leader, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", false
	}
	return m.Leader, true
}

// get sends GET path and returns its status; the body, up to max bytes, is
// stored in *body if body is not nil.
func (c *Client) get(ctx context.Context, path string, max int, body *[]byte) (int, *reqError) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.target.Load().base+path, nil)
	if err != nil {
		return 0, &reqError{msg: "bad request: " + err.Error()}
	}
	req.Header["User-Agent"] = noUserAgent
	resp, err := c.tr.RoundTrip(req)
	if err != nil {
		sent := !isDial(err)
		return 0, &reqError{sent: sent, msg: describe(ctx, err, start, sent, "")}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(max)+1))
	if err != nil {
		return 0, &reqError{sent: true, msg: describe(ctx, err, start, true, " while reading the body")}
	}
	if len(b) > max {
		return 0, &reqError{sent: true, msg: "response body larger than " + size(max)}
	}
	if body != nil {
		*body = b
	}
	return resp.StatusCode, nil
}

// The completion and message helpers every protocol shares.
var (
	failed  = targets.Failed
	info    = targets.Indeterminate
	round   = targets.RoundDuration
	clip    = targets.Clip
	oneLine = targets.OneLine
)
