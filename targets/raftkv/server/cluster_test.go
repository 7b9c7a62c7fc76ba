package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// testCluster is an in-process cluster on 127.0.0.1 with one temp data
// directory per node. Nodes can be stopped and restarted on the same
// addresses and directories.
type testCluster struct {
	t     *testing.T
	names []string
	cfg   map[string]Config
	nodes map[string]*Node // nil when stopped
}

type clusterOpts struct {
	bug Bug
	// lease, if set, is used for the heartbeat, election and leader lease
	// timeouts (a leader keeps leading that long without a quorum).
	lease time.Duration
	// leaderWait overrides the 2s a request waits for a leader.
	leaderWait time.Duration
}

func testLogger() hclog.Logger {
	if os.Getenv("RAFTKV_TEST_LOG") != "" {
		return hclog.New(&hclog.LoggerOptions{Name: "raftkv", Level: hclog.Debug, Output: os.Stderr})
	}
	return hclog.NewNullLogger()
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	var err error
	for i := 0; i < 50; i++ { // a just-closed port can be briefly busy
		var l net.Listener
		if l, err = net.Listen("tcp", addr); err == nil {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("listen on %s: %v", addr, err)
	return nil
}

func newTestCluster(t *testing.T, size int, o clusterOpts) *testCluster {
	t.Helper()
	c := &testCluster{t: t, cfg: map[string]Config{}, nodes: map[string]*Node{}}
	httpAddrs, raftAddrs := map[string]string{}, map[string]string{}
	httpLns, raftLns := map[string]net.Listener{}, map[string]net.Listener{}
	for i := 1; i <= size; i++ {
		name := fmt.Sprintf("n%d", i)
		c.names = append(c.names, name)
		hl, rl := listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
		httpLns[name], raftLns[name] = hl, rl
		httpAddrs[name], raftAddrs[name] = hl.Addr().String(), rl.Addr().String()
	}
	base := t.TempDir()
	for _, name := range c.names {
		c.cfg[name] = Config{
			ID:             name,
			Nodes:          c.names,
			DataDir:        fmt.Sprintf("%s/%s", base, name),
			Bug:            o.bug,
			HTTPAddrs:      httpAddrs,
			RaftAddrs:      raftAddrs,
			RequestTimeout: 3 * time.Second,
			LeaderWait:     2 * time.Second,
			Logger:         testLogger(),
		}
		if o.leaderWait != 0 {
			cfg := c.cfg[name]
			cfg.LeaderWait = o.leaderWait
			c.cfg[name] = cfg
		}
		if o.lease != 0 {
			cfg := c.cfg[name]
			cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = o.lease, o.lease, o.lease
			c.cfg[name] = cfg
		}
	}
	t.Cleanup(func() {
		for _, name := range c.names {
			if n := c.nodes[name]; n != nil {
				_ = n.Close()
			}
		}
	})
	for _, name := range c.names {
		cfg := c.cfg[name]
		cfg.HTTPListener, cfg.RaftListener = httpLns[name], raftLns[name]
		n, err := Start(cfg)
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		c.nodes[name] = n
	}
	c.waitLeader(nil)
	return c
}

// start restarts a stopped node on its old addresses and data directory.
func (c *testCluster) start(name string) {
	c.t.Helper()
	cfg := c.cfg[name]
	cfg.HTTPListener, cfg.RaftListener = listen(c.t, cfg.HTTPAddrs[name]), listen(c.t, cfg.RaftAddrs[name])
	n, err := Start(cfg)
	if err != nil {
		c.t.Fatalf("restart %s: %v", name, err)
	}
	c.nodes[name] = n
}

func (c *testCluster) stop(name string) {
	c.t.Helper()
	if err := c.nodes[name].Close(); err != nil {
		c.t.Fatalf("stop %s: %v", name, err)
	}
	c.nodes[name] = nil
}

// waitLeader waits until every running node agrees on one running leader
// that is not in exclude, and returns it.
func (c *testCluster) waitLeader(exclude map[string]bool) string {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		leader, agreed := "", true
		for _, name := range c.names {
			n := c.nodes[name]
			if n == nil {
				continue
			}
			l := n.Leader()
			if l == "" || (leader != "" && l != leader) {
				agreed = false
				break
			}
			leader = l
		}
		if agreed && leader != "" && c.nodes[leader] != nil && !exclude[leader] {
			return leader
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no agreed leader within 10s")
	return ""
}

// follower returns a running node that is not leader.
func (c *testCluster) follower(leader string) string {
	for _, name := range c.names {
		if name != leader && c.nodes[name] != nil {
			return name
		}
	}
	c.t.Fatalf("no running follower")
	return ""
}

func (c *testCluster) url(node, path string) string {
	return "http://" + c.cfg[node].HTTPAddrs[node] + path
}

var testClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}

// do sends a request to node and returns the status and body.
func (c *testCluster) do(method, node, path, body string) (int, string) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.url(node, path), rd)
	if err != nil {
		c.t.Fatalf("request: %v", err)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s on %s: %v", method, path, node, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// status sends a request and returns its status, or -1 if it failed;
// safe to call from any goroutine.
func (c *testCluster) status(method, node, path, body string) int {
	req, err := http.NewRequestWithContext(context.Background(), method, c.url(node, path), bytes.NewBufferString(body))
	if err != nil {
		return -1
	}
	resp, err := testClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func (c *testCluster) put(node, key, value string) int {
	c.t.Helper()
	st, _ := c.do(http.MethodPut, node, "/kv/"+key, `{"value":`+value+`}`)
	return st
}

func (c *testCluster) get(node, key string) (int, string) {
	c.t.Helper()
	st, body := c.do(http.MethodGet, node, "/kv/"+key, "")
	if st != http.StatusOK {
		return st, ""
	}
	var v struct{ Value json.RawMessage }
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		c.t.Fatalf("GET %s on %s: body %q: %v", key, node, body, err)
	}
	return st, string(v.Value)
}

func (c *testCluster) cas(node, key, from, to string) int {
	c.t.Helper()
	st, _ := c.do(http.MethodPost, node, "/kv/"+key+"/cas", `{"from":`+from+`,"to":`+to+`}`)
	return st
}

// mustPut writes key=value, retrying a few times on 5xx answers (a
// leadership change on a loaded machine): writing the same value again
// leaves the same state.
func (c *testCluster) mustPut(node, key, value string) {
	c.t.Helper()
	st := 0
	for try := 0; try < 4; try++ {
		if st = c.put(node, key, value); st < 500 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st != http.StatusOK && st != http.StatusNoContent {
		c.t.Fatalf("PUT %s=%s via %s: status %d", key, value, node, st)
	}
}

// mustGet reads key and wants value, retrying a few times on 5xx answers.
func (c *testCluster) mustGet(node, key, want string) {
	c.t.Helper()
	var st int
	var got string
	for try := 0; try < 4; try++ {
		if st, got = c.get(node, key); st < 500 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st != http.StatusOK || !valuesEqual(json.RawMessage(got), json.RawMessage(want)) {
		c.t.Fatalf("GET %s via %s = %d %s, want 200 %s", key, node, st, got, want)
	}
}
