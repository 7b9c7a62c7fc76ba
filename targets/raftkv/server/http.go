package server

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
	"time"

	"github.com/hashicorp/raft"
)

const (
	// hopsHeader counts how many times a request has been forwarded.
	hopsHeader = "X-Raftkv-Hops"
	// maxHops bounds forwarding chains while leadership moves.
	maxHops = 3
	// maxBody bounds request and forwarded response bodies.
	maxBody = 1 << 20
	// maxKey bounds key length.
	maxKey = 1024
)

// response is a status and a JSON body.
type response struct {
	status int
	body   []byte
}

func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		return response{http.StatusInternalServerError, []byte(`{"error":"encode response"}`)}
	}
	return response{status, b}
}

func errorResponse(status int, format string, args ...any) response {
	return jsonResponse(status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

func (r response) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body)
}

func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /kv/{key}", n.handleGet)
	mux.HandleFunc("PUT /kv/{key}", n.handlePut)
	mux.HandleFunc("POST /kv/{key}/cas", n.handleCAS)
	mux.HandleFunc("GET /health", n.handleHealth)
	mux.HandleFunc("GET /leader", n.handleLeader)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// Not 404: for this API 404 means "key absent".
		errorResponse(http.StatusBadRequest, "unsupported request %s %s", r.Method, r.URL.Path).write(w)
	})
	return mux
}

// requestContext bounds a request by the configured timeout; a client that
// disconnects cancels it earlier.
func (n *Node) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), n.cfg.RequestTimeout)
}

func hops(r *http.Request) int {
	h, err := strconv.Atoi(r.Header.Get(hopsHeader))
	if err != nil || h < 0 {
		return 0
	}
	return h
}

func requestKey(r *http.Request) (string, *response) {
	key := r.PathValue("key")
	if key == "" {
		e := errorResponse(http.StatusBadRequest, "empty key")
		return "", &e
	}
	if len(key) > maxKey {
		e := errorResponse(http.StatusBadRequest, "key is %d bytes, the limit is %d", len(key), maxKey)
		return "", &e
	}
	return key, nil
}

// readBody reads a request body of at most maxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *response) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			e := errorResponse(http.StatusRequestEntityTooLarge, "body larger than %d bytes", maxBody)
			return nil, &e
		}
		e := errorResponse(http.StatusBadRequest, "read body: %v", err)
		return nil, &e
	}
	return b, nil
}

// decodeStrict decodes one JSON object into v: bad JSON, unknown fields
// and trailing data are errors.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body is not the expected JSON object: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("body has data after the JSON object")
	}
	return nil
}

// compactValue validates and compacts the JSON value of field name.
func compactValue(name string, raw json.RawMessage) (json.RawMessage, error) {
	if raw == nil {
		return nil, fmt.Errorf("body has no %q field", name)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("field %q is not valid JSON: %w", name, err)
	}
	return buf.Bytes(), nil
}

// parsePutBody parses a write body {"value": V} and returns V, compacted.
func parsePutBody(b []byte) (json.RawMessage, error) {
	var body struct {
		Value json.RawMessage `json:"value"`
	}
	if err := decodeStrict(b, &body); err != nil {
		return nil, err
	}
	return compactValue("value", body.Value)
}

// parseCASBody parses a cas body {"from": A, "to": B}.
func parseCASBody(b []byte) (from, to json.RawMessage, err error) {
	var body struct {
		From json.RawMessage `json:"from"`
		To   json.RawMessage `json:"to"`
	}
	if err := decodeStrict(b, &body); err != nil {
		return nil, nil, err
	}
	if from, err = compactValue("from", body.From); err != nil {
		return nil, nil, err
	}
	if to, err = compactValue("to", body.To); err != nil {
		return nil, nil, err
	}
	return from, to, nil
}

func (n *Node) handleGet(w http.ResponseWriter, r *http.Request) {
	key, bad := requestKey(r)
	if bad != nil {
		bad.write(w)
		return
	}
	if n.cfg.Bug == BugStaleRead {
		// BUG stale-read: answer from local state, whatever its age.
		v, ok := n.fsm.get(key)
		readResponse(&result{Found: ok, Value: v}).write(w)
		return
	}
	if n.cfg.Bug == BugLeaseRead {
		n.leaseRead(w, r, key)
		return
	}
	ctx, cancel := n.requestContext(r)
	defer cancel()
	n.submit(ctx, command{Op: opGet, Key: key}, hops(r)).write(w)
}

// leaseRead is the read path of the lease-read bug. BUG: the lease is
// measured with the wall clock (time.Now().UnixNano(), which drops Go's
// monotonic reading), and a node serves local reads while the lease looks
// valid, leader or not. A clock that jumps back makes a lease taken before
// the jump look valid for that much longer, long after another node may
// have become leader and accepted writes.
func (n *Node) leaseRead(w http.ResponseWriter, r *http.Request, key string) {
	if time.Now().UnixNano() < n.leaseUntil.Load() {
		v, ok := n.fsm.get(key)
		readResponse(&result{Found: ok, Value: v}).write(w)
		return
	}
	ctx, cancel := n.requestContext(r)
	defer cancel()
	leader := n.raft.State() == raft.Leader
	start := time.Now().UnixNano()
	res := n.submit(ctx, command{Op: opGet, Key: key}, hops(r))
	if leader && n.raft.State() == raft.Leader && (res.status == http.StatusOK || res.status == http.StatusNotFound) {
		// The read went through this leader's log: no other leader could
		// have been elected since start, for at least the election timeout.
		n.leaseUntil.Store(start + int64(ReadLease))
	}
	res.write(w)
}

func (n *Node) handlePut(w http.ResponseWriter, r *http.Request) {
	key, bad := requestKey(r)
	if bad != nil {
		bad.write(w)
		return
	}
	b, bad := readBody(w, r)
	if bad != nil {
		bad.write(w)
		return
	}
	v, err := parsePutBody(b)
	if err != nil {
		errorResponse(http.StatusBadRequest, "%v", err).write(w)
		return
	}
	ctx, cancel := n.requestContext(r)
	defer cancel()
	n.submit(ctx, command{Op: opPut, Key: key, Value: v}, hops(r)).write(w)
}

func (n *Node) handleCAS(w http.ResponseWriter, r *http.Request) {
	key, bad := requestKey(r)
	if bad != nil {
		bad.write(w)
		return
	}
	b, bad := readBody(w, r)
	if bad != nil {
		bad.write(w)
		return
	}
	from, to, err := parseCASBody(b)
	if err != nil {
		errorResponse(http.StatusBadRequest, "%v", err).write(w)
		return
	}
	ctx, cancel := n.requestContext(r)
	defer cancel()
	if n.cfg.Bug == BugRacyCAS {
		// BUG racy-cas: check the precondition against this node's local
		// state, then replicate a plain write. Nothing orders the check
		// with concurrent writes, so two cas from the same value can both
		// succeed.
		cur, ok := n.fsm.get(key)
		if !ok {
			casResponse(&result{}).write(w)
			return
		}
		if !valuesEqual(cur, from) {
			casResponse(&result{Found: true, Value: cur}).write(w)
			return
		}
		res := n.submit(ctx, command{Op: opPut, Key: key, Value: to}, hops(r))
		if res.status == http.StatusOK {
			res = jsonResponse(http.StatusOK, map[string]bool{"swapped": true})
		}
		res.write(w)
		return
	}
	n.submit(ctx, command{Op: opCAS, Key: key, From: from, To: to}, hops(r)).write(w)
}

func (n *Node) handleHealth(w http.ResponseWriter, r *http.Request) {
	jsonResponse(http.StatusOK, map[string]string{
		"id":     n.cfg.ID,
		"state":  n.raft.State().String(),
		"leader": n.Leader(),
		"bug":    string(n.cfg.Bug),
	}).write(w)
}

func (n *Node) handleLeader(w http.ResponseWriter, r *http.Request) {
	l := n.Leader()
	if l == "" {
		errorResponse(http.StatusServiceUnavailable, "no leader known").write(w)
		return
	}
	jsonResponse(http.StatusOK, map[string]string{"leader": l}).write(w)
}

func readResponse(res *result) response {
	if !res.Found {
		return errorResponse(http.StatusNotFound, "not-found")
	}
	return response{http.StatusOK, append(append([]byte(`{"value":`), res.Value...), '}')}
}

func casResponse(res *result) response {
	switch {
	case !res.Found:
		return errorResponse(http.StatusNotFound, "not-found")
	case !res.Swapped:
		return jsonResponse(http.StatusConflict, map[string]any{"error": "precondition-failed", "value": res.Value})
	default:
		return jsonResponse(http.StatusOK, map[string]bool{"swapped": true})
	}
}

func resultResponse(c command, res *result) response {
	switch c.Op {
	case opGet:
		return readResponse(res)
	case opCAS:
		return casResponse(res)
	default:
		return response{http.StatusOK, []byte(`{}`)}
	}
}

// submit runs c through the Raft log on the leader: locally when this node
// leads, otherwise by forwarding to the leader. It answers 503 only when
// the command surely was not appended to the log. While no leader is known,
// or the known one cannot be reached, it waits up to LeaderWait for one.
func (n *Node) submit(ctx context.Context, c command, hop int) response {
	deadline := time.Now().Add(n.cfg.LeaderWait)
	unreachable := "" // leader we could not connect to
	var last response
	for {
		if n.raft.State() == raft.Leader {
			res, notLeader := n.applyLocal(ctx, c)
			if !notLeader {
				return res
			}
			// Lost leadership before appending: safe to route elsewhere.
		}
		leader := n.waitLeader(ctx, unreachable, deadline)
		switch {
		case leader == "" && unreachable != "":
			return last
		case leader == "":
			return errorResponse(http.StatusServiceUnavailable, "no leader known")
		case leader == n.cfg.ID:
			// Named leader but not in the leader state yet (or any more).
			if !sleepCtx(ctx, 10*time.Millisecond) || time.Now().After(deadline) {
				return errorResponse(http.StatusServiceUnavailable, "no leader ready")
			}
			continue
		case hop >= maxHops:
			return errorResponse(http.StatusServiceUnavailable, "not forwarded: already forwarded %d times", hop)
		}
		res, sent := n.forward(ctx, leader, c, hop+1)
		if sent {
			return res
		}
		// Nothing was sent: wait for another leader and try again.
		unreachable, last = leader, res
	}
}

// waitLeader returns the leader this node knows of, if it is not skip,
// waiting for one until deadline (bounded by ctx); "" if none.
func (n *Node) waitLeader(ctx context.Context, skip string, deadline time.Time) string {
	for {
		if l := n.Leader(); l != "" && l != skip {
			return l
		}
		if time.Now().After(deadline) || !sleepCtx(ctx, 20*time.Millisecond) {
			return ""
		}
	}
}

// sleepCtx sleeps for d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// applyLocal appends c to the log of this (leader) node and waits for the
// state machine's answer. notLeader reports that the entry was surely not
// appended because this node is not the leader.
func (n *Node) applyLocal(ctx context.Context, c command) (res response, notLeader bool) {
	data, err := json.Marshal(c)
	if err != nil {
		return errorResponse(http.StatusInternalServerError, "encode command: %v", err), false
	}
	timeout := n.cfg.RequestTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if timeout <= 0 {
		return errorResponse(http.StatusServiceUnavailable, "request timed out before it was submitted"), false
	}
	f := n.raft.Apply(data, timeout)
	if n.cfg.Bug == BugEarlyAck && c.Op != opGet {
		// BUG early-ack: acknowledge as soon as the entry is handed to
		// Raft, without waiting for it to be committed and applied.
		if c.Op == opCAS {
			return jsonResponse(http.StatusOK, map[string]bool{"swapped": true}), false
		}
		return response{http.StatusOK, []byte(`{}`)}, false
	}
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case <-ctx.Done():
		return errorResponse(http.StatusGatewayTimeout, "timed out waiting for commit; outcome unknown"), false
	case err := <-done:
		switch {
		case err == nil:
		case errors.Is(err, raft.ErrNotLeader):
			return response{}, true
		case errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, raft.ErrLeadershipTransferInProgress):
			return errorResponse(http.StatusServiceUnavailable, "not submitted: %v", err), false
		default:
			// ErrLeadershipLost, ErrRaftShutdown, storage errors: the entry
			// may have been appended and may still commit.
			return errorResponse(http.StatusInternalServerError, "outcome unknown: %v", err), false
		}
	}
	switch r := f.Response().(type) {
	case *result:
		return resultResponse(c, r), false
	case error:
		return errorResponse(http.StatusInternalServerError, "apply: %v", r), false
	default:
		return errorResponse(http.StatusInternalServerError, "apply: unexpected result %T", r), false
	}
}

// forward sends c to the leader's HTTP API and relays its answer. A
// connection that could not be opened is a 503 with sent false (nothing was
// sent); any failure after that is indeterminate (502 or 504).
func (n *Node) forward(ctx context.Context, leader string, c command, hop int) (res response, sent bool) {
	u := "http://" + n.cfg.httpAddr(leader) + "/kv/" + url.PathEscape(c.Key)
	var method string
	var body []byte
	switch c.Op {
	case opGet:
		method = http.MethodGet
	case opPut:
		method = http.MethodPut
		body = append(append([]byte(`{"value":`), c.Value...), '}')
	case opCAS:
		method, u = http.MethodPost, u+"/cas"
		b, err := json.Marshal(map[string]json.RawMessage{"from": c.From, "to": c.To})
		if err != nil {
			return errorResponse(http.StatusInternalServerError, "encode forward: %v", err), true
		}
		body = b
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return errorResponse(http.StatusInternalServerError, "forward to %s: %v", leader, err), true
	}
	req.Header.Set(hopsHeader, strconv.Itoa(hop))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return errorResponse(http.StatusServiceUnavailable, "forward to leader %s: %v", leader, err), false
		}
		if ctx.Err() != nil {
			return errorResponse(http.StatusGatewayTimeout, "forward to leader %s timed out; outcome unknown", leader), true
		}
		return errorResponse(http.StatusBadGateway, "forward to leader %s failed; outcome unknown: %v", leader, err), true
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil || len(rb) > maxBody {
		return errorResponse(http.StatusBadGateway, "reading the answer of leader %s failed; outcome unknown", leader), true
	}
	return response{resp.StatusCode, rb}, true
}
