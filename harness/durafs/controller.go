package durafs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jepsen-go/jepsen/harness/docker"
	"github.com/jepsen-go/jepsen/history"
)

// Helper describes the privileged helper container the server runs in.
type Helper struct {
	Name    string
	Image   string
	Cmd     []string
	CapAdd  []string
	Devices []string
	Binds   []string // HOST_DIR:CONTAINER_DIR
	// SecurityOpt are security options, e.g. apparmor=unconfined.
	SecurityOpt []string
}

// Runtime starts and removes the helper. DockerRuntime is the Docker one.
type Runtime interface {
	RunHelper(ctx context.Context, h Helper) (id string, err error)
	RemoveHelper(ctx context.Context, id string) error
	// HelperLogs returns the helper's last lines, for an error message.
	HelperLogs(ctx context.Context, id string) string
}

// Nodes is what PowerLoss and Corrupt need from the cluster.
// *docker.Cluster satisfies it.
type Nodes interface {
	// Kill sends SIGKILL to the node's process and returns once it is
	// gone.
	Kill(ctx context.Context, node string) error
	// Running reports whether the node's process runs.
	Running(ctx context.Context, node string) (bool, error)
}

// ControllerOptions configure a Controller.
type ControllerOptions struct {
	// Image is the helper's image, from docker.SelfImage: its /jepsen
	// runs Main for the Command subcommand.
	Image string
	// Command is the helper's command prefix (default /jepsen durafs).
	Command []string
	// Binary is the program put into every node to run Exec (default:
	// the running executable); BinaryArgs is its subcommand (default
	// durafs). A dynamically linked one comes with its loader and
	// libraries.
	Binary     string
	BinaryArgs []string
	// DataDir is the nodes' data directory, mounted over.
	DataDir string
	// SyncBacking and MaxCached are the mounts' Options.
	SyncBacking bool
	MaxCached   int64
	// MountTimeout bounds a node's wait for its mount (default 20 s, so
	// that a node whose helper is gone says why in its log before the
	// cluster's readiness wait ends).
	MountTimeout time.Duration
	// Log receives one line per action; nil discards them.
	Log *slog.Logger
}

// Paths inside the containers.
const (
	nodeDir   = "/.jepsen-durafs" // the host directory, read-only, in a node
	helperDir = "/run/durafs"     // the host directory in the helper
	sockName  = "durafs.sock"
	// DirPrefix starts the name of a controller's host directory, in the
	// system's temporary directory (see SweepDirs).
	DirPrefix = "jepsen-durafs-"
	ownerFile = "owner.json"
)

// Controller runs the filesystem for the nodes of one run: one helper
// container (with /dev/fuse and CAP_SYS_ADMIN) serves every node's mount;
// each node's command is wrapped (Wrap) so that it starts only once its
// data directory is mounted, after every (re)start. It is safe for
// concurrent use.
type Controller struct {
	rt   Runtime
	opts ControllerOptions

	mu     sync.Mutex
	dir    string // the host directory: socket and program
	helper string // helper container id
	nodes  Nodes
	prefix []string // the node program's command line up to its arguments
}

// NewController returns a controller; nothing runs before Prepare.
func NewController(rt Runtime, opts ControllerOptions) *Controller {
	if len(opts.Command) == 0 {
		opts.Command = []string{"/jepsen", "durafs"}
	}
	if len(opts.BinaryArgs) == 0 {
		opts.BinaryArgs = []string{"durafs"}
	}
	if opts.MountTimeout <= 0 {
		opts.MountTimeout = 20 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Controller{rt: rt, opts: opts}
}

// Prepare makes the host directory the helper and the nodes share, puts
// the node program in it, starts the helper and has it mount a probe
// filesystem. Its error is one line saying why power loss cannot work
// here. Call it before the nodes start; on error nothing is left.
func (c *Controller) Prepare(ctx context.Context) (err error) {
	t0 := time.Now()
	if !filepath.IsAbs(c.opts.DataDir) {
		return fmt.Errorf("power-loss needs the target's data directory (an absolute path), got %q", c.opts.DataDir)
	}
	dir, err := os.MkdirTemp("", DirPrefix)
	if err != nil {
		return fmt.Errorf("power-loss: %w", err)
	}
	defer func() {
		if err != nil {
			_ = c.Close(context.WithoutCancel(ctx))
		}
	}()
	c.mu.Lock()
	c.dir = dir
	c.mu.Unlock()
	// The nodes' users must reach the program and the socket.
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("power-loss: %w", err)
	}
	if b, err := json.Marshal(docker.OwnerLabels()); err == nil {
		_ = os.WriteFile(filepath.Join(dir, ownerFile), b, 0o644)
	}
	prefix, err := installProgram(c.opts.Binary, filepath.Join(dir, "bin"), nodeDir+"/bin")
	if err != nil {
		return fmt.Errorf("power-loss: %w", err)
	}
	c.mu.Lock()
	c.prefix = append(prefix, c.opts.BinaryArgs...)
	c.mu.Unlock()
	cmd := append(append([]string(nil), c.opts.Command...), "serve", "--socket", helperDir+"/"+sockName)
	if c.opts.SyncBacking {
		cmd = append(cmd, "--sync-backing")
	}
	if c.opts.MaxCached > 0 {
		cmd = append(cmd, fmt.Sprintf("--max-cached=%d", c.opts.MaxCached))
	}
	if _, err := os.Stat("/dev/fuse"); err != nil && !isRemoteDocker() {
		return fmt.Errorf("power-loss needs /dev/fuse on the Docker host: %w", err)
	}
	id, err := c.rt.RunHelper(ctx, Helper{
		Name: "durafs", Image: c.opts.Image, Cmd: cmd,
		CapAdd: []string{"SYS_ADMIN"}, Devices: []string{"/dev/fuse"},
		Binds: []string{dir + ":" + helperDir},
		// Docker's default AppArmor profile forbids mount(2); on a host
		// without AppArmor the option changes nothing.
		SecurityOpt: []string{"apparmor=unconfined"},
	})
	if err != nil {
		return fmt.Errorf("power-loss: cannot start the filesystem helper: %w", err)
	}
	c.mu.Lock()
	c.helper = id
	c.mu.Unlock()
	if _, err := call(c.socket(), request{Op: "probe"}, nil, 10*time.Second, 30*time.Second); err != nil {
		if errors.Is(err, errNoServer) {
			return fmt.Errorf("power-loss: the filesystem helper's socket did not appear in %s within 10 s: the Docker daemon must run on this machine (%v)", dir, err)
		}
		msg := err.Error()
		if logs := c.rt.HelperLogs(ctx, id); logs != "" {
			msg += " (helper: " + strings.ReplaceAll(logs, "\n", "; ") + ")"
		}
		return fmt.Errorf("power-loss: the filesystem helper cannot mount FUSE here: %s", msg)
	}
	c.opts.Log.Info(fmt.Sprintf("durafs: helper ready in %v", time.Since(t0).Round(time.Millisecond)))
	return nil
}

// isRemoteDocker reports whether DOCKER_HOST names another machine.
func isRemoteDocker() bool {
	h := os.Getenv("DOCKER_HOST")
	return h != "" && !strings.HasPrefix(h, "unix://")
}

// socket returns the server's socket on this host.
func (c *Controller) socket() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return filepath.Join(c.dir, sockName)
}

// Wrap returns what the nodes' containers need: the start of each node's
// command line (the node program waiting for its mount) and the bind
// mount of the host directory. Call it after Prepare.
func (c *Controller) Wrap() docker.Wrap {
	c.mu.Lock()
	dir, prefix := c.dir, append([]string(nil), c.prefix...)
	c.mu.Unlock()
	return docker.Wrap{
		Prefix: func(node string) []string {
			return append(append([]string(nil), prefix...), "exec", "--socket", nodeDir+"/"+sockName,
				"--node", node, "--dir", c.opts.DataDir, "--timeout", c.opts.MountTimeout.String(), "--")
		},
		Binds: []string{dir + ":" + nodeDir + ":ro"},
	}
}

// Attach gives the controller the cluster's nodes, for PowerLoss and
// Corrupt.
func (c *Controller) Attach(n Nodes) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes = n
}

func (c *Controller) cluster() (Nodes, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nodes == nil {
		return nil, errors.New("durafs: no nodes attached")
	}
	return c.nodes, nil
}

// awaitTimeout bounds the wait for a killed node's mount to end.
const awaitTimeout = 20 * time.Second

// PowerLoss cuts node's power: its process dies at once (SIGKILL) and
// every write to its data directory that was not durable is lost. The
// node can then be started again on its durable data.
func (c *Controller) PowerLoss(ctx context.Context, node string) error {
	_, err := c.PowerLossStats(ctx, node)
	return err
}

// PowerLossStats is PowerLoss; it returns the counters of the mount that
// ended (Dropped: the bytes lost).
func (c *Controller) PowerLossStats(ctx context.Context, node string) (Stats, error) {
	nodes, err := c.cluster()
	if err != nil {
		return Stats{}, err
	}
	t0 := time.Now()
	rep, err := call(c.socket(), request{Op: "power-loss", Node: node}, nil, 5*time.Second, 30*time.Second)
	if err != nil {
		return Stats{}, fmt.Errorf("power-loss %s: %w", node, err)
	}
	if err := nodes.Kill(ctx, node); err != nil {
		return Stats{}, fmt.Errorf("power-loss %s: %w", node, err)
	}
	if !rep.Armed {
		c.opts.Log.Info(fmt.Sprintf("durafs: power-loss %s: it was down; nothing to lose", node))
		return Stats{}, nil
	}
	rep, err = call(c.socket(), request{Op: "await", Node: node, TimeoutMS: awaitTimeout.Milliseconds()}, nil,
		5*time.Second, awaitTimeout+10*time.Second)
	if err != nil {
		return Stats{}, fmt.Errorf("power-loss %s: %w", node, err)
	}
	var st Stats
	if rep.Stats != nil {
		st = *rep.Stats
	}
	c.opts.Log.Info(fmt.Sprintf("durafs: power-loss %s in %v: %d unsynced bytes lost (%d writes, %d syncs in that mount)",
		node, time.Since(t0).Round(time.Millisecond), st.Dropped, st.Writes, st.Syncs))
	return st, nil
}

// Corrupt damages one file of node's data directory while the node is
// down: it flips bits of one byte, or truncates the file, choosing with
// rng the file (among the non-empty files the store wrote, else among all
// non-empty files, in path order), the kind and the offset. It returns
// what it did.
func (c *Controller) Corrupt(ctx context.Context, node string, rng *rand.Rand) (history.Corruption, error) {
	cor, err := c.CorruptDetail(ctx, node, rng)
	if err != nil {
		return history.Corruption{}, err
	}
	return cor.History(), nil
}

// History returns c as the history records it.
func (c Corruption) History() history.Corruption {
	h := history.Corruption{File: c.File, Offset: c.Offset, Kind: c.Kind, Length: 1}
	if c.Kind == KindTruncate {
		h.Kind, h.Length = history.CorruptTruncate, c.Size-c.Offset
	} else {
		h.Kind = history.CorruptBitFlip
	}
	return h
}

// CorruptDetail is Corrupt; it returns the corruption with the bits
// flipped and the file's size before.
func (c *Controller) CorruptDetail(ctx context.Context, node string, rng *rand.Rand) (Corruption, error) {
	nodes, err := c.cluster()
	if err != nil {
		return Corruption{}, err
	}
	if up, err := nodes.Running(ctx, node); err != nil {
		return Corruption{}, fmt.Errorf("corrupt %s: %w", node, err)
	} else if up {
		return Corruption{}, fmt.Errorf("corrupt %s: the node runs; stop or kill it first", node)
	}
	// A killed node's mount ends just after its process: wait for it.
	if _, err := call(c.socket(), request{Op: "await", Node: node, TimeoutMS: awaitTimeout.Milliseconds()}, nil,
		5*time.Second, awaitTimeout+10*time.Second); err != nil {
		return Corruption{}, fmt.Errorf("corrupt %s: %w", node, err)
	}
	rep, err := call(c.socket(), request{Op: "files", Node: node}, nil, 5*time.Second, 30*time.Second)
	if err != nil {
		return Corruption{}, fmt.Errorf("corrupt %s: %w", node, err)
	}
	cor, err := ChooseCorruption(rep.Files, rng)
	if err != nil {
		return Corruption{}, fmt.Errorf("corrupt %s: %w", node, err)
	}
	if _, err := call(c.socket(), request{Op: "corrupt", Node: node, Corruption: &cor}, nil, 5*time.Second, 30*time.Second); err != nil {
		return Corruption{}, fmt.Errorf("corrupt %s: %w", node, err)
	}
	c.opts.Log.Info(fmt.Sprintf("durafs: corrupt %s: %s %s at %d (of %d bytes)", node, cor.Kind, cor.File, cor.Offset, cor.Size))
	return cor, nil
}

// ChooseCorruption picks with rng a corruption of one of files: among the
// non-empty ones written through the filesystem, else among all
// non-empty ones; half bit flips (one to eight bits of one byte), half
// truncations.
func ChooseCorruption(files []FileInfo, rng *rand.Rand) (Corruption, error) {
	var written, any []FileInfo
	for _, f := range files {
		if f.Size <= 0 {
			continue
		}
		any = append(any, f)
		if f.Written {
			written = append(written, f)
		}
	}
	pool := written
	if len(pool) == 0 {
		pool = any
	}
	if len(pool) == 0 {
		return Corruption{}, errors.New("no non-empty file in the data directory")
	}
	f := pool[rng.Intn(len(pool))]
	cor := Corruption{File: f.Path, Size: f.Size, Offset: rng.Int63n(f.Size)}
	if rng.Intn(2) == 0 {
		cor.Kind = KindBitflip
		for cor.Mask == 0 {
			cor.Mask = byte(rng.Uint32())
		}
	} else {
		cor.Kind = KindTruncate
	}
	return cor, nil
}

// Status returns what the server holds for each node.
func (c *Controller) Status(ctx context.Context) (map[string]NodeStatus, error) {
	rep, err := call(c.socket(), request{Op: "status"}, nil, 5*time.Second, 30*time.Second)
	if err != nil {
		return nil, err
	}
	return rep.Status, nil
}

// Close removes the helper (its mounts end: nodes still running see
// their data directory fail) and the host directory. It works with a
// cancelled ctx and is safe to call more than once.
func (c *Controller) Close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	c.mu.Lock()
	id, dir := c.helper, c.dir
	c.helper, c.dir = "", ""
	c.mu.Unlock()
	var errs []error
	if id != "" {
		if err := c.rt.RemoveHelper(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("durafs: remove helper: %w", err))
		}
	}
	if dir != "" {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("durafs: remove %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}

// installProgram puts binary (default: this executable) into dir, with
// its ELF loader and libraries if it is dynamically linked, and returns
// the command line that runs it where dir is seen as inDir.
func installProgram(binary, dir, inDir string) ([]string, error) {
	if binary == "" {
		var err error
		if binary, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	deps, err := docker.ELFDeps(binary)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", binary, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "lib"), 0o755); err != nil {
		return nil, err
	}
	if err := copyFile(binary, filepath.Join(dir, "jepsen")); err != nil {
		return nil, err
	}
	if len(deps) == 0 {
		return []string{inDir + "/jepsen"}, nil
	}
	if err := copyFile(deps[0], filepath.Join(dir, "ld.so")); err != nil {
		return nil, err
	}
	for _, d := range deps[1:] {
		if err := copyFile(d, filepath.Join(dir, "lib", filepath.Base(d))); err != nil {
			return nil, err
		}
	}
	// The loader run as a program loads the binary with the libraries
	// from lib, whatever the node's image holds.
	return []string{inDir + "/ld.so", "--library-path", inDir + "/lib", inDir + "/jepsen"}, nil
}

// copyFile hard-links src to dst, or copies it, keeping it executable.
func copyFile(src, dst string) error {
	src, err := filepath.EvalSymlinks(src) // a link to a symbolic link would dangle
	if err != nil {
		return err
	}
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

// SweepDirs removes the host directories that controllers of crashed runs
// left in the system's temporary directory (their owner has gone), and
// those older than minAge without an owner file. It returns how many it
// removed.
func SweepDirs(minAge time.Duration) (int, error) {
	tmp := os.TempDir()
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return 0, fmt.Errorf("sweep durafs directories: %w", err)
	}
	removed := 0
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), DirPrefix) {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		gone := false
		if b, err := os.ReadFile(filepath.Join(dir, ownerFile)); err == nil {
			var l map[string]string
			gone = json.Unmarshal(b, &l) == nil && docker.OwnerGone(l)
		} else if info, err := e.Info(); err == nil && time.Since(info.ModTime()) >= minAge {
			gone = true
		}
		if !gone {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// DockerRuntime runs the helper with harness/docker, labelled with run
// runID.
func DockerRuntime(runID string) Runtime { return dockerRuntime{runID} }

type dockerRuntime struct{ runID string }

func (d dockerRuntime) RunHelper(ctx context.Context, h Helper) (string, error) {
	return docker.RunHelper(ctx, d.runID, docker.Helper{Name: h.Name, Image: h.Image, Cmd: h.Cmd,
		CapAdd: h.CapAdd, Devices: h.Devices, Binds: h.Binds, SecurityOpt: h.SecurityOpt})
}

func (d dockerRuntime) RemoveHelper(ctx context.Context, id string) error {
	return docker.RemoveHelper(ctx, id)
}

func (d dockerRuntime) HelperLogs(ctx context.Context, id string) string {
	return docker.HelperLogs(ctx, id)
}
