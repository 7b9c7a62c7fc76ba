package history

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

// genHistory returns a valid history of n lines (n even) in the shape of a
// register test: clients with one op at a time on a few keys, some
// completing info (the client then continues under a new process), a
// nemesis now and then. An op starts only if there is room left for its
// completion, so that the history ends with nothing in flight.
func genHistory(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	var buf bytes.Buffer
	w := NewWriter(&buf)
	const clients = 8
	procs := make([]int, clients)
	inflight := make([]*Op, clients+1) // the last is the nemesis's
	for i := range procs {
		procs[i] = i
	}
	next, pending := clients, 0
	var now int64
	for lines := 0; lines < n; {
		now += 1 + rng.Int64N(10_000)
		c := rng.IntN(clients)
		if rng.IntN(50) == 0 {
			c = clients
		}
		op := inflight[c]
		if op == nil && lines+pending+2 > n {
			continue
		}
		switch {
		case op == nil && c == clients:
			op = &Op{Type: Invoke, Process: NemesisProcess, F: "kill", Value: MustValue([]string{"n1"})}
		case op == nil:
			op = &Op{Type: Invoke, Process: Client(procs[c]), Key: fmt.Sprintf("k%d", rng.IntN(10))}
			switch x := rng.IntN(10); {
			case x < 5:
				op.F = FRead
			case x < 8:
				op.F, op.Value = FWrite, MustValue(rng.IntN(5))
			default:
				op.F, op.Value = FCAS, MustValue([2]int{rng.IntN(5), rng.IntN(5)})
			}
		case c == clients:
			done := *op
			done.Type, op = Info, &done
		default:
			done := *op
			done.Node = fmt.Sprintf("n%d", 1+rng.IntN(5))
			switch x := rng.IntN(100); {
			case x < 3:
				done.Type, done.Error = Info, "timeout"
				procs[c] = next
				next++
			case x < 10:
				done.Type, done.Error = Fail, ErrUnavailable
			default:
				done.Type = OK
				if done.F == FRead {
					done.Value = MustValue(rng.IntN(5))
				}
			}
			if rng.IntN(2) == 0 {
				done.Key = "" // a completion may leave its key out
			}
			op = &done
		}
		op.Time = now
		w.Write(op)
		lines++
		if op.Type == Invoke {
			inflight[c] = op
			pending++
		} else {
			inflight[c] = nil
			pending--
		}
	}
	return buf.Bytes()
}

// readSequential reads a whole history with Reader.Next.
func readSequential(in []byte, name string, exact bool) ([]Op, error) {
	r := NewReader(bytes.NewReader(in), name)
	r.dec = &lineDecoder{exact: exact}
	var ops []Op
	for {
		op, err := r.Next()
		if err == io.EOF {
			return ops, nil
		}
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
}

// BenchmarkRead reads a history of 200,000 lines in memory with Read and
// with Reader.Next (with the fast decode and with the exact one only). It
// reports the CPU time of a read besides its wall time: the machine may be
// busy with other work.
func BenchmarkRead(b *testing.B) {
	in := genHistory(200_000, 1)
	for _, bm := range []struct {
		name string
		read func() ([]Op, error)
	}{
		{"parallel", func() ([]Op, error) { return Read(bytes.NewReader(in), "b") }},
		{"sequential", func() ([]Op, error) { return readSequential(in, "b", false) }},
		{"sequential-exact", func() ([]Op, error) { return readSequential(in, "b", true) }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			c0 := cpuTime()
			for b.Loop() {
				if _, err := bm.read(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((cpuTime()-c0).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// way is one way of reading a whole history; every way must read a history
// exactly as Reader.Next with the exact decode does.
type way struct {
	name string
	read func(in []byte, name string) ([]Op, error)
}

func pipelineWay(name string, capHint int, p pipeline) way {
	return way{name, func(in []byte, name string) ([]Op, error) {
		return readAll(bytes.NewReader(in), name, capHint, p, nil)
	}}
}

var ways = []way{
	{"Reader.Next", func(in []byte, name string) ([]Op, error) { return readSequential(in, name, false) }},
	{"Read", func(in []byte, name string) ([]Op, error) { return Read(bytes.NewReader(in), name) }},
	pipelineWay("1 line a batch, 3 workers", 0, pipeline{batchLines: 1, batchBytes: 1 << 20, workers: 3}),
	pipelineWay("2 lines a batch, exact, room for 5 ops", 5, pipeline{batchLines: 2, batchBytes: 1 << 20, workers: 2, exact: true}),
	pipelineWay("3 lines a batch, 1 worker, room for 20 ops", 20, pipeline{batchLines: 3, batchBytes: 1 << 20, workers: 1}),
	pipelineWay("100 bytes a batch, room for 64 ops", 64, pipeline{batchLines: 1000, batchBytes: 100, workers: 2}),
}

// sameRead reports how a read differs from the reference read, or "".
func sameRead(wantOps []Op, wantErr error, ops []Op, err error) string {
	switch {
	case (wantErr == nil) != (err == nil):
		return fmt.Sprintf("error %v, want %v", err, wantErr)
	case err != nil && err.Error() != wantErr.Error():
		return fmt.Sprintf("error %q,\nwant %q", err, wantErr)
	case err != nil && fmt.Sprintf("%T", err) != fmt.Sprintf("%T", wantErr):
		return fmt.Sprintf("error of type %T, want %T", err, wantErr)
	case err != nil && ops != nil:
		return fmt.Sprintf("%d ops with the error", len(ops))
	case len(ops) != len(wantOps):
		return fmt.Sprintf("%d ops, want %d", len(ops), len(wantOps))
	}
	for i := range ops {
		if !reflect.DeepEqual(ops[i], wantOps[i]) {
			return fmt.Sprintf("op %d = %+v,\nwant %+v", i, ops[i], wantOps[i])
		}
	}
	return ""
}

// checkWays reads in every way and compares with the exact Reader.Next;
// it returns the reference error.
func checkWays(t *testing.T, in []byte) error {
	t.Helper()
	wantOps, wantErr := readSequential(in, "h", true)
	for _, w := range ways {
		ops, err := w.read(in, "h")
		if diff := sameRead(wantOps, wantErr, ops, err); diff != "" {
			t.Fatalf("%s: %s", w.name, diff)
		}
	}
	return wantErr
}

// untidy adds what a history may hold besides its ops: blank lines,
// whitespace-only lines, CRLF line ends.
func untidy(in []byte) []byte {
	lines := bytes.SplitAfter(in, []byte("\n"))
	var out []byte
	for i, l := range lines {
		switch i % 997 {
		case 10:
			out = append(out, "\n"...)
		case 500:
			out = append(out, " \t \r\n"...)
		}
		if i%3 == 0 && len(l) > 0 {
			l = append(bytes.TrimSuffix(l, []byte("\n")), "\r\n"...)
		}
		out = append(out, l...)
	}
	return out
}

func TestReadAgreesWithReader(t *testing.T) {
	in := untidy(genHistory(20_000, 7))
	if err := checkWays(t, in); err != nil {
		t.Fatalf("generated history: %v", err)
	}
	want, _ := readSequential(in, "h", true)
	if len(want) != 20_000 {
		t.Fatalf("%d ops, want 20000", len(want))
	}
	path := filepath.Join(t.TempDir(), "h")
	if err := os.WriteFile(path, in, 0o644); err != nil {
		t.Fatal(err)
	}
	ops, err := ReadFile(path)
	if diff := sameRead(want, nil, ops, err); diff != "" {
		t.Fatalf("ReadFile: %s", diff)
	}
}

// validPrefix returns n lines (blank ones among them) of a valid history
// at time 0 whose processes (100 to 107) are all idle at its end.
func validPrefix(n int) []byte {
	var b bytes.Buffer
	w := NewWriter(&b)
	for lines, k := 0, 0; lines < n; k++ {
		if k%500 == 499 || lines == n-1 {
			b.WriteString("\n")
			lines++
			continue
		}
		p := Client(100 + k%8)
		w.Write(&Op{Type: Invoke, Process: p, F: FWrite, Key: "p", Value: MustValue(k), Time: 0})
		w.Write(&Op{Type: OK, Process: p, F: FWrite, Time: 0})
		lines += 2
	}
	return b.Bytes()
}

// shiftLine adds n to the line numbers of an error message "h:LINE: ...",
// the one it starts with and those it refers to ("at line 2").
func shiftLine(msg string, n int) string {
	return lineNumber.ReplaceAllStringFunc(msg, func(s string) string {
		m := lineNumber.FindStringSubmatch(s)
		line, _ := strconv.Atoi(m[2])
		return m[1] + strconv.Itoa(line+n)
	})
}

var lineNumber = regexp.MustCompile(`(^h:|line )([0-9]+)`)

// Every malformed case of readerErrors, at a line of a later batch, is
// refused in every way with the same error, at its line.
func TestReadErrorsInLaterBatch(t *testing.T) {
	// Several batches: a batch ends at 2048 lines and at each read of
	// the reader's 64 KiB buffer.
	const prefixLines = 2*2048 + 1
	prefix := validPrefix(prefixLines)
	if _, err := readSequential(prefix, "h", true); err != nil {
		t.Fatalf("prefix: %v", err)
	}
	for _, tt := range readerErrors {
		t.Run(tt.name, func(t *testing.T) {
			in := append(append([]byte(nil), prefix...), tt.in...)
			err := checkWays(t, in)
			want := shiftLine(tt.want, prefixLines)
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("error %v, want prefix %q", err, want)
			}
			// What follows the malformed line does not matter.
			in = append(append(in, '\n'), prefix...)
			ops, err2 := Read(bytes.NewReader(in), "h")
			if diff := sameRead(nil, err, ops, err2); diff != "" {
				t.Fatalf("with lines after the malformed one: %s", diff)
			}
		})
	}
}

func TestReadLongLineInLaterBatch(t *testing.T) {
	prefix := validPrefix(5001)
	long := append([]byte(`{"type":"invoke","process":1,"f":"write","key":"`), bytes.Repeat([]byte("a"), MaxLineBytes+100_000)...)
	err := checkWays(t, append(append([]byte(nil), prefix...), long...))
	if err == nil || !strings.HasPrefix(err.Error(), "h:5002: line is longer than") {
		t.Fatalf("err = %v, want a line-too-long error at line 5002", err)
	}
	// An earlier error wins.
	in := append(append(append([]byte(nil), prefix[:1000]...), "{bad\n"...), prefix[1000:]...)
	err = checkWays(t, append(in, long...))
	if err == nil || !strings.HasPrefix(err.Error(), "h:") || strings.Contains(err.Error(), "longer") {
		t.Fatalf("err = %v, want the bad JSON before the long line", err)
	}
}

func TestReadErrorOfReaderInLaterBatch(t *testing.T) {
	prefix := validPrefix(5001)
	boom := errors.New("boom")
	for _, in := range [][]byte{prefix, append([]byte(`{"bad`+"\n"), prefix...)} {
		read := func() ([]Op, error) {
			return Read(io.MultiReader(bytes.NewReader(in), iotest.ErrReader(boom)), "h")
		}
		r := NewReader(io.MultiReader(bytes.NewReader(in), iotest.ErrReader(boom)), "h")
		var err1 error
		for err1 == nil {
			_, err1 = r.Next()
		}
		ops, err2 := read()
		if ops != nil || err2 == nil || err1.Error() != err2.Error() {
			t.Fatalf("Read: %d ops, error %v; Reader.Next: %v", len(ops), err2, err1)
		}
		if len(in) == len(prefix) && !errors.Is(err2, boom) {
			t.Fatalf("error %v does not wrap the reader's", err2)
		}
	}
}

// endless is a valid history that never ends, after a first line; it
// counts the bytes read.
type endless struct {
	first []byte
	n     int
	read  int
}

func (e *endless) Read(p []byte) (int, error) {
	var b bytes.Buffer
	for b.Len() < len(p) {
		if e.n == 0 && e.first != nil {
			b.Write(e.first)
		}
		fmt.Fprintf(&b, `{"type":"invoke","process":%d,"f":"read","key":"k","time":%d}`+"\n", e.n, e.n)
		e.n++
	}
	n := copy(p, b.Bytes())
	e.read += n
	return n, nil
}

// Read stops reading a few batches after the first malformed line and
// leaves no goroutine behind.
func TestReadStopsAtFirstError(t *testing.T) {
	before := runtime.NumGoroutine()
	src := &endless{first: []byte("{bad\n")}
	_, err := Read(src, "h")
	if err == nil || !strings.HasPrefix(err.Error(), "h:1: bad JSON") {
		t.Fatalf("err = %v, want bad JSON at line 1", err)
	}
	p := defaultPipeline()
	if limit := (2*p.workers+4)*p.batchBytes + 64<<10; src.read > limit {
		t.Errorf("read %d bytes after an error at line 1, want at most %d", src.read, limit)
	}
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i == 100 {
			t.Fatalf("%d goroutines after Read, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// FuzzReadAll reads arbitrary bytes in every way (whole-history reads with
// batches of a few lines, decoding with and without the fast path): all
// must return what Reader.Next with the exact decode returns.
func FuzzReadAll(f *testing.F) {
	f.Add([]byte(inv0 + `{"type":"ok","process":0,"f":"write","time":11}` + "\n\n" + inv0))
	f.Add([]byte(`{"type":"invoke","process":0,"f":"read","time":null,"time":3}` + "\n" +
		`{"type":"ok","process":0,"f":"read","time":3,"time":null}`))
	f.Add([]byte(`{"type":"\u0000absent","process":0,"f":"read","time":1}`))
	f.Add([]byte(`{"type":"invoke","process":0,"f":"read","time":-9223372036854775808}`))
	f.Add([]byte(`{"Type":"invoke","PROCESS":0,"F":"read","type":null,"time":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkWays(t, data)
	})
}

// BenchmarkDecode decodes the lines of a history, the fast way and the
// exact way; it reports the time of a line.
func BenchmarkDecode(b *testing.B) {
	lines := bytes.Split(bytes.TrimSpace(genHistory(20_000, 1)), []byte("\n"))
	for _, exact := range []bool{false, true} {
		b.Run(fmt.Sprintf("exact=%t", exact), func(b *testing.B) {
			d := &lineDecoder{exact: exact}
			var op Op
			for b.Loop() {
				for _, l := range lines {
					d.decode(l, &op)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/line")
		})
	}
}
