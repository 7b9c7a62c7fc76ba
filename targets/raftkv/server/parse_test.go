package server

import (
	"encoding/json"
	"errors"
	"flag"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    Config // ID, Nodes, Port, RaftPort, DataDir, Bug compared
		wantErr string
	}{
		{
			name: "flags",
			args: []string{"--id", "n2", "--nodes", "n1,n2,n3", "--port", "9000", "--data", "/d"},
			want: Config{ID: "n2", Nodes: []string{"n1", "n2", "n3"}, Port: 9000, DataDir: "/d"},
		},
		{
			name: "env fallback",
			env:  map[string]string{"JEPSEN_NODE": "n1", "JEPSEN_NODES": "n1, n2", "JEPSEN_PORT": "8080", "JEPSEN_DATA_DIR": "/data", "RAFTKV_BUG": "racy-cas"},
			want: Config{ID: "n1", Nodes: []string{"n1", "n2"}, Port: 8080, DataDir: "/data", Bug: BugRacyCAS},
		},
		{
			name: "flags win over env",
			args: []string{"--id", "n3", "--bug", "none", "--raft-port", "7100"},
			env:  map[string]string{"JEPSEN_NODE": "n1", "JEPSEN_NODES": "n1,n2,n3", "JEPSEN_DATA_DIR": "/data", "RAFTKV_BUG": "early-ack"},
			want: Config{ID: "n3", Nodes: []string{"n1", "n2", "n3"}, RaftPort: 7100, DataDir: "/data"},
		},
		{name: "unknown bug", args: []string{"--id", "n1", "--nodes", "n1", "--data", "/d", "--bug", "typo"}, wantErr: "valid names are none, stale-read, early-ack, racy-cas, no-fsync"},
		{name: "unknown bug from env", args: []string{"--id", "n1", "--nodes", "n1", "--data", "/d"}, env: map[string]string{"RAFTKV_BUG": "x"}, wantErr: `unknown bug "x"`},
		{name: "id not in nodes", args: []string{"--id", "n9", "--nodes", "n1,n2", "--data", "/d"}, wantErr: `node id "n9" is not in the node list n1,n2`},
		{name: "no id", args: []string{"--nodes", "n1", "--data", "/d"}, wantErr: "node id is empty"},
		{name: "no nodes", args: []string{"--id", "n1", "--data", "/d"}, wantErr: "node list is empty"},
		{name: "duplicate node", args: []string{"--id", "n1", "--nodes", "n1,n1", "--data", "/d"}, wantErr: `node "n1" appears twice`},
		{name: "bad node name", args: []string{"--id", "n1", "--nodes", "n1,a:b", "--data", "/d"}, wantErr: "not a plain host name"},
		{name: "no data", args: []string{"--id", "n1", "--nodes", "n1"}, wantErr: "data directory is empty"},
		{name: "port not a number", args: []string{"--id", "n1", "--nodes", "n1", "--data", "/d", "--port", "http"}, wantErr: `--port "http": want a port number`},
		{name: "port out of range", args: []string{"--id", "n1", "--nodes", "n1", "--data", "/d", "--raft-port", "70000"}, wantErr: `--raft-port "70000"`},
		{name: "unknown flag", args: []string{"--frobnicate"}, wantErr: "flag provided but not defined: -frobnicate"},
		{name: "stray argument", args: []string{"--id", "n1", "extra"}, wantErr: `unexpected argument "extra"`},
		{name: "bad log level", args: []string{"--id", "n1", "--nodes", "n1", "--data", "/d", "--log-level", "loud"}, wantErr: `--log-level "loud"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := parseArgs(tc.args, envOf(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %q is more than one line", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got.ID != tc.want.ID || !reflect.DeepEqual(got.Nodes, tc.want.Nodes) || got.Port != tc.want.Port ||
				got.RaftPort != tc.want.RaftPort || got.DataDir != tc.want.DataDir || got.Bug != tc.want.Bug {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMainRejectsUnknownBug(t *testing.T) {
	err := Main([]string{"--id", "n1", "--nodes", "n1", "--data", t.TempDir()}, envOf(map[string]string{"RAFTKV_BUG": "lost-writes"}))
	if err == nil || !strings.Contains(err.Error(), "stale-read, early-ack, racy-cas, no-fsync") {
		t.Fatalf("Main with an unknown bug: %v, want an error listing the valid names", err)
	}
	if _, _, err := parseArgs([]string{"-h"}, nil); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
}

func TestParseBug(t *testing.T) {
	for _, b := range Bugs() {
		got, err := ParseBug(string(b))
		if err != nil || got != b {
			t.Fatalf("ParseBug(%q) = %q, %v", b, got, err)
		}
	}
	for _, s := range []string{"", "none", " none "} {
		if got, err := ParseBug(s); err != nil || got != BugNone {
			t.Fatalf("ParseBug(%q) = %q, %v; want no bug", s, got, err)
		}
	}
	if _, err := ParseBug("STALE-READ"); err == nil {
		t.Fatal("ParseBug is case-sensitive; STALE-READ must be rejected")
	}
}

func TestValuesEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{`1`, `1`, true},
		{`1`, `1.0`, true},
		{`1`, `1e0`, true},
		{`100`, `1E2`, true},
		{`0.1`, `1e-1`, true},
		{`1`, `2`, false},
		{`1`, `"1"`, false},
		{`9007199254740993`, `9007199254740992`, false}, // beyond float64 precision
		{`1e999`, `1e999`, true},
		{`1e999`, `2e999`, false},  // out of float64 range: unequal unless identical
		{`1e500`, `10e499`, false}, // huge exponents compare as float64 (out of range here)
		{`null`, `null`, true},
		{`null`, `0`, false},
		{`true`, `true`, true},
		{`true`, `false`, false},
		{`"a"`, `"a"`, true},
		{`"a"`, `"\u0061"`, true},
		{`[1,2]`, `[1, 2.0]`, true},
		{`[1,2]`, `[2,1]`, false},
		{`[1]`, `[1,1]`, false},
		{`{"a":1,"b":[true]}`, `{"b":[true], "a":1.00}`, true},
		{`{"a":1}`, `{"a":1,"b":2}`, false},
		{`{"a":1}`, `{"b":1}`, false},
		{`{}`, `[]`, false},
		{`not json`, `not json`, true}, // identical bytes short-circuit
		{`not json`, `1`, false},
	}
	for _, tc := range tests {
		got := valuesEqual(json.RawMessage(tc.a), json.RawMessage(tc.b))
		if got != tc.want {
			t.Errorf("valuesEqual(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if rev := valuesEqual(json.RawMessage(tc.b), json.RawMessage(tc.a)); rev != got {
			t.Errorf("valuesEqual is not symmetric on %s, %s", tc.a, tc.b)
		}
	}
}

func TestParseBodies(t *testing.T) {
	tests := []struct {
		name    string
		cas     bool
		body    string
		want    string // put: value; cas: from|to
		wantErr string
	}{
		{name: "put int", body: `{"value":3}`, want: `3`},
		{name: "put object compacted", body: "{ \"value\" : { \"a\" : [ 1 , 2 ] } }\n", want: `{"a":[1,2]}`},
		{name: "put null", body: `{"value":null}`, want: `null`},
		{name: "put missing", body: `{}`, wantErr: `no "value" field`},
		{name: "put not json", body: `value=3`, wantErr: "not the expected JSON object"},
		{name: "put wrong shape", body: `"3"`, wantErr: "not the expected JSON object"},
		{name: "put unknown field", body: `{"value":1,"x":2}`, wantErr: `unknown field "x"`},
		{name: "put trailing", body: `{"value":1}x`, wantErr: "data after the JSON object"},
		{name: "put empty", body: ``, wantErr: "not the expected JSON object"},
		{name: "cas ok", cas: true, body: `{"from":1,"to":[2]}`, want: `1|[2]`},
		{name: "cas missing from", cas: true, body: `{"to":2}`, wantErr: `no "from" field`},
		{name: "cas missing to", cas: true, body: `{"from":1}`, wantErr: `no "to" field`},
		{name: "cas bad json", cas: true, body: `{"from":1,"to":}`, wantErr: "not the expected JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			var err error
			if tc.cas {
				var from, to json.RawMessage
				from, to, err = parseCASBody([]byte(tc.body))
				got = string(from) + "|" + string(to)
			} else {
				var v json.RawMessage
				v, err = parsePutBody([]byte(tc.body))
				got = string(v)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

// TestStoreFsync: the no-fsync bug turns off every fsync of the log store
// (bolt's NoSync and NoGrowSync) and of the snapshot store, and the correct
// store keeps all of them; both keep what they wrote across a process stop
// (the page cache has it: only a power loss tells them apart, which jepsen's
// power-loss nemesis does).
func TestStoreFsync(t *testing.T) {
	tests := []struct {
		name    string
		noFsync bool
	}{
		{"synced", false},
		{"no-fsync", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := openLogStore(dir, tc.noFsync)
			if err != nil {
				t.Fatal(err)
			}
			db := reflect.ValueOf(s).Elem().FieldByName("conn").Elem()
			for _, f := range []string{"NoSync", "NoGrowSync"} {
				if got := db.FieldByName(f).Bool(); got != tc.noFsync {
					t.Errorf("bolt %s = %v, want %v", f, got, tc.noFsync)
				}
			}
			logs := []*raft.Log{{Index: 1, Term: 1, Data: []byte("a")}, {Index: 2, Term: 1}, {Index: 3, Term: 2}}
			if err := s.StoreLogs(logs); err != nil {
				t.Fatal(err)
			}
			if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err = openLogStore(dir, false)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if last, err := s.LastIndex(); err != nil || last != 3 {
				t.Fatalf("LastIndex after reopen = %d, %v; want 3", last, err)
			}
			if term, _ := s.GetUint64([]byte("CurrentTerm")); term != 7 {
				t.Fatalf("CurrentTerm after reopen = %d, want 7", term)
			}

			snaps, err := openSnapshotStore(dir, tc.noFsync, testLogger())
			if err != nil {
				t.Fatal(err)
			}
			if got := reflect.ValueOf(snaps).Elem().FieldByName("noSync").Bool(); got != tc.noFsync {
				t.Errorf("snapshot store noSync = %v, want %v", got, tc.noFsync)
			}
			sink, err := snaps.Create(raft.SnapshotVersionMax, 3, 2, raft.Configuration{}, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sink.Write([]byte("state")); err != nil {
				t.Fatal(err)
			}
			if err := sink.Close(); err != nil {
				t.Fatal(err)
			}
			metas, err := snaps.List()
			if err != nil || len(metas) != 1 || metas[0].Index != 3 {
				t.Fatalf("List = %+v, %v; want one snapshot at index 3", metas, err)
			}
			if _, rc, err := snaps.Open(metas[0].ID); err != nil {
				t.Fatalf("Open %s: %v", metas[0].ID, err)
			} else {
				rc.Close()
			}
		})
	}
}
