package targets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics, that every error is a
// *SpecError whose problems are single lines naming the file, and that
// every accepted spec is complete and expands for a small cluster.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/valid/*/jepsen.yaml", "testdata/bad/*.yaml"} {
		files, err := filepath.Glob(dir)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte(Example))
	// The spec's directory holds a Go package and a Dockerfile, so that
	// inputs can reach the successful paths of build checks.
	const file = "testdata/valid/go/jepsen.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		// A slow input must be reported, not wait silently: crashing the
		// worker makes the fuzzer save the input.
		watchdog := time.AfterFunc(5*time.Second, func() {
			panic(fmt.Sprintf("Parse took more than 5s on %q", data))
		})
		defer watchdog.Stop()
		spec, err := Parse(data, file)
		if err != nil {
			if spec != nil {
				t.Fatalf("Parse returned a spec and an error: %v", err)
			}
			var se *SpecError
			if !errors.As(err, &se) || len(se.Problems) == 0 {
				t.Fatalf("error %T without problems: %v", err, err)
			}
			for _, p := range se.Problems {
				line := p.Error()
				if strings.ContainsAny(line, "\n\r") {
					t.Fatalf("problem is not one line: %q", line)
				}
				if !strings.HasPrefix(line, file) {
					t.Fatalf("problem does not name the file: %q", line)
				}
				if p.Msg == "" {
					t.Fatalf("problem without a message: %+v", p)
				}
			}
			return
		}
		switch {
		case spec.Nodes < 1 || spec.Nodes > MaxNodes:
			t.Fatalf("accepted nodes %d", spec.Nodes)
		case spec.Port < 1 || spec.Port > 65535:
			t.Fatalf("accepted port %d", spec.Port)
		case len(spec.Command) == 0 || spec.Command[0] == "":
			t.Fatalf("accepted command %q", spec.Command)
		case !strings.HasPrefix(spec.DataDir, "/") || spec.DataDir == "/":
			t.Fatalf("accepted data_dir %q", spec.DataDir)
		case !strings.HasPrefix(spec.Ready, "/"):
			t.Fatalf("accepted ready %q", spec.Ready)
		case spec.Protocol != "http":
			t.Fatalf("accepted protocol %q", spec.Protocol)
		case checkName(spec.Name) != nil:
			t.Fatalf("accepted name %q", spec.Name)
		}
		n := 0
		for _, m := range []string{spec.Build.Go, spec.Build.Dockerfile, spec.Build.Image} {
			if m != "" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("accepted build %+v", spec.Build)
		}
		nodes := spec.NodeNames(MaxNodes)
		for _, node := range nodes {
			cmd, err := spec.CommandFor(node, nodes)
			if err != nil {
				t.Fatalf("accepted command %q does not expand: %v", spec.Command, err)
			}
			if len(cmd) != len(spec.Command) {
				t.Fatalf("expanded command has %d elements, want %d", len(cmd), len(spec.Command))
			}
		}
	})
}
