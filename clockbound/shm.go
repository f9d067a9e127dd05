package clockbound

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"time"
)

// The ClockBound shared-memory segment (docs/PROTOCOL.md and the
// clock-bound-shm crate of github.com/aws/clock-bound). All fields are in the
// host's native byte order; every field is naturally aligned.
//
//	off size  field
//	  0    8  magic: two native u32 words 0x414D5A4E, 0x43420200
//	  8    4  segment size (u32), bytes
//	 12    2  version (u16): 1 (daemon 1.x, .../shm), 2 (daemon 2.x, .../shm0); 0 = being (re)initialised
//	 14    2  generation (u16): seqlock; odd while the daemon writes, 0 = never written, wraps to 2
//	 16   16  as_of (timespec i64 sec, i64 nsec), CLOCK_MONOTONIC_COARSE when the bound was computed
//	 32   16  void_after (timespec), monotonic time after which the bound is void
//	 48    8  bound (i64 ns): error bound of CLOCK_REALTIME at as_of
//	v1:
//	 56    4  max drift (u32 ppb)
//	 60    4  reserved
//	 64    4  clock status (i32): 0 unknown, 1 synchronized, 2 free-running
//	 68    4  padding (72 bytes in all)
//	v2:
//	 56    8  disruption marker (u64): last VMClock disruption marker seen
//	 64    4  max drift (u32 ppb)
//	 68    4  clock status (i32): 0 unknown, 1 synchronized, 2 free-running, 3 disrupted
//	 72    1  clock disruption support (u8 bool)
//	 73    7  padding (80 bytes in all)
const (
	shmMagic0 = 0x414D5A4E
	shmMagic1 = 0x43420200

	shmHeaderSize = 16
	shmV1Size     = 72
	shmV2Size     = 80
	shmMaxSize    = shmV2Size // the most this reader ever copies

	offSegSize    = 8
	offVersionGen = 12 // version (u16) then generation (u16), loaded as one u32 word
	offAsOf       = 16
	offVoidAfter  = 32
	offBound      = 48

	// DefaultPathV2 and DefaultPathV1 are where the ClockBound daemon 2.x and
	// 1.x keep their segments.
	DefaultPathV2 = "/var/run/clockbound/shm0"
	DefaultPathV1 = "/var/run/clockbound/shm"

	// Raw clock status values of the segment.
	rawUnknown      = 0
	rawSynchronized = 1
	rawFreeRunning  = 2
	rawDisrupted    = 3 // v2 only

	// restartGrace: the client library trusts a Synchronized/FreeRunning
	// status only this long after as_of (the daemon rewrites the segment about
	// once a second); afterwards it demotes the status to FreeRunning.
	restartGrace = 5 * time.Second

	// causalityBlur: a monotonic reading at most this far before as_of is
	// taken as equal to it (clock resolution); further back is an error.
	causalityBlur = time.Microsecond

	maxDriftLimitPPB = 1_000_000_000
)

// Segment is the decoded content of a ClockBound segment. Times are
// nanoseconds on the host's CLOCK_MONOTONIC, the clock the daemon stamps
// as_of and void_after with.
type Segment struct {
	SegmentSize       uint32
	Version           uint16
	Generation        uint16
	AsOf              int64 // monotonic ns
	VoidAfter         int64 // monotonic ns
	BoundNanos        int64 // ± error of CLOCK_REALTIME at AsOf
	DisruptionMarker  uint64
	MaxDriftPPB       uint32
	ClockStatus       int32 // raw value, see the layout
	DisruptionSupport bool
}

// requiredSize is how many bytes a segment of the given layout version
// needs, or 0 if the version is unknown.
func requiredSize(version uint16) int {
	switch version {
	case 1:
		return shmV1Size
	case 2:
		return shmV2Size
	default:
		return 0
	}
}

// DecodeSegment parses a consistent copy of a ClockBound segment. b may be
// longer than the layout needs (a newer writer may declare a larger segment);
// it must not be shorter. Every problem is an error wrapping ErrMalformed; it
// never panics, whatever the bytes.
func DecodeSegment(b []byte) (Segment, error) {
	var s Segment
	if len(b) < shmHeaderSize {
		return s, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrMalformed, len(b), shmHeaderSize)
	}
	ne := binary.NativeEndian
	if m0, m1 := ne.Uint32(b[0:]), ne.Uint32(b[4:]); m0 != shmMagic0 || m1 != shmMagic1 {
		return s, fmt.Errorf("%w: bad magic %#08x %#08x", ErrMalformed, m0, m1)
	}
	s.SegmentSize = ne.Uint32(b[offSegSize:])
	s.Version = ne.Uint16(b[offVersionGen:])
	s.Generation = ne.Uint16(b[offVersionGen+2:])
	if s.Version == 0 {
		return s, fmt.Errorf("%w: version 0 (the daemon is initialising the segment)", ErrMalformed)
	}
	need := requiredSize(s.Version)
	if need == 0 {
		return s, fmt.Errorf("%w: unsupported layout version %d (this reader knows 1 and 2)", ErrMalformed, s.Version)
	}
	if s.Generation == 0 {
		return s, fmt.Errorf("%w: generation 0 (the daemon has not written the segment yet)", ErrMalformed)
	}
	if int(s.SegmentSize) < need {
		return s, fmt.Errorf("%w: declared size %d bytes, version %d needs %d", ErrMalformed, s.SegmentSize, s.Version, need)
	}
	if len(b) < need {
		return s, fmt.Errorf("%w: truncated: %d bytes, version %d needs %d", ErrMalformed, len(b), s.Version, need)
	}
	var err error
	if s.AsOf, err = decodeTimespec(b[offAsOf:], "as_of"); err != nil {
		return s, err
	}
	if s.VoidAfter, err = decodeTimespec(b[offVoidAfter:], "void_after"); err != nil {
		return s, err
	}
	s.BoundNanos = int64(ne.Uint64(b[offBound:]))
	if s.Version == 1 {
		s.MaxDriftPPB = ne.Uint32(b[56:])
		s.ClockStatus = int32(ne.Uint32(b[64:]))
	} else {
		s.DisruptionMarker = ne.Uint64(b[56:])
		s.MaxDriftPPB = ne.Uint32(b[64:])
		s.ClockStatus = int32(ne.Uint32(b[68:]))
		s.DisruptionSupport = b[72] != 0
	}
	if s.BoundNanos < 0 {
		return s, fmt.Errorf("%w: negative bound %d ns", ErrMalformed, s.BoundNanos)
	}
	if s.MaxDriftPPB >= maxDriftLimitPPB {
		return s, fmt.Errorf("%w: max drift %d ppb is not below 1e9", ErrMalformed, s.MaxDriftPPB)
	}
	return s, nil
}

func decodeTimespec(b []byte, name string) (int64, error) {
	sec := int64(binary.NativeEndian.Uint64(b))
	nsec := int64(binary.NativeEndian.Uint64(b[8:]))
	if nsec < 0 || nsec >= 1e9 || sec < 0 || sec > math.MaxInt64/1_000_000_000-1 {
		return 0, fmt.Errorf("%w: %s timespec {%d, %d} out of range", ErrMalformed, name, sec, nsec)
	}
	return sec*1e9 + nsec, nil
}

// Encode returns the segment's bytes in layout s.Version (1 or 2), padded to
// the layout's size; SegmentSize 0 means that size. It is what the daemon
// writes, for test fixtures and for a fake daemon in the Jepsen suite.
func (s Segment) Encode() ([]byte, error) {
	need := requiredSize(s.Version)
	if need == 0 {
		return nil, fmt.Errorf("clockbound: cannot encode layout version %d", s.Version)
	}
	size := s.SegmentSize
	if size == 0 {
		size = uint32(need)
	}
	b := make([]byte, need)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], shmMagic0)
	ne.PutUint32(b[4:], shmMagic1)
	ne.PutUint32(b[offSegSize:], size)
	ne.PutUint16(b[offVersionGen:], s.Version)
	ne.PutUint16(b[offVersionGen+2:], s.Generation)
	putTimespec(b[offAsOf:], s.AsOf)
	putTimespec(b[offVoidAfter:], s.VoidAfter)
	ne.PutUint64(b[offBound:], uint64(s.BoundNanos))
	if s.Version == 1 {
		ne.PutUint32(b[56:], s.MaxDriftPPB)
		ne.PutUint32(b[64:], uint32(s.ClockStatus))
	} else {
		ne.PutUint64(b[56:], s.DisruptionMarker)
		ne.PutUint32(b[64:], s.MaxDriftPPB)
		ne.PutUint32(b[68:], uint32(s.ClockStatus))
		if s.DisruptionSupport {
			b[72] = 1
		}
	}
	return b, nil
}

func putTimespec(b []byte, ns int64) {
	sec, nsec := ns/1e9, ns%1e9
	if nsec < 0 {
		sec, nsec = sec-1, nsec+1e9
	}
	binary.NativeEndian.PutUint64(b, uint64(sec))
	binary.NativeEndian.PutUint64(b[8:], uint64(nsec))
}

// Bound computes the reading the ClockBound client library would return at
// wall time real and monotonic time mono (both ns), from a decoded segment:
//
//	bound    = BoundNanos + (mono − AsOf) × MaxDriftPPB / 1e9   (rounded up)
//	earliest = real − bound, latest = real + bound
//
// Status: an unknown or disrupted segment is Unknown; Synchronized and
// FreeRunning stand for 5 s after AsOf (the daemon restart grace), then read
// FreeRunning until VoidAfter, then Unknown. A mono more than 1 µs before
// AsOf is a causality breach (an error): the segment comes from the future.
func (s Segment) Bound(real, mono int64) (Reading, error) {
	if s.MaxDriftPPB >= maxDriftLimitPPB || s.BoundNanos < 0 {
		return Reading{}, fmt.Errorf("%w: bound %d ns, max drift %d ppb", ErrMalformed, s.BoundNanos, s.MaxDriftPPB)
	}
	var elapsed int64
	switch {
	case mono >= s.AsOf:
		elapsed = mono - s.AsOf
	case mono > s.AsOf-int64(causalityBlur):
		elapsed = 0
	default:
		return Reading{}, fmt.Errorf("clockbound: causality breach: monotonic clock %d ns is before the segment's as_of %d ns", mono, s.AsOf)
	}
	bound := addSat(s.BoundNanos, driftGrowth(elapsed, s.MaxDriftPPB))
	return interval(real, bound, s.status(mono)), nil
}

func (s Segment) status(mono int64) Status {
	var st Status
	switch s.ClockStatus {
	case rawSynchronized:
		st = Synchronized
	case rawFreeRunning:
		st = FreeRunning
	default: // unknown, disrupted (v2) and values this reader does not know
		return Unknown
	}
	switch {
	case mono < addSat(s.AsOf, int64(restartGrace)):
		return st
	case mono < s.VoidAfter:
		return FreeRunning
	default:
		return Unknown
	}
}

// driftGrowth returns ceil(elapsed × ppb / 1e9) without overflow.
func driftGrowth(elapsed int64, ppb uint32) int64 {
	if elapsed <= 0 || ppb == 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(elapsed), uint64(ppb))
	q, r := bits.Div64(hi, lo, 1e9) // hi < 2^29 < 1e9, so no panic
	if r != 0 {
		q++
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}
