//go:build linux

package clockbound

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// mapSegment maps the file at path read-only. If cur maps that same file
// (same device and inode), it returns cur.
func mapSegment(path string, cur *shmMap) (*shmMap, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("clockbound: %w", err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("clockbound: stat %s: %w", path, err)
	}
	if cur != nil && cur.path == path && cur.dev == st.Dev && cur.ino == st.Ino {
		return cur, nil
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrMalformed, path)
	}
	if st.Size < shmHeaderSize {
		return nil, fmt.Errorf("%w: %s has %d bytes, shorter than the %d-byte header", ErrMalformed, path, st.Size, shmHeaderSize)
	}
	if st.Size > 1<<20 {
		return nil, fmt.Errorf("%w: %s has %d bytes, far more than a segment", ErrMalformed, path, st.Size)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(st.Size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("clockbound: mmap %s: %w", path, err)
	}
	return &shmMap{data: data, path: path, dev: st.Dev, ino: st.Ino}, nil
}

// mapVMClock maps the VMClock device (a character device exposing one page)
// or, for tests, a regular file standing in for it, read-only.
func mapVMClock(path string) (*shmMap, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("clockbound: VMClock: %w", err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("clockbound: stat %s: %w", path, err)
	}
	size := int64(os.Getpagesize())
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
	case unix.S_IFREG:
		size = min(size, st.Size)
	default:
		return nil, fmt.Errorf("%w: %s is neither a device nor a file", ErrMalformed, path)
	}
	if size < vmclockMinSize {
		return nil, fmt.Errorf("%w: %s has %d bytes, want at least %d", ErrMalformed, path, size, vmclockMinSize)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("clockbound: mmap %s: %w", path, err)
	}
	return &shmMap{data: data, path: path, dev: st.Dev, ino: st.Ino}, nil
}

func unmapSegment(m *shmMap) error {
	if err := unix.Munmap(m.data); err != nil {
		return fmt.Errorf("clockbound: munmap %s: %w", m.path, err)
	}
	return nil
}

// newMonotonic returns a reader of the host's CLOCK_MONOTONIC in ns. It asks
// the kernel once and then adds the elapsed time of Go's own monotonic clock
// (CLOCK_MONOTONIC too, read through the vDSO), which costs a few ns instead
// of a system call. Go's clock is read first, so the base is never early and
// derived readings never run behind the kernel's: a bound computed from them
// can only be wider. (time.Now here supplies only its monotonic part, never
// wall time.)
func newMonotonic() func() int64 {
	start := time.Now()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return func() int64 { return 0 }
	}
	base := ts.Nano()
	return func() int64 { return base + int64(time.Since(start)) }
}
