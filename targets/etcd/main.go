// Command target is the etcd server (go.etcd.io/etcd/server/v3) built
// unchanged from the Go module proxy: its main is etcd's own etcdmain.Main,
// so every etcd flag and ETCD_* environment variable works as documented.
//
// One convenience is added for jepsen, because a jepsen.yaml command can
// only name the node list as "n1,n2,n3": when neither --initial-cluster nor
// ETCD_INITIAL_CLUSTER is given and JEPSEN_NODES is set (the harness sets
// it on every node), ETCD_INITIAL_CLUSTER is derived from it as
// n1=http://n1:2380,n2=http://n2:2380,... (the peer port can be changed
// with JEPSEN_ETCD_PEER_PORT).
//
// It lives in its own Go module so that etcd server's dependency tree stays
// out of the jepsen module (and out of its go test ./...); the harness
// builds it with `build: go: .` (see jepsen.yaml) into a FROM scratch image.
package main

import (
	"os"
	"strings"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	if cluster, ok := initialCluster(os.Args[1:], os.Getenv); ok {
		os.Setenv("ETCD_INITIAL_CLUSTER", cluster)
	}
	etcdmain.Main(os.Args)
}

// initialCluster derives etcd's initial cluster from JEPSEN_NODES when the
// command line and environment leave it unset.
func initialCluster(args []string, getenv func(string) string) (string, bool) {
	if getenv("ETCD_INITIAL_CLUSTER") != "" {
		return "", false
	}
	for _, a := range args {
		if a == "--initial-cluster" || a == "-initial-cluster" ||
			strings.HasPrefix(a, "--initial-cluster=") || strings.HasPrefix(a, "-initial-cluster=") {
			return "", false
		}
	}
	nodes := getenv("JEPSEN_NODES")
	if nodes == "" {
		return "", false
	}
	port := getenv("JEPSEN_ETCD_PEER_PORT")
	if port == "" {
		port = "2380"
	}
	var parts []string
	for _, n := range strings.Split(nodes, ",") {
		if n = strings.TrimSpace(n); n != "" {
			parts = append(parts, n+"=http://"+n+":"+port)
		}
	}
	return strings.Join(parts, ","), len(parts) > 0
}
