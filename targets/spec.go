// Package targets describes the store under test: the target spec read from
// a target directory's jepsen.yaml (docs/protocol.md), the node names, and
// the command line and environment each node is started with.
//
// The client protocols live in sub-packages (httpkv for the http protocol)
// that Register themselves; targets/protocols links them all in.
package targets

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
)

// SpecFile is the name of the target spec inside a target directory.
const SpecFile = "jepsen.yaml"

// Defaults and limits of a target spec.
const (
	// DefaultNodes is the node count when the spec names none.
	DefaultNodes = 5
	// MaxNodes is the largest node count a spec may ask for.
	MaxNodes = 100
	// DefaultPort is the client API port inside each container.
	DefaultPort = 8080
	// DefaultDataDir is the directory kept across kill and restart.
	DefaultDataDir = "/data"
	// DefaultProtocol is the client protocol.
	DefaultProtocol = "http"
	// DefaultReady is the path polled until it answers 200.
	DefaultReady = "/health"
	// MaxSpecBytes is the largest jepsen.yaml accepted.
	MaxSpecBytes = 1 << 20
)

// Example is a complete jepsen.yaml, shown to people whose target directory
// has none.
const Example = `name: mykv
nodes: 5                       # default node count
build:                         # exactly one of:
  go: ./cmd/mykv               #   Go main package, built static into a FROM scratch image
  # dockerfile: Dockerfile     #   built by the local Docker daemon, context = this directory
  # image: mykv:dev            #   an image the local Docker daemon already has
command: ["/target", "--id", "{{.Node}}", "--nodes", "{{.Nodes}}", "--port", "{{.Port}}", "--data", "{{.DataDir}}"]
port: 8080                     # client API port inside each container
data_dir: /data                # kept across kill and restart
protocol: http                 # client protocol
ready: /health                 # path that answers 200 once the node serves
`

// Spec is a validated target spec. Every field is set: defaults fill what
// the file leaves out.
type Spec struct {
	// Dir is the absolute path of the target directory (Load), or the
	// directory of the file given to Parse, as given.
	Dir string
	// Name names the target in the store and in Docker labels; it defaults
	// to the directory's name.
	Name string
	// Nodes is the default node count.
	Nodes int
	// Build says how the node image is made.
	Build Build
	// Command is the node's command line; its elements are text/template
	// templates over {{.Node}}, {{.Nodes}}, {{.Port}} and {{.DataDir}}.
	Command []string
	// Port is the client API port inside each container.
	Port int
	// DataDir is the absolute directory, inside the container, kept across
	// kill and restart.
	DataDir string
	// Protocol is the client protocol ("http"), a name in the registry
	// (Register).
	Protocol string
	// ProtocolOptions are the protocol's options from protocol_options;
	// nil when the file gives none.
	ProtocolOptions map[string]string
	// Ready is the path that answers 200 once a node serves.
	Ready string

	command []*template.Template
}

// Build says how the node image is made. Exactly one field is set.
type Build struct {
	// Go is a Go main package directory relative to the target directory,
	// in the form "./cmd/mykv" (or "."), built static into a FROM scratch
	// image.
	Go string
	// Dockerfile is a Dockerfile path relative to the target directory,
	// built by the local daemon with the target directory as context.
	Dockerfile string
	// Image is an image reference the local daemon already has.
	Image string
}

// Mode names the build mode that is set: "go", "dockerfile" or "image".
func (b Build) Mode() string {
	switch {
	case b.Go != "":
		return "go"
	case b.Dockerfile != "":
		return "dockerfile"
	case b.Image != "":
		return "image"
	}
	return ""
}

// Problem is one mistake in a target spec.
type Problem struct {
	// File is the spec file's path.
	File string
	// Line is the 1-based line of the mistake, or 0 if it has none (a
	// missing field in an empty file).
	Line int
	// Field is the dotted name of the field concerned ("build.go",
	// "command[2]"), or empty for the file as a whole.
	Field string
	// Msg says what is wrong and what is expected.
	Msg string
}

// Error formats the problem as one line: FILE:LINE: FIELD: MSG.
func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// SpecError is returned by Parse and Load for an invalid spec. It lists
// every problem found, in file order.
type SpecError struct {
	// Problems holds at least one problem.
	Problems []Problem
}

// Error returns one line per problem.
func (e *SpecError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads and validates DIR/jepsen.yaml. dir may also name the spec file
// itself. The returned Spec's Dir is absolute.
func Load(dir string) (*Spec, error) {
	if dir == "" {
		dir = "."
	}
	file := filepath.Join(dir, SpecFile)
	if fi, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("target directory %s does not exist", dir)
		}
		return nil, fmt.Errorf("target directory: %w", err)
	} else if !fi.IsDir() {
		file = dir
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", dir, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file: a target directory needs a %s saying how to build and start the store, for example: "+
				`name: mykv, build: {go: ./cmd/mykv}, command: ["/target", "--id", "{{.Node}}", "--nodes", "{{.Nodes}}", "--port", "{{.Port}}"] `+
				"(see targets/raftkv/jepsen.yaml and docs/protocol.md)", file, SpecFile)
		}
		return nil, fmt.Errorf("read target spec: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSpecBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read target spec %s: %w", file, err)
	}
	if len(data) > MaxSpecBytes {
		return nil, fmt.Errorf("%s: larger than %d KiB; this is not a target spec", file, MaxSpecBytes>>10)
	}
	s, err := parse(data, file, filepath.Dir(abs))
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Parse validates the contents of a jepsen.yaml. file names it in error
// messages; the paths of build.go and build.dockerfile are checked relative
// to file's directory. A returned error is a *SpecError.
func Parse(data []byte, file string) (*Spec, error) {
	if file == "" {
		file = SpecFile
	}
	return parse(data, file, filepath.Dir(file))
}

// NodeNames returns the node names n1..nN; n <= 0 means s.Nodes.
func (s *Spec) NodeNames(n int) []string {
	if n <= 0 {
		n = s.Nodes
	}
	names := make([]string, n)
	for i := range names {
		names[i] = "n" + strconv.Itoa(i+1)
	}
	return names
}

// templateData is what a command template sees.
type templateData struct {
	Node    string // this node's name, "n2"
	Nodes   string // all node names, comma-separated: "n1,n2,n3"
	Port    string // the client API port, "8080"
	DataDir string // the data directory, "/data"
}

// TemplateFields lists the fields a command template may use.
var TemplateFields = []string{"Node", "Nodes", "Port", "DataDir"}

func (s *Spec) data(node string, nodes []string) templateData {
	return templateData{
		Node:    node,
		Nodes:   strings.Join(nodes, ","),
		Port:    strconv.Itoa(s.Port),
		DataDir: s.DataDir,
	}
}

// CommandFor returns the command line of node in a cluster of nodes, with
// the templates of s.Command filled in.
func (s *Spec) CommandFor(node string, nodes []string) ([]string, error) {
	tmpls := s.command
	if len(tmpls) != len(s.Command) {
		// A Spec built by hand rather than by Parse.
		tmpls = make([]*template.Template, len(s.Command))
		for i, c := range s.Command {
			t, err := newTemplate(i, c)
			if err != nil {
				return nil, fmt.Errorf("command[%d] %q: %w", i, c, err)
			}
			tmpls[i] = t
		}
	}
	d := s.data(node, nodes)
	out := make([]string, len(tmpls))
	var b strings.Builder
	total := maxCommandBytes
	for i, t := range tmpls {
		b.Reset()
		if err := t.Execute(&limitedWriter{w: &b, n: min(maxExpansion, total)}, d); err != nil {
			return nil, fmt.Errorf("command[%d] %q for %s: %w", i, s.Command[i], node, err)
		}
		out[i] = b.String()
		total -= b.Len()
	}
	return out, nil
}

// EnvFor returns the environment of node in a cluster of nodes, as
// KEY=VALUE entries: JEPSEN_NODE, JEPSEN_NODES (comma-separated names),
// JEPSEN_PORT and JEPSEN_DATA_DIR, then the user's extra entries in order.
// A later extra entry replaces an earlier one with the same key; extra
// entries cannot replace the JEPSEN_* variables (see CheckEnv) and are
// dropped if they try.
func (s *Spec) EnvFor(node string, nodes []string, extra []string) []string {
	d := s.data(node, nodes)
	env := []string{
		"JEPSEN_NODE=" + d.Node,
		"JEPSEN_NODES=" + d.Nodes,
		"JEPSEN_PORT=" + d.Port,
		"JEPSEN_DATA_DIR=" + d.DataDir,
	}
	index := make(map[string]int, len(extra))
	for _, kv := range extra {
		if CheckEnv(kv) != nil {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			env[i] = kv
			continue
		}
		index[k] = len(env)
		env = append(env, kv)
	}
	return env
}

// reservedEnv are the variables the harness sets on every node.
var reservedEnv = map[string]bool{
	"JEPSEN_NODE": true, "JEPSEN_NODES": true, "JEPSEN_PORT": true, "JEPSEN_DATA_DIR": true,
}

// CheckEnv reports whether kv is a valid extra environment entry for the
// nodes (a --env KEY=VALUE flag): KEY is a letter or underscore followed by
// letters, digits and underscores, and is not one of the JEPSEN_* variables
// the harness sets itself.
func CheckEnv(kv string) error {
	k, _, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("environment entry %q: expected KEY=VALUE", kv)
	}
	if k == "" {
		return fmt.Errorf("environment entry %q: the name before = is empty", kv)
	}
	for i, r := range k {
		if r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9' {
			continue
		}
		return fmt.Errorf("environment entry %q: name %q may hold only letters, digits and _ and must not start with a digit", kv, k)
	}
	if reservedEnv[k] {
		return fmt.Errorf("environment entry %q: %s is set by the harness for each node and cannot be overridden", kv, k)
	}
	if strings.ContainsRune(kv, 0) {
		return fmt.Errorf("environment entry %q: contains a NUL byte", kv)
	}
	return nil
}

// maxExpansion bounds what one command template may expand to, and
// maxCommandBytes the whole command (Linux allows 128 KiB per argument and
// about 2 MiB in all).
const (
	maxExpansion    = 64 << 10
	maxCommandBytes = 1 << 20
)

// errTooLong is returned when a template expands beyond its budget.
var errTooLong = fmt.Errorf("expands to more than %d KiB (or the command to more than %d KiB)", maxExpansion>>10, maxCommandBytes>>10)

// limitedWriter fails once more than n bytes were written, which stops a
// template's execution.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, errTooLong
	}
	l.n -= len(p)
	return l.w.Write(p)
}
