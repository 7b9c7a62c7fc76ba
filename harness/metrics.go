package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jepsen-go/jepsen/history"
)

// metrics serves Prometheus /metrics during a run: ops by f and type, op
// latency by f, active faults, nodes up, and the Go runtime's own metrics.
type metrics struct {
	addr    string // where /metrics is served
	srv     *http.Server
	ops     *prometheus.CounterVec
	latency *prometheus.HistogramVec
	faults  prometheus.Gauge
	nodesUp prometheus.Gauge

	mu      sync.Mutex
	invoked history.Pairing[int64] // invocation time of each process's op in flight
}

// metricsListenAddr binds addr, on loopback unless a host is given: ":9464"
// means 127.0.0.1:9464; "0.0.0.0:9464" is an explicit request to serve
// every interface.
func metricsListenAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--metrics-addr %q: want HOST:PORT, e.g. 127.0.0.1:9464", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

func startMetrics(addr string) (*metrics, error) {
	addr, err := metricsListenAddr(addr)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	m := &metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jepsen_ops_total", Help: "Client operations completed, by f and type (ok, fail, info).",
		}, []string{"f", "type"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "jepsen_op_duration_seconds", Help: "Latency of client operations, by f.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"f"}),
		faults:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "jepsen_active_faults", Help: "Faults currently in effect."}),
		nodesUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "jepsen_nodes_up", Help: "Nodes neither killed nor paused."}),
	}
	reg.MustRegister(m.ops, m.latency, m.faults, m.nodesUp,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	m.addr = ln.Addr().String()
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the run goes on without metrics
		}
	}()
	return m, nil
}

// observe counts a recorded op.
func (m *metrics) observe(op *history.Op) {
	if !op.IsClient() {
		return
	}
	m.mu.Lock()
	if op.Type == history.Invoke {
		m.invoked.Invoke(op.Process, op.F, op.Time)
		m.mu.Unlock()
		return
	}
	inv, ok := m.invoked.Complete(op.Process, op.F)
	m.mu.Unlock()
	m.ops.WithLabelValues(op.F, string(op.Type)).Inc()
	if ok {
		m.latency.WithLabelValues(op.F).Observe(float64(op.Time-inv.V) / 1e9)
	}
}

func (m *metrics) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m.srv.Shutdown(ctx)
}
