package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type testReq struct {
	Op  string `json:"op"`
	Arg int    `json:"arg,omitempty"`
}

type testResp struct {
	Double int `json:"double"`
}

// serve runs ServeSocket on a fresh socket (in a directory it must
// create, over a stale file) until the test ends, and returns the socket.
func serve(t *testing.T, mu sync.Locker, handle func(testReq) (any, error)) string {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "run", "a.sock")
	if err := os.MkdirAll(filepath.Dir(socket), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(socket, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeSocket(ctx, socket, mu, handle) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ServeSocket: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("ServeSocket did not return after its context ended")
		}
	})
	// Call waits for the agent to listen.
	if err := Call("tf", "nothing", socket, testReq{Op: "nothing"}, nil); err != nil {
		t.Fatal(err)
	}
	return socket
}

func double(req testReq) (any, error) {
	switch req.Op {
	case "double":
		return testResp{Double: 2 * req.Arg}, nil
	case "nothing":
		return nil, nil
	}
	return nil, fmt.Errorf("unknown op %q", req.Op)
}

func TestCallServeSocket(t *testing.T) {
	socket := serve(t, nil, double)
	var resp testResp
	if err := Call("tf", "double", socket, testReq{Op: "double", Arg: 21}, &resp); err != nil || resp.Double != 42 {
		t.Errorf("double 21 = %+v, %v; want 42", resp, err)
	}
	if err := Call("tf", "nothing", socket, testReq{Op: "nothing"}, nil); err != nil {
		t.Errorf("nothing: %v", err)
	}
	err := Call("tf", "bogus", socket, testReq{Op: "bogus"}, &resp)
	if want := `tf bogus: unknown op "bogus"`; err == nil || err.Error() != want {
		t.Errorf("bogus: %v, want %s", err, want)
	}
}

// TestServeSocketWire checks the answers on the wire, including the one
// to a request that is not JSON.
func TestServeSocketWire(t *testing.T) {
	socket := serve(t, nil, double)
	for _, c := range []struct{ send, want string }{
		{`{"op":"double","arg":2}`, `{"double":4}`},
		{`{"op":"nothing"}`, `{}`},
		{`{"op":"x"}`, `{"error":"unknown op \"x\""}`},
		{`nonsense`, `{"error":"bad request: invalid character 'o' in literal null (expecting 'u')"}`},
	} {
		conn, err := net.Dial("unix", socket)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write([]byte(c.send + "\n"))
		var got json.RawMessage
		err = json.NewDecoder(conn).Decode(&got)
		conn.Close()
		if err != nil || string(got) != c.want {
			t.Errorf("%s: answer %s, %v; want %s", c.send, got, err, c.want)
		}
	}
}

func TestCallNoAgent(t *testing.T) {
	t.Parallel()
	socket := filepath.Join(t.TempDir(), "none.sock")
	t0 := time.Now()
	err := Call("tf", "double", socket, testReq{Op: "double"}, nil)
	took := time.Since(t0)
	want := "tf double: no agent at " + socket + " (is `tf serve` running?): "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want %s... wrapping ENOENT", err, want)
	}
	if took < 5*time.Second || took > 8*time.Second {
		t.Errorf("gave up after %v, want about 5s", took)
	}
}

// TestCallWaitsForAgent starts the agent after the first dial.
func TestCallWaitsForAgent(t *testing.T) {
	t.Parallel()
	socket := filepath.Join(t.TempDir(), "late.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = ServeSocket(ctx, socket, nil, double)
	}()
	var resp testResp
	if err := Call("tf", "double", socket, testReq{Op: "double", Arg: 1}, &resp); err != nil || resp.Double != 2 {
		t.Errorf("double 1 = %+v, %v", resp, err)
	}
}

// TestServeSocketSerial checks that with a lock requests run one at a
// time and a running one finishes before ServeSocket returns.
func TestServeSocketSerial(t *testing.T) {
	var mu sync.Mutex
	var running, most int
	var countMu sync.Mutex
	started := make(chan struct{}, 10)
	slow := func(req testReq) (any, error) {
		countMu.Lock()
		running++
		most = max(most, running)
		countMu.Unlock()
		started <- struct{}{}
		time.Sleep(50 * time.Millisecond)
		countMu.Lock()
		running--
		countMu.Unlock()
		return double(req)
	}
	socket := filepath.Join(t.TempDir(), "serial.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ServeSocket(ctx, socket, &mu, slow) }()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Call("tf", "double", socket, testReq{Op: "double", Arg: i}, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if most != 1 {
		t.Errorf("%d requests ran at once, want 1", most)
	}
	// One more request; end the server while it runs.
	callDone := make(chan error, 1)
	go func() { callDone <- Call("tf", "double", socket, testReq{Op: "double"}, nil) }()
	<-started // the four
	<-started
	<-started
	<-started
	<-started // the last
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeSocket: %v", err)
	}
	countMu.Lock()
	if running != 0 {
		t.Errorf("ServeSocket returned while a request ran")
	}
	countMu.Unlock()
	if err := <-callDone; err != nil {
		t.Errorf("request running at shutdown: %v", err)
	}
}
