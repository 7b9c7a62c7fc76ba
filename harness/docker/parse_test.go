package docker

import (
	"strings"
	"testing"
	"time"
)

// TestReadBuildStream covers the daemon's JSON build output.
func TestReadBuildStream(t *testing.T) {
	for _, tc := range []struct {
		name, in, out, err string
	}{
		{"ok", `{"stream":"Step 1/2 : FROM scratch\n"}{"stream":" ---> \n"}`, "Step 1/2 : FROM scratch\n ---> \n", ""},
		{"error", `{"stream":"Step 1/1 : COPY x /\n"}{"errorDetail":{"message":"COPY failed"},"error":"COPY failed"}`, "Step 1/1 : COPY x /\n", "COPY failed"},
		{"detail only", `{"errorDetail":{"message":"boom"}}`, "", "boom"},
		{"garbage", `{"stream":"a"}not json`, "a", "read build output"},
		{"empty", ``, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := readBuildStream(strings.NewReader(tc.in))
			if out != tc.out {
				t.Errorf("out = %q, want %q", out, tc.out)
			}
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

// FuzzReadBuildStream checks the build output reader never panics.
func FuzzReadBuildStream(f *testing.F) {
	f.Add(`{"stream":"Step 1/2 : FROM scratch\n"}{"error":"x"}`)
	f.Add(`{"errorDetail":null,"aux":{"ID":"sha256:1"}}`)
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = readBuildStream(strings.NewReader(s))
	})
}

// TestNodeLogAdd covers timestamped log lines: stream order kept,
// de-duplication of an earlier lifetime's lines, and the tail kept for
// error messages.
func TestNodeLogAdd(t *testing.T) {
	l := &nodeLog{}
	// First lifetime: a stderr line stamped before a stdout line may come
	// after it in the stream; both are kept, in stream order.
	for _, line := range []string{
		"2024-05-01T10:00:00.000000001Z first\n",
		"2024-05-01T10:00:00.000000003Z third\n",
		"2024-05-01T10:00:00.000000002Z second, on stderr\n",
		"no timestamp at all",
	} {
		l.add(line, time.Time{})
	}
	// Second lifetime: the follower starts after the latest timestamp; a
	// replay of the boundary line is dropped.
	threshold := l.last
	for _, line := range []string{
		"2024-05-01T10:00:00.000000003Z third\n",
		"2024-05-01T10:00:01Z fourth\n",
	} {
		l.add(line, threshold)
	}
	want := []string{"first", "third", "second, on stderr", "no timestamp at all", "fourth"}
	if got := l.tail(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("tail = %q, want %q", got, want)
	}
	for i := 0; i < 50; i++ {
		l.add("x\n", threshold)
	}
	if n := len(l.tail()); n != tailLines {
		t.Errorf("tail has %d lines, want %d", n, tailLines)
	}
}

// FuzzNodeLogAdd checks that any daemon line is accepted without panic.
func FuzzNodeLogAdd(f *testing.F) {
	f.Add("2024-05-01T10:00:00.000000001Z hello\n")
	f.Add(" \n")
	f.Fuzz(func(t *testing.T, s string) {
		l := &nodeLog{}
		l.add(s, time.Time{})
		l.add(s, l.last)
		if len(l.tail()) > tailLines {
			t.Fatal("tail too long")
		}
	})
}
