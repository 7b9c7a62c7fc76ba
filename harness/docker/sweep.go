package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// SweepOptions selects what Sweep removes.
type SweepOptions struct {
	// All also removes objects whose owner ran on another host (their
	// liveness cannot be checked from here) or whose owner labels are
	// missing or unreadable.
	All bool
	// RunPrefix limits the sweep to runs whose id starts with it ("" = all).
	RunPrefix string
}

// SweepReport lists what Sweep removed.
type SweepReport struct {
	Runs       []string // run ids whose objects were removed
	Containers []string // container names
	Networks   []string // network names
	Volumes    []string // volume names
}

// Empty reports whether nothing was removed.
func (r SweepReport) Empty() bool {
	return len(r.Containers)+len(r.Networks)+len(r.Volumes) == 0
}

// String summarises the report in one line.
func (r SweepReport) String() string {
	return fmt.Sprintf("removed %d containers, %d networks, %d volumes of %d runs (%s)",
		len(r.Containers), len(r.Networks), len(r.Volumes), len(r.Runs), strings.Join(r.Runs, ", "))
}

// OwnerLabels returns the labels that name this process as the owner of
// something it creates (LabelOwnerPID, LabelOwnerHost, LabelOwnerStart),
// for leftovers outside Docker that a later sweep must judge the same way.
func OwnerLabels() map[string]string {
	o := self()
	return map[string]string{LabelOwnerPID: strconv.Itoa(o.PID), LabelOwnerHost: o.Host, LabelOwnerStart: o.Start}
}

// OwnerGone reports whether the owner named by labels (as OwnerLabels
// gives them) has gone. Owners on another host, or labels without an
// owner, are never taken for gone.
func OwnerGone(l map[string]string) bool { return ownerGone(l, SweepOptions{}) }

// ownerGone decides from an object's labels whether its owner process has
// gone: its pid is not alive, is a zombie (killed, not yet reaped by its
// parent: `jepsen clean` right after a SIGKILL, or a container whose init
// does not reap), or is alive with another start time (a reused pid).
// Objects of another host, or without owner labels, are only swept with
// opts.All.
func ownerGone(l map[string]string, opts SweepOptions) bool {
	me := self()
	host, pidS, start := l[LabelOwnerHost], l[LabelOwnerPID], l[LabelOwnerStart]
	pid, err := strconv.Atoi(pidS)
	if err != nil || pid <= 0 || host == "" {
		return opts.All
	}
	if host != me.Host {
		return opts.All
	}
	state, cur, err := procStat(pid)
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	return state == "Z" || state == "X" || start != "" && cur != start
}

// Sweep removes the containers, networks and volumes labelled LabelRun
// whose owner process is gone (see SweepOptions), and reports what it
// removed. Objects of live runs are never touched. Images are kept.
func Sweep(ctx context.Context, opts SweepOptions) (SweepReport, error) {
	c, err := dockerClient()
	if err != nil {
		return SweepReport{}, err
	}
	return sweep(ctx, c, func(l map[string]string) bool {
		run := l[LabelRun]
		return strings.HasPrefix(run, opts.RunPrefix) && ownerGone(l, opts)
	})
}

// removeRun removes every object labelled with run id runID.
func removeRun(ctx context.Context, c *client.Client, runID string) (SweepReport, error) {
	return sweep(ctx, c, func(l map[string]string) bool { return l[LabelRun] == runID })
}

// sweep removes containers, then networks, then volumes labelled LabelRun
// for which pick is true.
func sweep(ctx context.Context, c *client.Client, pick func(map[string]string) bool) (SweepReport, error) {
	var rep SweepReport
	var errs []error
	runs := map[string]bool{}
	filter := make(client.Filters).Add("label", LabelRun)

	ctrs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		return rep, fmt.Errorf("sweep: list containers: %w", err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, ct := range ctrs.Items {
		if !pick(ct.Labels) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := removeContainer(ctx, c, ct.ID)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			name := ct.ID[:12]
			if len(ct.Names) > 0 {
				name = strings.TrimPrefix(ct.Names[0], "/")
			}
			rep.Containers = append(rep.Containers, name)
			runs[ct.Labels[LabelRun]] = true
		}()
	}
	wg.Wait()

	nets, err := c.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("sweep: list networks: %w", err))
	} else {
		for _, n := range nets.Items {
			if !pick(n.Labels) {
				continue
			}
			if _, err := c.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
				continue
			}
			rep.Networks = append(rep.Networks, n.Name)
			runs[n.Labels[LabelRun]] = true
		}
	}

	vols, err := c.VolumeList(ctx, client.VolumeListOptions{Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("sweep: list volumes: %w", err))
	} else {
		for _, v := range vols.Items {
			if !pick(v.Labels) {
				continue
			}
			if _, err := c.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
				continue
			}
			rep.Volumes = append(rep.Volumes, v.Name)
			runs[v.Labels[LabelRun]] = true
		}
	}
	for r := range runs {
		rep.Runs = append(rep.Runs, r)
	}
	sort.Strings(rep.Runs)
	sort.Strings(rep.Containers)
	sort.Strings(rep.Networks)
	sort.Strings(rep.Volumes)
	return rep, errors.Join(errs...)
}
