package hlc

import (
	"sync/atomic"
	"time"
)

// PhysicalClock is the one source of physical (wall) time of a node. Every
// reader of time on a node — the HLC, the clock-bound sources, commit-wait,
// leases and the offset monitor — reads the same PhysicalClock, so that a
// test hook which skews it is seen consistently by all of them.
//
// UnixNano returns nanoseconds since the Unix epoch. It must be safe for
// concurrent use and must not allocate.
type PhysicalClock interface {
	UnixNano() int64
}

// SystemClock reads the operating system's wall clock.
type SystemClock struct{}

// UnixNano implements PhysicalClock.
func (SystemClock) UnixNano() int64 { return time.Now().UnixNano() }

// ManualClock is a PhysicalClock that only moves when told to. It is meant
// for deterministic tests.
type ManualClock struct {
	nanos atomic.Int64
}

// NewManualClock returns a ManualClock reading nanos.
func NewManualClock(nanos int64) *ManualClock {
	m := &ManualClock{}
	m.nanos.Store(nanos)
	return m
}

// UnixNano implements PhysicalClock.
func (m *ManualClock) UnixNano() int64 { return m.nanos.Load() }

// Set makes the clock read nanos (it may move backwards, as a real wall clock
// can after an NTP step).
func (m *ManualClock) Set(nanos int64) { m.nanos.Store(nanos) }

// Advance moves the clock by d (which may be negative).
func (m *ManualClock) Advance(d time.Duration) { m.nanos.Add(int64(d)) }

// OffsetClock is a PhysicalClock that reads another clock plus an adjustable
// offset. The server's test hook installs one as the node's physical clock to
// inject clock skew; production nodes use it with a zero offset at no cost
// worth measuring.
type OffsetClock struct {
	base   PhysicalClock
	offset atomic.Int64
}

// NewOffsetClock returns a clock reading base plus a zero offset.
func NewOffsetClock(base PhysicalClock) *OffsetClock {
	return &OffsetClock{base: base}
}

// UnixNano implements PhysicalClock.
func (o *OffsetClock) UnixNano() int64 { return o.base.UnixNano() + o.offset.Load() }

// SetOffset sets the offset added to the base clock.
func (o *OffsetClock) SetOffset(d time.Duration) { o.offset.Store(int64(d)) }

// Offset returns the offset currently added to the base clock.
func (o *OffsetClock) Offset() time.Duration { return time.Duration(o.offset.Load()) }
