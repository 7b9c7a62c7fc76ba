package targets

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestParseErrors feeds every file of testdata/bad to Parse and checks each
// problem line: the file, the line and what is wrong.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		file string
		want []string // one entry per problem line, each a substring of "LINE: FIELD: MSG"
	}{
		{"unknown-field", []string{`:4: unknown field "datadir" (did you mean "data_dir"?); a target spec has name, nodes, build, command, port, data_dir, protocol, protocol_options, ready`}},
		{"unknown-build-field", []string{`:1: build: names no build mode; expected exactly one of go:`, `:2: unknown field "golang" (did you mean "go"?); build has go, dockerfile, image`}},
		{"build-list", []string{`:1: build: expected exactly one of go: (a Go main package directory), dockerfile: or image:, for example build: {go: ./cmd/mykv}, got a list`}},
		{"no-build", []string{`:1: build: missing; expected exactly one of go:`}},
		{"empty-build", []string{`:1: build: has no value; expected exactly one of go:`}},
		{"two-builds", []string{`:1: build: names 2 build modes (go, image); expected exactly one of go, dockerfile or image`}},
		{"no-command", []string{`:1: command: missing; expected the node's command line as a list`}},
		{"empty-command", []string{`:3: command: is empty; expected the node's command line as a list of strings`}},
		{"empty-program", []string{`:3: command[0]: is empty; expected the program to run`}},
		{"string-command", []string{`:3: command: is a single string; expected the node's command line as a list of strings`}},
		{"map-in-command", []string{`:5: command[1]: expected a string, got a mapping`}},
		{"port-string", []string{`:4: port: expected a number from 1 to 65535, got the string "http"`}},
		{"port-zero", []string{`:4: port: expected a number from 1 to 65535, got 0`}},
		{"port-too-big", []string{`:4: port: expected a number from 1 to 65535, got 65536`}},
		{"port-float", []string{`:4: port: expected a number from 1 to 65535, got the number 8080.5`}},
		{"nodes-zero", []string{`:4: nodes: expected a number from 1 to 100, got 0`}},
		{"nodes-huge", []string{`:4: nodes: expected a number from 1 to 100, got 100000`}},
		{"nodes-negative", []string{`:4: nodes: expected a number from 1 to 100, got -3`}},
		{"datadir-relative", []string{`:4: data_dir: "data" is not absolute; expected a directory inside the container such as /data`}},
		{"datadir-root", []string{`:4: data_dir: cannot be /`}},
		{"protocol-grpc", []string{`:4: protocol: "grpc" is not supported; supported: http`}},
		{"ready-no-slash", []string{`:4: ready: "health" must start with /`}},
		{"go-missing", []string{`:2: build.go: package directory "./cmd/nope" does not exist (looked for testdata/bad/cmd/nope)`}},
		{"go-no-files", []string{`:2: build.go: package directory "./nogo" holds no .go files`}},
		{"go-file", []string{`:2: build.go: "./cmd/kv/main.go" is a file; expected the directory of a Go main package`}},
		{"go-absolute", []string{`:2: build.go: "/src/kv" is absolute; expected a directory relative to the target directory`}},
		{"dockerfile-missing", []string{`:2: build.dockerfile: "Dockerfile.nope" does not exist (looked for testdata/bad/Dockerfile.nope)`}},
		{"template-parse", []string{`:5: command[1]: "{{.Node": template does not parse: unclosed action`}},
		{"template-unknown", []string{
			`:5: command[1]: "--host={{.Host}}": unknown field .Host; known fields: .Node, .Nodes, .Port, .DataDir`,
			`:6: command[2]: "{{.node}}": unknown field .node (did you mean .Node?)`,
		}},
		{"template-control", []string{`:3: command[1]: "{{if .Node}}x{{end}}": control structures (if, range, with, template, block) are not supported`}},
		{"template-func", []string{`:3: command[1]: "{{printf \"%s\" .Node}}": {{printf "%s" .Node}}: only {{.Node}}, {{.Nodes}}, {{.Port}} and {{.DataDir}} are supported`}},
		{"template-var", []string{`:3: command[1]: "{{$x := .Node}}{{$x}}": {{$x := .Node}}: only`}},
		{"template-subfield", []string{`:3: command[1]: "{{.Port.Number}}": .Port is a string and has no field .Number`}},
		{"duplicate-field", []string{`:5: port: given twice (first at line 4); keep one`}},
		{"not-mapping", []string{`:1: expected a mapping of fields (name:, build:, command:, ...), got a list`}},
		{"not-yaml", []string{`:2: is not valid YAML: did not find expected key`}},
		{"empty", []string{`testdata/bad/empty.yaml: is empty; expected at least build and command`}},
		{"only-comments", []string{`testdata/bad/only-comments.yaml: is empty; expected at least build and command`}},
		{"name-invalid", []string{`:1: name: "my kv!": expected letters, digits, '-', '_' and '.'`}},
		{"two-documents", []string{`:4: holds more than one YAML document`}},
		{"image-space", []string{`:2: build.image: "my kv" holds white space`}},
		{"binary", []string{`testdata/bad/binary.yaml: is not UTF-8 text; expected a YAML target spec`}},
		{"many-mistakes", []string{
			`:1: command: missing`,
			`:2: build: names 2 build modes (go, dockerfile)`,
			`:4: build.dockerfile: "Dockerfile" does not exist`,
			`:5: port: expected a number from 1 to 65535, got the string "8080"`,
			`:6: unknown field "data-dir" (did you mean "data_dir"?)`,
		}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			file := filepath.Join("testdata", "bad", tt.file+".yaml")
			seen[tt.file+".yaml"] = true
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := Parse(data, file)
			if err == nil {
				t.Fatalf("Parse accepted %s: %+v", file, spec)
			}
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("error is %T, want *SpecError: %v", err, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d problem lines, want %d:\n%s", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], file) {
					t.Errorf("line %d does not start with the file name %s: %s", i, file, lines[i])
				}
				if !strings.Contains(lines[i], w) {
					t.Errorf("problem %d:\n got %s\nwant it to contain %s", i, lines[i], w)
				}
			}
		})
	}
	ents, err := os.ReadDir(filepath.Join("testdata", "bad"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".yaml") && !seen[e.Name()] {
			t.Errorf("testdata/bad/%s has no case in TestParseErrors", e.Name())
		}
	}
}

func TestLoadValid(t *testing.T) {
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tests := []struct {
		dir  string
		want Spec
	}{
		{"testdata/valid/go", Spec{
			Name: "mykv", Nodes: 3, Build: Build{Go: "./cmd/kv"},
			Command: []string{"/target", "--id", "{{.Node}}", "--nodes", "{{.Nodes}}", "--port", "{{.Port}}", "--data", "{{.DataDir}}"},
			Port:    9000, DataDir: "/var/lib/mykv", Protocol: "http", Ready: "/ready?full=1",
		}},
		{"testdata/valid/dockerfile", Spec{
			Name: "dockerkv", Nodes: 5, Build: Build{Dockerfile: "Dockerfile"},
			Command: []string{"/usr/local/bin/kv", "--listen=:{{.Port}}", "--peers={{.Nodes}}", "--name={{ .Node }}"},
			Port:    8080, DataDir: "/data", Protocol: "http", Ready: "/health",
		}},
		{"testdata/valid/image", Spec{
			Name: "prebuilt.kv-2", Nodes: 1, Build: Build{Image: "mykv:dev"},
			Command: []string{"/kv", "8080", "true"},
			Port:    8080, DataDir: "/data", Protocol: "http", Ready: "/health",
		}},
		{"testdata/valid/minimal", Spec{
			Name: "minimal", Nodes: DefaultNodes, Build: Build{Image: "kv"},
			Command: []string{"/kv"},
			Port:    DefaultPort, DataDir: DefaultDataDir, Protocol: DefaultProtocol, Ready: DefaultReady,
		}},
		{"testdata/valid/rootpkg", Spec{
			Name: "rootpkg", Nodes: 5, Build: Build{Go: "."},
			Command: []string{"/target", "{{.Node}}"},
			Port:    8080, DataDir: "/data", Protocol: "http", Ready: "/health",
		}},
		// The spec file itself may be named instead of its directory.
		{"testdata/valid/minimal/jepsen.yaml", Spec{
			Name: "minimal", Nodes: DefaultNodes, Build: Build{Image: "kv"},
			Command: []string{"/kv"},
			Port:    DefaultPort, DataDir: DefaultDataDir, Protocol: DefaultProtocol, Ready: DefaultReady,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			got, err := Load(tt.dir)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Dir = abs(strings.TrimSuffix(tt.dir, "/jepsen.yaml"))
			if !filepath.IsAbs(got.Dir) {
				t.Errorf("Dir %q is not absolute", got.Dir)
			}
			got.command = nil
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("Load(%s)\n got %+v\nwant %+v", tt.dir, *got, want)
			}
			if m := got.Build.Mode(); m == "" {
				t.Errorf("Build.Mode() is empty")
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		dir  string
		want []string
	}{
		{"testdata/nospec", []string{"testdata/nospec/jepsen.yaml: no such file", "a target directory needs a jepsen.yaml", `build: {go: ./cmd/mykv}`, "targets/raftkv/jepsen.yaml"}},
		{"testdata/does-not-exist", []string{"target directory testdata/does-not-exist does not exist"}},
		{"testdata/bad/port-zero.yaml", []string{"testdata/bad/port-zero.yaml:4: port: expected a number from 1 to 65535, got 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			_, err := Load(tt.dir)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadTooLarge(t *testing.T) {
	dir := t.TempDir()
	big := "build: {image: kv}\ncommand: [/kv]\n# " + strings.Repeat("x", MaxSpecBytes) + "\n"
	if err := os.WriteFile(filepath.Join(dir, SpecFile), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "larger than 1024 KiB") {
		t.Fatalf("Load of a huge spec: %v", err)
	}
}

func TestDefaultName(t *testing.T) {
	tests := []struct{ dir, want string }{
		{"/x/mykv", "mykv"},
		{"/x/My KV!", "my-kv-"},
		{"/x/.hidden", "hidden"},
		{"/", "target"},
		{"/x/" + strings.Repeat("a", 100), strings.Repeat("a", 63)},
	}
	for _, tt := range tests {
		got := defaultName(tt.dir)
		if got != tt.want {
			t.Errorf("defaultName(%q) = %q, want %q", tt.dir, got, tt.want)
		}
		if err := checkName(got); err != nil {
			t.Errorf("defaultName(%q) = %q is not a valid name: %v", tt.dir, got, err)
		}
	}
}

func TestCommandFor(t *testing.T) {
	spec, err := Load("testdata/valid/dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	nodes := spec.NodeNames(3)
	tests := []struct {
		node string
		want []string
	}{
		{"n1", []string{"/usr/local/bin/kv", "--listen=:8080", "--peers=n1,n2,n3", "--name=n1"}},
		{"n3", []string{"/usr/local/bin/kv", "--listen=:8080", "--peers=n1,n2,n3", "--name=n3"}},
	}
	for _, tt := range tests {
		got, err := spec.CommandFor(tt.node, nodes)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("CommandFor(%s) = %q, want %q", tt.node, got, tt.want)
		}
	}
	// A Spec built by hand (not by Parse) works too, and reports bad
	// templates as errors.
	hand := &Spec{Command: []string{"/kv", "{{.DataDir}}/{{.Node}}", "{{.Port}}"}, Port: 7000, DataDir: "/d"}
	got, err := hand.CommandFor("n2", []string{"n1", "n2"})
	if err != nil || !reflect.DeepEqual(got, []string{"/kv", "/d/n2", "7000"}) {
		t.Errorf("hand-built CommandFor = %q, %v", got, err)
	}
	hand.Command = []string{"{{.Bogus}}"}
	if _, err := hand.CommandFor("n1", nil); err == nil || !strings.Contains(err.Error(), "unknown field .Bogus") {
		t.Errorf("hand-built bad template: %v", err)
	}
}

func TestNodeNames(t *testing.T) {
	s := &Spec{Nodes: 3}
	if got := s.NodeNames(0); !reflect.DeepEqual(got, []string{"n1", "n2", "n3"}) {
		t.Errorf("NodeNames(0) = %q", got)
	}
	if got := s.NodeNames(5); !reflect.DeepEqual(got, []string{"n1", "n2", "n3", "n4", "n5"}) {
		t.Errorf("NodeNames(5) = %q", got)
	}
}

func TestEnvFor(t *testing.T) {
	s := &Spec{Port: 8080, DataDir: "/data"}
	tests := []struct {
		name  string
		extra []string
		want  []string
	}{
		{"plain", nil, []string{"JEPSEN_NODE=n2", "JEPSEN_NODES=n1,n2,n3", "JEPSEN_PORT=8080", "JEPSEN_DATA_DIR=/data"}},
		{"extra", []string{"RAFTKV_BUG=racy-cas", "A=1=2"}, []string{"JEPSEN_NODE=n2", "JEPSEN_NODES=n1,n2,n3", "JEPSEN_PORT=8080", "JEPSEN_DATA_DIR=/data", "RAFTKV_BUG=racy-cas", "A=1=2"}},
		{"later wins", []string{"A=1", "B=2", "A=3"}, []string{"JEPSEN_NODE=n2", "JEPSEN_NODES=n1,n2,n3", "JEPSEN_PORT=8080", "JEPSEN_DATA_DIR=/data", "A=3", "B=2"}},
		{"reserved and invalid dropped", []string{"JEPSEN_NODE=n9", "NOEQUALS", "=x", "OK="}, []string{"JEPSEN_NODE=n2", "JEPSEN_NODES=n1,n2,n3", "JEPSEN_PORT=8080", "JEPSEN_DATA_DIR=/data", "OK="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.EnvFor("n2", []string{"n1", "n2", "n3"}, tt.extra)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("EnvFor = %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestCheckEnv(t *testing.T) {
	tests := []struct {
		kv   string
		want string // "" = valid
	}{
		{"RAFTKV_BUG=stale-read", ""},
		{"_X=", ""},
		{"A1=b c", ""},
		{"NOEQUALS", "expected KEY=VALUE"},
		{"=v", "the name before = is empty"},
		{"1A=v", "must not start with a digit"},
		{"A-B=v", "may hold only letters"},
		{"JEPSEN_PORT=1", "set by the harness"},
		{"A=x\x00y", "NUL byte"},
	}
	for _, tt := range tests {
		err := CheckEnv(tt.kv)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckEnv(%q) = %v, want nil", tt.kv, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("CheckEnv(%q) = %v, want an error containing %q", tt.kv, err, tt.want)
		}
	}
}

func TestNearest(t *testing.T) {
	known := []string{"name", "nodes", "build", "command", "port", "data_dir", "protocol", "protocol_options", "ready"}
	tests := []struct{ in, want string }{
		{"dataDir", "data_dir"},
		{"data-dir", "data_dir"},
		{"datadir", "data_dir"},
		{"comand", "command"},
		{"Port", "port"},
		{"node", "nodes"},
		{"protocl", "protocol"},
		{"xyzzy", ""},
		{"prot", "port"},
		{"Host", ""},
		{"golang", ""}, // not in this list
		{"env", ""},
		{strings.Repeat("a", 1000), ""},
	}
	for _, tt := range tests {
		if got := nearest(tt.in, known); got != tt.want {
			t.Errorf("nearest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestTemplateExpansionBounded shows that a template cannot blow up:
// functions are refused, and an element expands to at most 64 KiB.
func TestTemplateExpansionBounded(t *testing.T) {
	spec := "build: {image: kv}\ncommand: [\"/kv\", '" + strings.Repeat(`{{printf "%999999s" .Node}}`, 3) + "']\n"
	_, err := Parse([]byte(spec), "big.yaml")
	if err == nil || !strings.Contains(err.Error(), "big.yaml:2: command[1]:") || !strings.Contains(err.Error(), "functions, literals and variables are not") {
		t.Fatalf("Parse = %v", err)
	}
	hand := &Spec{Command: []string{strings.Repeat("{{.Nodes}}", 200)}}
	if _, err := hand.CommandFor("n1", hand.NodeNames(100)); err == nil || !strings.Contains(err.Error(), "expands to more than 64 KiB") {
		t.Fatalf("CommandFor of a 200 x 400-byte expansion = %v", err)
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name, spec string
		want       []string
	}{
		{"long command", "build: {image: kv}\ncommand: [" + strings.Repeat("x,", 2000) + "x]\n",
			[]string{"x.yaml:2: command: has 2001 elements; expected at most 1024"}},
		{"command too large in all", "build: {image: kv}\ncommand: [" + strings.Repeat(`"{{.Nodes}}{{.Nodes}}{{.Nodes}}",`, 1000) + "x]\n",
			[]string{"x.yaml:2: command[", "expands to more than 64 KiB, or the whole command to more than 1024 KiB"}},
		{"many problems", "build: {image: kv}\ncommand: [x]\n" + strings.Repeat("port: 1\n", 100),
			append(slicesRepeat("port: given twice", 20), "x.yaml: and 79 more problems not shown")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.spec), "x.yaml")
			if err == nil {
				t.Fatal("accepted")
			}
			lines := strings.Split(err.Error(), "\n")
			if tt.name == "command too large in all" {
				for _, w := range tt.want {
					if !strings.Contains(lines[0], w) {
						t.Errorf("%q does not contain %q", lines[0], w)
					}
				}
				return
			}
			if len(lines) != len(tt.want) {
				t.Fatalf("%d lines, want %d: %s", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("line %d %q does not contain %q", i, lines[i], w)
				}
			}
		})
	}
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestExampleParses keeps the Example shown to users valid.
func TestExampleParses(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "cmd", "mykv"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cmd", "mykv", "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, SpecFile), []byte(Example), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "mykv" || s.Build.Go != "./cmd/mykv" || len(s.Command) != 9 {
		t.Errorf("Example loaded as %+v", s)
	}
}

// TestBundledSpecsLoad keeps the specs shipped in this repository valid.
func TestBundledSpecsLoad(t *testing.T) {
	s, err := Load("raftkv")
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := s.CommandFor("n2", s.NodeNames(3))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/target", "--id", "n2", "--nodes", "n1,n2,n3", "--port", "8080", "--data", "/data"}
	if !reflect.DeepEqual(cmd, want) {
		t.Errorf("raftkv command = %q, want %q", cmd, want)
	}
}
