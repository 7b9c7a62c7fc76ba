package etcdkv

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/jepsen-go/jepsen/history"
	"github.com/jepsen-go/jepsen/targets"
)

// The error mapping of the package doc, case by case.
func TestClassify(t *testing.T) {
	transport := status.Error(codes.Unavailable, "error reading from server: EOF")
	refusedConn := status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`)
	for _, tc := range []struct {
		name   string
		err    error
		sent   bool
		ctxErr error
		typ    history.Type
		msg    string
	}{
		{"refused connection, not sent", refusedConn, false, nil, history.Fail, "not sent: connection refused"},
		{"closed before the handshake, not sent", status.Error(codes.Unavailable, `connection error: desc = "error reading server preface: EOF"`), false, nil, history.Fail, "not sent: connection closed"},
		{"deadline before a connection", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), false, context.DeadlineExceeded, history.Fail, "timeout after 1s before a connection was made"},
		{"canceled before a connection", status.Error(codes.Canceled, "context canceled"), false, context.Canceled, history.Fail, "canceled before a connection was made"},
		{"no leader", rpctypes.ErrGRPCNoLeader, true, nil, history.Fail, "etcdserver: no leader"},
		{"too many requests", rpctypes.ErrGRPCRequestTooManyRequests, true, nil, history.Fail, "etcdserver: too many requests"},
		{"too many requests as Unknown", status.Error(codes.Unknown, "etcdserver: too many requests"), true, nil, history.Fail, "etcdserver: too many requests"},
		{"request too large", rpctypes.ErrGRPCRequestTooLarge, true, nil, history.Fail, "etcdserver: request is too large"},
		{"no space", rpctypes.ErrGRPCNoSpace, true, nil, history.Fail, "etcdserver: mvcc: database space exceeded"},
		{"learner", rpctypes.ErrGRPCNotSupportedForLearner, true, nil, history.Fail, "etcdserver: rpc not supported for learner"},
		{"proposal dropped", status.Error(codes.Unknown, "raft proposal dropped"), true, nil, history.Fail, "raft proposal dropped"},
		{"invalid argument", rpctypes.ErrGRPCEmptyKey, true, nil, history.Fail, "etcdserver: key is not provided"},
		{"permission denied", rpctypes.ErrGRPCPermissionDenied, true, nil, history.Fail, "etcdserver: permission denied"},
		{"not etcd", status.Error(codes.Unimplemented, "unknown service etcdserverpb.KV"), true, nil, history.Fail, "unknown service etcdserverpb.KV"},
		{"request timed out", rpctypes.ErrGRPCTimeout, true, nil, history.Info, "etcdserver: request timed out"},
		{"timed out, leader fail", rpctypes.ErrGRPCTimeoutDueToLeaderFail, true, nil, history.Info, "etcdserver: request timed out, possibly due to previous leader failure"},
		{"timed out, connection lost", rpctypes.ErrGRPCTimeoutDueToConnectionLost, true, nil, history.Info, "etcdserver: request timed out, possibly due to connection lost"},
		{"leader changed", rpctypes.ErrGRPCLeaderChanged, true, nil, history.Info, "etcdserver: leader changed"},
		{"server stopped", rpctypes.ErrGRPCStopped, true, nil, history.Info, "etcdserver: server stopped"},
		{"server canceled", rpctypes.ErrGRPCCanceled, true, nil, history.Info, "etcdserver: request canceled"},
		{"corrupt", rpctypes.ErrGRPCCorrupt, true, nil, history.Info, "etcdserver: corrupt cluster"},
		{"connection lost after sending", transport, true, nil, history.Info, "connection lost: connection closed"},
		{"transport closing", status.Error(codes.Unavailable, "transport is closing"), true, nil, history.Info, "connection lost: transport is closing"},
		{"deadline after sending", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), true, context.DeadlineExceeded, history.Info, "timeout after 1s"},
		{"canceled after sending", status.Error(codes.Canceled, "context canceled"), true, context.Canceled, history.Info, "canceled after 1s"},
		{"server deadline, ctx alive", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), true, nil, history.Info, "context deadline exceeded"},
		{"not a status", errors.New("boom"), true, nil, history.Info, "boom"},
		{"unknown code", status.Error(codes.Internal, "grpc: error unmarshalling response"), true, nil, history.Info, "grpc: error unmarshalling response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err, tc.sent, tc.ctxErr, time.Second)
			if got.typ != tc.typ || got.msg != tc.msg {
				t.Errorf("classify(%v, sent=%v, ctx=%v) = %s %q; want %s %q", tc.err, tc.sent, tc.ctxErr, got.typ, got.msg, tc.typ, tc.msg)
			}
		})
	}
}

func TestAbsent(t *testing.T) {
	rangeResp := func(count int64) *etcdserverpb.TxnResponse {
		return &etcdserverpb.TxnResponse{Responses: []*etcdserverpb.ResponseOp{{Response: &etcdserverpb.ResponseOp_ResponseRange{
			ResponseRange: &etcdserverpb.RangeResponse{Count: count}}}}}
	}
	for _, tc := range []struct {
		name string
		resp *etcdserverpb.TxnResponse
		want bool
	}{
		{"key absent", rangeResp(0), true},
		{"key holds another value", rangeResp(1), false},
		{"no responses", &etcdserverpb.TxnResponse{}, false},
	} {
		if got := absent(tc.resp); got != tc.want {
			t.Errorf("%s: absent = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCompactAndDecode(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"3", "3", true},
		{" [ 1, 2 ] ", "[1,2]", true},
		{"", "null", true},
		{`{"a" : "b"}`, `{"a":"b"}`, true},
		{"{oops", "", false},
	} {
		got, ok := compact([]byte(tc.in))
		if ok != tc.ok || (ok && string(got) != tc.want) {
			t.Errorf("compact(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	if v, p := decode([]byte("null")); v != nil || p != "" {
		t.Errorf("decode(null) = %s, %q; want nil", v, p)
	}
	if _, p := decode([]byte("\x00bin")); p == "" {
		t.Errorf("decode of a non-JSON value gave no problem")
	}
}

func TestProtocolRegistered(t *testing.T) {
	p, ok := targets.Lookup(Name)
	if !ok {
		t.Fatal("protocol etcd is not registered")
	}
	for _, tc := range []struct {
		opts map[string]string
		ok   bool
	}{
		{nil, true},
		{map[string]string{"reads": "linearizable"}, true},
		{map[string]string{"reads": "serializable"}, true},
		{map[string]string{"reads": "stale"}, false},
		{map[string]string{"writes": "fast"}, false},
	} {
		if err := p.CheckOptions(tc.opts); (err == nil) != tc.ok {
			t.Errorf("CheckOptions(%v) = %v; want ok=%v", tc.opts, err, tc.ok)
		}
	}
	// Dial must not block on the network: nothing listens on this port.
	start := time.Now()
	c, err := p.Dial(targets.DialConfig{Node: "n1", Addr: "127.0.0.1:1", Port: 2379, Options: map[string]string{"reads": "serializable"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if time.Since(start) > time.Second {
		t.Errorf("Dial took %s", time.Since(start))
	}
	if !c.(*Client).opts.Serializable {
		t.Errorf("reads=serializable did not make reads serializable")
	}
	// Against nothing, an op is a fail (never sent) and Ready says why.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	got := c.Invoke(ctx, history.Op{Type: history.Invoke, F: "write", Key: "k", Value: []byte("1")})
	if got.Type != history.Fail || got.Node != "n1" {
		t.Errorf("write to a closed port = %s %q on %q; want fail on n1", got.Type, got.Error, got.Node)
	}
	if err := c.Ready(ctx); err == nil || errors.Is(err, targets.ErrNeverReady) {
		t.Errorf("Ready on a closed port = %v; want a retryable error", err)
	} else {
		t.Logf("Ready: %v", err)
	}
	if _, ok := c.(targets.LeaderConn).Leader(ctx); ok {
		t.Errorf("Leader answered on a closed port")
	}
}

// Something that answers HTTP/1.1 on the port (etcd's peer port, a web
// server) is never ready: waiting cannot help.
func TestReadyNotEtcd(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	c, err := New(strings.TrimPrefix(srv.URL, "http://"), Options{Node: "n1", Port: 2380})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Ready(context.Background())
	if !errors.Is(err, targets.ErrNeverReady) || !strings.Contains(err.Error(), "port 2380") {
		t.Fatalf("Ready against an HTTP/1.1 server = %v; want never ready, naming port 2380", err)
	}
}
