package durafs

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// pageSize is the unit in which unsynced data is kept.
const pageSize = 4096

// file is the unsynced state of one backing inode: the writes and size
// changes made since it was last made durable. Its methods are called with
// mu held (see session.lock).
type file struct {
	mu   sync.Mutex
	dead bool // flushed and forgotten: look the inode up again

	key inoKey // the inode it is held under
	fd  int    // the backing file, opened read-write; owned
	ino uint64 // backing inode number
	// size is the size the node sees.
	size int64
	// low is the lowest size the file had since it was last durable:
	// backing bytes at or past low read as zeros (a truncation cut them)
	// unless a page holds them.
	low int64
	// backingSize is the backing file's size now.
	backingSize int64
	// pages holds every page written since the file was last durable.
	pages map[int64][]byte
}

// newFile returns the state of the backing file fd (taken over: closed
// by close), clean.
func newFile(fd int) (*file, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("fstat: %w", err)
	}
	return &file{fd: fd, ino: st.Ino, size: st.Size, low: st.Size, backingSize: st.Size, pages: map[int64][]byte{}}, nil
}

// dirty reports whether f holds anything not yet in the backing file.
func (f *file) dirty() bool {
	return len(f.pages) > 0 || f.size != f.backingSize || f.low < f.backingSize
}

// cachedBytes is the memory f's pages take.
func (f *file) cachedBytes() int64 { return int64(len(f.pages)) * pageSize }

// readBacking fills b with the backing file's bytes at off, as the node
// sees them when no page covers them: zeros past low.
func (f *file) readBacking(b []byte, off int64) error {
	clear(b)
	if off >= f.low {
		return nil
	}
	n := int64(len(b))
	if off+n > f.low {
		n = f.low - off
	}
	got := int64(0)
	for got < n {
		m, err := unix.Pread(f.fd, b[got:n], off+got)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if m == 0 {
			break // the backing file is shorter: zeros
		}
		got += int64(m)
	}
	return nil
}

// readAt reads into p from off, as the node sees the file, and returns
// how many bytes it read (fewer at the end of the file).
func (f *file) readAt(p []byte, off int64) (int, error) {
	if off >= f.size || off < 0 {
		return 0, nil
	}
	if int64(len(p)) > f.size-off {
		p = p[:f.size-off]
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		idx, in := pos/pageSize, int(pos%pageSize)
		if pg, ok := f.pages[idx]; ok {
			n += copy(p[n:], pg[in:])
			continue
		}
		// A run of pages that are not held: one read from the backing.
		end := n + pageSize - in
		for end < len(p) {
			if _, ok := f.pages[(off+int64(end))/pageSize]; ok {
				break
			}
			end += pageSize
		}
		end = min(end, len(p))
		if err := f.readBacking(p[n:end], pos); err != nil {
			return n, err
		}
		n = end
	}
	return n, nil
}

// writeAt writes p at off into the pages; the file grows if p ends past
// its size.
func (f *file) writeAt(p []byte, off int64) error {
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		idx, in := pos/pageSize, int(pos%pageSize)
		pg, ok := f.pages[idx]
		chunk := min(len(p)-n, pageSize-in)
		if !ok {
			pg = make([]byte, pageSize)
			if in != 0 || chunk != pageSize {
				if err := f.readBacking(pg, idx*pageSize); err != nil {
					return err
				}
				// Bytes past the size read as zeros (the backing file
				// may hold cut bytes there).
				if start := f.size - idx*pageSize; start < pageSize {
					clear(pg[max(start, 0):])
				}
			}
			f.pages[idx] = pg
		}
		copy(pg[in:in+chunk], p[n:n+chunk])
		n += chunk
	}
	f.size = max(f.size, off+int64(len(p)))
	return nil
}

// truncate sets the size the node sees.
func (f *file) truncate(size int64) {
	if size < f.size {
		for idx := range f.pages {
			if idx*pageSize >= size {
				delete(f.pages, idx)
			}
		}
		if pg, ok := f.pages[size/pageSize]; ok {
			clear(pg[size%pageSize:])
		}
		f.low = min(f.low, size)
	}
	f.size = size
}

// flush makes f's state the backing file's: it cuts the bytes a
// truncation removed, writes the pages and sets the size, then (with
// sync) fdatasyncs the backing file. f is clean afterwards.
func (f *file) flush(sync bool) error {
	if f.low < f.backingSize {
		if err := unix.Ftruncate(f.fd, f.low); err != nil {
			return fmt.Errorf("truncate backing: %w", err)
		}
		f.backingSize = f.low
	}
	if err := f.writePages(); err != nil {
		return err
	}
	if f.size != f.backingSize {
		if err := unix.Ftruncate(f.fd, f.size); err != nil {
			return fmt.Errorf("size backing: %w", err)
		}
	}
	f.backingSize, f.low = f.size, f.size
	f.pages = map[int64][]byte{}
	if sync {
		if err := unix.Fdatasync(f.fd); err != nil {
			return fmt.Errorf("fdatasync backing: %w", err)
		}
	}
	return nil
}

// writePages writes the pages, runs of adjacent pages in one pwritev,
// each clipped to the size.
func (f *file) writePages() error {
	if len(f.pages) == 0 {
		return nil
	}
	idxs := make([]int64, 0, len(f.pages))
	for idx := range f.pages {
		idxs = append(idxs, idx)
	}
	slices.Sort(idxs)
	const maxIov = 256
	for i := 0; i < len(idxs); {
		j := i + 1
		for j < len(idxs) && idxs[j] == idxs[j-1]+1 && j-i < maxIov {
			j++
		}
		iov := make([][]byte, 0, j-i)
		for _, idx := range idxs[i:j] {
			pg := f.pages[idx]
			if end := f.size - idx*pageSize; end < pageSize {
				pg = pg[:max(end, 0)]
			}
			iov = append(iov, pg)
		}
		off := idxs[i] * pageSize
		for len(iov) > 0 {
			m, err := unix.Pwritev(f.fd, iov, off)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return fmt.Errorf("write backing: %w", err)
			}
			off += int64(m)
			for m > 0 && len(iov) > 0 {
				if m >= len(iov[0]) {
					m -= len(iov[0])
					iov = iov[1:]
				} else {
					iov[0] = iov[0][m:]
					m = 0
				}
			}
			if len(iov) > 0 && len(iov[0]) == 0 {
				iov = iov[1:]
			}
		}
		if end := off; end > f.backingSize {
			f.backingSize = end
		}
		i = j
	}
	return nil
}

// close closes the backing file.
func (f *file) close() {
	if f.fd >= 0 {
		unix.Close(f.fd)
		f.fd = -1
	}
}
