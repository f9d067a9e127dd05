package clockbound

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Status says how far a Reading can be trusted.
//
// The zero value is Unknown, so a Reading nobody filled in is never mistaken
// for a trustworthy one.
type Status int8

const (
	// Unknown: the source cannot vouch for the interval. Earliest and Latest
	// are well-formed numbers but carry no guarantee; callers must not base
	// commit-wait or uncertainty windows on them.
	Unknown Status = iota
	// Synchronized: the source's clock is being disciplined and the interval
	// holds under the source's stated assumptions.
	Synchronized
	// FreeRunning: the source lost its time reference recently but still
	// bounds the error by assuming a maximum drift rate since the last good
	// sync. The interval holds, and it widens with every second.
	FreeRunning
)

// String implements fmt.Stringer.
func (s Status) String() string {
	switch s {
	case Unknown:
		return "unknown"
	case Synchronized:
		return "synchronized"
	case FreeRunning:
		return "free-running"
	default:
		return fmt.Sprintf("status(%d)", int8(s))
	}
}

// Reading is one answer of a Source: an interval of wall time, in
// nanoseconds since the Unix epoch (the unit of hlc.Timestamp.WallTime), that
// contains true time at the instant of the call, plus how far to trust it.
//
// Invariant of every source: Earliest <= Latest.
type Reading struct {
	Earliest int64
	Latest   int64
	Status   Status
}

// Width is Latest − Earliest: the full width of the uncertainty interval
// (twice the ± error bound). This is the ε that Auto.Current and the metrics
// report.
// It saturates at the largest Duration.
func (r Reading) Width() time.Duration { return time.Duration(subSat(r.Latest, r.Earliest)) }

// Midpoint is the centre of the interval, which for every source in this
// package is the local physical clock reading the interval was built from.
func (r Reading) Midpoint() int64 {
	return r.Earliest/2 + r.Latest/2 + (r.Earliest%2+r.Latest%2)/2
}

// String formats r for logs.
func (r Reading) String() string {
	return fmt.Sprintf("[%d, %d] ±%s %s", r.Earliest, r.Latest, r.Width()/2, r.Status)
}

// Source is a clock with an error bound: Now returns an interval that contains
// true time when the call happens, under the source's assumptions (see each
// implementation). Every Source reads wall time only through the
// hlc.PhysicalClock it was built with, so a test hook that skews that clock
// skews every reading.
//
// Implementations are safe for concurrent use. Now must not block on I/O
// beyond a system call or a memory read.
type Source interface {
	Now() (Reading, error)
	// Name is a short fixed identifier: "static", "adjtimex", "clockbound",
	// "auto", or a Fake's chosen name.
	Name() string
}

// ErrNotSupported is returned by sources that need an operating-system
// facility this platform does not have (adjtimex and the ClockBound shared
// memory exist only on Linux).
var ErrNotSupported = errors.New("clockbound: not supported on this platform")

// ErrNotPresent is returned by the ClockBound source when no daemon segment
// exists at any of its paths. It wraps fs.ErrNotExist.
var ErrNotPresent = errors.New("clockbound: ClockBound daemon shared memory not found")

// ErrMalformed is wrapped by every error about a ClockBound segment whose
// bytes do not follow the protocol (bad magic, version, size, field values).
var ErrMalformed = errors.New("clockbound: malformed ClockBound segment")

// interval builds a Reading centred on now with a half-width of bound,
// saturating instead of overflowing.
func interval(now, bound int64, status Status) Reading {
	if bound < 0 {
		bound = 0
	}
	return Reading{Earliest: subSat(now, bound), Latest: addSat(now, bound), Status: status}
}

func addSat(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	if b < 0 && a < math.MinInt64-b {
		return math.MinInt64
	}
	return a + b
}

func subSat(a, b int64) int64 {
	if b > 0 && a < math.MinInt64+b {
		return math.MinInt64
	}
	if b < 0 && a > math.MaxInt64+b {
		return math.MaxInt64
	}
	return a - b
}
