package httpkvtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

// TestContract walks the http protocol against a Normal node.
func TestContract(t *testing.T) {
	s := NewServer(nil)
	defer s.Close()
	steps := []struct {
		method, path, body string
		status             int
		resp               string // "" = not checked
	}{
		{"GET", "/health", "", 200, "ok\n"},
		{"GET", "/kv/a", "", 404, ""},
		{"POST", "/kv/a/cas", `{"from":1,"to":2}`, 404, ""},
		{"PUT", "/kv/a", `{"value": 1}`, 204, ""},
		{"GET", "/kv/a", "", 200, `{"value":1}`},
		{"POST", "/kv/a/cas", `{"from":3,"to":4}`, 409, ""},
		{"POST", "/kv/a/cas", `{"from": 1, "to": [2, "x"]}`, 200, ""},
		{"GET", "/kv/a", "", 200, `{"value":[2,"x"]}`},
		{"PUT", "/kv/a%2Fb", `{"value":null}`, 204, ""},
		{"GET", "/kv/a%2Fb", "", 200, `{"value":null}`},
		{"GET", "/kv/a/b", "", 400, ""}, // a key is one path segment
		{"PUT", "/kv/a", `{"val":1}`, 400, ""},
		{"PUT", "/kv/a", `not json`, 400, ""},
		{"POST", "/kv/a/cas", `{"from":1}`, 400, ""},
		{"DELETE", "/kv/a", "", 405, ""},
		{"GET", "/kv/", "", 400, ""},
		{"GET", "/leader", "", 404, ""},
		{"GET", "/nope", "", 404, ""},
	}
	for _, st := range steps {
		status, body := do(t, st.method, s.URL+st.path, st.body)
		if status != st.status || st.resp != "" && body != st.resp {
			t.Errorf("%s %s %s: %d %q, want %d %q", st.method, st.path, st.body, status, body, st.status, st.resp)
		}
	}
	if got := s.Stats(); got.Applied != 3 {
		t.Errorf("Applied = %d, want 3 (two puts and a cas)", got.Applied)
	}
}

func TestModes(t *testing.T) {
	tests := []struct {
		mode   Mode
		status int // 0 = no answer
		body   string
		apply  bool // a PUT is applied
	}{
		{Normal, 204, "", true},
		{Garbage, 200, string(GarbageBody), true},
		{Unavailable, 503, "unavailable\n", false},
		{Reset, 0, "", false},
		{Hang, 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			s := NewServer(nil)
			defer s.Close()
			s.SetMode(tt.mode)
			if s.Mode() != tt.mode {
				t.Fatalf("Mode() = %v", s.Mode())
			}
			timeout := 10 * time.Second
			if tt.mode == Hang {
				timeout = 300 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "PUT", s.URL+"/kv/k", strings.NewReader(`{"value":1}`))
			resp, err := http.DefaultClient.Do(req)
			if tt.status == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got status %d, want no answer", resp.StatusCode)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.status || string(b) != tt.body {
					t.Errorf("got %d %q, want %d %q", resp.StatusCode, b, tt.status, tt.body)
				}
			}
			_, ok := s.Store().Get("k")
			if ok != tt.apply {
				t.Errorf("applied = %v, want %v", ok, tt.apply)
			}
			// Modes leave /health alone.
			if status, _ := do(t, "GET", s.URL+"/health", ""); status != 200 {
				t.Errorf("/health = %d in mode %v", status, tt.mode)
			}
		})
	}
}

// TestHugeStreams shows a Huge answer really is long: a reader that keeps
// reading gets far more than any cap, and the node stops when it leaves.
func TestHugeStreams(t *testing.T) {
	s := NewServer(nil)
	defer s.Close()
	s.Store().Put("k", json.RawMessage("1"))
	s.SetMode(Huge)
	resp, err := http.Get(s.URL + "/kv/k")
	if err != nil {
		t.Fatal(err)
	}
	prefix := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, prefix); err != nil || string(prefix) != `{"value":"` {
		t.Fatalf("prefix %q, %v", prefix, err)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 16<<20))
	if err != nil || n != 16<<20 {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	resp.Body.Close()
	if got := s.Stats().BodyBytes; got < 16<<20 {
		// BodyBytes is counted when the handler ends; give it a moment.
		deadline := time.Now().Add(2 * time.Second)
		for s.Stats().BodyBytes < 16<<20 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := s.Stats().BodyBytes; got < 16<<20 {
			t.Errorf("BodyBytes = %d after reading 16 MiB", got)
		}
	}
}

// TestCloseWithHangingRequests: Close returns even while requests hang.
func TestCloseWithHangingRequests(t *testing.T) {
	s := NewServer(nil)
	s.SetMode(Hang)
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(s.URL + "/kv/k")
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs while requests hang")
	}
	wg.Wait()
}

// TestClusterLinearizable: concurrent cas increments through every node of
// a cluster never lose an update, since all nodes share one store.
func TestClusterLinearizable(t *testing.T) {
	c := NewCluster([]string{"n1", "n2", "n3"})
	defer c.Close()
	if got := c.Nodes(); len(got) != 3 || got[0] != "n1" {
		t.Fatalf("Nodes() = %q", got)
	}
	if c.Endpoint("n9") != "" || c.Server("n9") != nil {
		t.Error("unknown node has an endpoint")
	}
	if status, body := do(t, "GET", c.Server("n2").URL+"/leader", ""); status != 200 || body != `{"leader":"n1"}` {
		t.Errorf("/leader = %d %q", status, body)
	}
	do(t, "PUT", "http://"+c.Endpoint("n1")+"/kv/ctr", `{"value":0}`)
	const workers, incs = 6, 30
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := "http://" + c.Endpoint(c.Nodes()[w%3]) + "/kv/ctr"
			for done := 0; done < incs; {
				resp, err := http.Get(url)
				if err != nil {
					errs <- err
					return
				}
				var v struct{ Value int }
				err = json.NewDecoder(resp.Body).Decode(&v)
				resp.Body.Close()
				if err != nil {
					errs <- err
					return
				}
				body, _ := json.Marshal(map[string]int{"from": v.Value, "to": v.Value + 1})
				resp, err = http.Post(url+"/cas", "application/json", bytes.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					done++
				case 409:
				default:
					errs <- errors.New(resp.Status)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	v, _ := c.Store.Get("ctr")
	if string(v) != "180" {
		t.Errorf("counter = %s after %d increments", v, workers*incs)
	}
}

func TestParseMode(t *testing.T) {
	for m := Normal; m <= Reset; m++ {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseMode("slow"); err == nil || !strings.Contains(err.Error(), "expected one of normal, garbage") {
		t.Errorf("ParseMode(slow) = %v", err)
	}
	if s := Mode(42).String(); s != "mode(42)" {
		t.Errorf("Mode(42) = %q", s)
	}
}

func TestReadyAndLeader(t *testing.T) {
	s := NewServer(nil)
	defer s.Close()
	s.SetReady(false)
	if status, _ := do(t, "GET", s.URL+"/health", ""); status != 503 {
		t.Errorf("unready /health = %d", status)
	}
	s.SetReady(true)
	if status, _ := do(t, "GET", s.URL+"/health", ""); status != 200 {
		t.Errorf("ready /health = %d", status)
	}
	s.SetLeader("n3")
	if status, body := do(t, "GET", s.URL+"/leader", ""); status != 200 || body != `{"leader":"n3"}` {
		t.Errorf("/leader = %d %q", status, body)
	}
	s.SetLeader("")
	if status, _ := do(t, "GET", s.URL+"/leader", ""); status != 404 {
		t.Errorf("/leader after SetLeader(\"\") = %d", status)
	}
}
