package clockbound

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/meridiandb/meridian/hlc"
)

// KernelState is the part of the kernel's NTP state (struct timex, read by
// adjtimex(2) with modes = 0) that the Adjtimex source uses. It is a plain
// struct so the source compiles, and can be tested, on every platform.
type KernelState struct {
	// MaxErrorMicros is timex.maxerror: the kernel's bound on the clock's
	// error, in microseconds. The sync daemon sets it at each update (root
	// delay/2 + root dispersion) and the kernel adds 500 µs every second
	// until it reaches MaxErrorClamp.
	MaxErrorMicros int64
	// EstErrorMicros is timex.esterror; informational only.
	EstErrorMicros int64
	// StatusBits is timex.status (STA_* flags).
	StatusBits int32
	// ClockState is adjtimex's return value (TIME_OK … TIME_ERROR).
	ClockState int
}

// Kernel NTP constants (include/uapi/linux/timex.h, kernel/time/ntp.c), spelled
// out so the classification below is the same on every platform.
const (
	staUnsync   = 0x0040 // STA_UNSYNC: clock unsynchronised
	staClockErr = 0x1000 // STA_CLOCKERR: clock hardware fault
	timeError   = 5      // TIME_ERROR: clock not synchronised

	// MaxErrorClamp is where the kernel stops growing maxerror and sets
	// STA_UNSYNC (NTP_PHASE_LIMIT: 16 s, in µs). A maxerror at the clamp
	// means "no idea".
	MaxErrorClamp = 16_000_000

	// adjtimexTickMargin is added to maxerror: the kernel grows maxerror by
	// its 500 ppm tolerance only once a second, so a value read just before
	// the next second boundary understates the error by up to 500 µs.
	adjtimexTickMargin = 500 * time.Microsecond
)

// Adjtimex bounds the local clock with the kernel's own NTP error estimate
// (timex.maxerror), read with adjtimex(2) in read-only mode (modes = 0; it
// never changes the kernel's state, so it needs no privilege).
//
// Reading: the injected physical clock ± (maxerror + 500 µs). Status is
// Synchronized unless STA_UNSYNC or STA_CLOCKERR is set, adjtimex returns
// TIME_ERROR, or maxerror has reached the kernel's 16 s clamp; then Unknown.
// There is no FreeRunning: the kernel already widens maxerror as time passes
// without an update, and says "unsynchronised" when it gives up.
//
// Assumption: the sync daemon (chrony, ntpd, systemd-timesyncd) sets maxerror
// honestly. Unlike ClockBound it does not add a configured oscillator drift
// bound or a PHC error bound, so YugabyteDB rates it the weaker source.
//
// Cost: the system call is slow on some virtual machines (about 5 µs on the
// one this was written on), so by default a kernel state is reused for up to
// 10 ms (measured on the monotonic clock), with the bound widened by the
// kernel's 500 ppm tolerance for the state's age. A change of sync state is
// then seen at most 10 ms late.
type Adjtimex struct {
	clock    hlc.PhysicalClock
	query    func() (KernelState, error)
	cacheFor int64
	mono     func() int64
	cache    atomic.Pointer[adjtimexCache]
}

type adjtimexCache struct {
	ks KernelState
	at int64 // monotonic ns of the query
}

// DefaultAdjtimexCache is how long Adjtimex reuses a kernel state by default.
const DefaultAdjtimexCache = 10 * time.Millisecond

// kernelTolerancePPB is the kernel's assumed worst drift (MAXFREQ, 500 ppm),
// by which it grows maxerror every second.
const kernelTolerancePPB = 500_000

// AdjtimexConfig configures an Adjtimex source.
type AdjtimexConfig struct {
	// Clock is the node's physical clock; required.
	Clock hlc.PhysicalClock
	// CacheFor is how long a kernel state is reused: 0 means
	// DefaultAdjtimexCache, negative means query on every call.
	CacheFor time.Duration
	// Knobs are for tests only.
	Knobs AdjtimexKnobs
}

// AdjtimexKnobs are test hooks of the Adjtimex source.
type AdjtimexKnobs struct {
	// Query replaces the adjtimex(2) call.
	Query func() (KernelState, error)
	// Monotonic replaces the monotonic clock that ages cached states (ns).
	Monotonic func() int64
}

// NewAdjtimex returns an Adjtimex source over clock that queries the real
// kernel, with the default cache. On platforms without adjtimex its Now
// returns ErrNotSupported.
func NewAdjtimex(clock hlc.PhysicalClock) *Adjtimex {
	return NewAdjtimexFromConfig(AdjtimexConfig{Clock: clock})
}

// NewAdjtimexWithQuery is NewAdjtimex with the system call replaced by query
// and no cache, so tests can feed synchronised and unsynchronised states.
func NewAdjtimexWithQuery(clock hlc.PhysicalClock, query func() (KernelState, error)) *Adjtimex {
	return NewAdjtimexFromConfig(AdjtimexConfig{Clock: clock, CacheFor: -1, Knobs: AdjtimexKnobs{Query: query}})
}

// NewAdjtimexFromConfig returns an Adjtimex source configured by cfg.
func NewAdjtimexFromConfig(cfg AdjtimexConfig) *Adjtimex {
	a := &Adjtimex{clock: cfg.Clock, query: cfg.Knobs.Query, mono: cfg.Knobs.Monotonic, cacheFor: int64(cfg.CacheFor)}
	if a.query == nil {
		a.query = queryKernel
	}
	if a.mono == nil {
		a.mono = processMonotonic
	}
	if a.cacheFor == 0 {
		a.cacheFor = int64(DefaultAdjtimexCache)
	}
	return a
}

// Now implements Source.
func (a *Adjtimex) Now() (Reading, error) {
	ks, age, err := a.state()
	if err != nil {
		return Reading{}, err
	}
	if ks.MaxErrorMicros < 0 {
		return Reading{}, fmt.Errorf("clockbound: adjtimex: negative maxerror %d µs", ks.MaxErrorMicros)
	}
	maxErr := min(ks.MaxErrorMicros, MaxErrorClamp)
	status := ks.status()
	bound := maxErr*int64(time.Microsecond) + int64(adjtimexTickMargin) + driftGrowth(age, kernelTolerancePPB)
	return interval(a.clock.UnixNano(), bound, status), nil
}

// state returns the kernel state and its age in ns.
func (a *Adjtimex) state() (KernelState, int64, error) {
	if a.cacheFor < 0 {
		ks, err := a.query()
		return ks, 0, err
	}
	now := a.mono()
	if c := a.cache.Load(); c != nil && now >= c.at && now-c.at < a.cacheFor {
		return c.ks, now - c.at, nil
	}
	ks, err := a.query()
	if err != nil {
		return ks, 0, err
	}
	a.cache.Store(&adjtimexCache{ks: ks, at: now})
	return ks, 0, nil
}

// status classifies a kernel state.
func (ks KernelState) status() Status {
	switch {
	case ks.StatusBits&(staUnsync|staClockErr) != 0,
		ks.ClockState == timeError,
		ks.MaxErrorMicros >= MaxErrorClamp:
		return Unknown
	default:
		return Synchronized
	}
}

// Name implements Source.
func (a *Adjtimex) Name() string { return "adjtimex" }

// processStart anchors processMonotonic.
var processStart = time.Now()

// processMonotonic returns ns elapsed on Go's monotonic clock since the
// process started. It ages cached states; it is never used as wall time.
func processMonotonic() int64 { return int64(time.Since(processStart)) }
