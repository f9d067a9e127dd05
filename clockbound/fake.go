package clockbound

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridiandb/meridian/hlc"
)

// Fake is a Source for unit tests of other packages: it returns whatever it
// was last told to. It has two modes: a fixed Reading (Set), or a reading
// that follows a physical clock with a fixed bound and status (Track), which
// is the one to use with hlc.ManualClock. SetError makes Now fail until it is
// cleared with SetError(nil). Safe for concurrent use.
type Fake struct {
	name  string
	reads atomic.Int64

	mu struct {
		sync.Mutex
		r      Reading
		clock  hlc.PhysicalClock // non-nil: tracking mode
		bound  int64
		status Status
		err    error
	}
}

// NewFake returns a Fake named name ("fake" if empty) answering r.
func NewFake(name string, r Reading) *Fake {
	if name == "" {
		name = "fake"
	}
	f := &Fake{name: name}
	f.mu.r = r
	return f
}

// NewTrackingFake returns a Fake whose readings are clock ± bound with status.
func NewTrackingFake(name string, clock hlc.PhysicalClock, bound time.Duration, status Status) *Fake {
	f := NewFake(name, Reading{})
	f.Track(clock, bound, status)
	return f
}

// Set switches to fixed mode and makes Now answer r.
func (f *Fake) Set(r Reading) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.r, f.mu.clock = r, nil
}

// Track switches to tracking mode: Now answers clock ± bound with status.
func (f *Fake) Track(clock hlc.PhysicalClock, bound time.Duration, status Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.clock, f.mu.bound, f.mu.status = clock, int64(bound), status
}

// SetError makes Now return err (nil restores normal answers).
func (f *Fake) SetError(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.err = err
}

// Reads returns how many times Now has been called.
func (f *Fake) Reads() int64 { return f.reads.Load() }

// Now implements Source.
func (f *Fake) Now() (Reading, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.err != nil {
		return Reading{}, f.mu.err
	}
	if f.mu.clock != nil {
		return interval(f.mu.clock.UnixNano(), f.mu.bound, f.mu.status), nil
	}
	return f.mu.r, nil
}

// Name implements Source.
func (f *Fake) Name() string { return f.name }
