// Package protocols links every client protocol into the binary: each
// import below registers one protocol with targets.Register. A new protocol
// is its own package plus one line here.
package protocols

import (
	_ "github.com/jepsen-go/jepsen/targets/etcdkv"  // etcd: the etcd v3 API (go.etcd.io/etcd/client/v3)
	_ "github.com/jepsen-go/jepsen/targets/httpkv"  // http: the HTTP contract of docs/protocol.md
	_ "github.com/jepsen-go/jepsen/targets/rediskv" // redis: RESP (github.com/redis/go-redis/v9)
)
