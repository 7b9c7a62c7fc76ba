// Package rediskv is the Redis client protocol (`protocol: redis`): it talks
// RESP, through github.com/redis/go-redis/v9, to exactly one node, the one it
// was dialled to. Values are stored as compact JSON text.
//
//	read   GET key                 ok V, or ok null when the key is absent (nil reply)
//	write  SET key V               ok
//	cas    EVALSHA (EVAL on        ok when it swapped; fail not-found when the key is
//	       NOSCRIPT) of one        absent; fail precondition-failed when it held
//	       Lua script              another value
//
// The cas script runs atomically on the server: it GETs the key, returns
// "absent" or "different" without writing, or SETs the new value as its last
// step. So an error reply to it means the SET did not happen.
//
// Ready is PING answered PONG (a LOADING reply is "not yet") and, for a
// replica, ROLE saying its link to the primary is up; Leader is from
// ROLE: a master names itself, a replica names its master's host, which is a
// node name when replicas are started with --replicaof n1 6379.
//
// # Errors
//
// Only what surely did not take effect is fail; everything else is info
// (indeterminate), as docs/history.md requires:
//
//	no connection could be made (dial refused or timed out,  fail   nothing was written to any connection
//	  no free connection in the pool, client closed)
//	error reply READONLY, LOADING, MASTERDOWN, CLUSTERDOWN,  fail   Redis refuses these before running the command
//	  MOVED, ASK, TRYAGAIN, NOREPLICAS, NOSCRIPT, NOAUTH,
//	  NOPERM, WRONGPASS, WRONGTYPE, BUSY, MISCONF, OOM,
//	  EXECABORT
//	error reply ERR of a command Redis rejected before      fail   unknown command, wrong number of arguments,
//	  running it                                                    syntax error, not an integer, max clients,
//	                                                                a Lua error in the cas script (it writes last)
//	any other error reply                                   info   a Redis-compatible store may reply an error
//	                                                                after applying (a timeout of its replication)
//	timeout, cancellation, lost connection (EOF, reset)     info   the node may have applied it
//	  after the command was written, a malformed reply
//
// Nothing is retried behind the caller's back: go-redis's retries are off
// (MaxRetries -1), so a command lost with its connection is reported, not
// sent again. Only a cas whose EVALSHA is answered NOSCRIPT is followed by
// EVAL, which is safe: NOSCRIPT means the script did not run.
package rediskv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jepsen-go/jepsen/history"
	"github.com/jepsen-go/jepsen/targets"
)

// Name is the protocol's name in jepsen.yaml.
const Name = "redis"

func init() {
	// go-redis logs dial failures to stderr; the op's completion already
	// says what happened, and nothing below cmd/jepsen prints.
	redis.SetLogger(quiet{})
	targets.Register(targets.Protocol{
		Name: Name,
		Dial: func(cfg targets.DialConfig) (targets.Conn, error) {
			return New(cfg.Addr, Options{Node: cfg.Node, Port: cfg.Port, Concurrency: cfg.Concurrency}), nil
		},
	})
}

// quiet discards go-redis's log lines.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// Options tune a Client. The zero value is usable.
type Options struct {
	// Node is the node's name ("n2"), stamped on completions and used in
	// error messages.
	Node string
	// Port is the node's client port inside its container, for error
	// messages.
	Port int
	// Concurrency is how many commands may be in flight at once (the
	// connection pool's size). Default 16.
	Concurrency int
}

// Client talks RESP to one Redis node. It is safe for concurrent use and
// implements targets.LeaderConn.
type Client struct {
	opts     Options
	endpoint string
	rdb      *redis.Client
}

// casScript compares and sets atomically. It returns 2 when it swapped, 1
// when the key held another value and 0 when the key was absent; its only
// write is its last step.
var casScript = redis.NewScript(`local v = redis.call('GET', KEYS[1])
if v == false then return 0 end
if v ~= ARGV[1] then return 1 end
redis.call('SET', KEYS[1], ARGV[2])
return 2`)

// New returns a client of the Redis node reachable at endpoint
// ("127.0.0.1:49153"). It does not touch the network.
func New(endpoint string, opts Options) *Client {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	rdb := redis.NewClient(&redis.Options{
		Addr:                  endpoint,
		Protocol:              2,    // RESP2: what Redis clones speak
		DisableIdentity:       true, // no CLIENT SETINFO on connect
		MaxRetries:            -1,   // never send a command twice
		DialTimeout:           time.Second,
		DialerRetries:         1,
		ReadTimeout:           5 * time.Second,
		WriteTimeout:          5 * time.Second,
		ContextTimeoutEnabled: true, // the op's deadline bounds reads and writes
		PoolSize:              opts.Concurrency,
		PoolTimeout:           time.Second,
		MinIdleConns:          0,
	})
	return &Client{opts: opts, endpoint: endpoint, rdb: rdb}
}

// Close closes the connections.
func (c *Client) Close() error {
	if err := c.rdb.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("close redis client of %s: %w", c.opts.Node, err)
	}
	return nil
}

// Invoke performs the invocation op (read, write, cas; add is a write) and
// returns its completion, mapping Redis's answer as the package doc says.
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
	start := time.Now()
	switch op.F {
	case history.FRead:
		b, err := c.rdb.Get(ctx, op.Key).Bytes()
		if errors.Is(err, redis.Nil) {
			done.Type = history.OK
			return done
		}
		if err != nil {
			return complete(done, ctx, start, err)
		}
		v, problem := decode(b)
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
		if err := c.rdb.Set(ctx, op.Key, v, 0).Err(); err != nil {
			return complete(done, ctx, start, err)
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
		n, err := casScript.Run(ctx, c.rdb, []string{op.Key}, f, t).Int64()
		if err != nil {
			return complete(done, ctx, start, err)
		}
		switch n {
		case 2:
			done.Type = history.OK
			return done
		case 1:
			return failed(done, history.ErrPreconditionFailed)
		case 0:
			return failed(done, history.ErrNotFound)
		}
		return info(done, fmt.Sprintf("the cas script returned %d (expected 0, 1 or 2)", n))
	}
	return failed(done, fmt.Sprintf("operation %s is not one of read, write, cas, add; nothing was sent", clip([]byte(op.F), 40)))
}

// definite are the error-reply prefixes with which Redis refuses a command
// before running it.
var definite = map[string]bool{
	"READONLY": true, "LOADING": true, "MASTERDOWN": true, "CLUSTERDOWN": true,
	"MOVED": true, "ASK": true, "TRYAGAIN": true, "NOREPLICAS": true,
	"NOSCRIPT": true, "NOAUTH": true, "NOPERM": true, "WRONGPASS": true,
	"WRONGTYPE": true, "BUSY": true, "MISCONF": true, "OOM": true, "EXECABORT": true,
}

// rejectedERR matches the ERR replies Redis gives for a command it did not
// run (argument checks, limits), and a Lua error in the cas script, whose
// only write is its last step.
var rejectedERR = regexp.MustCompile(`(?i)^ERR (unknown command|unknown subcommand|wrong number of arguments|syntax error|value is not|max number of clients|invalid expire|Protocol error|Error running script|user_script:|.*@user_script)`)

// classify maps a command's error to fail or info.
func classify(err error, ctxErr error, elapsed time.Duration) (history.Type, string) {
	var rerr redis.Error
	if errors.As(err, &rerr) && !isClientError(err) {
		msg := oneLine(rerr.Error(), 200)
		prefix, _, _ := strings.Cut(msg, " ")
		switch {
		case definite[prefix]:
			return history.Fail, msg
		case prefix == "ERR" && rejectedERR.MatchString(msg):
			return history.Fail, msg
		}
		return history.Info, msg
	}
	if notSent(err) {
		return history.Fail, "not sent: " + describe(err)
	}
	switch {
	case errors.Is(ctxErr, context.DeadlineExceeded) || isTimeout(err):
		return history.Info, "timeout after " + round(elapsed)
	case errors.Is(ctxErr, context.Canceled) || errors.Is(err, context.Canceled):
		return history.Info, "canceled after " + round(elapsed)
	}
	return history.Info, describe(err)
}

// isClientError reports errors of go-redis itself that also carry the
// RedisError marker (the pool's, for instance) so that they are not taken
// for a server's reply.
func isClientError(err error) bool {
	return errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrPoolExhausted)
}

// notSent reports whether err happened before the command was written to
// a connection: no connection could be made or taken from the pool.
func notSent(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return true
	}
	return isClientError(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// describe names a transport error briefly.
func describe(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the node"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the node"
	case isTimeout(err):
		return "timeout"
	case errors.Is(err, redis.ErrClosed):
		return "client closed"
	case errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrPoolExhausted):
		return "no free connection to the node"
	}
	return oneLine(err.Error(), 200)
}

// complete turns a command's error into the op's completion.
func complete(op history.Op, ctx context.Context, start time.Time, err error) history.Op {
	elapsed := time.Since(start)
	if d, ok := ctx.Deadline(); ok && (ctx.Err() == context.DeadlineExceeded || !time.Now().Before(d)) {
		elapsed = d.Sub(start) // the op's timeout, not the moment the error surfaced
	}
	op.Type, op.Error = classify(err, ctx.Err(), elapsed)
	return op
}

// readyTimeout bounds one readiness probe.
const readyTimeout = time.Second

// Ready sends PING once: PONG is ready, unless ROLE says the node is a
// replica not yet in sync with its primary; LOADING (the dataset is being
// loaded) and a lost connection are "not yet". A node that needs a
// password (NOAUTH) or that answers something other than RESP is
// targets.NeverReady.
func (c *Client) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	pong, err := c.rdb.Ping(ctx).Result()
	var rerr redis.Error
	switch {
	case err == nil && pong == "PONG":
		// A replica serves reads before it has its primary's data; it is
		// ready once ROLE says its link is up. A store without ROLE is
		// ready on PONG.
		role, rerr := c.rdb.Do(ctx, "ROLE").Slice()
		if rerr != nil {
			return nil
		}
		if master, state, ok := replicaState(role); ok && state != "connected" {
			return fmt.Errorf("%s is a replica of %s not yet in sync (replication state %q)", c.opts.Node, master, state)
		}
		return nil
	case err == nil:
		return fmt.Errorf("%s answered PING with %q (waiting for PONG)", c.opts.Node, clip([]byte(pong), 40))
	case errors.As(err, &rerr) && !isClientError(err):
		msg := oneLine(rerr.Error(), 200)
		if strings.HasPrefix(msg, "NOAUTH") || strings.HasPrefix(msg, "WRONGPASS") {
			return targets.NeverReady(fmt.Errorf("the node needs a password (%s); the redis protocol connects without one: start the nodes without requirepass", msg))
		}
		return fmt.Errorf("%s answered PING with %s", c.opts.Node, msg)
	case notSent(err) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("no redis answers on port %d (jepsen.yaml `port`) inside %s: %s", c.opts.Port, c.opts.Node, describe(err))
	case strings.Contains(err.Error(), "redis: can't parse") || strings.Contains(err.Error(), "invalid reply"):
		return targets.NeverReady(fmt.Errorf("port %d (jepsen.yaml `port`) does not speak RESP (%s); point `port` at the Redis port (6379 by default)", c.opts.Port, oneLine(err.Error(), 120)))
	}
	return fmt.Errorf("PING %s: %s", c.opts.Node, describe(err))
}

// nodeName matches the harness's node names.
var nodeName = regexp.MustCompile(`^n[0-9]+$`)

// Leader asks ROLE: a master leads itself; a replica names its master's
// host, which is returned when it is a node name (n1..nN). A node that
// does not answer ROLE does not say.
func (c *Client) Leader(ctx context.Context) (string, bool) {
	role, err := c.rdb.Do(ctx, "ROLE").Slice()
	if err != nil {
		return "", false
	}
	return leaderFromRole(role, c.opts.Node)
}

// leaderFromRole interprets a ROLE reply of node self.
func leaderFromRole(role []any, self string) (string, bool) {
	if len(role) == 0 {
		return "", false
	}
	kind, _ := role[0].(string)
	switch kind {
	case "master":
		return self, self != ""
	case "slave", "replica":
		if len(role) < 2 {
			return "", false
		}
		host, _ := role[1].(string)
		if nodeName.MatchString(host) {
			return host, true
		}
	}
	return "", false
}

// replicaState returns a replica's master host and replication state
// ("connect", "connecting", "sync", "connected") from a ROLE reply, and
// false for any other role.
func replicaState(role []any) (master, state string, ok bool) {
	if len(role) < 4 {
		return "", "", false
	}
	kind, _ := role[0].(string)
	if kind != "slave" && kind != "replica" {
		return "", "", false
	}
	master, _ = role[1].(string)
	state, _ = role[3].(string)
	return master, state, true
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
