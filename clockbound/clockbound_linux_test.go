//go:build linux

package clockbound

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/meridiandb/meridian/hlc"
)

const testWall = int64(1_750_000_000) * sec

// cbEnv is a ClockBound source over fixture files, with manual wall and
// monotonic clocks.
type cbEnv struct {
	wall, mono *hlc.ManualClock
	cb         *ClockBound
}

func newCBEnv(t *testing.T, paths []string, knobs ClockBoundKnobs) *cbEnv {
	t.Helper()
	e := &cbEnv{wall: hlc.NewManualClock(testWall), mono: hlc.NewManualClock(1000 * sec)}
	knobs.Monotonic = e.mono.UnixNano
	cb, err := NewClockBound(ClockBoundConfig{Clock: e.wall, Paths: paths, Knobs: knobs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cb.Close(); err != nil {
			t.Error(err)
		}
	})
	e.cb = cb
	return e
}

func writeSegmentFile(t *testing.T, path string, s Segment) {
	t.Helper()
	if err := os.WriteFile(path, mustEncode(t, s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pwrite changes bytes of a segment file in place, as the daemon does through
// its own shared mapping: our MAP_SHARED mapping sees the same page.
func pwrite(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func setGeneration(t *testing.T, path string, gen uint16) {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], gen)
	pwrite(t, path, offVersionGen+2, b[:])
}

func TestClockBoundReadsBothLayouts(t *testing.T) {
	for _, v := range []uint16{1, 2} {
		path := filepath.Join(t.TempDir(), "shm")
		e := newCBEnv(t, []string{path}, ClockBoundKnobs{})
		writeSegmentFile(t, path, goodSegment(v, e.mono.UnixNano()))
		e.mono.Advance(2 * time.Second)
		r, err := e.cb.Now()
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		want := interval(testWall, 50_000+100_000, Synchronized) // 50 µs + 2 s × 50 ppm
		if r != want {
			t.Fatalf("v%d: Now = %v, want %v", v, r, want)
		}
		if e.cb.Path() != path || e.cb.Name() != "clockbound" {
			t.Fatalf("Path %q Name %q", e.cb.Path(), e.cb.Name())
		}
	}
}

func TestClockBoundPrefersFirstPath(t *testing.T) {
	dir := t.TempDir()
	v2, v1 := filepath.Join(dir, "shm0"), filepath.Join(dir, "shm")
	e := newCBEnv(t, []string{v2, v1}, ClockBoundKnobs{})
	s1 := goodSegment(1, e.mono.UnixNano())
	s1.BoundNanos = 111
	writeSegmentFile(t, v1, s1)
	r, err := e.cb.Now()
	if err != nil || e.cb.Path() != v1 || r.Width() != 222 {
		t.Fatalf("only v1 present: %v, %v, path %q", r, err, e.cb.Path())
	}

	e2 := newCBEnv(t, []string{v2, v1}, ClockBoundKnobs{})
	writeSegmentFile(t, v2, goodSegment(2, e2.mono.UnixNano()))
	if _, err := e2.cb.Now(); err != nil || e2.cb.Path() != v2 {
		t.Fatalf("both present: %v, path %q, want %q", err, e2.cb.Path(), v2)
	}
}

func TestClockBoundMissingThenAppears(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shm0")
	e := newCBEnv(t, []string{path}, ClockBoundKnobs{})
	_, err := e.cb.Now()
	if !errors.Is(err, ErrNotPresent) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing segment: error %v, want ErrNotPresent and fs.ErrNotExist", err)
	}
	writeSegmentFile(t, path, goodSegment(2, e.mono.UnixNano()))
	// Re-opening is rate-limited to once a second of monotonic time.
	if _, err := e.cb.Now(); !errors.Is(err, ErrNotPresent) {
		t.Fatalf("within the reopen interval: error %v, want the cached ErrNotPresent", err)
	}
	e.mono.Advance(time.Second)
	if r, err := e.cb.Now(); err != nil || r.Status != Synchronized {
		t.Fatalf("after the daemon started: %v, %v", r, err)
	}
}

func TestClockBoundMalformedFiles(t *testing.T) {
	good := mustEncode(t, goodSegment(2, 1000*sec))
	ne := binary.NativeEndian
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name, want string
		b          []byte // nil: make a directory instead
	}{
		{"empty file", "shorter than the 16-byte header", []byte{}},
		{"short header", "shorter than the 16-byte header", good[:12]},
		{"bad magic", "bad magic", mut(func(b []byte) []byte { copy(b, "NOTMAGIC"); return b })},
		{"unsupported version", "unsupported layout version 7", mut(func(b []byte) []byte { ne.PutUint16(b[12:], 7); return b })},
		{"version 0", "not initialised", mut(func(b []byte) []byte { ne.PutUint16(b[12:], 0); return b })},
		{"generation 0", "not initialised", mut(func(b []byte) []byte { ne.PutUint16(b[14:], 0); return b })},
		{"segment size too small", "declared size 20 bytes", mut(func(b []byte) []byte { ne.PutUint32(b[8:], 20); return b })},
		{"file truncated", "truncated: 64 bytes", good[:64]},
		{"declared size beyond file", "declares 4096 bytes but the file has 80", mut(func(b []byte) []byte { ne.PutUint32(b[8:], 4096); return b })},
		{"bad timespec", "as_of timespec", mut(func(b []byte) []byte { ne.PutUint64(b[24:], 2e9); return b })},
		{"directory", "not a regular file", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "shm0")
			if tc.b == nil {
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(path, tc.b, 0o644); err != nil {
				t.Fatal(err)
			}
			e := newCBEnv(t, []string{path}, ClockBoundKnobs{})
			_, err := e.cb.Now()
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrMalformed saying %q", err, tc.want)
			}
		})
	}
}

func TestClockBoundStatusOverTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shm0")
	e := newCBEnv(t, []string{path}, ClockBoundKnobs{})
	asOf := e.mono.UnixNano()
	writeSegmentFile(t, path, goodSegment(2, asOf))
	for _, step := range []struct {
		at   time.Duration
		want Status
	}{
		{0, Synchronized},
		{4 * time.Second, Synchronized},
		{5 * time.Second, FreeRunning}, // daemon silent past its restart grace
		{999 * time.Second, FreeRunning},
		{1000 * time.Second, Unknown}, // void_after: expired
	} {
		e.mono.Set(asOf + int64(step.at))
		r, err := e.cb.Now()
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != step.want {
			t.Fatalf("at as_of+%s: status %s, want %s", step.at, r.Status, step.want)
		}
		wantBound := 50_000 + driftGrowth(int64(step.at), 50_000)
		if r.Width() != time.Duration(2*wantBound) {
			t.Fatalf("at as_of+%s: width %s, want %s", step.at, r.Width(), time.Duration(2*wantBound))
		}
	}
}

func TestClockBoundStatusValues(t *testing.T) {
	for raw, want := range map[int32]Status{
		rawUnknown: Unknown, rawSynchronized: Synchronized, rawFreeRunning: FreeRunning, rawDisrupted: Unknown, 99: Unknown,
	} {
		path := filepath.Join(t.TempDir(), "shm0")
		e := newCBEnv(t, []string{path}, ClockBoundKnobs{})
		s := goodSegment(2, e.mono.UnixNano())
		s.ClockStatus = raw
		writeSegmentFile(t, path, s)
		r, err := e.cb.Now()
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != want {
			t.Errorf("raw clock status %d: %s, want %s", raw, r.Status, want)
		}
	}
}

func TestClockBoundCausalityBreach(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shm0")
	e := newCBEnv(t, []string{path}, ClockBoundKnobs{})
	writeSegmentFile(t, path, goodSegment(2, e.mono.UnixNano()+sec)) // stamped in our future
	if _, err := e.cb.Now(); err == nil || !strings.Contains(err.Error(), "causality") {
		t.Fatalf("segment from the future: error %v, want causality breach", err)
	}
}

// TestClockBoundTornRead: the daemon completes an update while we copy; the
// changed generation makes the reader copy again and return the new data.
func TestClockBoundTornRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shm0")
	var calls []int
	var e *cbEnv
	e = newCBEnv(t, []string{path}, ClockBoundKnobs{BeforeRecheck: func(attempt int) {
		calls = append(calls, attempt)
		if attempt == 0 {
			s := goodSegment(2, e.mono.UnixNano())
			s.Generation = 4
			s.BoundNanos = 7_000
			pwrite(t, path, 0, mustEncode(t, s))
		}
	}})
	writeSegmentFile(t, path, goodSegment(2, e.mono.UnixNano()))
	r, err := e.cb.Now()
	if err != nil {
		t.Fatal(err)
	}
	if r.Width() != 14_000 {
		t.Fatalf("width %d, want the rewritten bound (2 × 7000)", r.Width())
	}
	if len(calls) != 2 || calls[1] != 1 {
		t.Fatalf("copy attempts %v, want [0 1]", calls)
	}
	// Same generation again: served from the cached snapshot, no copy.
	if _, err := e.cb.Now(); err != nil || len(calls) != 2 {
		t.Fatalf("unchanged generation copied again: attempts %v, err %v", calls, err)
	}
}

// TestClockBoundWriterStuck: an odd generation that never becomes even (a
// daemon that died mid-update) ends after MaxRetries with the last snapshot,
// or with an error if there is none.
func TestClockBoundWriterStuck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shm0")
	e := newCBEnv(t, []string{path}, ClockBoundKnobs{MaxRetries: 10})
	writeSegmentFile(t, path, goodSegment(2, e.mono.UnixNano()))
	before, err := e.cb.Now()
	if err != nil {
		t.Fatal(err)
	}
	s := goodSegment(2, e.mono.UnixNano())
	s.Generation, s.BoundNanos = 3, 1 // half-written update
	pwrite(t, path, 0, mustEncode(t, s))
	after, err := e.cb.Now()
	if err != nil || after != before {
		t.Fatalf("stuck writer: %v, %v; want the last snapshot %v", after, err, before)
	}

	fresh := newCBEnv(t, []string{path}, ClockBoundKnobs{MaxRetries: 10})
	if _, err := fresh.cb.Now(); err == nil || !strings.Contains(err.Error(), "no consistent read in 10 attempts") {
		t.Fatalf("stuck writer, no snapshot: error %v", err)
	}
}

// TestClockBoundReinitialising: version or generation 0 (the daemon wiping
// the segment on restart) keeps the last snapshot in use.
func TestClockBoundReinitialising(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shm0")
	e := newCBEnv(t, []string{path}, ClockBoundKnobs{})
	writeSegmentFile(t, path, goodSegment(2, e.mono.UnixNano()))
	before, err := e.cb.Now()
	if err != nil {
		t.Fatal(err)
	}
	setGeneration(t, path, 0)
	e.mono.Advance(2 * time.Second)
	r, err := e.cb.Now()
	if err != nil || r.Status != Synchronized || r.Width() <= before.Width() {
		t.Fatalf("during re-initialisation: %v, %v; want the old snapshot, aged", r, err)
	}
}

// TestClockBoundRecreatedFile: the daemon replaced the file (new inode); once
// the old mapping goes stale the source switches to the new file.
func TestClockBoundRecreatedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shm0")
	e := newCBEnv(t, []string{path}, ClockBoundKnobs{})
	writeSegmentFile(t, path, goodSegment(2, e.mono.UnixNano()))
	if r, err := e.cb.Now(); err != nil || r.Status != Synchronized {
		t.Fatalf("%v, %v", r, err)
	}
	e.mono.Advance(6 * time.Second)
	fresh := goodSegment(2, e.mono.UnixNano())
	fresh.BoundNanos = 1_000
	tmp := filepath.Join(dir, "shm0.new")
	writeSegmentFile(t, tmp, fresh)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	// The old mapping is now stale (FreeRunning), which prompts a re-open.
	if r, err := e.cb.Now(); err != nil || r.Status != FreeRunning {
		t.Fatalf("stale mapping: %v, %v; want free-running", r, err)
	}
	r, err := e.cb.Now()
	if err != nil || r.Status != Synchronized || r.Width() != 2_000 {
		t.Fatalf("after re-open: %v, %v; want the new file's bound", r, err)
	}
}

// TestClockBoundSkewedClock documents the test hook's effect: the daemon's
// bound is centred on the node's (skewed) physical clock.
func TestClockBoundSkewedClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shm0")
	mono := hlc.NewManualClock(1000 * sec)
	wall := hlc.NewOffsetClock(hlc.NewManualClock(testWall))
	wall.SetOffset(300 * time.Millisecond)
	cb, err := NewClockBound(ClockBoundConfig{Clock: wall, Paths: []string{path}, Knobs: ClockBoundKnobs{Monotonic: mono.UnixNano}})
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	writeSegmentFile(t, path, goodSegment(2, mono.UnixNano()))
	r, err := cb.Now()
	if err != nil {
		t.Fatal(err)
	}
	if want := interval(testWall+int64(300*time.Millisecond), 50_000, Synchronized); r != want {
		t.Fatalf("skewed: %v, want %v", r, want)
	}
}

// TestClockBoundConcurrentWriter races a writer goroutine, updating the
// segment through its own shared mapping exactly as the daemon does, against
// readers: every snapshot a reader gets must be internally consistent, and
// the race detector must stay quiet.
func TestClockBoundConcurrentWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shm0")
	initial := goodSegment(2, sec) // k = 1 in the writer's scheme below
	initial.BoundNanos, initial.DisruptionMarker = 1000, 1
	writeSegmentFile(t, path, initial)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	w, err := unix.Mmap(int(f.Fd()), 0, shmV2Size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(w)

	mono := hlc.NewManualClock(1 << 62)
	cb, err := NewClockBound(ClockBoundConfig{Clock: hlc.NewManualClock(testWall), Paths: []string{path},
		Knobs: ClockBoundKnobs{Monotonic: mono.UnixNano}})
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()

	word := func(off int) *uint64 { return (*uint64)(unsafe.Pointer(&w[off])) }
	hdr := (*uint32)(unsafe.Pointer(&w[offVersionGen]))
	setHdr := func(gen uint16) {
		var b [4]byte
		binary.NativeEndian.PutUint16(b[0:], 2)
		binary.NativeEndian.PutUint16(b[2:], gen)
		atomic.StoreUint32(hdr, binary.NativeEndian.Uint32(b[:]))
	}
	// First read before the writer starts, so there is always a snapshot to
	// fall back on; later reads may use it when the writer keeps them busy.
	if _, err := cb.Now(); err != nil {
		t.Fatal(err)
	}

	var stop atomic.Bool
	var updates, reads atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the daemon
		defer wg.Done()
		gen := uint16(2)
		for k := int64(2); !stop.Load(); k++ {
			gen++ // odd: writing
			setHdr(gen)
			atomic.StoreUint64(word(offAsOf), uint64(k))           // as_of = k s
			atomic.StoreUint64(word(offVoidAfter), uint64(k+1000)) // void_after = as_of + 1000 s
			atomic.StoreUint64(word(offBound), uint64(k*1000))     // bound = k µs
			atomic.StoreUint64(word(56), uint64(k))                // disruption marker = k
			if gen++; gen == 0 {
				gen = 2
			}
			setHdr(gen)
			updates.Add(1)
			// A real daemon writes once a second; this one writes about once
			// per reader iteration, so reads and writes overlap often without
			// the writer starving the reader.
			for last := reads.Load(); reads.Load() == last && !stop.Load(); {
				runtime.Gosched()
			}
		}
	}()
	stopWriter := func() { stop.Store(true); wg.Wait() }
	defer stopWriter() // before the deferred Munmap, even when a check fails

	seen := map[uint16]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; updates.Load() < 300; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("writer made only %d updates in 20 s", updates.Load())
		}
		seg, err := cb.segment(cb.cur.Load())
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		k := seg.AsOf / sec
		if seg.AsOf%sec != 0 || seg.VoidAfter != (k+1000)*sec || seg.BoundNanos != k*1000 || seg.DisruptionMarker != uint64(k) || seg.Generation%2 != 0 {
			t.Fatalf("read %d: torn snapshot %+v", i, seg)
		}
		seen[seg.Generation] = true
		if _, err := cb.Now(); err != nil {
			t.Fatalf("Now %d: %v", i, err)
		}
		reads.Add(1)
	}
	stopWriter()
	if len(seen) < 10 {
		t.Fatalf("readers saw %d generations over %d writer updates; the race was not exercised", len(seen), updates.Load())
	}
	t.Logf("%d writer updates, %d distinct generations read", updates.Load(), len(seen))
}

// TestClockBoundThisMachine: the real default paths. Without a daemon the
// answer must be a clear ErrNotPresent.
func TestClockBoundThisMachine(t *testing.T) {
	cb, err := NewClockBound(ClockBoundConfig{Clock: hlc.SystemClock{}})
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	r, err := cb.Now()
	if err != nil {
		if !errors.Is(err, ErrNotPresent) && !errors.Is(err, ErrMalformed) && !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("unclear error: %v", err)
		}
		t.Logf("ClockBound on this machine: %v", err)
		return
	}
	t.Logf("ClockBound on this machine: %v from %s", r, cb.Path())
	if r.Earliest > r.Latest {
		t.Fatalf("malformed reading %v", r)
	}
}

// TestClockBoundFileTruncatedUnderUs: the file shrinks while mapped (reading
// the page then faults with SIGBUS). That must be an error, not a crash, and
// the source must recover once the file is whole again.
func TestClockBoundFileTruncatedUnderUs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shm0")
	e := newCBEnv(t, []string{path}, ClockBoundKnobs{})
	writeSegmentFile(t, path, goodSegment(2, e.mono.UnixNano()))
	if _, err := e.cb.Now(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	e.cb.snap.Store(nil) // no cached snapshot to hide behind
	if _, err := e.cb.Now(); err == nil || !strings.Contains(err.Error(), "memory fault") {
		t.Fatalf("truncated under the mapping: error %v, want a memory fault error", err)
	}
	s := goodSegment(2, e.mono.UnixNano())
	s.Generation = 6
	pwrite(t, path, 0, mustEncode(t, s))
	if r, err := e.cb.Now(); err != nil || r.Status != Synchronized {
		t.Fatalf("after the file was restored: %v, %v", r, err)
	}
}

func writeVMClock(t *testing.T, path string, seq uint32, marker uint64) {
	t.Helper()
	b := make([]byte, 104)
	le := binary.LittleEndian
	le.PutUint32(b[0:], vmclockMagic)
	le.PutUint32(b[4:], 104)
	le.PutUint16(b[8:], 1)
	le.PutUint32(b[offVMSeq:], seq)
	le.PutUint64(b[offVMMarker:], marker)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestClockBoundDisruptionMarker: with clock-disruption support on, a v2
// segment is trusted only while its marker matches the VMClock device's.
func TestClockBoundDisruptionMarker(t *testing.T) {
	dir := t.TempDir()
	path, vm := filepath.Join(dir, "shm0"), filepath.Join(dir, "vmclock0")
	mono := hlc.NewManualClock(1000 * sec)
	cb, err := NewClockBound(ClockBoundConfig{Clock: hlc.NewManualClock(testWall), Paths: []string{path}, VMClockPath: vm,
		Knobs: ClockBoundKnobs{Monotonic: mono.UnixNano, MaxRetries: 10}})
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	seg := goodSegment(2, mono.UnixNano())
	seg.DisruptionSupport, seg.DisruptionMarker = true, 7
	writeSegmentFile(t, path, seg)

	if _, err := cb.Now(); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "disruption support") {
		t.Fatalf("no VMClock device: error %v", err)
	}
	mono.Advance(time.Second) // past the re-try interval
	writeVMClock(t, vm, 4, 7)
	if r, err := cb.Now(); err != nil || r.Status != Synchronized {
		t.Fatalf("markers agree: %v, %v", r, err)
	}
	// The hypervisor disrupts the clock; the daemon has not caught up yet.
	pwrite(t, vm, offVMMarker, binary.LittleEndian.AppendUint64(nil, 8))
	if r, err := cb.Now(); err != nil || r.Status != Unknown {
		t.Fatalf("markers differ: %v, %v; want unknown", r, err)
	}
	// The hypervisor is mid-update forever: a clear error, not a hang.
	pwrite(t, vm, offVMSeq, binary.LittleEndian.AppendUint32(nil, 5))
	if _, err := cb.Now(); err == nil || !strings.Contains(err.Error(), "no consistent read") {
		t.Fatalf("stuck VMClock: error %v", err)
	}
	// The daemon catches up.
	pwrite(t, vm, offVMSeq, binary.LittleEndian.AppendUint32(nil, 6))
	seg.Generation, seg.DisruptionMarker = 4, 8
	pwrite(t, path, 0, mustEncode(t, seg))
	if r, err := cb.Now(); err != nil || r.Status != Synchronized {
		t.Fatalf("daemon caught up: %v, %v", r, err)
	}

	// Without disruption support (or in v1) the device is never consulted.
	path2 := filepath.Join(dir, "shm-nodisrupt")
	cb2, _ := NewClockBound(ClockBoundConfig{Clock: hlc.NewManualClock(testWall), Paths: []string{path2},
		VMClockPath: filepath.Join(dir, "absent"), Knobs: ClockBoundKnobs{Monotonic: mono.UnixNano}})
	defer cb2.Close()
	writeSegmentFile(t, path2, goodSegment(2, mono.UnixNano()))
	if r, err := cb2.Now(); err != nil || r.Status != Synchronized {
		t.Fatalf("support off: %v, %v", r, err)
	}
}

func TestVMClockMalformed(t *testing.T) {
	dir := t.TempDir()
	vm := filepath.Join(dir, "vmclock0")
	writeVMClock(t, vm, 2, 1)
	pwrite(t, vm, 0, []byte("XXXX"))
	m, err := mapVMClock(vm)
	if err != nil {
		t.Fatal(err)
	}
	defer unmapSegment(m)
	if _, err := readVMClockMarker(m, 3); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "bad magic") {
		t.Fatalf("bad magic: %v", err)
	}
	if err := os.WriteFile(vm, make([]byte, 8), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := mapVMClock(vm); !errors.Is(err, ErrMalformed) {
		t.Fatalf("8-byte VMClock: %v", err)
	}
}
