package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The socket protocol between an agent's commands and its serving process,
// both inside the agent's container: a command dials the unix socket,
// writes one JSON request and reads one JSON answer. An answer whose
// "error" field is set is a failure; any other answer is the result.
const (
	// dialWait is how long Call waits for an agent to listen.
	dialWait = 5 * time.Second
	// dialRetry is the pause between two dials while Call waits.
	dialRetry = 20 * time.Millisecond
	// dialTimeout bounds one dial.
	dialTimeout = time.Second
	// exchangeTimeout bounds one request and its answer, on either side.
	exchangeTimeout = 30 * time.Second
)

// Reply is the part of every answer that the socket protocol owns. A
// request that fails is answered with a Reply alone.
type Reply struct {
	// Error says why the request failed; "" means it succeeded.
	Error string `json:"error,omitempty"`
}

// Call sends req, as one JSON value, to the agent serving on the unix
// socket and decodes its answer into resp, a pointer (nil discards the
// answer). It waits up to 5 s for the agent to listen, retrying the dial,
// and up to 30 s for the exchange. An answer with an error becomes an
// error. name and op prefix every error, "netfault apply: ...", and name
// names the serve command in the hint when no agent listens.
func Call(name, op, socket string, req, resp any) error {
	deadline := time.Now().Add(dialWait)
	var conn net.Conn
	var err error
	for {
		conn, err = net.DialTimeout("unix", socket, dialTimeout)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(dialRetry)
	}
	if err != nil {
		return fmt.Errorf("%s %s: no agent at %s (is `%s serve` running?): %w", name, op, socket, name, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(exchangeTimeout))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return fmt.Errorf("%s %s: send: %w", name, op, err)
	}
	var raw json.RawMessage
	var reply Reply
	if err := json.NewDecoder(conn).Decode(&raw); err != nil {
		return fmt.Errorf("%s %s: read answer: %w", name, op, err)
	}
	if err := json.Unmarshal(raw, &reply); err != nil {
		return fmt.Errorf("%s %s: read answer: %w", name, op, err)
	}
	if reply.Error != "" {
		return fmt.Errorf("%s %s: %s", name, op, reply.Error)
	}
	if resp != nil {
		if err := json.Unmarshal(raw, resp); err != nil {
			return fmt.Errorf("%s %s: read answer: %w", name, op, err)
		}
	}
	return nil
}

// ServeSocket answers the requests that Call sends to socket until ctx
// ends, then returns nil. It creates the socket's directory and replaces a
// stale socket file. Each connection carries one request: ServeSocket
// decodes it into a new Req and answers with what handle returns (an
// empty Reply for nil), or with a Reply holding handle's error; a request
// that does not decode is answered with the Reply "bad request: ..."
// without calling handle. Each exchange has 30 s.
//
// Connections are served concurrently unless mu is not nil: then each
// exchange, from its request to its answer, holds mu (so requests run one
// at a time, and exclusive with whatever else holds mu), and when ctx ends
// ServeSocket waits for a running exchange to finish before it returns.
//
// Errors, from creating the directory or listening, come unwrapped (they
// name the path); callers add their own prefix.
func ServeSocket[Req any](ctx context.Context, socket string, mu sync.Locker, handle func(Req) (any, error)) error {
	if err := os.MkdirAll(filepath.Dir(socket), 0o755); err != nil {
		return err
	}
	_ = os.Remove(socket)
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return err
	}
	// The harness may call from outside the container, as another user,
	// through a bind-mounted directory that only it can enter.
	_ = os.Chmod(socket, 0o666)
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				if mu != nil {
					mu.Lock() // let a running exchange finish
					mu.Unlock()
				}
				return nil
			}
			continue
		}
		go func() {
			if mu != nil {
				mu.Lock()
				defer mu.Unlock()
			}
			exchange(conn, handle)
		}()
	}
}

// exchange reads one request from conn, answers it and closes conn.
func exchange[Req any](conn net.Conn, handle func(Req) (any, error)) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(exchangeTimeout))
	var req Req
	var resp any
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&req); err != nil {
		resp = Reply{Error: "bad request: " + err.Error()}
	} else if r, err := handle(req); err != nil {
		resp = Reply{Error: err.Error()}
	} else if r != nil {
		resp = r
	} else {
		resp = Reply{}
	}
	_ = json.NewEncoder(conn).Encode(resp)
}
