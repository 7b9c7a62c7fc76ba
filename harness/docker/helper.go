package docker

import (
	"bytes"
	"context"
	"fmt"
	"github.com/jepsen-go/jepsen/harness/backend"
	"io"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Wrap runs a program of the harness before the command of every node,
// in the node's container, with the node's image and binary unchanged.
type Wrap = backend.Wrap

// wrapped returns the entrypoint and command of a node whose command
// (nil: the image's) is wrapped by w.
func wrapped(ctx context.Context, cli *client.Client, image string, w *Wrap, node string, cmd []string) (entrypoint, command []string, err error) {
	res, err := cli.ImageInspect(ctx, image)
	if err != nil {
		return nil, nil, fmt.Errorf("inspect image %s: %w", image, err)
	}
	var ep []string
	if cfg := res.Config; cfg != nil {
		ep = cfg.Entrypoint
		if cmd == nil {
			cmd = cfg.Cmd
		}
	}
	command = append(append([]string(nil), ep...), cmd...)
	if len(command) == 0 {
		return nil, nil, fmt.Errorf("image %s has no entrypoint or command to wrap", image)
	}
	return w.Prefix(node), command, nil
}

// Helper describes a privileged helper container of a run that belongs to
// no node: no network, labelled with the run (role "helper") so that
// Close and Sweep remove it.
type Helper struct {
	// Name distinguishes it: the container is jepsen-RUN-NAME.
	Name string
	// Image is a local image, e.g. from SelfImage.
	Image string
	// Cmd is the command.
	Cmd []string
	// CapAdd lists extra capabilities, e.g. SYS_ADMIN.
	CapAdd []string
	// Devices are host devices made available, e.g. /dev/fuse.
	Devices []string
	// Binds are bind mounts, HOST_DIR:CONTAINER_DIR.
	Binds []string
	// SecurityOpt are security options, e.g. apparmor=unconfined.
	SecurityOpt []string
}

// RunHelper creates and starts h for run runID and returns its id. On
// failure nothing is left.
func RunHelper(ctx context.Context, runID string, h Helper) (string, error) {
	if !runIDRe.MatchString(runID) {
		return "", fmt.Errorf("helper %s: bad run id %q", h.Name, runID)
	}
	c, err := dockerClient()
	if err != nil {
		return "", err
	}
	if err := EnsureImage(ctx, h.Image); err != nil {
		return "", fmt.Errorf("helper %s: %w", h.Name, err)
	}
	var devs []container.DeviceMapping
	for _, d := range h.Devices {
		devs = append(devs, container.DeviceMapping{PathOnHost: d, PathInContainer: d, CgroupPermissions: "rwm"})
	}
	res, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: "jepsen-" + runID + "-" + h.Name,
		Config: &container.Config{
			Image: h.Image, Cmd: h.Cmd, Labels: labels(runID, "helper", ""),
		},
		HostConfig: &container.HostConfig{
			NetworkMode: "none",
			CapAdd:      h.CapAdd,
			Binds:       h.Binds,
			SecurityOpt: h.SecurityOpt,
			Resources:   container.Resources{Devices: devs},
			LogConfig:   container.LogConfig{Type: "json-file"},
		},
	})
	if err != nil {
		return "", fmt.Errorf("helper %s: create: %w", h.Name, err)
	}
	if _, err := c.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		_ = removeContainer(context.WithoutCancel(ctx), c, res.ID)
		return "", fmt.Errorf("helper %s: start: %w", h.Name, err)
	}
	return res.ID, nil
}

// RemoveHelper force-removes helper id; one that is gone is not an error.
func RemoveHelper(ctx context.Context, id string) error {
	c, err := dockerClient()
	if err != nil {
		return err
	}
	return removeContainer(ctx, c, id)
}

// HelperLogs returns the last lines a helper wrote (stdout and stderr),
// for an error message; "" if there are none or they cannot be read.
func HelperLogs(ctx context.Context, id string) string {
	c, err := dockerClient()
	if err != nil {
		return ""
	}
	rc, err := c.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "20"})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var out bytes.Buffer
	_, _ = stdcopy.StdCopy(&out, &out, io.LimitReader(rc, 64<<10))
	return strings.TrimSpace(out.String())
}

// ELFDeps returns the paths of the ELF interpreter and of every shared
// library that binary needs (none for a static binary): what must come
// with it to run it in another file system.
func ELFDeps(binary string) ([]string, error) { return elfDeps(binary) }
