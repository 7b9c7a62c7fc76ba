// Command probenode is the tiny target of the fault agent's acceptance
// tests: it answers /health, echoes TCP on :7000, counts UDP datagrams on
// :7001 by tag, and on request sends datagrams or measures a TCP round trip
// to another node, so that a test can see which packets get through.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	mu   sync.Mutex
	seen = map[string]int{}
)

func main() {
	id := flag.String("id", os.Getenv("JEPSEN_NODE"), "node id")
	port := flag.Int("port", 8080, "HTTP port")
	flag.Parse()
	go tcpEcho()
	go udpCount()
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, *id) })
	// /udp/send?to=n1&n=20&tag=x sends n datagrams "x-i" to to:7001.
	http.HandleFunc("/udp/send", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.FormValue("n"))
		conn, err := net.Dial("udp4", net.JoinHostPort(r.FormValue("to"), "7001"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer conn.Close()
		for i := 0; i < n; i++ {
			fmt.Fprintf(conn, "%s-%d", r.FormValue("tag"), i)
			time.Sleep(time.Millisecond)
		}
	})
	// /udp/seen?tag=x: how many datagrams tagged x arrived.
	http.HandleFunc("/udp/seen", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(w, seen[r.FormValue("tag")])
	})
	// /tcp/rtt?to=n2&n=10: median round trip in microseconds of n
	// ping-pongs with to:7000, or 502 if it cannot connect within 2 s.
	http.HandleFunc("/tcp/rtt", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.FormValue("n"))
		d, err := rtt(r.FormValue("to"), max(n, 1))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintln(w, d.Microseconds())
	})
	if err := http.ListenAndServe(":"+strconv.Itoa(*port), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func tcpEcho() {
	ln, err := net.Listen("tcp4", ":7000")
	if err != nil {
		panic(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if _, err := c.Write([]byte(line)); err != nil {
					return
				}
			}
		}()
	}
}

func udpCount() {
	pc, err := net.ListenPacket("udp4", ":7001")
	if err != nil {
		panic(err)
	}
	buf := make([]byte, 2048)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			continue
		}
		tag, _, _ := strings.Cut(string(buf[:n]), "-")
		mu.Lock()
		seen[tag]++
		mu.Unlock()
	}
}

func rtt(to string, n int) (time.Duration, error) {
	c, err := net.DialTimeout("tcp4", net.JoinHostPort(to, "7000"), 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	br := bufio.NewReader(c)
	var ds []time.Duration
	for i := 0; i < n; i++ {
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		t0 := time.Now()
		if _, err := fmt.Fprintf(c, "ping %d\n", i); err != nil {
			return 0, err
		}
		if _, err := br.ReadString('\n'); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(t0))
	}
	slices.Sort(ds)
	return ds[len(ds)/2], nil
}
