package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReplicationCASAndForwarding(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{})
	leader := c.waitLeader(nil)
	follower := c.follower(leader)

	// Every node names the same leader.
	for _, n := range c.names {
		st, body := c.do(http.MethodGet, n, "/leader", "")
		if st != http.StatusOK || !strings.Contains(body, `"`+leader+`"`) {
			t.Fatalf("GET /leader on %s = %d %s, want leader %s", n, st, body, leader)
		}
		if st, _ := c.do(http.MethodGet, n, "/health", ""); st != http.StatusOK {
			t.Fatalf("GET /health on %s = %d", n, st)
		}
	}

	// A write through one node is read through every other one; writes
	// through a follower are forwarded to the leader.
	for _, writer := range []string{leader, follower} {
		key := "k-" + writer
		c.mustPut(writer, key, `{"a":[1,2],"b":"x"}`)
		for _, reader := range c.names {
			c.mustGet(reader, key, `{"b":"x","a":[1,2]}`)
		}
	}
	if st, _ := c.get(follower, "absent"); st != http.StatusNotFound {
		t.Fatalf("GET absent key = %d, want 404", st)
	}

	c.mustPut(leader, "r", "1")
	tests := []struct {
		name     string
		node     string
		key      string
		from, to string
		want     int
		after    string // value of key after the cas
	}{
		{"swap on leader", leader, "r", "1", "2", http.StatusOK, "2"},
		{"wrong from", leader, "r", "1", "3", http.StatusConflict, "2"},
		{"swap via follower", follower, "r", "2", "3", http.StatusOK, "3"},
		{"wrong from via follower", follower, "r", "7", "8", http.StatusConflict, "3"},
		{"numbers compare by value", follower, "r", "3.0", "4", http.StatusOK, "4"},
		{"type matters", leader, "r", `"4"`, "5", http.StatusConflict, "4"},
		{"absent key", leader, "nope", "1", "2", http.StatusNotFound, ""},
		{"absent key via follower", follower, "nope", "1", "2", http.StatusNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.cas(tc.node, tc.key, tc.from, tc.to); got != tc.want {
				t.Fatalf("cas %s %s->%s via %s = %d, want %d", tc.key, tc.from, tc.to, tc.node, got, tc.want)
			}
			if tc.after == "" {
				if st, _ := c.get(tc.node, tc.key); st != http.StatusNotFound {
					t.Fatalf("GET %s = %d, want 404", tc.key, st)
				}
				return
			}
			c.mustGet(tc.node, tc.key, tc.after)
		})
	}
}

func TestBadRequests(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{})
	c.mustPut("n1", "k", "1")
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"put not json", http.MethodPut, "/kv/k", "hello", 400},
		{"put empty body", http.MethodPut, "/kv/k", "", 400},
		{"put truncated", http.MethodPut, "/kv/k", `{"value":`, 400},
		{"put no value", http.MethodPut, "/kv/k", `{}`, 400},
		{"put unknown field", http.MethodPut, "/kv/k", `{"value":1,"ttl":3}`, 400},
		{"put trailing data", http.MethodPut, "/kv/k", `{"value":1} {"value":2}`, 400},
		{"put array body", http.MethodPut, "/kv/k", `[1]`, 400},
		{"put too large", http.MethodPut, "/kv/k", `{"value":"` + strings.Repeat("x", maxBody) + `"}`, 413},
		{"cas not json", http.MethodPost, "/kv/k/cas", "{from:1}", 400},
		{"cas missing to", http.MethodPost, "/kv/k/cas", `{"from":1}`, 400},
		{"cas missing from", http.MethodPost, "/kv/k/cas", `{"to":1}`, 400},
		{"key too long", http.MethodGet, "/kv/" + strings.Repeat("k", maxKey+1), "", 400},
		{"unknown route", http.MethodGet, "/nothing", "", 400},
		{"wrong method", http.MethodDelete, "/kv/k", "", 400},
		{"null value is a value", http.MethodPut, "/kv/n", `{"value":null}`, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, body := c.do(tc.method, "n1", tc.path, tc.body)
			if st != tc.want {
				t.Fatalf("%s %s %.40q = %d %s, want %d", tc.method, tc.path, tc.body, st, body, tc.want)
			}
			if st >= 400 && !strings.Contains(body, `"error"`) {
				t.Fatalf("error answer %q has no error field", body)
			}
		})
	}
	c.mustGet("n1", "k", "1") // nothing above changed it
}

func TestFailoverAndRestart(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{})
	old := c.waitLeader(nil)
	c.mustPut(c.follower(old), "k", "1")

	c.stop(old)
	// Right away, the followers still name the stopped leader: a request
	// waits for the next leader instead of failing.
	c.mustPut(c.follower(old), "k2", "1")
	leader := c.waitLeader(map[string]bool{old: true})
	if leader == old {
		t.Fatalf("stopped node %s is still leader", old)
	}
	other := c.follower(leader)
	c.mustGet(other, "k", "1")
	if st := c.cas(other, "k", "1", "2"); st != http.StatusOK {
		t.Fatalf("cas after failover = %d, want 200", st)
	}

	// The old leader rejoins with its data directory and catches up.
	c.start(old)
	c.waitLeader(nil)
	c.mustGet(old, "k", "2")

	// Every node restarted with the same directories keeps the data.
	for _, n := range c.names {
		c.stop(n)
	}
	for _, n := range c.names {
		c.start(n)
	}
	c.waitLeader(nil)
	for _, n := range c.names {
		c.mustGet(n, "k", "2")
	}
}

// TestNoLeaderIsUnavailable: a node cut off from a majority refuses with 503
// (definitely not applied) rather than answering.
func TestNoLeaderIsUnavailable(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{leaderWait: 300 * time.Millisecond})
	leader := c.waitLeader(nil)
	lone := c.follower(leader)
	c.mustPut(lone, "k", "1")
	for _, n := range c.names {
		if n != lone {
			c.stop(n)
		}
	}
	time.Sleep(300 * time.Millisecond) // lone notices the leader is gone
	if st, _ := c.get(lone, "k"); st != http.StatusServiceUnavailable {
		t.Fatalf("GET without quorum = %d, want 503", st)
	}
	if st := c.put(lone, "k", "2"); st != http.StatusServiceUnavailable {
		t.Fatalf("PUT without quorum = %d, want 503", st)
	}
}

func TestBugStaleRead(t *testing.T) {
	tests := []struct {
		bug  Bug
		want int
	}{
		{BugNone, http.StatusServiceUnavailable},
		{BugStaleRead, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(string(tc.bug)+"-"+http.StatusText(tc.want), func(t *testing.T) {
			c := newTestCluster(t, 3, clusterOpts{bug: tc.bug, leaderWait: 300 * time.Millisecond})
			leader := c.waitLeader(nil)
			lone := c.follower(leader)
			c.mustPut(leader, "k", "1")
			// Wait until lone has applied the write, then isolate it.
			deadline := time.Now().Add(5 * time.Second)
			for {
				if v, ok := c.nodes[lone].fsm.get("k"); ok && string(v) == "1" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s never applied the write", lone)
				}
				time.Sleep(10 * time.Millisecond)
			}
			for _, n := range c.names {
				if n != lone {
					c.stop(n)
				}
			}
			time.Sleep(300 * time.Millisecond)
			st, v := c.get(lone, "k")
			if st != tc.want {
				t.Fatalf("GET on isolated node = %d %s, want %d", st, v, tc.want)
			}
		})
	}
}

func TestBugEarlyAck(t *testing.T) {
	tests := []struct {
		bug     Bug
		wantAck bool
	}{
		{BugNone, false},
		{BugEarlyAck, true},
	}
	for _, tc := range tests {
		t.Run(string(tc.bug), func(t *testing.T) {
			// A long lease keeps the leader leading for a second after it
			// has lost its followers.
			c := newTestCluster(t, 3, clusterOpts{bug: tc.bug, lease: time.Second, leaderWait: 300 * time.Millisecond})
			leader := c.waitLeader(nil)
			c.mustPut(leader, "k", "1")
			for _, n := range c.names {
				if n != leader {
					c.stop(n)
				}
			}
			// The leader cannot commit anything now.
			for _, op := range []func() int{
				func() int { return c.put(leader, "k", "2") },
				func() int { return c.cas(leader, "k", "1", "3") },
			} {
				st := op()
				if acked := st == http.StatusOK; acked != tc.wantAck {
					t.Fatalf("write without quorum answered %d; want acknowledged=%v", st, tc.wantAck)
				}
			}
		})
	}
}

func TestBugRacyCAS(t *testing.T) {
	const rounds, racers = 15, 16
	tests := []struct {
		bug        Bug
		wantDouble bool
	}{
		{BugNone, false},
		{BugRacyCAS, true},
	}
	for _, tc := range tests {
		t.Run(string(tc.bug), func(t *testing.T) {
			c := newTestCluster(t, 3, clusterOpts{bug: tc.bug})
			leader := c.waitLeader(nil)
			doubles := 0
			for r := 0; r < rounds; r++ {
				key := "r" + string(rune('a'+r))
				c.mustPut(leader, key, "0")
				c.mustGet(c.follower(leader), key, "0")
				var mu sync.Mutex
				var winners []string // "to" of every cas answered 200
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := 0; i < racers; i++ {
					node := c.names[i%len(c.names)]
					to, _ := json.Marshal(i + 1)
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						body := `{"from":0,"to":` + string(to) + `}`
						if c.status(http.MethodPost, node, "/kv/"+key+"/cas", body) == http.StatusOK {
							mu.Lock()
							winners = append(winners, string(to))
							mu.Unlock()
						}
					}()
				}
				close(start)
				wg.Wait()
				if len(winners) > 1 {
					doubles++
				}
				if !tc.wantDouble && len(winners) == 1 {
					// The one acknowledged swap is the register's value.
					c.mustGet(leader, key, winners[0])
				}
				if tc.wantDouble && doubles > 0 {
					return
				}
			}
			if got := doubles > 0; got != tc.wantDouble {
				t.Fatalf("rounds where two cas from the same value both succeeded: %d; want some=%v", doubles, tc.wantDouble)
			}
		})
	}
}

// TestBugNoFsync: the no-fsync store, like the correct one, keeps every
// acknowledged write when every node's process stops (the kernel's page
// cache keeps the unsynced writes; a process cannot lose power in a unit
// test: jepsen's --nemesis power-loss finds the bug, and TestStoreFsync
// checks that no fsync is made).
func TestBugNoFsync(t *testing.T) {
	tests := []struct {
		bug        Bug
		wantStatus int
	}{
		{BugNone, http.StatusOK},
		{BugNoFsync, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(string(tc.bug), func(t *testing.T) {
			c := newTestCluster(t, 3, clusterOpts{bug: tc.bug})
			leader := c.waitLeader(nil)
			c.mustPut(leader, "k", "1")
			c.mustGet(c.follower(leader), "k", "1")
			for _, n := range c.names {
				c.stop(n)
			}
			for _, n := range c.names {
				c.start(n)
			}
			c.waitLeader(nil)
			if st, v := c.get("n1", "k"); st != tc.wantStatus {
				t.Fatalf("GET after stopping every node = %d %s, want %d", st, v, tc.wantStatus)
			}
		})
	}
}

// lease-read: a read through the leader's log takes a wall-clock lease of
// ReadLease; while the lease looks valid the node answers from local state,
// even cut off from the cluster. A clock jumped back by 10 s makes a lease
// look 10 s longer: simulated here by stretching it, since a test cannot
// shift its own process's clock.
func TestBugLeaseRead(t *testing.T) {
	tests := []struct {
		bug  Bug
		want int
	}{
		{BugNone, http.StatusServiceUnavailable},
		{BugLeaseRead, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(string(tc.bug)+"-"+http.StatusText(tc.want), func(t *testing.T) {
			c := newTestCluster(t, 3, clusterOpts{bug: tc.bug, leaderWait: 300 * time.Millisecond})
			leader := c.waitLeader(nil)
			c.mustPut(leader, "k", "1")
			before := time.Now().UnixNano()
			if st, v := c.get(leader, "k"); st != http.StatusOK || v != "1" {
				t.Fatalf("GET on the leader = %d %s", st, v)
			}
			lease := c.nodes[leader].leaseUntil.Load()
			if tc.bug == BugLeaseRead && (lease <= before || lease > time.Now().UnixNano()+int64(ReadLease)) {
				t.Fatalf("lease until %d after a leader read at %d: want within %s", lease, before, ReadLease)
			}
			if tc.bug == BugNone && lease != 0 {
				t.Fatalf("the correct store took a lease")
			}
			c.nodes[leader].leaseUntil.Store(time.Now().Add(10 * time.Second).UnixNano())
			for _, n := range c.names {
				if n != leader {
					c.stop(n)
				}
			}
			time.Sleep(600 * time.Millisecond) // past the leader lease: it steps down
			if st, v := c.get(leader, "k"); st != tc.want {
				t.Fatalf("GET on the deposed leader = %d %s, want %d", st, v, tc.want)
			}
		})
	}
}
