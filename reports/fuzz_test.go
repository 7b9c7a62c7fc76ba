package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jepsen-go/jepsen/checkers"
	"github.com/jepsen-go/jepsen/history"
)

func FuzzParseLogTime(f *testing.F) {
	f.Add("2026-11-21T14:16:57.883Z [INFO] x")
	f.Fuzz(func(t *testing.T, line string) {
		ts, ok := parseLogTime(line)
		if ok && (ts.Year() < 0 || ts.Year() > 9999) {
			t.Fatalf("parseLogTime(%q) = %v", line, ts)
		}
	})
}

func FuzzParseMeta(f *testing.F) {
	f.Add([]byte(`{"run_id":"x","config":{"nodes":3,"time_limit":1000},"start":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMeta(b, "test.json")
		if err != nil {
			return
		}
		_ = m.Duration()
		if len(m.NodeNames()) > 1000 {
			t.Fatal("too many node names")
		}
	})
}

// FuzzNemesisValues feeds arbitrary nemesis values through the fault and
// node-state analysis and the plots: none may panic.
func FuzzNemesisValues(f *testing.F) {
	f.Add("start-partition", []byte(`{"n1":["n2"],"n2":["n1"]}`), "stop-partition", []byte(`null`))
	f.Add("kill", []byte(`["n1","n3"]`), "start", []byte(`["n1"]`))
	f.Add("start-packet", []byte(`{"nodes":["n2"],"delay":"10ms","loss":5}`), "stop-packet", []byte(`{}`))
	f.Add("bump-clock", []byte(`{"n1":"-12.3s","n2":"1.5s"}`), "reset-clock", []byte(`["n1","n2"]`))
	f.Add("start", []byte(`["isolated",{"n1":["n2","n3"]}]`), "stop", []byte(`"fully connected"`)) // Jepsen's generic nemesis
	f.Add("power-loss", []byte(`{"kind":"power-loss","nodes":["n1","n2"]}`), "start", []byte(`["n1"]`))
	f.Add("corrupt", []byte(`{"kind":"corrupt","nodes":["n2"],"corruption":{"file":"raft.db","offset":0,"kind":"truncate","length":9}}`), "kill", []byte(`["n2"]`))
	f.Add("disk-full", []byte(`{"kind":"disk-full","nodes":["n1"]}`), "stop-disk-full", []byte(`null`)) // a kind added later
	f.Add("strobe-clock", []byte(`{"nodes":["n2"],"delta":"28.9s","period":"10ms","duration":"10s"}`), "bump-clock", []byte(`{"n2":"0s"}`))
	f.Fuzz(func(t *testing.T, f1 string, v1 []byte, f2 string, v2 []byte) {
		if !json.Valid(v1) || !json.Valid(v2) {
			return
		}
		ops := []history.Op{
			{Type: history.Invoke, Process: history.NemesisProcess, F: f1, Value: v1, Time: 1},
			{Type: history.Info, Process: history.NemesisProcess, F: f1, Value: v1, Time: 2},
			{Type: history.Invoke, Process: history.Client(0), F: "read", Key: "k", Time: 3},
			{Type: history.OK, Process: history.Client(0), F: "read", Key: "k", Time: int64(5 * time.Millisecond)},
			{Type: history.Invoke, Process: history.NemesisProcess, F: f2, Value: v2, Time: int64(6 * time.Millisecond)},
			{Type: history.Info, Process: history.NemesisProcess, F: f2, Value: v2, Time: int64(7 * time.Millisecond)},
		}
		a, err := analyze(feed(ops), []string{"n1", "n2"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nodesPlot(a); err != nil {
			t.Fatal(err)
		}
		for _, at := range []int64{0, 4 * int64(time.Millisecond), a.end} {
			_ = a.clocksAt(at)
			_ = a.nodeStateAt("n1", at)
		}
		_ = nodeLegend(a)
	})
}

// FuzzReportEDN: any EDN history the reader accepts gets a report, with
// or without times, without a panic.
func FuzzReportEDN(f *testing.F) {
	for _, name := range []string{"knossos-vector.edn", "knossos-list-stale.edn", "jepsen-nemesis.edn", "independent.edn"} {
		b, err := os.ReadFile(filepath.Join("..", "history", "testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ops, info, err := history.ReadEDNInfo(bytes.NewReader(b), "f.edn")
		if err != nil || len(ops) == 0 {
			return
		}
		dir := t.TempDir()
		res := checkers.Check(context.Background(), ops, checkers.Options{Timeout: time.Second})
		if res.Error != "" {
			return
		}
		if _, err := WriteHistory(context.Background(), History{Out: dir, Path: filepath.Join(dir, "f.edn"), Ops: ops, Info: info}, res); err != nil {
			t.Fatal(err)
		}
	})
}
