package durafs

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// DefaultSocket is where `durafs serve` listens, in the helper.
const DefaultSocket = "/run/durafs/durafs.sock"

// Main runs the filesystem's command line, for the hidden `jepsen
// durafs` subcommand:
//
//	durafs serve  [--socket PATH] [--sync-backing] [--max-cached BYTES]
//	    run the server (in the helper container, with /dev/fuse and
//	    CAP_SYS_ADMIN) until SIGTERM/SIGINT
//	durafs exec   --socket PATH --node NAME --dir DIR [--timeout 60s] [--no-sync-relay] -- COMMAND...
//	    in a node's container: have DIR mounted, then exec COMMAND
//	durafs status [--socket PATH]   print what the server holds, as JSON
//	durafs probe  [--socket PATH]   ask the server whether it can mount
//
// Errors are returned, for the caller to print and exit 2.
func Main(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("durafs: missing command (serve, exec, status or probe)")
	}
	cmd := args[0]
	fs := flag.NewFlagSet("durafs "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	socket := fs.String("socket", DefaultSocket, "server socket path")
	node := fs.String("node", "", "exec: this node's name")
	dir := fs.String("dir", "", "exec: the data directory")
	timeout := fs.Duration("timeout", time.Minute, "exec: how long to wait for the mount")
	noSync := fs.Bool("no-sync-relay", false, "exec: do not pass sync and syncfs on (no seccomp filter)")
	syncBacking := fs.Bool("sync-backing", false, "serve: fdatasync the backing file on every durable write")
	maxCached := fs.Int64("max-cached", DefaultMaxCached, "serve: unsynced bytes held per mount before writing back")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("durafs %s: %w", cmd, err)
	}
	rest := fs.Args()
	switch cmd {
	case "serve":
		if len(rest) != 0 {
			return fmt.Errorf("durafs serve: unexpected arguments %q", rest)
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		l := log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds)
		return Serve(ctx, *socket, Options{SyncBacking: *syncBacking, MaxCached: *maxCached}, l.Printf)
	case "exec":
		if *node == "" || *dir == "" {
			return errors.New("durafs exec: --node and --dir are required")
		}
		return Exec(ExecConfig{Socket: *socket, Node: *node, Dir: *dir, Timeout: *timeout, Argv: rest, Env: os.Environ(),
			NoSyncRelay: *noSync})
	case "status", "probe":
		if len(rest) != 0 {
			return fmt.Errorf("durafs %s: unexpected arguments %q", cmd, rest)
		}
		rep, err := call(*socket, request{Op: cmd}, nil, 5*time.Second, 30*time.Second)
		if err != nil {
			return err
		}
		if cmd == "status" {
			b, _ := json.Marshal(rep.Status)
			_, err = fmt.Fprintf(stdout, "%s\n", b)
		}
		return err
	}
	return fmt.Errorf("durafs: unknown command %q (want serve, exec, status or probe)", cmd)
}
