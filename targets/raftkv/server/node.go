package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Node is one running member of the store: a Raft peer plus its client
// HTTP API.
type Node struct {
	cfg    Config
	logger hclog.Logger

	fsm    *fsm
	store  logStore
	snaps  *raft.FileSnapshotStore
	trans  *raft.NetworkTransport
	raft   *raft.Raft
	client *http.Client

	httpLn  net.Listener
	httpSrv *http.Server
	served  chan error // result of http.Server.Serve

	closeOnce sync.Once
	closeErr  error

	// leaseUntil is the wall-clock time (Unix ns) until which the
	// lease-read bug serves local reads.
	leaseUntil atomic.Int64
}

// Run starts a node with cfg, serves until ctx is done, then shuts it down
// gracefully. It returns an error if the node cannot start or its HTTP
// server fails.
func Run(ctx context.Context, cfg Config) error {
	n, err := Start(cfg)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return n.Close()
	case err := <-n.served:
		cerr := n.Close()
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http on %s: %w", n.HTTPAddr(), err)
		}
		return cerr
	}
}

// Start opens the node's storage, starts Raft (bootstrapping the static
// membership if the data directory holds no state yet) and starts serving
// the HTTP API. It returns once the node is serving; a leader may not be
// elected yet. Close stops it.
func Start(cfg Config) (_ *Node, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("raftkv config: %w", err)
	}
	n := &Node{cfg: cfg, logger: cfg.Logger.With("node", cfg.ID), fsm: newFSM(), served: make(chan error, 1)}
	var cleanups []func()
	defer func() {
		if err != nil {
			for i := len(cleanups) - 1; i >= 0; i-- {
				cleanups[i]()
			}
		}
	}()

	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	n.store, err = openLogStore(cfg.DataDir, cfg.Bug == BugNoFsync)
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { _ = n.store.Close() })

	n.snaps, err = openSnapshotStore(cfg.DataDir, cfg.Bug == BugNoFsync, n.logger.Named("snapshots"))
	if err != nil {
		return nil, err
	}

	rl := cfg.RaftListener
	if rl == nil {
		rl, err = net.Listen("tcp", cfg.raftListenAddr())
		if err != nil {
			return nil, fmt.Errorf("listen for raft on %s: %w", cfg.raftListenAddr(), err)
		}
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &streamLayer{Listener: rl, advertise: nameAddr(cfg.raftAddr(cfg.ID))},
		MaxPool: 3,
		Timeout: 2 * time.Second,
		Logger:  n.logger.Named("raft-net"),
	})
	cleanups = append(cleanups, func() { _ = n.trans.Close() })

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = 30 * time.Second
	rc.Logger = n.logger.Named("raft")
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("raft config: %w", err)
	}

	existing, err := raft.HasExistingState(n.store, n.store, n.snaps)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", cfg.DataDir, err)
	}
	if !existing {
		// Every node bootstraps the same static configuration; hashicorp/raft
		// accepts identical configurations on all peers.
		var servers []raft.Server
		for _, name := range cfg.Nodes {
			servers = append(servers, raft.Server{
				Suffrage: raft.Voter,
				ID:       raft.ServerID(name),
				Address:  raft.ServerAddress(cfg.raftAddr(name)),
			})
		}
		if err := raft.BootstrapCluster(rc, n.store, n.store, n.snaps, n.trans, raft.Configuration{Servers: servers}); err != nil {
			return nil, fmt.Errorf("bootstrap cluster: %w", err)
		}
		n.logger.Info("bootstrapped new cluster", "nodes", cfg.Nodes)
	} else {
		n.logger.Info("restarting with existing state", "dir", cfg.DataDir)
	}

	n.raft, err = raft.NewRaft(rc, n.fsm, n.store, n.store, n.snaps, n.trans)
	if err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	cleanups = append(cleanups, func() { _ = n.raft.Shutdown().Error() })

	// One connection per forwarded request: a pooled connection that the
	// old leader closed would turn a request that was never delivered into
	// an indeterminate one, while a failed dial surely sent nothing.
	n.client = &http.Client{Transport: &http.Transport{
		Proxy:             nil,
		DialContext:       (&net.Dialer{Timeout: time.Second}).DialContext,
		DisableKeepAlives: true,
	}}

	n.httpLn = cfg.HTTPListener
	if n.httpLn == nil {
		n.httpLn, err = net.Listen("tcp", cfg.httpListenAddr())
		if err != nil {
			return nil, fmt.Errorf("listen for http on %s: %w", cfg.httpListenAddr(), err)
		}
	}
	n.httpSrv = &http.Server{
		Handler:           n.routes(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          n.logger.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn}),
	}
	go func() { n.served <- n.httpSrv.Serve(n.httpLn) }()
	n.logger.Info("serving", "http", n.httpLn.Addr().String(), "raft", rl.Addr().String(), "bug", string(cfg.Bug))
	return n, nil
}

// ID is the node's name.
func (n *Node) ID() string { return n.cfg.ID }

// HTTPAddr is the address the client API listens on.
func (n *Node) HTTPAddr() string { return n.httpLn.Addr().String() }

// Leader is the name of the leader this node knows of, or "".
func (n *Node) Leader() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// Close stops serving, shuts Raft down and closes the storage, keeping
// everything acknowledged on disk. It is safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := n.httpSrv.Shutdown(ctx); err != nil {
			_ = n.httpSrv.Close()
		}
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("shut down raft: %w", err))
		}
		if err := n.trans.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft transport: %w", err))
		}
		if err := n.store.Close(); err != nil {
			errs = append(errs, err)
		}
		n.client.CloseIdleConnections()
		n.closeErr = errors.Join(errs...)
		n.logger.Info("stopped", "err", n.closeErr)
	})
	return n.closeErr
}

// streamLayer is a raft.StreamLayer over TCP that advertises the node by
// name and resolves peers' names at every dial, so peers may start later
// and change address across restarts.
type streamLayer struct {
	net.Listener
	advertise net.Addr
}

// Dial implements raft.StreamLayer.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}

// Addr implements net.Listener with the advertised name.
func (s *streamLayer) Addr() net.Addr { return s.advertise }

// nameAddr is a host:port that is not resolved until dialled.
type nameAddr string

// Network implements net.Addr.
func (a nameAddr) Network() string { return "tcp" }

// String implements net.Addr.
func (a nameAddr) String() string { return string(a) }
