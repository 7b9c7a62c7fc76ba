package targets

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"
	tparse "text/template/parse"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// maxProblems is how many problems an error lists.
const maxProblems = 20

// maxCommand is the most elements a command may have.
const maxCommand = 1024

// field describes one known key of a YAML mapping.
type field struct {
	name string
	set  func(p *parser, key, val *yaml.Node)
}

var topFields = []field{
	{"name", (*parser).name},
	{"nodes", (*parser).nodes},
	{"build", (*parser).build},
	{"command", (*parser).command},
	{"port", (*parser).port},
	{"data_dir", (*parser).dataDir},
	{"protocol", (*parser).protocol},
	{"protocol_options", (*parser).protocolOptions},
	{"ready", (*parser).ready},
}

var buildFields = []string{"go", "dockerfile", "image"}

type parser struct {
	file  string // for messages
	dir   string // where build paths are resolved
	spec  Spec
	probs []Problem
	// cmdLines holds the line of each command element.
	cmdLines []int
	// protoLine and optLines locate protocol and each protocol option.
	protoLine int
	optLines  map[string]int
}

func (p *parser) add(line int, fieldName, format string, args ...any) {
	msg := lineBreaks.Replace(fmt.Sprintf(format, args...))
	p.probs = append(p.probs, Problem{File: p.file, Line: line, Field: lineBreaks.Replace(fieldName), Msg: msg})
}

// lineBreaks escapes what would break a problem's single line; the
// messages quote user text already, this is the last line of defence.
var lineBreaks = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\x00", `\x00`, "\u2028", `\u2028`, "\u2029", `\u2029`)

// parse validates data; dir is the target directory for file checks.
func parse(data []byte, file, dir string) (spec *Spec, err error) {
	p := &parser{file: file, dir: dir}
	defer func() {
		// The YAML library is fuzzed upstream, but a panic in it must
		// still come out as a one-line error, never a crash.
		if r := recover(); r != nil {
			spec, err = nil, &SpecError{Problems: []Problem{{File: file, Msg: fmt.Sprintf("cannot be read as YAML (the YAML parser failed: %v)", r)}}}
		}
	}()
	if len(data) > MaxSpecBytes {
		p.add(0, "", "larger than %d KiB; this is not a target spec", MaxSpecBytes>>10)
		return nil, &SpecError{Problems: p.probs}
	}
	if !utf8.Valid(data) {
		p.add(0, "", "is not UTF-8 text; expected a YAML target spec (see docs/protocol.md), for example: "+
			`build: {go: ./cmd/mykv}, command: ["/target", "--id", "{{.Node}}"]`)
		return nil, &SpecError{Problems: p.probs}
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.add(0, "", "is empty; expected at least build and command, for example: "+
				`build: {go: ./cmd/mykv}, command: ["/target", "--id", "{{.Node}}"] (see docs/protocol.md)`)
		} else {
			p.add(yamlErrLine(err), "", "is not valid YAML: %s", yamlErrMsg(err))
		}
		return nil, &SpecError{Problems: p.probs}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.add(extra.Line, "", "holds more than one YAML document (a second one starts here); expected one")
	} else if !errors.Is(err, io.EOF) {
		p.add(yamlErrLine(err), "", "is not valid YAML: %s", yamlErrMsg(err))
	}
	root := resolve(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = resolve(root.Content[0])
	}
	switch {
	case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
		p.add(root.Line, "", "is empty; expected at least build and command, for example: "+
			`build: {go: ./cmd/mykv}, command: ["/target", "--id", "{{.Node}}"] (see docs/protocol.md)`)
	case root.Kind != yaml.MappingNode:
		p.add(root.Line, "", "expected a mapping of fields (name:, build:, command:, ...), got %s", describe(root))
	default:
		p.top(root)
	}
	if len(p.probs) > 0 {
		sort.SliceStable(p.probs, func(i, j int) bool { return p.probs[i].Line < p.probs[j].Line })
		if len(p.probs) > maxProblems {
			more := len(p.probs) - maxProblems
			p.probs = append(p.probs[:maxProblems], Problem{File: file, Msg: fmt.Sprintf("and %d more problems not shown", more)})
		}
		return nil, &SpecError{Problems: p.probs}
	}
	s := p.spec
	return &s, nil
}

// resolve follows aliases (bounded: the parser rejects alias cycles, but a
// bound costs nothing).
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; i < 100 && n.Kind == yaml.AliasNode && n.Alias != nil; i++ {
		n = n.Alias
	}
	return n
}

func (p *parser) top(m *yaml.Node) {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), resolve(m.Content[i+1])
		if !p.key(k, "", seen) {
			continue
		}
		var f *field
		for j := range topFields {
			if topFields[j].name == k.Value {
				f = &topFields[j]
			}
		}
		if f == nil {
			names := make([]string, len(topFields))
			for j, tf := range topFields {
				names[j] = tf.name
			}
			p.unknown(k, "", names)
			continue
		}
		f.set(p, k, v)
	}
	s := &p.spec
	if _, ok := seen["build"]; !ok {
		p.add(m.Line, "build", "missing; expected exactly one of go: (a Go main package directory), dockerfile: or image:, for example build: {go: ./cmd/mykv}")
	}
	if _, ok := seen["command"]; !ok {
		p.add(m.Line, "command", `missing; expected the node's command line as a list, for example command: ["/target", "--id", "{{.Node}}", "--port", "{{.Port}}"]`)
	}
	if _, ok := seen["name"]; !ok {
		s.Name = defaultName(p.dir)
	}
	if _, ok := seen["nodes"]; !ok {
		s.Nodes = DefaultNodes
	}
	if _, ok := seen["port"]; !ok {
		s.Port = DefaultPort
	}
	if _, ok := seen["data_dir"]; !ok {
		s.DataDir = DefaultDataDir
	}
	if _, ok := seen["protocol"]; !ok {
		s.Protocol = DefaultProtocol
	}
	if _, ok := seen["ready"]; !ok {
		s.Ready = DefaultReady
	}
	p.checkProtocolOptions()
	s.Dir = p.dir
	// Templates are checked last: their sample execution uses Port and
	// DataDir (an invalid one leaves its zero value, which is fine here).
	p.checkTemplates()
}

// key checks that k is a plain string key not seen before in its mapping.
func (p *parser) key(k *yaml.Node, parent string, seen map[string]int) bool {
	if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" && k.ShortTag() != "!!bool" && k.ShortTag() != "!!int" && k.ShortTag() != "!!float" && k.ShortTag() != "!!null" {
		p.add(k.Line, parent, "expected a field name, got %s", describe(k))
		return false
	}
	name := join(parent, safeName(k.Value))
	if k.Value == "<<" {
		p.add(k.Line, parent, "YAML merge keys (<<) are not supported; write the fields out")
		return false
	}
	if prev, ok := seen[k.Value]; ok {
		p.add(k.Line, name, "given twice (first at line %d); keep one", prev)
		return false
	}
	seen[k.Value] = k.Line
	return true
}

func (p *parser) unknown(k *yaml.Node, parent string, known []string) {
	msg := fmt.Sprintf("unknown field %q", k.Value)
	if s := nearest(k.Value, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	where := "a target spec"
	if parent != "" {
		where = parent
	}
	msg += fmt.Sprintf("; %s has %s", where, strings.Join(known, ", "))
	p.add(k.Line, "", "%s", msg)
}

func join(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// str returns v's value if it is a non-empty string scalar, else records a
// problem and returns false.
func (p *parser) str(k, v *yaml.Node, name, expect string) (string, bool) {
	if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
		if v.Kind == yaml.ScalarNode {
			p.add(v.Line, name, "has no value; expected %s", expect)
		} else {
			p.add(v.Line, name, "expected %s, got %s", expect, describe(v))
		}
		return "", false
	}
	if v.ShortTag() != "!!str" {
		p.add(v.Line, name, "expected %s, got %s", expect, describe(v))
		return "", false
	}
	if strings.TrimSpace(v.Value) == "" {
		p.add(v.Line, name, "is empty; expected %s", expect)
		return "", false
	}
	return v.Value, true
}

// num returns v's value if it is an integer in [lo, hi].
func (p *parser) num(v *yaml.Node, name string, lo, hi int) (int, bool) {
	expect := fmt.Sprintf("a number from %d to %d", lo, hi)
	if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
		if v.Kind == yaml.ScalarNode {
			p.add(v.Line, name, "has no value; expected %s", expect)
		} else {
			p.add(v.Line, name, "expected %s, got %s", expect, describe(v))
		}
		return 0, false
	}
	if v.ShortTag() != "!!int" {
		p.add(v.Line, name, "expected %s, got %s", expect, describe(v))
		return 0, false
	}
	var n int64
	if err := v.Decode(&n); err != nil {
		p.add(v.Line, name, "expected %s, got %s", expect, quote(v.Value))
		return 0, false
	}
	if n < int64(lo) || n > int64(hi) {
		p.add(v.Line, name, "expected %s, got %d", expect, n)
		return 0, false
	}
	return int(n), true
}

func (p *parser) name(k, v *yaml.Node) {
	s, ok := p.str(k, v, "name", "a short name such as mykv")
	if !ok {
		return
	}
	if err := checkName(s); err != nil {
		p.add(v.Line, "name", "%v", err)
		return
	}
	p.spec.Name = s
}

func checkName(s string) error {
	if len(s) > 63 {
		return fmt.Errorf("%s is longer than 63 characters", quote(s))
	}
	for i, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && (r == '-' || r == '_' || r == '.') {
			continue
		}
		return fmt.Errorf("%s: expected letters, digits, '-', '_' and '.', starting with a letter or digit (it names store directories and Docker objects)", quote(s))
	}
	return nil
}

// defaultName derives a valid name from the target directory's name.
func defaultName(dir string) string {
	base := filepath.Base(dir)
	if abs, err := filepath.Abs(dir); err == nil {
		base = filepath.Base(abs)
	}
	var b strings.Builder
	for _, r := range base {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r - 'A' + 'a')
		default:
			b.WriteByte('-')
		}
		if b.Len() >= 63 {
			break
		}
	}
	name := strings.TrimLeft(b.String(), "-_.")
	if name == "" {
		return "target"
	}
	return name
}

func (p *parser) nodes(k, v *yaml.Node) {
	if n, ok := p.num(v, "nodes", 1, MaxNodes); ok {
		p.spec.Nodes = n
	}
}

func (p *parser) port(k, v *yaml.Node) {
	if n, ok := p.num(v, "port", 1, 65535); ok {
		p.spec.Port = n
	}
}

func (p *parser) dataDir(k, v *yaml.Node) {
	s, ok := p.str(k, v, "data_dir", "an absolute directory inside the container such as /data")
	if !ok {
		return
	}
	switch {
	case !path.IsAbs(s):
		p.add(v.Line, "data_dir", "%s is not absolute; expected a directory inside the container such as /data", quote(s))
	case path.Clean(s) == "/":
		p.add(v.Line, "data_dir", "cannot be / (a volume is mounted there); expected a directory such as /data")
	case strings.ContainsAny(s, "\x00\n\r\t,:"):
		p.add(v.Line, "data_dir", "%s holds a control character, ',' or ':'; expected a plain path such as /data", quote(s))
	default:
		p.spec.DataDir = path.Clean(s)
	}
}

func (p *parser) protocol(k, v *yaml.Node) {
	names := ProtocolNames()
	s, ok := p.str(k, v, "protocol", "one of: "+strings.Join(names, ", "))
	if !ok {
		return
	}
	if _, known := Lookup(s); known {
		p.spec.Protocol = s
		p.protoLine = v.Line
		return
	}
	p.add(v.Line, "protocol", "%s is not supported; supported: %s", quote(s), strings.Join(names, ", "))
}

// protocolOptions reads protocol_options, a mapping of strings; the keys
// are checked against the protocol once the whole file is read.
func (p *parser) protocolOptions(k, v *yaml.Node) {
	const expect = "a mapping of option names to strings, for example protocol_options: {reads: serializable}"
	if v.Kind != yaml.MappingNode {
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
			return
		}
		p.add(k.Line, "protocol_options", "expected %s, got %s", expect, describe(v))
		return
	}
	seen := map[string]int{}
	opts := map[string]string{}
	p.optLines = map[string]int{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		ok, ov := resolve(v.Content[i]), resolve(v.Content[i+1])
		if !p.key(ok, "protocol_options", seen) {
			continue
		}
		name := "protocol_options." + safeName(ok.Value)
		if ov.Kind != yaml.ScalarNode || ov.ShortTag() == "!!null" {
			p.add(ov.Line, name, "expected a string value, got %s", describe(ov))
			continue
		}
		opts[ok.Value] = ov.Value
		p.optLines[ok.Value] = ok.Line
	}
	p.spec.ProtocolOptions = opts
}

// checkProtocolOptions checks the options against the protocol.
func (p *parser) checkProtocolOptions() {
	proto, ok := Lookup(p.spec.Protocol)
	if !ok || len(p.spec.ProtocolOptions) == 0 {
		return
	}
	if err := proto.CheckOptions(p.spec.ProtocolOptions); err != nil {
		line, field := p.protoLine, "protocol_options"
		var oe *OptionError
		if errors.As(err, &oe) && p.optLines[oe.Key] > 0 {
			line, field = p.optLines[oe.Key], field+"."+safeName(oe.Key)
		}
		p.add(line, field, "%s", err.Error())
	}
}

func (p *parser) ready(k, v *yaml.Node) {
	s, ok := p.str(k, v, "ready", "a path such as /health")
	if !ok {
		return
	}
	switch {
	case !strings.HasPrefix(s, "/"):
		p.add(v.Line, "ready", "%s must start with /; expected a path such as /health", quote(s))
	case strings.ContainsAny(s, " \t\r\n\x00#"):
		p.add(v.Line, "ready", "%s holds a space, control character or #; expected a path such as /health", quote(s))
	default:
		p.spec.Ready = s
	}
}

func (p *parser) build(k, v *yaml.Node) {
	const expect = "exactly one of go: (a Go main package directory), dockerfile: or image:, for example build: {go: ./cmd/mykv}"
	if v.Kind != yaml.MappingNode {
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
			p.add(k.Line, "build", "has no value; expected %s", expect)
		} else {
			p.add(k.Line, "build", "expected %s, got %s", expect, describe(v))
		}
		return
	}
	seen := map[string]int{}
	var modes []string
	for i := 0; i+1 < len(v.Content); i += 2 {
		bk, bv := resolve(v.Content[i]), resolve(v.Content[i+1])
		if !p.key(bk, "build", seen) {
			continue
		}
		name := "build." + bk.Value
		switch bk.Value {
		case "go":
			modes = append(modes, "go")
			if s, ok := p.str(bk, bv, name, "a Go main package directory relative to the target directory, such as ./cmd/mykv"); ok {
				p.goPkg(bv, s)
			}
		case "dockerfile":
			modes = append(modes, "dockerfile")
			if s, ok := p.str(bk, bv, name, "a Dockerfile path relative to the target directory, such as Dockerfile"); ok {
				p.dockerfile(bv, s)
			}
		case "image":
			modes = append(modes, "image")
			if s, ok := p.str(bk, bv, name, "an image the local Docker daemon has, such as mykv:dev"); ok {
				if strings.ContainsAny(s, " \t\r\n\x00") {
					p.add(bv.Line, name, "%s holds white space; expected an image reference such as mykv:dev", quote(s))
				} else {
					p.spec.Build.Image = s
				}
			}
		default:
			p.unknown(bk, "build", buildFields)
		}
	}
	switch len(modes) {
	case 0:
		p.add(k.Line, "build", "names no build mode; expected %s", expect)
	case 1:
	default:
		p.add(k.Line, "build", "names %d build modes (%s); expected exactly one of go, dockerfile or image", len(modes), strings.Join(modes, ", "))
	}
}

// local resolves a path of the spec against the target directory.
func (p *parser) local(rel string) string { return filepath.Join(p.dir, filepath.FromSlash(rel)) }

func (p *parser) goPkg(v *yaml.Node, s string) {
	if filepath.IsAbs(s) || path.IsAbs(s) {
		p.add(v.Line, "build.go", "%s is absolute; expected a directory relative to the target directory, such as ./cmd/mykv", quote(s))
		return
	}
	if strings.ContainsAny(s, "\x00\n\r") || strings.Contains(s, "...") {
		p.add(v.Line, "build.go", "%s is not a directory path; expected one main package such as ./cmd/mykv", quote(s))
		return
	}
	dir := p.local(s)
	fi, err := os.Stat(dir)
	if err != nil {
		p.add(v.Line, "build.go", "package directory %s does not exist (looked for %s); expected a Go main package directory relative to the target directory", quote(s), dir)
		return
	}
	if !fi.IsDir() {
		p.add(v.Line, "build.go", "%s is a file; expected the directory of a Go main package, such as ./cmd/mykv", quote(s))
		return
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		p.add(v.Line, "build.go", "cannot read package directory %s: %v", quote(s), err)
		return
	}
	hasGo := false
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".go") && !strings.HasSuffix(e.Name(), "_test.go") {
			hasGo = true
			break
		}
	}
	if !hasGo {
		p.add(v.Line, "build.go", "package directory %s holds no .go files; expected a Go main package", quote(s))
		return
	}
	clean := path.Clean(filepath.ToSlash(s))
	if clean != "." && !strings.HasPrefix(clean, "../") && clean != ".." {
		clean = "./" + clean
	}
	p.spec.Build.Go = clean
}

func (p *parser) dockerfile(v *yaml.Node, s string) {
	if filepath.IsAbs(s) || path.IsAbs(s) {
		p.add(v.Line, "build.dockerfile", "%s is absolute; expected a path relative to the target directory, such as Dockerfile", quote(s))
		return
	}
	f := p.local(s)
	fi, err := os.Stat(f)
	switch {
	case err != nil:
		p.add(v.Line, "build.dockerfile", "%s does not exist (looked for %s); expected a Dockerfile relative to the target directory", quote(s), f)
	case fi.IsDir():
		p.add(v.Line, "build.dockerfile", "%s is a directory; expected a Dockerfile", quote(s))
	default:
		p.spec.Build.Dockerfile = path.Clean(filepath.ToSlash(s))
	}
}

func (p *parser) command(k, v *yaml.Node) {
	const expect = `the node's command line as a list of strings, for example ["/target", "--id", "{{.Node}}", "--port", "{{.Port}}"]`
	if v.Kind != yaml.SequenceNode {
		switch {
		case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null":
			p.add(v.Line, "command", "has no value; expected %s", expect)
		case v.Kind == yaml.ScalarNode:
			p.add(v.Line, "command", "is a single string; expected %s (no shell splits it)", expect)
		default:
			p.add(v.Line, "command", "expected %s, got %s", expect, describe(v))
		}
		return
	}
	if len(v.Content) == 0 {
		p.add(v.Line, "command", "is empty; expected %s", expect)
		return
	}
	if len(v.Content) > maxCommand {
		p.add(v.Line, "command", "has %d elements; expected at most %d", len(v.Content), maxCommand)
		return
	}
	cmd := make([]string, 0, len(v.Content))
	lines := make([]int, 0, len(v.Content))
	ok := true
	for i, e := range v.Content {
		e = resolve(e)
		name := fmt.Sprintf("command[%d]", i)
		if e.Kind != yaml.ScalarNode || e.ShortTag() == "!!null" {
			p.add(e.Line, name, "expected a string, got %s", describe(e))
			ok = false
			continue
		}
		if strings.ContainsRune(e.Value, 0) {
			p.add(e.Line, name, "holds a NUL byte; expected plain text")
			ok = false
			continue
		}
		// Numbers and booleans are fine as arguments: use their text.
		cmd = append(cmd, e.Value)
		lines = append(lines, e.Line)
	}
	if !ok {
		return
	}
	if strings.TrimSpace(cmd[0]) == "" {
		p.add(lines[0], "command[0]", "is empty; expected the program to run, such as /target")
		return
	}
	p.spec.Command = cmd
	p.cmdLines = lines
}

// checkTemplates parses each command element as a template, rejects
// unknown fields and control structures, and executes it once on sample
// values so that a spec that loads can always be expanded.
func (p *parser) checkTemplates() {
	s := &p.spec
	tmpls := make([]*template.Template, len(s.Command))
	// The largest cluster: a spec that loads expands for any node count.
	all := s.NodeNames(MaxNodes)
	sample := s.data(all[MaxNodes-1], all)
	total := maxCommandBytes
	for i, c := range s.Command {
		line := 0
		if i < len(p.cmdLines) {
			line = p.cmdLines[i]
		}
		name := fmt.Sprintf("command[%d]", i)
		t, err := newTemplate(i, c)
		if err != nil {
			p.add(line, name, "%s: %v", quote(c), err)
			continue
		}
		var b strings.Builder
		if err := t.Execute(&limitedWriter{w: &b, n: min(maxExpansion, total)}, sample); err != nil {
			p.add(line, name, "%s: %v", quote(c), execProblem(err))
			continue
		}
		total -= b.Len()
		tmpls[i] = t
	}
	s.command = tmpls
}

// newTemplate parses one command element and checks that it uses only the
// known fields and no control structures (if, range, with, template,
// block): a command line is text with values filled in.
func newTemplate(i int, text string) (*template.Template, error) {
	t, err := template.New(fmt.Sprintf("command[%d]", i)).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template does not parse: %s; expected text with {{.Node}}, {{.Nodes}}, {{.Port}} or {{.DataDir}}", templateProblem(err))
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("defines templates; only {{.Field}} actions are supported")
	}
	if t.Tree == nil || t.Tree.Root == nil {
		return t, nil
	}
	for _, n := range t.Tree.Root.Nodes {
		if err := checkNode(n); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func checkNode(n tparse.Node) error {
	switch n := n.(type) {
	case *tparse.TextNode, *tparse.CommentNode:
		return nil
	case *tparse.ActionNode:
		return checkPipe(n.Pipe)
	default:
		return errors.New("control structures (if, range, with, template, block) are not supported; use only {{.Node}}, {{.Nodes}}, {{.Port}} and {{.DataDir}}")
	}
}

// checkPipe accepts exactly one known field per action. Functions and
// literals are refused: without them expanding a template costs time and
// memory linear in its length (printf "%999999d" would not).
func checkPipe(pipe *tparse.PipeNode) error {
	const only = "only {{.Node}}, {{.Nodes}}, {{.Port}} and {{.DataDir}} are supported; functions, literals and variables are not"
	if pipe == nil || len(pipe.Decl) > 0 || len(pipe.Cmds) != 1 || len(pipe.Cmds[0].Args) != 1 {
		return fmt.Errorf("{{%s}}: %s", pipe, only)
	}
	switch a := pipe.Cmds[0].Args[0].(type) {
	case *tparse.FieldNode:
		return checkField(a.Ident)
	case *tparse.ChainNode:
		return fmt.Errorf("{{%s}}: the fields are strings and have no fields of their own", pipe)
	}
	return fmt.Errorf("{{%s}}: %s", pipe, only)
}

func checkField(ident []string) error {
	if len(ident) == 0 {
		return nil
	}
	known := false
	for _, f := range TemplateFields {
		if ident[0] == f {
			known = true
		}
	}
	if !known {
		msg := fmt.Sprintf("unknown field .%s", ident[0])
		if s := nearest(ident[0], TemplateFields); s != "" {
			msg += fmt.Sprintf(" (did you mean .%s?)", s)
		}
		return fmt.Errorf("%s; known fields: .Node, .Nodes, .Port, .DataDir", msg)
	}
	if len(ident) > 1 {
		return fmt.Errorf(".%s is a string and has no field .%s", ident[0], ident[1])
	}
	return nil
}

// templateProblem trims text/template's "template: NAME:LINE: " prefix.
func templateProblem(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "template: ")
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "command[") {
		msg = msg[i+2:]
	}
	return oneLine(msg)
}

func execProblem(err error) string {
	if errors.Is(err, errTooLong) {
		return fmt.Sprintf("expands to more than %d KiB, or the whole command to more than %d KiB", maxExpansion>>10, maxCommandBytes>>10)
	}
	msg := err.Error()
	if i := strings.Index(msg, "error calling "); i >= 0 {
		msg = msg[i:]
	} else if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "template: ") {
		msg = msg[i+2:]
	}
	return "template cannot be expanded: " + oneLine(msg)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// safeName returns s if it looks like a field name, else s quoted, so that
// a message stays one line whatever the key.
func safeName(s string) string {
	if s == "" || len(s) > 40 {
		return quote(s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return quote(s)
		}
	}
	return s
}

// plain returns s as is if it is short printable text without spaces,
// else quoted (a tagged scalar such as !!int "1\n2" holds any text).
func plain(s string) string {
	if s == "" || len(s) > 40 {
		return quote(s)
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r > '~' {
			return quote(s)
		}
	}
	return s
}

// quote returns s in double quotes, shortened if long.
func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strconv.Quote(s)
}

// describe names the kind of a YAML node for a message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!str":
			return "the string " + quote(n.Value)
		case "!!int", "!!float":
			return "the number " + plain(n.Value)
		case "!!bool":
			return "the boolean " + plain(n.Value)
		}
		return "a value tagged " + quote(n.ShortTag())
	}
	return "something else"
}

// yamlErrLine extracts the line from a yaml.v3 error ("yaml: line 3: ...").
func yamlErrLine(err error) int {
	msg := err.Error()
	i := strings.Index(msg, "line ")
	if i < 0 {
		return 0
	}
	rest := msg[i+5:]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	n, _ := strconv.Atoi(rest[:j])
	return n
}

// yamlErrMsg drops the "yaml: line N: " prefix (the line is reported apart).
func yamlErrMsg(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if strings.HasPrefix(msg, "line ") {
		if i := strings.Index(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
	}
	return oneLine(msg)
}

// nearest returns the known name closest to s, or "" if none is close.
// Case, '-' and '_' are ignored, so dataDir and data-dir find data_dir; a
// known name that starts with s or that s starts with counts as close
// (golang finds go).
func nearest(s string, known []string) string {
	norm := func(x string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(x))
	}
	ns := norm(s)
	best, bestD := "", 1<<30
	for _, k := range known {
		nk := norm(k)
		d := editDistance(ns, nk)
		if len(ns) >= 2 && len(nk) >= 2 && (strings.HasPrefix(ns, nk) || strings.HasPrefix(nk, ns)) {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = k, d
		}
	}
	limit := 2
	if len(ns) <= 4 {
		limit = 1
	}
	if bestD > limit {
		return ""
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b
// (insertions, deletions, substitutions and transpositions of adjacent
// bytes). Inputs are capped so that a huge key cannot cost quadratic time.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
