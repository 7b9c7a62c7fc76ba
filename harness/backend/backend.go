// Package backend holds the neutral types that the harness, its fault
// agents and the cluster backends (Docker today; Kubernetes or SSH later)
// share: what runs next to a node, and how a node ended. It imports
// nothing of ours, so every backend can use it.
package backend

import "time"

// Sidecar describes a helper that runs next to one node, in its network
// namespace, as the fault agents do: what it runs, with which extra
// capabilities, and which other namespaces of the node it shares. Docker
// runs it as a container joined to the node's; Kubernetes would run it as
// an ephemeral container of the node's pod.
type Sidecar struct {
	// Name distinguishes the sidecar among the node's (a counter is used
	// if empty).
	Name string
	// Image is a local image holding the helper, e.g. the jepsen binary's.
	Image string
	// Cmd is the command; nil runs the image's default.
	Cmd []string
	// Env is the environment, KEY=VALUE.
	Env []string
	// CapAdd lists extra capabilities, e.g. NET_ADMIN.
	CapAdd []string
	// SharePID also joins the node's PID namespace.
	SharePID bool
	// Binds are bind mounts, HOST_DIR:CONTAINER_DIR.
	Binds []string
}

// Exit is a node's process ending when no kill, stop or teardown asked it
// to.
type Exit struct {
	// Node is the node's name.
	Node string
	// Code is the process's exit status (137 for SIGKILL).
	Code int64
	// At is when the backend saw it end.
	At time.Time
	// Log holds the node's last log lines.
	Log []string
}

// Wrap runs a program of the harness before the command of every node, in
// the node's own container, with the node's image and binary unchanged: a
// program that prepares something (a filesystem mounted over the data
// directory) and then execs the node's command.
type Wrap struct {
	// Prefix returns the start of node's command line: the node's
	// entrypoint becomes Prefix(node) followed by the image's entrypoint
	// and the node's command.
	Prefix func(node string) []string
	// Binds are bind mounts added to every node, HOST_DIR:DIR[:ro]: where
	// the wrapping program comes from.
	Binds []string
}
