// Command jepsen tests a distributed key-value store for linearizability
// under faults: it starts the store's nodes in Docker containers, runs
// concurrent clients against them while injecting faults, records every
// operation and checks the history with porcupine.
//
// Exit codes, as diff and grep use them: 0 valid, 1 invalid (a violation was
// found), 2 trouble (no verdict), 3 unknown (the checker gave up within its
// time budget), 130 interrupted.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	_ "github.com/jepsen-go/jepsen/targets/protocols" // every client protocol
)

// Exit codes of the jepsen command.
const (
	exitValid       = 0
	exitInvalid     = 1
	exitTrouble     = 2
	exitUnknown     = 3
	exitInterrupted = 130
)

// exitError carries an exit code up to main. A nil err means the command
// already said what it had to say.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// withCode wraps err so that the command exits with code.
func withCode(code int, err error) error { return &exitError{code: code, err: err} }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args and returns the process exit code.
// Errors are printed as one line on stderr; a panic is reported the same
// way (exit 2), never as a stack trace, unless JEPSEN_DEBUG is set.
func run(args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "jepsen: internal error: %v (please report this; set JEPSEN_DEBUG=1 for a stack trace)\n", p)
			if os.Getenv("JEPSEN_DEBUG") != "" {
				stderr.Write(debug.Stack())
			}
			code = exitTrouble
		}
	}()
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitValid
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			printErr(stderr, ee.err)
		}
		return ee.code
	}
	// Flag and argument errors from cobra.
	printErr(stderr, err)
	return exitTrouble
}

func printErr(w io.Writer, err error) {
	msg := strings.TrimSpace(err.Error())
	fmt.Fprintf(w, "jepsen: %s\n", msg)
}
