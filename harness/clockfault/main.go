package clockfault

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
	"runtime"
	"sync"
	"syscall"
	"time"
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

// response is a serving agent's answer.
type response struct {
	Error  string       `json:"error,omitempty"`
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
		_, err := call(*socket, request{Op: "set", Shift: &s})
		return err
	case "strobe":
		if err := wantArgs(0); err != nil {
			return err
		}
		st := Strobe{Delta: *delta, Period: *period, Duration: *duration}
		if err := st.Validate(); err != nil {
			return fmt.Errorf("clockfault %w", err)
		}
		_, err := call(*socket, request{Op: "strobe", Strobe: &st})
		return err
	case "status":
		if err := wantArgs(0); err != nil {
			return err
		}
		resp, err := call(*socket, request{Op: "status"})
		if err != nil {
			return err
		}
		b, _ := json.Marshal(resp.Status)
		_, err = fmt.Fprintf(stdout, "%s\n", b)
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
		return nil, fmt.Errorf("clockfault %s: no agent at %s (is `clockfault serve` running?): %w", req.Op, socket, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return nil, fmt.Errorf("clockfault %s: send: %w", req.Op, err)
	}
	var resp response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return nil, fmt.Errorf("clockfault %s: read answer: %w", req.Op, err)
	}
	if resp.Error != "" {
		return nil, fmt.Errorf("clockfault %s: %s", req.Op, resp.Error)
	}
	return &resp, nil
}

// Serve runs an agent for the process tree at root, taking requests on the
// unix socket, until ctx ends. Every second while a shift is in force it
// reaches processes that appeared since. On exit it resets the shift to 0.
func Serve(ctx context.Context, socket string, root int) (err error) {
	agent := NewAgent(root)
	defer func() {
		if rerr := agent.Set(Shift{}); rerr != nil && err == nil {
			err = fmt.Errorf("clockfault serve: reset on exit: %w", rerr)
		}
		agent.Close()
	}()
	if err := os.MkdirAll(filepath.Dir(socket), 0o755); err != nil {
		return fmt.Errorf("clockfault serve: %w", err)
	}
	_ = os.Remove(socket)
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return fmt.Errorf("clockfault serve: %w", err)
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
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
				if !agent.Shift().IsZero() {
					_ = agent.Resync()
				}
				reqMu.Unlock()
			}
		}
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				reqMu.Lock() // let a running request finish
				reqMu.Unlock()
				return nil
			}
			continue
		}
		go func() {
			reqMu.Lock()
			defer reqMu.Unlock()
			handle(agent, conn)
		}()
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
		case "set":
			if req.Shift == nil {
				err = errors.New("set without a shift")
			} else {
				err = agent.Set(*req.Shift)
			}
		case "strobe":
			if req.Strobe == nil {
				err = errors.New("strobe without parameters")
			} else {
				err = agent.Strobe(*req.Strobe)
			}
		case "status":
			st := agent.Status()
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
