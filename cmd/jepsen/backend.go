package main

import (
	"context"
	"fmt"

	"github.com/jepsen-go/jepsen/harness"
	"github.com/jepsen-go/jepsen/harness/docker"
	"github.com/jepsen-go/jepsen/harness/durafs"
	"github.com/jepsen-go/jepsen/targets"
)

// dockerBackend runs the nodes as containers of the local Docker daemon:
// the backend jepsen uses. It adapts package docker to harness.Backend.
type dockerBackend struct{}

var _ harness.DiskBackend = dockerBackend{}

func (dockerBackend) DiskRuntime(runID string) durafs.Runtime { return durafs.DockerRuntime(runID) }

func (dockerBackend) Available(ctx context.Context) error {
	if err := docker.Available(ctx); err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	return nil
}

func (dockerBackend) Sweep(ctx context.Context) (string, error) {
	rep, err := docker.Sweep(ctx, docker.SweepOptions{})
	if err != nil || rep.Empty() {
		return "", err
	}
	return rep.String(), nil
}

func (dockerBackend) Image(ctx context.Context, dir string, b targets.Build) (string, error) {
	switch {
	case b.Go != "":
		return docker.BuildGo(ctx, dir, b.Go)
	case b.Dockerfile != "":
		return docker.BuildDockerfile(ctx, dir, b.Dockerfile)
	}
	return b.Image, docker.EnsureImage(ctx, b.Image)
}

func (dockerBackend) SelfImage(ctx context.Context, binary string) (string, error) {
	return docker.SelfImage(ctx, binary)
}

func (dockerBackend) Start(ctx context.Context, cfg harness.ClusterConfig) (harness.Cluster, error) {
	c, err := docker.Start(ctx, docker.Config{
		RunID:        cfg.RunID,
		Image:        cfg.Image,
		Nodes:        cfg.Nodes,
		Command:      func(node string) []string { return cfg.Command[node] },
		Env:          func(node string) []string { return cfg.Env[node] },
		Port:         cfg.Port,
		DataDir:      cfg.DataDir,
		Ready:        cfg.Ready,
		ReadyTimeout: cfg.ReadyTimeout,
		LogDir:       cfg.LogDir,
		Wrap:         cfg.Wrap,
		Log:          cfg.Log,
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}
