package clockbound

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrUntrusted is returned by WaitUntilAfter when the source answers with
// Status Unknown: its Earliest cannot prove that any time has passed.
var ErrUntrusted = errors.New("clockbound: clock error bound unknown")

// WaitUntilAfter is commit-wait: it blocks until src's Earliest is strictly
// greater than ts (nanoseconds of wall time, e.g. a commit timestamp's
// WallTime), so that true time has certainly passed ts. It sleeps on a timer
// for the remaining gap, then reads src again (the clock may have been slewed,
// or the bound may have changed), until the condition holds or ctx is done.
//
// It returns how long it waited, measured on src's own clock (the change of
// the interval's midpoint, i.e. the physical clock it is built on, between
// the first and last reading; 0 when no wait was needed), and:
//   - ctx.Err() if ctx ends first;
//   - src's error if a reading fails;
//   - an error wrapping ErrUntrusted if a reading has Status Unknown.
//
// With an hlc.ManualClock underneath, the wait ends only once someone
// advances that clock.
func WaitUntilAfter(ctx context.Context, src Source, ts int64) (waited time.Duration, err error) {
	first, err := readTrusted(src)
	if err != nil {
		return 0, err
	}
	if first.Earliest > ts {
		return 0, nil
	}
	last := first
	elapsed := func() time.Duration { return time.Duration(max(0, last.Midpoint()-first.Midpoint())) }
	timer := time.NewTimer(gap(ts, last.Earliest))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return elapsed(), ctx.Err()
		case <-timer.C:
		}
		r, err := readTrusted(src)
		if err != nil {
			return elapsed(), err
		}
		last = r
		if r.Earliest > ts {
			return elapsed(), nil
		}
		timer.Reset(gap(ts, r.Earliest))
	}
}

// gap is how long to sleep for earliest to pass ts (> 0, saturating).
func gap(ts, earliest int64) time.Duration {
	return time.Duration(addSat(subSat(ts, earliest), 1))
}

func readTrusted(src Source) (Reading, error) {
	r, err := src.Now()
	if err != nil {
		return r, err
	}
	if r.Status == Unknown {
		return r, fmt.Errorf("%w: source %s", ErrUntrusted, src.Name())
	}
	return r, nil
}
