// Package durafs is a FUSE filesystem that loses the writes a store did
// not make durable when its node loses power, in the spirit of LazyFS
// (which Jepsen runs on VMs), for unmodified stores in Docker containers.
//
// # The model
//
// A node's data directory is served by a Mount over a backing directory
// (the node's volume). Every operation passes through to the backing
// directory at once, and is therefore durable at once, except the data of
// regular files: the bytes written and the size set (by write, truncate,
// ftruncate, O_TRUNC, fallocate growing the file) are kept in the Mount's
// memory, page by page, and become durable only when
//
//   - the file is fsynced or fdatasynced (both count alike, through any
//     descriptor of the file; so does a write to a file opened with O_SYNC
//     or O_DSYNC, or with RWF_DSYNC: the kernel follows each with an
//     fsync);
//   - the node calls sync(2) or syncfs(2), which make every file of the
//     mount durable. The kernel does not forward these to a FUSE server
//     (Linux sends FUSE_SYNCFS to virtiofs only; checked on 6.18), so
//     Exec installs a seccomp filter in the node's process (inherited by
//     its threads and children) that reports them to the server, which
//     syncs the mount before the call proceeds. syncfs on a file of
//     another filesystem of the node counts too (the filter does not
//     look at the descriptor). The filter needs no_new_privs, which Exec
//     sets: the command cannot gain privileges through set-user-ID
//     files. Where seccomp is refused, Exec says so on stderr and sync
//     and syncfs make nothing durable;
//   - the Mount holds more than Options.MaxCached bytes: the files holding
//     most are written back, as the kernel writes back dirty pages under
//     memory pressure;
//   - the node's process dies without a power loss (a kill, a crash, a
//     stop): the Mount writes back everything, as the page cache of a
//     machine that keeps running would.
//
// A power loss (Mount.PowerLoss, then SIGKILL of the node) drops
// everything not yet durable. After it:
//
//   - a file created and never synced exists, with its durable size and
//     data: empty if nothing of it was ever synced (creation is durable);
//   - a file written since its last sync has its data and size as of
//     that sync: later writes are gone, a later truncation is undone, a
//     later extension is gone;
//   - a rename, link, unlink, mkdir, rmdir, symlink, chmod, chown or
//     utimes is durable at once, whether or not the directory was synced:
//     a file written, not synced and renamed over another is there under
//     the new name, empty or with its old durable data (the classic
//     zero-length file after a crash); the file it replaced is gone;
//   - an unlinked file stays unlinked, even if its data was never synced.
//
// Reads through the Mount always see every write (unsynced ones
// included), as on a real disk before the power goes. Directory fsync is
// passed through and changes nothing in the model (directory operations
// are already durable).
//
// # Where it differs from LazyFS
//
// LazyFS (lose unsynced writes, Jepsen's and etcd's use) also keeps file
// data in a page cache and persists metadata operations such as create,
// rename and unlink at once; durafs does the same. It differs in that:
//
//   - size changes are always kept with the data (a truncation not synced
//     is undone by a power loss; LazyFS's handling of truncate has varied
//     between its versions), and a rename never syncs the file (LazyFS
//     can be configured to, sync_after_rename);
//   - sync and syncfs reach it through a seccomp filter in the node, not
//     from the kernel;
//   - a process crash without power loss writes everything back (LazyFS
//     keeps its cache until it is told to clear it or it is full);
//   - it has no torn writes, reordering or partial page loss within a
//     file: all of a file's unsynced writes go, or none (LazyFS can tear
//     a write at a page boundary when asked).
//
// # How it reaches a node
//
// Host mount propagation is not needed (a non-root user's stock Docker
// host does not share /, so Docker refuses rshared bind mounts): one
// helper container per run, with /dev/fuse and CAP_SYS_ADMIN only, runs
// Serve. Each node's container runs, instead of its command, this
// program's Exec (bind-mounted read-only from a host directory, with its
// loader and libraries if it is dynamically linked): Exec opens the data
// directory and /proc/self/ns/mnt and sends both descriptors to the
// helper over a unix socket in that host directory; the helper, on a
// thread of its own, unshares its filesystem attributes, enters the
// node's mount namespace, mounts FUSE over the data directory and
// serves it from the descriptor of the directory underneath. Exec then
// checks /proc/self/mountinfo and execs the node's command, which runs as
// PID 1 with the image's binary, user and environment. After a restart
// the container has a new mount namespace and Exec asks again: the store
// never starts without its mount. The node's container gets no device,
// capability or privilege; the helper shares no namespace with it.
//
// Controller drives it for a run: Prepare, Wrap (for the nodes'
// containers), PowerLoss, Corrupt and Close.
package durafs
