package netfault

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/jepsen-go/jepsen/harness/agent"
)

// DefaultSocket is where `netfault serve` listens for rule changes (inside
// the sidecar's own file system).
const DefaultSocket = "/run/jepsen-netfault.sock"

// request is one message to a serving agent.
type request struct {
	Op   string `json:"op"` // apply, clear, status
	Spec *Spec  `json:"spec,omitempty"`
}

// response is a serving agent's answer to status; a failure is answered
// with an agent.Reply.
type response struct {
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
		return agent.Call("netfault", "apply", *socket, request{Op: "apply", Spec: &spec}, nil)
	case "clear", "status":
		if len(rest) != 0 {
			return fmt.Errorf("netfault %s: unexpected argument %q", args[0], rest[0])
		}
		var resp response
		err := agent.Call("netfault", args[0], *socket, request{Op: args[0]}, &resp)
		if err != nil || args[0] == "clear" {
			return err
		}
		b, _ := json.Marshal(resp.Status)
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	return fmt.Errorf("netfault: unknown command %q (want serve, apply, clear or status)", args[0])
}

// Serve runs an agent for the current network namespace, taking requests
// on the unix socket, until ctx ends; then it removes every fault.
func Serve(ctx context.Context, socket string) (err error) {
	a, err := NewAgent(AgentOptions{})
	if err != nil {
		return fmt.Errorf("netfault serve: %w", err)
	}
	defer func() {
		if cerr := a.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("netfault serve: on exit: %w", cerr)
		}
	}()
	// A previous agent of this namespace may have died with rules in place.
	if err := a.Clear(); err != nil {
		return fmt.Errorf("netfault serve: %w", err)
	}
	if err := agent.ServeSocket(ctx, socket, nil, func(req request) (any, error) { return handle(a, req) }); err != nil {
		return fmt.Errorf("netfault serve: %w", err)
	}
	return nil
}

// handle carries out one request.
func handle(a *Agent, req request) (any, error) {
	switch req.Op {
	case "apply":
		if req.Spec == nil {
			return nil, fmt.Errorf("apply without a spec")
		}
		return nil, a.Apply(*req.Spec)
	case "clear":
		return nil, a.Clear()
	case "status":
		st, err := a.Status()
		return response{Status: &st}, err
	}
	return nil, fmt.Errorf("unknown op %q", req.Op)
}
