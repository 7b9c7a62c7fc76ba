package harness

import (
	"context"
	"slices"

	"github.com/jepsen-go/jepsen/harness/backend"
	"github.com/jepsen-go/jepsen/harness/durafs"
	"github.com/jepsen-go/jepsen/nemesis"
)

// DiskBackend is a Backend that can run the filesystem of the durability
// faults (power-loss, corrupt): a helper that serves every node's data
// directory and holds its unsynced writes (harness/durafs).
type DiskBackend interface {
	Backend
	// DiskRuntime starts and removes that helper for run runID.
	DiskRuntime(runID string) durafs.Runtime
}

// needsDisk reports whether kinds hold a durability fault.
func needsDisk(kinds []nemesis.Kind) bool {
	return slices.Contains(kinds, nemesis.KindPowerLoss) || slices.Contains(kinds, nemesis.KindCorrupt)
}

// prepareDisk starts the durability faults' filesystem helper when the run
// needs it, and returns how the nodes' commands are wrapped to start on
// it (nil when it is not needed). It fails, with one line, before any node
// starts when the filesystem cannot work here.
func (r *run) prepareDisk(ctx context.Context) (*backend.Wrap, error) {
	if !needsDisk(r.faults) {
		return nil, nil
	}
	db, ok := r.cfg.Backend.(DiskBackend)
	if !ok {
		return nil, trouble("--nemesis power-loss and corrupt need a backend that can run their filesystem; this one cannot")
	}
	image, err := r.selfImage(ctx)
	if err != nil {
		return nil, err
	}
	ctl := durafs.NewController(db.DiskRuntime(r.meta.RunID), durafs.ControllerOptions{
		Image: image, Binary: r.cfg.Binary, DataDir: r.spec.DataDir,
		Log: r.log,
	})
	if err := ctl.Prepare(ctx); err != nil {
		return nil, trouble("--nemesis power-loss and corrupt cannot work here: %w", err)
	}
	r.disk = ctl
	w := ctl.Wrap()
	r.progressf("jepsen: the nodes' data directories are served by a filesystem that loses unsynced writes on power loss")
	return &w, nil
}

// closeDisk removes the filesystem helper, after the nodes are gone.
func (r *run) closeDisk(ctx context.Context) {
	if r.disk == nil {
		return
	}
	if err := r.disk.Close(context.WithoutCancel(ctx)); err != nil {
		r.log.Error("close the durability faults' filesystem", "err", err)
	}
	r.disk = nil
}
