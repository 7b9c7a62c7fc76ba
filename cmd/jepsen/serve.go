package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/jepsen-go/jepsen/reports"
)

func newServeCmd() *cobra.Command {
	var store, addr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Browse the store: every run, its verdict, report and files",
		Long: `Serve a small web UI over the store directory: the runs, newest first,
with their verdict, target, workload, faults, seed and duration, and links to
each report and file.

Only files inside the store are served: paths that climb out of it and
symbolic links that lead out of it are refused. It listens on loopback by
default; stop it with Ctrl-C.`,
		Example: `  jepsen serve
  jepsen serve --store /tmp/store --addr 127.0.0.1:9000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := reports.NewBrowser(store)
			if err != nil {
				return withCode(exitTrouble, err)
			}
			defer b.Close()
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return withCode(exitTrouble, fmt.Errorf("--addr %s: %w", addr, err))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			}()
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", servingLine(store, ln.Addr().String()))
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return withCode(exitTrouble, fmt.Errorf("serve: %w", err))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&store, "store", "store", "the store directory that jepsen run writes")
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "HOST:PORT to listen on")
	return cmd
}

// servingLine is the line serve prints when it starts: "Serving store/
// (3 runs) at http://127.0.0.1:8080/ (Ctrl-C to stop)".
func servingLine(store, addr string) string {
	dir := strings.TrimSuffix(store, string(filepath.Separator)) + string(filepath.Separator)
	runs := ""
	if rs, err := reports.ListRuns(os.DirFS(store)); err == nil {
		switch len(rs) {
		case 0:
			runs = " (no runs yet)"
		case 1:
			runs = " (1 run)"
		default:
			runs = fmt.Sprintf(" (%d runs)", len(rs))
		}
	}
	return fmt.Sprintf("Serving %s%s at http://%s/ (Ctrl-C to stop)", dir, runs, addr)
}
