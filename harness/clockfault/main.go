package clockfault

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/jepsen-go/jepsen/harness/agent"
)

// DefaultSocket is where `clockfault serve` listens (inside the sidecar's
// own file system).
const DefaultSocket = "/run/jepsen-clockfault.sock"

// resyncEvery is how often a serving agent looks for new processes of the
// tree while a shift is in force.
const resyncEvery = time.Second

// request is one message to a serving agent.
type request struct {
	Op     string  `json:"op"` // set, strobe, status
	Shift  *Shift  `json:"shift,omitempty"`
	Strobe *Strobe `json:"strobe,omitempty"`
}

// response is a serving agent's answer to status; a failure is answered
// with an agent.Reply.
type response struct {
	Status *AgentStatus `json:"status,omitempty"`
}

// Main runs the clock agent's command line, for the hidden `jepsen
// clockfault` subcommand, in a sidecar that shares the node's PID
// namespace and has CAP_SYS_PTRACE:
//
//	clockfault serve  [--socket PATH] [--root PID]   run the agent until SIGTERM/SIGINT
//	clockfault set    [--socket PATH] [--monotonic] --offset OFFSET   shift the clocks by OFFSET (e.g. 20s, -1.5s)
//	clockfault reset  [--socket PATH]                 shift by 0
//	clockfault strobe [--socket PATH] --delta D [--period 10ms] --duration T
//
// set also takes the offset as its one argument (after -- if negative).
//
//	clockfault status [--socket PATH]                 print the state as JSON
//	clockfault check  [--root PID]                    probe that the root can be patched
//
// set, reset, strobe and status talk to the serving agent of the same
// container (waiting up to 5 s for it to listen); check works alone.
// Only status writes to stdout.
func Main(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("clockfault: missing command (serve, set, reset, strobe, status or check)")
	}
	cmd := args[0]
	fs := flag.NewFlagSet("clockfault "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	socket := fs.String("socket", DefaultSocket, "agent socket path")
	root := fs.Int("root", 1, "root of the process tree to shift")
	monotonic := fs.Bool("monotonic", false, "shift the monotonic clocks too")
	offset := fs.String("offset", "", "set: the offset (e.g. 20s, -1.5s)")
	delta := fs.Duration("delta", 0, "strobe: the second offset, relative to the current shift")
	period := fs.Duration("period", 10*time.Millisecond, "strobe: time between flips")
	duration := fs.Duration("duration", 0, "strobe: how long to strobe")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("clockfault %s: %w", cmd, err)
	}
	rest := fs.Args()
	wantArgs := func(n int) error {
		if len(rest) != n {
			return fmt.Errorf("clockfault %s: want %d argument(s), got %d", cmd, n, len(rest))
		}
		return nil
	}
	switch cmd {
	case "serve":
		if err := wantArgs(0); err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		return Serve(ctx, *socket, *root)
	case "check":
		if err := wantArgs(0); err != nil {
			return err
		}
		return Check(*root)
	case "set", "reset":
		var s Shift
		if cmd == "set" {
			if *offset == "" {
				if err := wantArgs(1); err != nil {
					return fmt.Errorf("%w (the offset, or --offset)", err)
				}
				*offset = rest[0]
			} else if err := wantArgs(0); err != nil {
				return err
			}
			d, err := time.ParseDuration(*offset)
			if err != nil {
				return fmt.Errorf("clockfault set: offset %q: %w", *offset, err)
			}
			s = Shift{Offset: int64(d), Monotonic: *monotonic}
		} else if err := wantArgs(0); err != nil {
			return err
		}
		return agent.Call("clockfault", "set", *socket, request{Op: "set", Shift: &s}, nil)
	case "strobe":
		if err := wantArgs(0); err != nil {
			return err
		}
		st := Strobe{Delta: *delta, Period: *period, Duration: *duration}
		if err := st.Validate(); err != nil {
			return fmt.Errorf("clockfault %w", err)
		}
		return agent.Call("clockfault", "strobe", *socket, request{Op: "strobe", Strobe: &st}, nil)
	case "status":
		if err := wantArgs(0); err != nil {
			return err
		}
		var resp response
		if err := agent.Call("clockfault", "status", *socket, request{Op: "status"}, &resp); err != nil {
			return err
		}
		b, _ := json.Marshal(resp.Status)
		_, err := fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	return fmt.Errorf("clockfault: unknown command %q (want serve, set, reset, strobe, status or check)", cmd)
}

// Check reports whether the clocks of process root can be shifted from
// here: the architecture is supported, ptrace is allowed, and its vDSO
// has clock_gettime. It changes nothing.
func Check(root int) error {
	if err := Supported(); err != nil {
		return fmt.Errorf("clockfault check: %w", err)
	}
	if err := Probe(root); err != nil {
		return fmt.Errorf("clockfault check on %s/%s: %w", runtime.GOOS, runtime.GOARCH, err)
	}
	return nil
}

// Serve runs an agent for the process tree at root, taking requests on the
// unix socket, until ctx ends. Every second while a shift is in force it
// reaches processes that appeared since. On exit it resets the shift to 0.
func Serve(ctx context.Context, socket string, root int) (err error) {
	a := NewAgent(root)
	defer func() {
		if rerr := a.Set(Shift{}); rerr != nil && err == nil {
			err = fmt.Errorf("clockfault serve: reset on exit: %w", rerr)
		}
		a.Close()
	}()
	// cancel stops the resync loop also if the socket cannot be served.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var reqMu sync.Mutex // one request at a time
	go func() {
		t := time.NewTicker(resyncEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				reqMu.Lock()
				if !a.Shift().IsZero() {
					_ = a.Resync()
				}
				reqMu.Unlock()
			}
		}
	}()
	if err := agent.ServeSocket(ctx, socket, &reqMu, func(req request) (any, error) { return handle(a, req) }); err != nil {
		return fmt.Errorf("clockfault serve: %w", err)
	}
	return nil
}

// handle carries out one request; the request lock is held.
func handle(a *Agent, req request) (any, error) {
	switch req.Op {
	case "set":
		if req.Shift == nil {
			return nil, errors.New("set without a shift")
		}
		return nil, a.Set(*req.Shift)
	case "strobe":
		if req.Strobe == nil {
			return nil, errors.New("strobe without parameters")
		}
		return nil, a.Strobe(*req.Strobe)
	case "status":
		st := a.Status()
		return response{Status: &st}, nil
	}
	return nil, fmt.Errorf("unknown op %q", req.Op)
}
