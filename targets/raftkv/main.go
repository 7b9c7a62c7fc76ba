// Command raftkv is jepsen's reference key-value store: a Raft-replicated
// map that speaks the `http` target protocol. See README.md.
package main

import (
	"fmt"
	"os"

	"github.com/jepsen-go/jepsen/targets/raftkv/server"
)

func main() {
	if err := server.Main(os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
