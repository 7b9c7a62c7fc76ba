package httpkv

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jepsen-go/jepsen/targets"
)

// The http protocol: the store answers the HTTP contract of
// docs/protocol.md. It takes no options.
func init() {
	targets.Register(targets.Protocol{
		Name: "http",
		Dial: func(cfg targets.DialConfig) (targets.Conn, error) {
			return &conn{
				Client: New(cfg.Addr, Options{Node: cfg.Node, Concurrency: cfg.Concurrency}),
				node:   cfg.Node, port: cfg.Port, ready: cfg.Ready,
			}, nil
		},
	})
}

// conn is a Client as a targets.LeaderConn.
type conn struct {
	*Client
	node  string
	port  int
	ready string
}

func (c *conn) Close() error {
	c.Client.Close()
	return nil
}

// readyTimeout bounds one readiness probe.
const readyTimeout = time.Second

// Ready asks the ready path once. 200 is ready; 404, 405 and 501 say the
// path is not served at all, so waiting cannot help (targets.NeverReady);
// anything else is "not yet", with the answer in the error.
func (c *conn) Ready(ctx context.Context) error {
	path := c.ready
	if path == "" {
		path = targets.DefaultReady
	}
	if !strings.HasPrefix(path, "/") {
		return targets.NeverReady(fmt.Errorf("ready path %q must start with /", path))
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	status, err := c.get(ctx, path, 1<<10, nil)
	switch {
	case err != nil && !strings.HasPrefix(err.msg, "timeout") && !strings.HasPrefix(err.msg, "canceled"):
		// Refused, reset or closed before any answer: Docker's port
		// proxy accepts, then drops the connection (reset, or "server
		// closed idle connection" on a reused one) when nothing listens
		// inside the container.
		return fmt.Errorf("nothing answers on port %d (jepsen.yaml `port`) inside %s: %s", c.port, c.node, err.msg)
	case err != nil:
		return fmt.Errorf("GET %s on %s: %s", path, c.node, err.msg)
	case status == http.StatusOK:
		return nil
	case status == http.StatusNotFound || status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented:
		return targets.NeverReady(fmt.Errorf("GET %s on %s answered %d %s: the ready path (jepsen.yaml `ready`, default /health) must answer 200 once the node serves clients; serve it, or point `ready` at a path that does",
			path, c.node, status, http.StatusText(status)))
	}
	return fmt.Errorf("GET %s on %s answered %d %s (waiting for 200)", path, c.node, status, http.StatusText(status))
}
