package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// node is one kvstore process serving on 127.0.0.1:port.
type node struct {
	cmd  *exec.Cmd
	base string
}

// start runs the built binary as n1 of a one-node cluster and waits until
// it answers /health.
func start(t *testing.T, bin, dir string, port int) *node {
	t.Helper()
	cmd := exec.Command(bin, "--id", "n1", "--nodes", "n1", "--port", strconv.Itoa(port), "--data", dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{cmd: cmd, base: "http://127.0.0.1:" + strconv.Itoa(port)}
	t.Cleanup(func() { n.kill() })
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(n.base + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n
			}
		}
	}
	t.Fatal("kvstore never answered /health")
	return nil
}

// kill sends SIGKILL, as jepsen's kill fault does, and reaps the process.
func (n *node) kill() {
	if n.cmd.ProcessState == nil {
		n.cmd.Process.Signal(syscall.SIGKILL)
		n.cmd.Wait()
	}
}

// do sends one request and returns the status and body.
func (n *node) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, n.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestContract runs the real binary: the answers of docs/protocol.md, then
// a SIGKILL, a torn last log line, and a restart that keeps every
// acknowledged write.
func TestContract(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kvstore")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir, port := t.TempDir(), freePort(t)
	n := start(t, bin, dir, port)
	steps := []struct {
		method, path, body string
		status             int
		answer             string // "" means any
	}{
		{"GET", "/kv/a", "", 404, ""},
		{"POST", "/kv/a/cas", `{"from":1,"to":2}`, 404, ""},
		{"PUT", "/kv/a", `{"value":1}`, 200, ""},
		{"GET", "/kv/a", "", 200, `{"value":1}`},
		{"POST", "/kv/a/cas", `{"from":3,"to":2}`, 409, ""},
		{"POST", "/kv/a/cas", `{"from":1,"to":2}`, 200, ""},
		{"GET", "/kv/a", "", 200, `{"value":2}`},
		{"PUT", "/kv/b", `{"value":{"x":[1,2]}}`, 200, ""},
		{"PUT", "/kv/a", `{"val":1}`, 400, ""},
		{"PUT", "/kv/a", `not json`, 400, ""},
		{"POST", "/kv/a/cas", `{"from":2}`, 400, ""},
		{"GET", "/leader", "", 200, `{"leader":"n1"}`},
	}
	for _, s := range steps {
		status, body := n.do(t, s.method, s.path, s.body)
		if status != s.status || s.answer != "" && body != s.answer {
			t.Errorf("%s %s %s: %d %s, want %d %s", s.method, s.path, s.body, status, body, s.status, s.answer)
		}
	}

	// A crash in the middle of an append leaves a torn last line: it was
	// never acknowledged, so it is dropped, and later writes replay.
	n.kill()
	f, err := os.OpenFile(filepath.Join(dir, "kv.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"c":"7`)
	f.Close()
	n = start(t, bin, dir, port)
	for _, s := range []struct{ path, want string }{{"/kv/a", `{"value":2}`}, {"/kv/b", `{"value":{"x":[1,2]}}`}} {
		if status, body := n.do(t, "GET", s.path, ""); status != 200 || body != s.want {
			t.Errorf("after a restart, GET %s: %d %s, want 200 %s", s.path, status, body, s.want)
		}
	}
	if status, _ := n.do(t, "GET", "/kv/c", ""); status != 404 {
		t.Errorf("the torn write of c was replayed: GET /kv/c answered %d, want 404", status)
	}
	n.do(t, "PUT", "/kv/c", `{"value":8}`)
	n.kill()
	n = start(t, bin, dir, port)
	if status, body := n.do(t, "GET", "/kv/c", ""); status != 200 || body != `{"value":8}` {
		t.Errorf("a write after the torn line was lost: GET /kv/c: %d %s", status, body)
	}
}
