package clockbound

import (
	"fmt"
	"time"

	"github.com/meridiandb/meridian/hlc"
)

// Static is the fallback source: the local clock ± a configured maximum
// offset (--max-offset, 250 ms by default). It always answers and always
// reports Synchronized, because its bound is an operator's assumption, not a
// measurement: "no two clocks in this cluster differ by more than maxOffset".
// Nothing checks the assumption here; the offset monitor (hlc, server) makes a
// node that breaks it stop serving.
//
// Why ± maxOffset is enough for commit-wait: waiting until Earliest > c means
// the local clock reads above c + maxOffset, so every node whose clock is
// within maxOffset of ours already reads above c.
type Static struct {
	clock     hlc.PhysicalClock
	maxOffset int64
}

// NewStatic returns a Static source over clock. maxOffset must be positive.
func NewStatic(clock hlc.PhysicalClock, maxOffset time.Duration) (*Static, error) {
	if clock == nil {
		return nil, fmt.Errorf("clockbound: static source needs a physical clock")
	}
	if maxOffset <= 0 {
		return nil, fmt.Errorf("clockbound: static source needs a positive max offset, got %s", maxOffset)
	}
	return &Static{clock: clock, maxOffset: int64(maxOffset)}, nil
}

// Now implements Source. It never fails.
func (s *Static) Now() (Reading, error) {
	return interval(s.clock.UnixNano(), s.maxOffset, Synchronized), nil
}

// Name implements Source.
func (s *Static) Name() string { return "static" }

// MaxOffset returns the configured bound.
func (s *Static) MaxOffset() time.Duration { return time.Duration(s.maxOffset) }
