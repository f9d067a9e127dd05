package clockbound

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/meridiandb/meridian/hlc"
)

// ClockBoundConfig configures a ClockBound source.
type ClockBoundConfig struct {
	// Clock is the node's physical clock; required. The reading is centred
	// on it (see ClockBound for what that means under a skewing test hook).
	Clock hlc.PhysicalClock
	// Paths are tried in order; the first that holds a segment is used.
	// Empty means DefaultPathV2, then DefaultPathV1.
	Paths []string
	// VMClockPath is the VMClock device, read only when a v2 segment says
	// the daemon runs with clock-disruption support. Empty means
	// DefaultVMClockPath.
	VMClockPath string
	// Knobs are for tests only.
	Knobs ClockBoundKnobs
}

// ClockBoundKnobs are test hooks of the ClockBound source.
type ClockBoundKnobs struct {
	// Monotonic replaces the host's CLOCK_MONOTONIC (ns), against which the
	// segment's as_of and void_after are compared.
	Monotonic func() int64
	// BeforeRecheck runs after the segment is copied and before the
	// generation is read again; a test can act as a writer racing the copy.
	BeforeRecheck func(attempt int)
	// MaxRetries bounds the seqlock retries of one read; 0 means 1000.
	MaxRetries int
	// ReopenInterval is the least time between two attempts to (re)open the
	// segment file; 0 means one second. Negative means every call.
	ReopenInterval time.Duration
}

// ClockBound reads the error bound that the AWS ClockBound daemon
// (github.com/aws/clock-bound) publishes in shared memory, the way the
// daemon's client library does (see Segment.Bound), and centres it on this
// node's physical clock.
//
// Access: the segment file is mapped read-only (mmap, PROT_READ, MAP_SHARED)
// once, and each Now reads it with atomic loads — about as cheap as a clock
// read, with no system call. A seqlock guards the copy: read the generation,
// copy the body, read the generation again; retry while it is odd (the daemon
// is writing) or changed, up to MaxRetries, then fall back to the last
// consistent snapshot (an older snapshot still gives a correct, merely wider,
// bound). A snapshot is decoded once per generation and cached. Faults on the
// mapping (the file truncated under us) are turned into errors, not crashes.
//
// Disruption: a v2 segment written with clock-disruption support carries the
// VMClock disruption marker the daemon last saw. Like the client library,
// this source then reads the marker from the VMClock device
// (/dev/vmclock0, mapped read-only) on every call and reports Unknown while
// the two differ, i.e. from the moment the hypervisor disrupts the clock
// until the daemon has caught up. If that device cannot be read, Now fails.
//
// If no segment exists, Now returns ErrNotPresent and tries to open it again
// at most once a second, so a daemon that starts later is picked up. While
// the status is not Synchronized it also checks, at the same rate, whether
// the path now names a different file (the daemon re-created it).
//
// Time: the daemon's bound is about the host's CLOCK_REALTIME. This source
// takes "real" from the injected physical clock instead, so that every reader
// of time on the node agrees. With the production SystemClock the two are the
// same clock. Under a test hook that skews the physical clock by Δ, the
// reading is the skewed time ± the daemon's bound: the daemon cannot see the
// injected skew, so the interval no longer contains true time once |Δ|
// exceeds the bound — exactly the "well-synced node whose clock is wrong"
// fault such a hook exists to inject. Jepsen-style runs that must keep the
// guarantee under skew should use the static source (or a fake segment).
// Elapsed time since as_of is measured on CLOCK_MONOTONIC, which no test hook
// skews (and which is not wall time).
//
// A ClockBound is safe for concurrent use, except Close.
type ClockBound struct {
	clock       hlc.PhysicalClock
	paths       []string
	vmclockPath string
	knobs       ClockBoundKnobs
	mono        func() int64

	cur  atomic.Pointer[shmMap]
	snap atomic.Pointer[shmSnapshot]
	// nextAttempt (monotonic ns) and lastErr let callers skip the mutex
	// while re-opening is rate-limited: a node without a daemon pays no lock
	// per reading.
	nextAttempt atomic.Int64
	lastErr     atomic.Pointer[error]

	// vm is the VMClock mapping, opened on first need; vmNext/vmErr
	// rate-limit re-trying a failed open like nextAttempt/lastErr.
	vm     atomic.Pointer[shmMap]
	vmNext atomic.Int64
	vmErr  atomic.Pointer[error]

	mu struct {
		sync.Mutex
		old []*shmMap // replaced mappings, unmapped only by Close
	}
}

// shmMap is one read-only mapping of a segment file.
type shmMap struct {
	data     []byte
	path     string
	dev, ino uint64
}

// shmSnapshot is a decoded consistent copy of the segment of m at gen.
type shmSnapshot struct {
	m   *shmMap
	gen uint16
	ver uint16
	seg Segment
}

// NewClockBound returns a ClockBound source. It does not touch the file
// system until the first Now.
func NewClockBound(cfg ClockBoundConfig) (*ClockBound, error) {
	if cfg.Clock == nil {
		return nil, fmt.Errorf("clockbound: ClockBound source needs a physical clock")
	}
	c := &ClockBound{clock: cfg.Clock, paths: cfg.Paths, vmclockPath: cfg.VMClockPath, knobs: cfg.Knobs}
	if len(c.paths) == 0 {
		c.paths = []string{DefaultPathV2, DefaultPathV1}
	}
	if c.vmclockPath == "" {
		c.vmclockPath = DefaultVMClockPath
	}
	if c.knobs.MaxRetries <= 0 {
		c.knobs.MaxRetries = 1000
	}
	if c.knobs.ReopenInterval == 0 {
		c.knobs.ReopenInterval = time.Second
	}
	c.mono = c.knobs.Monotonic
	if c.mono == nil {
		c.mono = newMonotonic()
	}
	return c, nil
}

// Name implements Source.
func (c *ClockBound) Name() string { return "clockbound" }

// Path returns the path of the segment in use, or "" if none is open.
func (c *ClockBound) Path() string {
	if m := c.cur.Load(); m != nil {
		return m.path
	}
	return ""
}

// Now implements Source.
func (c *ClockBound) Now() (Reading, error) {
	m := c.cur.Load()
	if m == nil {
		var err error
		if m, err = c.reopen(false); err != nil {
			return Reading{}, err
		}
	}
	seg, err := c.segment(m)
	if err != nil {
		c.reopen(true) //nolint:errcheck // only to notice a re-created file; the read error is what matters
		return Reading{}, err
	}
	// Real time first, then monotonic time: a late monotonic reading only
	// makes the bound wider, never wrong.
	real := c.clock.UnixNano()
	r, err := seg.Bound(real, c.mono())
	if err != nil {
		return Reading{}, err
	}
	if seg.Version >= 2 && seg.DisruptionSupport && r.Status != Unknown {
		marker, err := c.vmclockMarker()
		if err != nil {
			return Reading{}, fmt.Errorf("clockbound: the daemon has clock-disruption support on, but: %w", err)
		}
		if marker != seg.DisruptionMarker {
			// The VM's clock was disrupted after the daemon's snapshot.
			r.Status = Unknown
		}
	}
	if r.Status != Synchronized {
		c.reopen(true) //nolint:errcheck
	}
	return r, nil
}

// vmclockMarker returns the VMClock device's current disruption marker.
func (c *ClockBound) vmclockMarker() (uint64, error) {
	m := c.vm.Load()
	if m == nil {
		now := c.mono()
		if errp := c.vmErr.Load(); errp != nil && c.knobs.ReopenInterval > 0 && now < c.vmNext.Load() {
			return 0, *errp
		}
		c.mu.Lock()
		if m = c.vm.Load(); m == nil {
			var err error
			if m, err = mapVMClock(c.vmclockPath); err != nil {
				c.vmErr.Store(&err)
				c.vmNext.Store(addSat(now, int64(c.knobs.ReopenInterval)))
				c.mu.Unlock()
				return 0, err
			}
			c.vm.Store(m)
			c.vmErr.Store(nil)
		}
		c.mu.Unlock()
	}
	return readVMClockMarker(m, c.knobs.MaxRetries)
}

// Close unmaps the segment. It must not run concurrently with Now; a Now
// after Close opens the segment again.
func (c *ClockBound) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	if m := c.cur.Swap(nil); m != nil {
		errs = append(errs, unmapSegment(m))
	}
	for _, m := range c.mu.old {
		errs = append(errs, unmapSegment(m))
	}
	if m := c.vm.Swap(nil); m != nil {
		errs = append(errs, unmapSegment(m))
	}
	c.vmErr.Store(nil)
	c.vmNext.Store(0)
	c.mu.old = nil
	c.nextAttempt.Store(0)
	c.lastErr.Store(nil)
	c.snap.Store(nil)
	return errors.Join(errs...)
}

// reopen opens the segment, rate-limited. With onlyIfChanged it keeps the
// current mapping unless the path now names another file.
func (c *ClockBound) reopen(onlyIfChanged bool) (*shmMap, error) {
	now := c.mono()
	if c.knobs.ReopenInterval > 0 && now < c.nextAttempt.Load() {
		if cur := c.cur.Load(); cur != nil {
			return cur, nil
		}
		if errp := c.lastErr.Load(); errp != nil {
			return nil, *errp
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.cur.Load()
	if cur != nil && !onlyIfChanged {
		return cur, nil // another goroutine opened it meanwhile
	}
	if c.knobs.ReopenInterval > 0 && now < c.nextAttempt.Load() {
		if cur != nil {
			return cur, nil
		}
		if errp := c.lastErr.Load(); errp != nil {
			return nil, *errp
		}
	}
	c.nextAttempt.Store(addSat(now, int64(c.knobs.ReopenInterval)))

	var firstErr error
	for _, p := range c.paths {
		m, err := mapSegment(p, cur)
		if err == nil {
			if m != cur {
				if cur != nil {
					// Readers may still hold cur: keep it mapped until Close.
					c.mu.old = append(c.mu.old, cur)
				}
				c.cur.Store(m)
			}
			c.lastErr.Store(nil)
			return m, nil
		}
		if firstErr == nil && !errors.Is(err, fs.ErrNotExist) {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("%w at %v: %w", ErrNotPresent, c.paths, fs.ErrNotExist)
	}
	c.lastErr.Store(&firstErr)
	if cur != nil {
		return cur, nil
	}
	return nil, firstErr
}

// segment returns a consistent decoded copy of m's segment.
func (c *ClockBound) segment(m *shmMap) (Segment, error) {
	cached := c.snap.Load()
	if cached != nil && cached.m != m {
		cached = nil
	}
	var buf [shmMaxSize]byte
	n := min(len(m.data), shmMaxSize) &^ 7
	ver, gen, err := c.readHeader(m)
	if err != nil {
		return Segment{}, err
	}
	if ver == 0 || gen == 0 {
		// The daemon is re-initialising the segment: keep using the last
		// snapshot, whose bound keeps growing and whose status decays.
		if cached != nil {
			return cached.seg, nil
		}
		return Segment{}, fmt.Errorf("%w: %s not initialised (version %d, generation %d)", ErrMalformed, m.path, ver, gen)
	}
	if cached != nil && cached.gen == gen && cached.ver == ver {
		return cached.seg, nil
	}
	for attempt := 0; attempt < c.knobs.MaxRetries; attempt++ {
		if gen&1 == 1 {
			runtime.Gosched() // the daemon is mid-update; its update takes microseconds
		} else {
			if err := copyWords(buf[:n], m.data); err != nil {
				return Segment{}, fmt.Errorf("clockbound: reading %s: %w", m.path, err)
			}
			if c.knobs.BeforeRecheck != nil {
				c.knobs.BeforeRecheck(attempt)
			}
		}
		ver2, gen2, err := c.readHeader(m)
		if err != nil {
			return Segment{}, err
		}
		if gen&1 == 0 && gen2 == gen && ver2 == ver {
			seg, err := DecodeSegment(buf[:n])
			if err != nil {
				return Segment{}, fmt.Errorf("%s: %w", m.path, err)
			}
			if int(seg.SegmentSize) > len(m.data) {
				return Segment{}, fmt.Errorf("%w: %s declares %d bytes but the file has %d", ErrMalformed, m.path, seg.SegmentSize, len(m.data))
			}
			c.snap.Store(&shmSnapshot{m: m, gen: gen, ver: ver, seg: seg})
			return seg, nil
		}
		ver, gen = ver2, gen2
		if ver == 0 || gen == 0 {
			break
		}
	}
	if cached != nil {
		return cached.seg, nil
	}
	return Segment{}, fmt.Errorf("clockbound: %s: no consistent read in %d attempts (generation %d)", m.path, c.knobs.MaxRetries, gen)
}

// readHeader atomically loads the version and generation, which share one
// aligned 32-bit word (Go has no 16-bit atomics).
func (c *ClockBound) readHeader(m *shmMap) (ver, gen uint16, err error) {
	if len(m.data) < shmHeaderSize {
		return 0, 0, fmt.Errorf("%w: %s has %d bytes, shorter than the header", ErrMalformed, m.path, len(m.data))
	}
	var w [4]byte
	if err := copyWords(w[:], m.data[offVersionGen:offVersionGen+4]); err != nil {
		return 0, 0, fmt.Errorf("clockbound: reading %s: %w", m.path, err)
	}
	return binary.NativeEndian.Uint16(w[0:]), binary.NativeEndian.Uint16(w[2:]), nil
}

// copyWords copies len(dst) bytes (a multiple of 4, src 4-aligned) from the
// shared mapping with atomic loads, so a concurrent writer in another process
// (or a test goroutine) is never a data race. A memory fault on the mapping
// becomes an error.
func copyWords(dst, src []byte) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("memory fault reading the shared segment: %v", r)
		}
	}()
	i := 0
	for ; i+8 <= len(dst) && uintptr(unsafe.Pointer(&src[i]))%8 == 0; i += 8 {
		v := atomic.LoadUint64((*uint64)(unsafe.Pointer(&src[i])))
		binary.NativeEndian.PutUint64(dst[i:], v)
	}
	for ; i+4 <= len(dst); i += 4 {
		v := atomic.LoadUint32((*uint32)(unsafe.Pointer(&src[i])))
		binary.NativeEndian.PutUint32(dst[i:], v)
	}
	return nil
}
