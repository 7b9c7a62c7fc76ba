// Package etcdkv is the etcd client protocol (`protocol: etcd`): it talks
// the etcd v3 API (gRPC, through go.etcd.io/etcd/client/v3) to exactly one
// node, the one it was dialled to. Values are stored as compact JSON text.
//
//	read   Range(key)                              ok V, or ok null when the key is absent
//	write  Put(key, V)                             ok
//	cas    Txn(if value(key) == A then Put(key, B) ok when it swapped;
//	           else Range(key))                    fail not-found when the key is absent,
//	                                               fail precondition-failed when it held another value
//
// Reads are linearizable (etcd's ReadIndex) unless the option
// reads=serializable asks for serializable reads, which the node answers
// from its local state without asking a quorum and which etcd documents as
// possibly stale.
//
// Every request but a serializable read carries etcd's "require leader"
// flag, so that a node that knows no leader refuses it at once instead of
// waiting. Serializable reads go without it, as etcd's own clients send
// them: a member cut off from the leader keeps answering them from its
// local state, which is what the option asks for.
//
// # Errors
//
// Only what surely did not take effect is fail; everything else is info
// (indeterminate), as docs/history.md requires:
//
//	no request stream was opened (connection refused,      fail   the request never left this process
//	  no connection yet when the op's deadline passed)
//	etcdserver: no leader                                   fail   refused before it was handled (require-leader check)
//	etcdserver: too many requests, request is too large,    fail   refused before it was proposed to raft
//	  not capable, rpc not supported for learner,
//	  raft proposal dropped, any InvalidArgument,
//	  PermissionDenied, Unauthenticated or FailedPrecondition
//	  answer, Unimplemented (not an etcd v3 server)
//	etcdserver: mvcc: database space exceeded               fail   applied as a no-op while the NOSPACE alarm is raised
//	etcdserver: request timed out (any variant),            info   proposed to raft: may still be committed
//	  leader changed, server stopped, request canceled
//	timeout or cancellation after the request was sent,     info   the node may have applied it
//	  lost connection (transport is closing, EOF, reset),
//	  any other error
//
// "Sent" is decided by gRPC itself: the request counts as sent as soon as a
// stream was opened on a connection to the node (gRPC records the peer
// then), even if its bytes never made it onto the wire. That errs towards
// info, never towards a false fail.
//
// Nothing is retried behind the caller's back: the client is built with a
// single attempt per call (MaxUnaryRetries 1), it never discovers other
// endpoints (no auto-sync: the nodes' advertised addresses are container
// addresses this process may not reach), and its calls fail fast instead of
// waiting for a connection that is down.
package etcdkv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/jepsen-go/jepsen/history"
	"github.com/jepsen-go/jepsen/targets"
)

// Name is the protocol's name in jepsen.yaml.
const Name = "etcd"

// The values of the reads option.
const (
	ReadsLinearizable = "linearizable"
	ReadsSerializable = "serializable"
)

func init() {
	targets.Register(targets.Protocol{
		Name: Name,
		Options: map[string]string{
			"reads": "linearizable (default): every read goes through raft's ReadIndex and sees every write acknowledged before it began; " +
				"serializable: the node answers from its local state without asking a quorum, which etcd documents as possibly stale",
		},
		Check: func(opts map[string]string) error {
			return targets.OneOf(opts, "reads", ReadsLinearizable, ReadsSerializable)
		},
		Dial: func(cfg targets.DialConfig) (targets.Conn, error) {
			return New(cfg.Addr, Options{
				Node:         cfg.Node,
				Port:         cfg.Port,
				Serializable: cfg.Options["reads"] == ReadsSerializable,
			})
		},
	})
}

// Options tune a Client. The zero value is usable.
type Options struct {
	// Node is the node's name ("n2"), stamped on completions and used in
	// error messages.
	Node string
	// Port is the node's client port inside its container, for error
	// messages.
	Port int
	// Serializable makes reads serializable (possibly stale) instead of
	// linearizable.
	Serializable bool
}

// Client talks the etcd v3 API to one node. It is safe for concurrent use
// and implements targets.LeaderConn.
type Client struct {
	opts     Options
	endpoint string
	cli      *clientv3.Client
	kv       etcdserverpb.KVClient
	maint    etcdserverpb.MaintenanceClient
	cluster  etcdserverpb.ClusterClient

	mu    sync.Mutex
	names map[uint64]string // member ID -> member name
}

// New returns a client of the etcd node whose client port is reachable at
// endpoint ("127.0.0.1:49153"). It does not touch the network: the
// connection is made by the first call.
func New(endpoint string, opts Options) (*Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: []string{endpoint},
		// One attempt per call: no retry may hide whether a write was
		// applied.
		MaxUnaryRetries:      1,
		AutoSyncInterval:     0, // never replace the endpoint by the members' advertised URLs
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		PermitWithoutStream:  true,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client of %s at %s: %w", opts.Node, endpoint, err)
	}
	conn := cli.ActiveConnection()
	return &Client{
		opts:     opts,
		endpoint: endpoint,
		cli:      cli,
		kv:       etcdserverpb.NewKVClient(conn),
		maint:    etcdserverpb.NewMaintenanceClient(conn),
		cluster:  etcdserverpb.NewClusterClient(conn),
		names:    map[uint64]string{},
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error {
	if err := c.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("close etcd client of %s: %w", c.opts.Node, err)
	}
	return nil
}

// call runs one RPC on the node, fail-fast and, if requireLeader, with the
// require-leader flag, and reports whether a request stream was opened
// (sent).
func call[Req, Resp any](ctx context.Context, requireLeader bool, rpc func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (resp Resp, sent bool, err error) {
	var p peer.Peer
	if requireLeader {
		ctx = clientv3.WithRequireLeader(ctx)
	}
	resp, err = rpc(ctx, req, grpc.WaitForReady(false), grpc.Peer(&p))
	return resp, p.Addr != nil, err
}

// Invoke performs the invocation op (read, write, cas; add is a write) and
// returns its completion, mapping etcd's answer as the package doc says.
func (c *Client) Invoke(ctx context.Context, op history.Op) (done history.Op) {
	done = op
	done.Error = ""
	if c.opts.Node != "" {
		done.Node = c.opts.Node
	}
	if op.F == history.FRead {
		done.Value = nil
	}
	if op.Key == "" {
		return failed(done, "the op has no key; nothing was sent")
	}
	key := []byte(op.Key)
	start := time.Now()
	switch op.F {
	case history.FRead:
		resp, sent, err := call(ctx, !c.opts.Serializable, c.kv.Range, &etcdserverpb.RangeRequest{Key: key, Serializable: c.opts.Serializable})
		if err != nil {
			return complete(done, ctx, start, sent, err)
		}
		if len(resp.Kvs) == 0 {
			done.Type = history.OK
			return done
		}
		v, problem := decode(resp.Kvs[0].Value)
		if problem != "" {
			return info(done, problem)
		}
		done.Type, done.Value = history.OK, v
		return done
	case history.FWrite, history.FAdd:
		v, ok := compact(op.Value)
		if !ok {
			return failed(done, fmt.Sprintf("value %s is not JSON; nothing was sent", clip(op.Value, 40)))
		}
		_, sent, err := call(ctx, true, c.kv.Put, &etcdserverpb.PutRequest{Key: key, Value: v})
		if err != nil {
			return complete(done, ctx, start, sent, err)
		}
		done.Type = history.OK
		return done
	case history.FCAS:
		from, to, err := history.CASPair(op.Value)
		f, okF := compact(from)
		t, okT := compact(to)
		if err != nil || !okF || !okT {
			return failed(done, fmt.Sprintf("cas value %s is not a pair [from, to]; nothing was sent", clip(op.Value, 40)))
		}
		resp, sent, err := call(ctx, true, c.kv.Txn, casTxn(key, f, t))
		if err != nil {
			return complete(done, ctx, start, sent, err)
		}
		if resp.Succeeded {
			done.Type = history.OK
			return done
		}
		if absent(resp) {
			return failed(done, history.ErrNotFound)
		}
		return failed(done, history.ErrPreconditionFailed)
	}
	return failed(done, fmt.Sprintf("operation %s is not one of read, write, cas, add; nothing was sent", clip([]byte(op.F), 40)))
}

// casTxn is the compare-and-set transaction: if key holds from, put to;
// otherwise read key, so that absent and different can be told apart. It
// is one atomic transaction.
func casTxn(key, from, to []byte) *etcdserverpb.TxnRequest {
	return &etcdserverpb.TxnRequest{
		Compare: []*etcdserverpb.Compare{{
			Result:      etcdserverpb.Compare_EQUAL,
			Target:      etcdserverpb.Compare_VALUE,
			Key:         key,
			TargetUnion: &etcdserverpb.Compare_Value{Value: from},
		}},
		Success: []*etcdserverpb.RequestOp{{Request: &etcdserverpb.RequestOp_RequestPut{
			RequestPut: &etcdserverpb.PutRequest{Key: key, Value: to}}}},
		Failure: []*etcdserverpb.RequestOp{{Request: &etcdserverpb.RequestOp_RequestRange{
			RequestRange: &etcdserverpb.RangeRequest{Key: key, CountOnly: true}}}},
	}
}

// absent reports whether a failed cas transaction found no key.
func absent(resp *etcdserverpb.TxnResponse) bool {
	for _, r := range resp.Responses {
		if rr := r.GetResponseRange(); rr != nil {
			return rr.Count == 0
		}
	}
	return false
}

// Classification of an error: what the op becomes.
type verdict struct {
	typ history.Type
	msg string
}

// Server answers that say the request was refused before it could take
// effect, by their message (the etcd API's error text).
var refused = map[string]bool{}

func init() {
	for _, e := range []error{
		rpctypes.ErrGRPCNoLeader,
		rpctypes.ErrGRPCRequestTooManyRequests,
		rpctypes.ErrGRPCRequestTooLarge,
		rpctypes.ErrGRPCNotCapable,
		rpctypes.ErrGRPCNotSupportedForLearner,
		rpctypes.ErrGRPCNoSpace,
	} {
		refused[status.Convert(e).Message()] = true
	}
}

// classify maps an RPC error to fail or info. sent says whether gRPC
// opened a request stream to the node; ctxErr is the op context's error.
func classify(err error, sent bool, ctxErr error, elapsed time.Duration) verdict {
	st, isStatus := status.FromError(err)
	msg := oneLine(err.Error(), 200)
	if isStatus {
		msg = oneLine(st.Message(), 200)
	}
	if !sent {
		switch {
		case errors.Is(ctxErr, context.DeadlineExceeded):
			return verdict{history.Fail, "timeout after " + round(elapsed) + " before a connection was made"}
		case errors.Is(ctxErr, context.Canceled):
			return verdict{history.Fail, "canceled before a connection was made"}
		}
		return verdict{history.Fail, "not sent: " + connProblem(msg)}
	}
	switch {
	case errors.Is(ctxErr, context.DeadlineExceeded) && (!isStatus || st.Code() == codes.DeadlineExceeded || st.Code() == codes.Canceled):
		return verdict{history.Info, "timeout after " + round(elapsed)}
	case errors.Is(ctxErr, context.Canceled) && (!isStatus || st.Code() == codes.Canceled):
		return verdict{history.Info, "canceled after " + round(elapsed)}
	case !isStatus:
		return verdict{history.Info, msg}
	}
	if refused[st.Message()] || strings.Contains(st.Message(), "raft proposal dropped") {
		return verdict{history.Fail, msg}
	}
	switch st.Code() {
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated, codes.FailedPrecondition, codes.Unimplemented:
		return verdict{history.Fail, msg}
	case codes.Unavailable:
		if !strings.HasPrefix(st.Message(), "etcdserver:") {
			return verdict{history.Info, "connection lost: " + connProblem(msg)}
		}
	}
	return verdict{history.Info, msg}
}

// connProblem shortens gRPC's transport error text.
func connProblem(msg string) string {
	for _, s := range []string{"connection refused", "connection reset by peer", "no route to host", "i/o timeout"} {
		if strings.Contains(msg, s) {
			return s
		}
	}
	if strings.Contains(msg, "EOF") {
		return "connection closed"
	}
	return msg
}

// complete turns an RPC error into the op's completion.
func complete(op history.Op, ctx context.Context, start time.Time, sent bool, err error) history.Op {
	elapsed := time.Since(start)
	if d, ok := ctx.Deadline(); ok && (ctx.Err() == context.DeadlineExceeded || !time.Now().Before(d)) {
		elapsed = d.Sub(start) // the op's timeout, not the moment the error surfaced
	}
	v := classify(err, sent, ctx.Err(), elapsed)
	op.Type, op.Error = v.typ, v.msg
	return op
}

// readyTimeout bounds one readiness probe.
const readyTimeout = time.Second

// Ready asks the node for its status once: it is ready when it answers
// and knows a leader. A node that does not speak the etcd v3 API is
// targets.NeverReady.
func (c *Client) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	resp, err := c.maint.Status(ctx, &etcdserverpb.StatusRequest{}, grpc.WaitForReady(false))
	if err != nil {
		st, _ := status.FromError(err)
		switch st.Code() {
		case codes.Unimplemented:
			return targets.NeverReady(fmt.Errorf("port %d (jepsen.yaml `port`) does not serve the etcd v3 API (%s); point `port` at etcd's client port (2379 by default)", c.opts.Port, oneLine(st.Message(), 120)))
		case codes.Unavailable:
			if strings.Contains(st.Message(), "looked like an HTTP/1.1 header") {
				return targets.NeverReady(fmt.Errorf("port %d (jepsen.yaml `port`) answers HTTP/1.1, not the etcd v3 API (gRPC); point `port` at etcd's client port (2379 by default)", c.opts.Port))
			}
			if !strings.HasPrefix(st.Message(), "etcdserver:") {
				return fmt.Errorf("no etcd answers on port %d (jepsen.yaml `port`) inside %s: %s", c.opts.Port, c.opts.Node, connProblem(oneLine(st.Message(), 200)))
			}
		}
		return fmt.Errorf("etcd status of %s: %s", c.opts.Node, oneLine(st.Message(), 200))
	}
	if resp.Leader == 0 {
		return fmt.Errorf("%s knows no leader yet (raft term %d)", c.opts.Node, resp.RaftTerm)
	}
	if len(resp.Errors) > 0 {
		return fmt.Errorf("%s reports: %s", c.opts.Node, oneLine(strings.Join(resp.Errors, "; "), 200))
	}
	return nil
}

// Leader returns the name of the member this node believes leads (member
// names are the node names, n1..nN), from Status and MemberList.
func (c *Client) Leader(ctx context.Context) (string, bool) {
	resp, err := c.maint.Status(ctx, &etcdserverpb.StatusRequest{}, grpc.WaitForReady(false))
	if err != nil || resp.Leader == 0 {
		return "", false
	}
	c.mu.Lock()
	name, ok := c.names[resp.Leader]
	c.mu.Unlock()
	if ok {
		return name, name != ""
	}
	ml, err := c.cluster.MemberList(ctx, &etcdserverpb.MemberListRequest{}, grpc.WaitForReady(false))
	if err != nil {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range ml.Members {
		if m.Name != "" {
			c.names[m.ID] = m.Name
		}
	}
	name = c.names[resp.Leader]
	return name, name != ""
}

// The completion and message helpers every protocol shares.
var (
	failed  = targets.Failed
	info    = targets.Indeterminate
	compact = targets.CompactJSON
	decode  = targets.DecodeStored
	round   = targets.RoundDuration
	clip    = targets.Clip
	oneLine = targets.OneLine
)
