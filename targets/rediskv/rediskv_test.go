package rediskv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jepsen-go/jepsen/history"
	"github.com/jepsen-go/jepsen/targets"
)

// replyError is an error reply as go-redis returns it.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

// The error mapping of the package doc, case by case.
func TestClassify(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	dialTimeout := &net.OpError{Op: "dial", Net: "tcp", Err: context.DeadlineExceeded}
	readTimeout := &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	for _, tc := range []struct {
		name   string
		err    error
		ctxErr error
		typ    history.Type
		msg    string
	}{
		{"dial refused", dial, nil, history.Fail, "not sent: connection refused"},
		{"dial timeout", dialTimeout, context.DeadlineExceeded, history.Fail, "not sent: timeout"},
		{"pool timeout", redis.ErrPoolTimeout, nil, history.Fail, "not sent: no free connection to the node"},
		{"client closed", redis.ErrClosed, nil, history.Fail, "not sent: client closed"},
		{"READONLY", replyError("READONLY You can't write against a read only replica."), nil, history.Fail, "READONLY You can't write against a read only replica."},
		{"READONLY in the cas script", replyError("READONLY You can't write against a read only replica. script: 4b2f..., on @user_script:4."), nil, history.Fail, "READONLY You can't write against a read only replica. script: 4b2f..., on @user_script:4."},
		{"LOADING", replyError("LOADING Redis is loading the dataset in memory"), nil, history.Fail, "LOADING Redis is loading the dataset in memory"},
		{"MASTERDOWN", replyError("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), nil, history.Fail, "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."},
		{"CLUSTERDOWN", replyError("CLUSTERDOWN The cluster is down"), nil, history.Fail, "CLUSTERDOWN The cluster is down"},
		{"MOVED", replyError("MOVED 3999 127.0.0.1:6381"), nil, history.Fail, "MOVED 3999 127.0.0.1:6381"},
		{"ASK", replyError("ASK 3999 127.0.0.1:6381"), nil, history.Fail, "ASK 3999 127.0.0.1:6381"},
		{"NOREPLICAS", replyError("NOREPLICAS Not enough good replicas to write."), nil, history.Fail, "NOREPLICAS Not enough good replicas to write."},
		{"BUSY", replyError("BUSY Redis is busy running a script."), nil, history.Fail, "BUSY Redis is busy running a script."},
		{"OOM", replyError("OOM command not allowed when used memory > 'maxmemory'."), nil, history.Fail, "OOM command not allowed when used memory > 'maxmemory'."},
		{"ERR unknown command", replyError("ERR unknown command 'EVALSHA', with args beginning with: "), nil, history.Fail, "ERR unknown command 'EVALSHA', with args beginning with:"},
		{"ERR wrong number of arguments", replyError("ERR wrong number of arguments for 'set' command"), nil, history.Fail, "ERR wrong number of arguments for 'set' command"},
		{"ERR syntax error", replyError("ERR syntax error"), nil, history.Fail, "ERR syntax error"},
		{"ERR in the cas script", replyError("ERR Error running script (call to f_x): @user_script:1: boom"), nil, history.Fail, "ERR Error running script (call to f_x): @user_script:1: boom"},
		{"ERR max clients", replyError("ERR max number of clients reached"), nil, history.Fail, "ERR max number of clients reached"},
		{"ERR of a clone, unknown", replyError("ERR timed out waiting for the log to commit"), nil, history.Info, "ERR timed out waiting for the log to commit"},
		{"unknown prefix", replyError("TIMEOUT replication did not finish"), nil, history.Info, "TIMEOUT replication did not finish"},
		{"read timeout after sending", readTimeout, context.DeadlineExceeded, history.Info, "timeout after 1s"},
		{"ctx deadline after sending", context.DeadlineExceeded, context.DeadlineExceeded, history.Info, "timeout after 1s"},
		{"canceled after sending", context.Canceled, context.Canceled, history.Info, "canceled after 1s"},
		{"EOF", io.EOF, nil, history.Info, "connection closed by the node"},
		{"reset", reset, nil, history.Info, "connection reset by the node"},
		{"malformed reply", errors.New("redis: invalid reply: \"HTTP/1.1 400\""), nil, history.Info, "redis: invalid reply: \"HTTP/1.1 400\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			typ, msg := classify(tc.err, tc.ctxErr, time.Second)
			if typ != tc.typ || msg != tc.msg {
				t.Errorf("classify(%v, ctx=%v) = %s %q; want %s %q", tc.err, tc.ctxErr, typ, msg, tc.typ, tc.msg)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestLeaderFromRole(t *testing.T) {
	for _, tc := range []struct {
		name string
		role []any
		want string
		ok   bool
	}{
		{"master", []any{"master", int64(120), []any{[]any{"10.0.0.3", "6379", "120"}}}, "n2", true},
		{"replica of n1", []any{"slave", "n1", int64(6379), "connected", int64(120)}, "n1", true},
		{"replica of n12, connecting", []any{"slave", "n12", int64(6379), "connect", int64(-1)}, "n12", true},
		{"replica of an address", []any{"slave", "10.0.0.2", int64(6379), "connected", int64(1)}, "", false},
		{"sentinel", []any{"sentinel", []any{"mymaster"}}, "", false},
		{"empty", nil, "", false},
		{"short replica", []any{"slave"}, "", false},
	} {
		got, ok := leaderFromRole(tc.role, "n2")
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: leaderFromRole = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestReplicaState(t *testing.T) {
	for _, tc := range []struct {
		name          string
		role          []any
		master, state string
		ok            bool
	}{
		{"replica in sync", []any{"slave", "n1", int64(6379), "connected", int64(120)}, "n1", "connected", true},
		{"replica syncing", []any{"slave", "n1", int64(6379), "sync", int64(-1)}, "n1", "sync", true},
		{"master", []any{"master", int64(0), []any{}}, "", "", false},
		{"short", []any{"slave", "n1"}, "", "", false},
	} {
		m, s, ok := replicaState(tc.role)
		if m != tc.master || s != tc.state || ok != tc.ok {
			t.Errorf("%s: replicaState = %q, %q, %v; want %q, %q, %v", tc.name, m, s, ok, tc.master, tc.state, tc.ok)
		}
	}
}

func TestProtocolRegistered(t *testing.T) {
	p, ok := targets.Lookup(Name)
	if !ok {
		t.Fatal("protocol redis is not registered")
	}
	if err := p.CheckOptions(map[string]string{"reads": "serializable"}); err == nil {
		t.Errorf("the redis protocol accepted an option it does not have")
	}
	start := time.Now()
	c, err := p.Dial(targets.DialConfig{Node: "n1", Addr: "127.0.0.1:1", Port: 6379})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if time.Since(start) > time.Second {
		t.Errorf("Dial took %s", time.Since(start))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, f := range []string{"write", "cas", "read"} {
		o := history.Op{Type: history.Invoke, F: f, Key: "k", Value: []byte("1")}
		if f == "cas" {
			o.Value = []byte("[1,2]")
		}
		got := c.Invoke(ctx, o)
		if got.Type != history.Fail || got.Node != "n1" || got.Error != "not sent: connection refused" {
			t.Errorf("%s to a closed port = %s %q on %q; want fail \"not sent: connection refused\" on n1", f, got.Type, got.Error, got.Node)
		}
	}
	if err := c.Ready(ctx); err == nil || errors.Is(err, targets.ErrNeverReady) {
		t.Errorf("Ready on a closed port = %v; want a retryable error", err)
	} else {
		t.Logf("Ready: %v", err)
	}
	// Something that is not Redis on the port: never ready.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				buf := make([]byte, 512)
				conn.Read(buf)
				fmt.Fprint(conn, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
				time.Sleep(100 * time.Millisecond)
			}()
		}
	}()
	http := New(ln.Addr().String(), Options{Node: "n1", Port: 6379})
	defer http.Close()
	if err := http.Ready(ctx); !errors.Is(err, targets.ErrNeverReady) {
		t.Errorf("Ready against an HTTP server = %v; want never ready", err)
	} else {
		t.Logf("Ready against HTTP: %v", err)
	}
}
