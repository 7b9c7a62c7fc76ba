// Command timenode is the tiny target of the clock agent's acceptance
// tests: a static Go binary that answers /health and, on /time, its wall
// clock (time.Now().UnixNano()) and the nanoseconds its monotonic clock
// counted since it started.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	id := flag.String("id", os.Getenv("JEPSEN_NODE"), "node id")
	port := flag.Int("port", 8080, "HTTP port")
	flag.Parse()
	start := time.Now()
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, *id) })
	http.HandleFunc("/time", func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		fmt.Fprintf(w, "%d %d\n", now.UnixNano(), now.Sub(start).Nanoseconds())
	})
	if err := http.ListenAndServe(fmt.Sprintf(":%d", *port), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
