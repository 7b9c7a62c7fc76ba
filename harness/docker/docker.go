// Package docker is the Docker backend of the harness: it builds images
// without a registry, runs the nodes of a target as containers on a private
// network, injects process faults (kill, stop, pause) and always cleans up
// what it created.
//
// Containers are created and started through testcontainers-go (with its
// Ryuk reaper turned off); networks, volumes, builds, pause, kill, exec, logs
// and listing by label go through the moby client directly. Every object the
// package creates, except images (a cache), carries the labels LabelRun,
// LabelOwnerPID, LabelOwnerHost and LabelOwnerStart, so that Sweep can remove
// what a crashed run left behind.
package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/moby/moby/client"
)

// Label keys put on every container, network and volume this package creates.
const (
	// LabelRun names the run an object belongs to (Config.RunID).
	LabelRun = "jepsen.run"
	// LabelOwnerPID is the process id of the harness that created the object.
	LabelOwnerPID = "jepsen.owner.pid"
	// LabelOwnerHost is the host name of the machine the owner runs on.
	LabelOwnerHost = "jepsen.owner.host"
	// LabelOwnerStart is the owner's start time in clock ticks since boot
	// (field 22 of /proc/PID/stat), so that a reused PID is not mistaken
	// for the owner.
	LabelOwnerStart = "jepsen.owner.start"
	// LabelNode names the node a container or volume belongs to.
	LabelNode = "jepsen.node"
	// LabelRole says what an object is: "node", "sidecar", "network" or "volume".
	LabelRole = "jepsen.role"
	// LabelImage marks images built by this package (they are not removed
	// by Close or Sweep: they are a cache).
	LabelImage = "jepsen.image"
)

var (
	cliOnce sync.Once
	cli     *client.Client
	cliErr  error
)

// dockerClient returns the process-wide moby client. The API version is
// negotiated with the daemon on first use (API 1.41 on Docker 20.10).
func dockerClient() (*client.Client, error) {
	cliOnce.Do(func() {
		cli, cliErr = client.New(client.FromEnv)
		if cliErr != nil {
			cliErr = fmt.Errorf("docker client: %w", cliErr)
		}
	})
	return cli, cliErr
}

var tcOnce sync.Once

// tcInit configures testcontainers before its first use: no Ryuk reaper
// (its image would have to be pulled; this package sweeps by label instead)
// and no chatter on stderr.
func tcInit() {
	tcOnce.Do(func() {
		_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
		tclog.SetDefault(tclog.NewNoopLogger())
	})
}

// Available reports whether the Docker daemon is reachable.
func Available(ctx context.Context) error {
	c, err := dockerClient()
	if err != nil {
		return err
	}
	if _, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return fmt.Errorf("docker daemon not reachable: %w", err)
	}
	return nil
}

// owner identifies the running process in labels.
type owner struct {
	PID   int
	Host  string
	Start string
}

var (
	selfOnce  sync.Once
	selfOwner owner
)

// self returns the owner labels of this process.
func self() owner {
	selfOnce.Do(func() {
		host, _ := os.Hostname()
		pid := os.Getpid()
		start, _ := procStartTime(pid)
		selfOwner = owner{PID: pid, Host: host, Start: start}
	})
	return selfOwner
}

// procStartTime returns field 22 (starttime) of /proc/PID/stat.
func procStartTime(pid int) (string, error) {
	_, start, err := procStat(pid)
	return start, err
}

// procStat returns fields 3 (state: R, S, Z for a zombie, ...) and 22
// (starttime) of /proc/PID/stat.
func procStat(pid int) (state, start string, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", "", err
	}
	return parseStat(string(b))
}

// parseStatStart extracts the starttime field from the text of
// /proc/PID/stat.
func parseStatStart(stat string) (string, error) {
	_, start, err := parseStat(stat)
	return start, err
}

// parseStat extracts the state and starttime fields from the text of
// /proc/PID/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted after its last ')'.
func parseStat(stat string) (state, start string, err error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return "", "", errors.New("malformed /proc stat: no ')'")
	}
	fields := strings.Fields(stat[i+1:])
	// fields[0] is field 3 (state); starttime is field 22.
	const idx = 22 - 3
	if len(fields) <= idx {
		return "", "", fmt.Errorf("malformed /proc stat: %d fields after comm", len(fields))
	}
	if _, err := strconv.ParseUint(fields[idx], 10, 64); err != nil {
		return "", "", fmt.Errorf("malformed /proc stat: starttime %q", fields[idx])
	}
	return fields[0], fields[idx], nil
}

// labels returns the labels for an object of run runID.
func labels(runID, role, node string) map[string]string {
	l := OwnerLabels()
	l[LabelRun] = runID
	l[LabelRole] = role
	if node != "" {
		l[LabelNode] = node
	}
	return l
}
