package durafs

import (
	"fmt"
	"os"
	"testing"
)

// TestMain lets the test binary double as the filesystem's program: the
// helper and the nodes run this very binary as `durafs ...`.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "durafs" {
		if err := Main(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
