package clockfault

import (
	"fmt"
	"os"
	"testing"
)

// roleEnv makes the test binary play the child of the local tests.
const roleEnv = "CLOCKFAULT_TEST_ROLE"

// TestMain lets the test binary double as the clock agent (the sidecars
// run this very binary, from docker.SelfImage, as `/jepsen clockfault
// ...`) and as the child process of the local tests.
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "timechild" {
		timeChild()
		os.Exit(0)
	}
	if len(os.Args) > 1 && os.Args[1] == "clockfault" {
		if err := Main(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
