package netfault

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// DefaultSocket is where `netfault serve` listens for rule changes (inside
// the sidecar's own file system).
const DefaultSocket = "/run/jepsen-netfault.sock"

// request is one message to a serving agent.
type request struct {
	Op   string `json:"op"` // apply, clear, status
	Spec *Spec  `json:"spec,omitempty"`
}

// response is a serving agent's answer.
type response struct {
	Error  string  `json:"error,omitempty"`
	Status *Status `json:"status,omitempty"`
}

// Main runs the fault agent's command line, for the hidden `jepsen
// netfault` subcommand:
//
//	netfault serve [--socket PATH]        run the agent until SIGTERM/SIGINT
//	netfault apply [--socket PATH] JSON   replace the faults with the Spec JSON
//	netfault clear [--socket PATH]        remove every fault
//	netfault status [--socket PATH]       print the installed rules as JSON
//
// apply, clear and status talk to the serving agent of the same container
// (waiting up to 5 s for it to listen). status writes to stdout; nothing
// else does.
func Main(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("netfault: missing command (serve, apply, clear or status)")
	}
	fs := flag.NewFlagSet("netfault "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	socket := fs.String("socket", DefaultSocket, "agent socket path")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("netfault %s: %w", args[0], err)
	}
	rest := fs.Args()
	switch args[0] {
	case "serve":
		if len(rest) != 0 {
			return fmt.Errorf("netfault serve: unexpected argument %q", rest[0])
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		return Serve(ctx, *socket)
	case "apply":
		if len(rest) != 1 {
			return fmt.Errorf("netfault apply: want exactly one JSON spec argument, got %d", len(rest))
		}
		spec, err := ParseSpec([]byte(rest[0]))
		if err != nil {
			return fmt.Errorf("netfault apply: %w", err)
		}
		_, err = call(*socket, request{Op: "apply", Spec: &spec})
		return err
	case "clear", "status":
		if len(rest) != 0 {
			return fmt.Errorf("netfault %s: unexpected argument %q", args[0], rest[0])
		}
		resp, err := call(*socket, request{Op: args[0]})
		if err != nil || args[0] == "clear" {
			return err
		}
		b, _ := json.Marshal(resp.Status)
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	return fmt.Errorf("netfault: unknown command %q (want serve, apply, clear or status)", args[0])
}

// call sends req to the agent at socket and waits for its answer.
func call(socket string, req request) (*response, error) {
	deadline := time.Now().Add(5 * time.Second)
	var conn net.Conn
	var err error
	for {
		conn, err = net.DialTimeout("unix", socket, time.Second)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("netfault %s: no agent at %s (is `netfault serve` running?): %w", req.Op, socket, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return nil, fmt.Errorf("netfault %s: send: %w", req.Op, err)
	}
	var resp response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return nil, fmt.Errorf("netfault %s: read answer: %w", req.Op, err)
	}
	if resp.Error != "" {
		return nil, fmt.Errorf("netfault %s: %s", req.Op, resp.Error)
	}
	return &resp, nil
}

// Serve runs an agent for the current network namespace, taking requests
// on the unix socket, until ctx ends; then it removes every fault.
func Serve(ctx context.Context, socket string) (err error) {
	agent, err := NewAgent(AgentOptions{})
	if err != nil {
		return fmt.Errorf("netfault serve: %w", err)
	}
	defer func() {
		if cerr := agent.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("netfault serve: on exit: %w", cerr)
		}
	}()
	// A previous agent of this namespace may have died with rules in place.
	if err := agent.Clear(); err != nil {
		return fmt.Errorf("netfault serve: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(socket), 0o755); err != nil {
		return fmt.Errorf("netfault serve: %w", err)
	}
	_ = os.Remove(socket)
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return fmt.Errorf("netfault serve: %w", err)
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			continue
		}
		go handle(agent, conn)
	}
}

func handle(agent *Agent, conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var req request
	var resp response
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&req); err != nil {
		resp.Error = "bad request: " + err.Error()
	} else {
		var err error
		switch req.Op {
		case "apply":
			if req.Spec == nil {
				err = fmt.Errorf("apply without a spec")
			} else {
				err = agent.Apply(*req.Spec)
			}
		case "clear":
			err = agent.Clear()
		case "status":
			var st Status
			st, err = agent.Status()
			resp.Status = &st
		default:
			err = fmt.Errorf("unknown op %q", req.Op)
		}
		if err != nil {
			resp.Error = err.Error()
		}
	}
	_ = json.NewEncoder(conn).Encode(resp)
}
