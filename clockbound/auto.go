package clockbound

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// DefaultMaxAdjtimexError is Auto's default ceiling on the kernel's ± error
// bound: above it the kernel's estimate is too loose to beat the configured
// max offset by much, and Auto falls back to the static source. It matches
// the default commit-wait threshold of DESIGN.md ("wait when ε ≤ 10 ms").
const DefaultMaxAdjtimexError = 10 * time.Millisecond

// AutoConfig configures Auto.
type AutoConfig struct {
	// ClockBound is tried first; nil skips it. It is used when it answers
	// with Status Synchronized (FreeRunning means the daemon lost chrony;
	// Auto then prefers the kernel's fresher view, and in the end Static).
	ClockBound Source
	// Adjtimex is tried second; nil skips it. It is used when Synchronized
	// and its ± bound (half the width) is at most MaxAdjtimexError.
	Adjtimex Source
	// Static is the fallback; required.
	Static Source
	// MaxAdjtimexError: 0 means DefaultMaxAdjtimexError.
	MaxAdjtimexError time.Duration
}

// Auto picks, on every call, the best source that can vouch for itself:
// ClockBound if present and Synchronized; else Adjtimex if Synchronized and
// its bound is at most MaxAdjtimexError; else Static. A source that errors is
// skipped. Choosing per call means a node moves to a better bound as soon as
// a daemon syncs, and off a bad one as soon as it degrades.
//
// Cost: a ClockBound read when the daemon is healthy; otherwise one adjtimex
// system call more.
type Auto struct {
	clockBound, adjtimex, static Source
	maxAdjtimexError             int64
}

// NewAuto returns an Auto source.
func NewAuto(cfg AutoConfig) (*Auto, error) {
	if cfg.Static == nil {
		return nil, fmt.Errorf("clockbound: auto source needs a static fallback")
	}
	if cfg.MaxAdjtimexError < 0 {
		return nil, fmt.Errorf("clockbound: negative adjtimex error threshold %s", cfg.MaxAdjtimexError)
	}
	if cfg.MaxAdjtimexError == 0 {
		cfg.MaxAdjtimexError = DefaultMaxAdjtimexError
	}
	return &Auto{
		clockBound:       cfg.ClockBound,
		adjtimex:         cfg.Adjtimex,
		static:           cfg.Static,
		maxAdjtimexError: int64(cfg.MaxAdjtimexError),
	}, nil
}

// Name implements Source.
func (a *Auto) Name() string { return "auto" }

// Now implements Source.
func (a *Auto) Now() (Reading, error) {
	_, r, err := a.Choose()
	return r, err
}

// Choose returns the source in force right now and its reading.
func (a *Auto) Choose() (Source, Reading, error) {
	if a.clockBound != nil {
		if r, err := a.clockBound.Now(); err == nil && r.Status == Synchronized {
			return a.clockBound, r, nil
		}
	}
	if a.adjtimex != nil {
		if r, err := a.adjtimex.Now(); err == nil && r.Status == Synchronized &&
			int64(r.Width()/2) <= a.maxAdjtimexError {
			return a.adjtimex, r, nil
		}
	}
	r, err := a.static.Now()
	return a.static, r, err
}

// Current reports which source is in force and its ε = Latest − Earliest
// (the full width of the interval), for metrics and `meridian node status`.
// It takes a fresh reading; if even the fallback fails it returns ("", 0).
func (a *Auto) Current() (name string, epsilon time.Duration) {
	src, r, err := a.Choose()
	if err != nil {
		return "", 0
	}
	return src.Name(), r.Width()
}

// Close closes those of Auto's sources that hold resources (the ClockBound
// mapping). Like ClockBound.Close, it must not run concurrently with Now.
func (a *Auto) Close() error {
	var errs []error
	for _, s := range []Source{a.clockBound, a.adjtimex, a.static} {
		if c, ok := s.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
