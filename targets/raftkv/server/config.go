package server

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Bug names a deliberate defect the store can be started with, so that a
// test harness can prove it finds that class of error. The zero value is
// the correct store.
type Bug string

// The selectable bugs. README.md describes what each one breaks and how a
// run detects it.
const (
	// BugNone is the correct store.
	BugNone Bug = ""
	// BugStaleRead serves reads from the local state machine of whichever
	// node received them, without confirming leadership or going through
	// the log.
	BugStaleRead Bug = "stale-read"
	// BugEarlyAck acknowledges a write or cas as soon as it is handed to
	// Raft, before it is committed or applied.
	BugEarlyAck Bug = "early-ack"
	// BugRacyCAS implements cas as a read of the local state followed by a
	// separate replicated write.
	BugRacyCAS Bug = "racy-cas"
	// BugNoFsync never calls fsync: the Raft log and vote/term (bolt with
	// NoSync and NoGrowSync) and the snapshots are written but not synced,
	// so an acknowledged write may be only in the kernel's page cache. A
	// killed process loses nothing; a power loss (jepsen's power-loss
	// nemesis) loses what was not yet written back.
	BugNoFsync Bug = "no-fsync"
	// BugLeaseRead lets the leader serve reads from its local state while
	// a read lease, measured with the wall clock, looks valid. Correct
	// while clocks are right (the lease is shorter than the election
	// timeout); a clock that jumps back stretches the lease past a change
	// of leader.
	BugLeaseRead Bug = "lease-read"
)

// ReadLease is how long a lease-read leader serves local reads after a
// read through the log confirmed it led. It is shorter than the election
// timeout, so with true clocks no other leader can exist meanwhile.
const ReadLease = 300 * time.Millisecond

// Bugs lists every selectable bug name, in documentation order.
func Bugs() []Bug {
	return []Bug{BugStaleRead, BugEarlyAck, BugRacyCAS, BugNoFsync, BugLeaseRead}
}

// ParseBug returns the bug named s. The empty string and "none" mean the
// correct store. Any other unknown name is an error listing the valid names.
func ParseBug(s string) (Bug, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return BugNone, nil
	}
	for _, b := range Bugs() {
		if string(b) == s {
			return b, nil
		}
	}
	names := make([]string, 0, len(Bugs()))
	for _, b := range Bugs() {
		names = append(names, string(b))
	}
	return BugNone, fmt.Errorf("unknown bug %q: valid names are none, %s", s, strings.Join(names, ", "))
}

// Defaults used when the corresponding Config field is zero.
const (
	DefaultPort               = 8080
	DefaultRaftPort           = 7000
	DefaultHeartbeatTimeout   = 400 * time.Millisecond
	DefaultElectionTimeout    = 400 * time.Millisecond
	DefaultLeaderLeaseTimeout = 300 * time.Millisecond
	DefaultCommitTimeout      = 20 * time.Millisecond
	DefaultRequestTimeout     = 5 * time.Second
	DefaultLeaderWait         = time.Second
	DefaultSnapshotThreshold  = 8192
)

// Config describes one node of the store.
type Config struct {
	// ID is this node's name (n1, n2, ...); it is also its Raft server ID.
	ID string
	// Nodes is the full static membership, including ID.
	Nodes []string
	// Port is the client HTTP port every node listens on (default 8080).
	Port int
	// RaftPort is the Raft TCP port every node listens on (default 7000).
	RaftPort int
	// DataDir holds the Raft log, vote and snapshots; a node restarted
	// with the same DataDir rejoins with its data.
	DataDir string
	// Bug selects a deliberate defect; BugNone is the correct store.
	Bug Bug

	// HTTPAddrs optionally maps node names to the host:port of their
	// client HTTP API (used for forwarding). A node missing from the map
	// is reached at name:Port. This node listens on HTTPAddrs[ID] if set,
	// otherwise on :Port.
	HTTPAddrs map[string]string
	// RaftAddrs optionally maps node names to the host:port of their Raft
	// transport. A node missing from the map is reached at name:RaftPort.
	// This node listens on RaftAddrs[ID] if set, otherwise on :RaftPort.
	RaftAddrs map[string]string
	// HTTPListener, if set, is used for the client API instead of opening
	// a listener (tests open it first to learn the port).
	HTTPListener net.Listener
	// RaftListener, if set, is used for the Raft transport instead of
	// opening a listener.
	RaftListener net.Listener

	// HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout and
	// CommitTimeout are passed to hashicorp/raft (defaults above).
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// RequestTimeout bounds the handling of one client request, including
	// forwarding (default 5s). A client that disconnects earlier cancels it.
	RequestTimeout time.Duration
	// LeaderWait is how long a request waits for a leader to be known
	// before it is refused with 503 (default 1s).
	LeaderWait time.Duration
	// SnapshotThreshold is the number of log entries between snapshots.
	SnapshotThreshold uint64

	// Logger receives the node's and Raft's logs (default: stderr, INFO).
	Logger hclog.Logger
}

// withDefaults returns a copy of c with zero fields set to their defaults,
// or an error naming the first invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.RaftPort == 0 {
		c.RaftPort = DefaultRaftPort
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDur(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	setDur(&c.ElectionTimeout, DefaultElectionTimeout)
	setDur(&c.LeaderLeaseTimeout, DefaultLeaderLeaseTimeout)
	setDur(&c.CommitTimeout, DefaultCommitTimeout)
	setDur(&c.RequestTimeout, DefaultRequestTimeout)
	setDur(&c.LeaderWait, DefaultLeaderWait)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.Logger == nil {
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: "raftkv", Level: hclog.Info})
	}
	if err := c.validate(); err != nil {
		return c, err
	}
	return c, nil
}

func (c Config) validate() error {
	if c.ID == "" {
		return errors.New("node id is empty (--id or JEPSEN_NODE)")
	}
	if len(c.Nodes) == 0 {
		return errors.New("node list is empty (--nodes or JEPSEN_NODES)")
	}
	seen := map[string]bool{}
	for _, n := range c.Nodes {
		if !plainName(n) {
			return fmt.Errorf("node name %q is not a plain host name (letters, digits, '.', '-', '_')", n)
		}
		if seen[n] {
			return fmt.Errorf("node %q appears twice in the node list", n)
		}
		seen[n] = true
	}
	if !seen[c.ID] {
		return fmt.Errorf("node id %q is not in the node list %s", c.ID, strings.Join(c.Nodes, ","))
	}
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("port %d is not in 1..65535", c.Port)
	}
	if c.RaftPort < 1 || c.RaftPort > 65535 {
		return fmt.Errorf("raft port %d is not in 1..65535", c.RaftPort)
	}
	if c.DataDir == "" {
		return errors.New("data directory is empty (--data or JEPSEN_DATA_DIR)")
	}
	if _, err := ParseBug(string(c.Bug)); err != nil {
		return err
	}
	return nil
}

func plainName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_'
		if !ok {
			return false
		}
	}
	return true
}

// httpAddr is where node's client API is reached.
func (c Config) httpAddr(node string) string {
	if a, ok := c.HTTPAddrs[node]; ok {
		return a
	}
	return net.JoinHostPort(node, strconv.Itoa(c.Port))
}

// raftAddr is where node's Raft transport is reached.
func (c Config) raftAddr(node string) string {
	if a, ok := c.RaftAddrs[node]; ok {
		return a
	}
	return net.JoinHostPort(node, strconv.Itoa(c.RaftPort))
}

// httpListenAddr is the address this node's client API binds.
func (c Config) httpListenAddr() string {
	if a, ok := c.HTTPAddrs[c.ID]; ok {
		return a
	}
	return ":" + strconv.Itoa(c.Port)
}

// raftListenAddr is the address this node's Raft transport binds.
func (c Config) raftListenAddr() string {
	if a, ok := c.RaftAddrs[c.ID]; ok {
		return a
	}
	return ":" + strconv.Itoa(c.RaftPort)
}
