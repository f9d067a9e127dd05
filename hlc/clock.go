package hlc

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Clock is a hybrid logical clock: it hands out Timestamps that are strictly
// increasing, never below the node's physical time, and above every
// timestamp the node has received from a peer (see Update). It is safe for
// concurrent use; Now and Update do not allocate.
//
// A Clock built by NewClock lives in memory only. A Clock built by
// NewPersistentClock also keeps a persisted upper bound on the wall times it
// has handed out, so that a restarted node never hands out a timestamp at or
// below one it handed out before (see doc.go, "Restarts").
type Clock struct {
	phys      PhysicalClock
	maxOffset time.Duration
	onFatal   func(error)

	// store and ahead are set only for a persistent clock.
	store WallTimeStore
	ahead int64 // nanoseconds persisted beyond the wall time that needed it

	// persistMu serialises calls to store.Store. It is never held together
	// with mu, so Now and Update never wait on I/O unless they must hand out
	// a wall time beyond the persisted bound.
	persistMu sync.Mutex

	mu struct {
		sync.Mutex
		// last is the highest timestamp handed out by Now or received by
		// Update. Every later Now returns a timestamp above it.
		last Timestamp
		// bound is the persisted wall-time bound (persistent clocks only):
		// every timestamp handed out has WallTime < bound, and bound is
		// durable in store.
		bound int64
	}
}

// Option configures a Clock.
type Option func(*Clock)

// WithFatalHandler sets the function a persistent clock calls when it cannot
// persist its wall-time bound (a failing disk). The server passes a function
// that stops the node. The default panics: a node that cannot keep its
// restart promise must not go on handing out timestamps. If the handler
// returns, the clock goes on in memory without the restart guarantee for
// the wall times it could not persist.
func WithFatalHandler(f func(error)) Option {
	return func(c *Clock) { c.onFatal = f }
}

// NewClock returns an in-memory clock reading phys. maxOffset is the
// cluster's --max-offset: the most any two nodes' physical clocks may differ
// by; Update rejects remote timestamps further ahead than that. maxOffset
// must be positive and phys non-nil: both are configuration the server
// validates, so NewClock panics on them as on any programming error.
func NewClock(phys PhysicalClock, maxOffset time.Duration, opts ...Option) *Clock {
	if phys == nil {
		panic("hlc: NewClock with a nil PhysicalClock")
	}
	if maxOffset <= 0 {
		panic(fmt.Sprintf("hlc: NewClock with max offset %s, want > 0", maxOffset))
	}
	c := &Clock{
		phys:      phys,
		maxOffset: maxOffset,
		onFatal:   func(err error) { panic(err) },
	}
	for _, o := range opts {
		o(c)
	}
	c.mu.bound = math.MaxInt64
	return c
}

// PhysicalClock returns the physical clock the Clock reads. Every reader of
// time on the node (clock bounds, leases, commit-wait, the offset monitor)
// reads this same clock.
func (c *Clock) PhysicalClock() PhysicalClock { return c.phys }

// PhysicalNow returns the physical clock's reading in nanoseconds since the
// Unix epoch. It does not touch the hybrid clock.
func (c *Clock) PhysicalNow() int64 { return c.phys.UnixNano() }

// MaxOffset returns the configured maximum clock offset between nodes.
func (c *Clock) MaxOffset() time.Duration { return c.maxOffset }

// Now returns a timestamp strictly greater than every timestamp this clock
// has returned or been updated with, and at least the current physical time:
// max(physical, last.Next()). When the physical clock is behind (it stepped
// backwards, or a peer's clock is ahead) the wall time stays and the logical
// counter grows; when the counter would overflow, the wall time moves to the
// next nanosecond.
//
// On a persistent clock, the call that first comes within ahead/2 of the
// persisted bound writes a new bound before returning (about once per ahead/2
// of wall time; see NewPersistentClock); other calls wait for that write only
// if the clock reaches the bound before it is done.
func (c *Clock) Now() Timestamp {
	for {
		phys := Timestamp{WallTime: c.phys.UnixNano()}
		c.mu.Lock()
		t := c.mu.last.Next()
		if t.Less(phys) {
			t = phys
		}
		if c.store == nil {
			c.mu.last = t
			c.mu.Unlock()
			return t
		}
		bound := c.mu.bound
		if t.WallTime < bound || bound == math.MaxInt64 {
			c.mu.last = t
			c.mu.Unlock()
			if t.WallTime >= bound-c.ahead/2 {
				// Running low on headroom: extend it now, unless another
				// goroutine already is, so that the blocking path below
				// stays rare.
				c.extendBound(t.WallTime, false)
			}
			return t
		}
		c.mu.Unlock()
		c.extendBound(t.WallTime, true)
	}
}

// Update ratchets the clock forward to remote, a timestamp carried by a
// message from another node, so that every later Now is above it. Call it on
// every message that carries a timestamp (requests, responses, errors, Raft
// commands).
//
// A remote timestamp whose wall time is more than MaxOffset ahead of the
// local physical clock is rejected with an *UntrustedRemoteError and the
// clock is left unchanged: accepting it would let one node with a runaway
// clock drag every other node's clock out of the max-offset bound.
func (c *Clock) Update(remote Timestamp) error {
	phys := c.phys.UnixNano()
	// remote.WallTime-phys may overflow int64; as uint64 the difference is
	// exact whenever remote.WallTime > phys.
	if remote.WallTime > phys && uint64(remote.WallTime)-uint64(phys) > uint64(c.maxOffset) {
		return &UntrustedRemoteError{Remote: remote, Physical: phys, MaxOffset: c.maxOffset}
	}
	c.mu.Lock()
	if c.mu.last.Less(remote) {
		c.mu.last = remote
	}
	c.mu.Unlock()
	return nil
}

// UntrustedRemoteError is returned by Clock.Update when a remote timestamp is
// more than the maximum offset ahead of the local physical clock. Either the
// peer's clock or this node's clock is off; the offset monitor decides which
// node stops.
type UntrustedRemoteError struct {
	Remote    Timestamp     // the rejected timestamp
	Physical  int64         // local physical time when it was checked, ns
	MaxOffset time.Duration // the configured maximum offset
}

func (e *UntrustedRemoteError) Error() string {
	ahead := uint64(e.Remote.WallTime) - uint64(e.Physical)
	var aheadStr string
	if ahead > math.MaxInt64 {
		aheadStr = fmt.Sprintf("%dns", ahead)
	} else {
		aheadStr = time.Duration(ahead).String()
	}
	return fmt.Sprintf("hlc: remote timestamp %s is %s ahead of local physical time %s, more than the max offset %s",
		e.Remote, aheadStr, Timestamp{WallTime: e.Physical}, e.MaxOffset)
}

// extendBound persists a new wall-time bound above need. With wait false it
// gives up at once if another goroutine is persisting. The fatal handler runs
// after persistMu is released, so it may itself call Now.
func (c *Clock) extendBound(need int64, wait bool) {
	if wait {
		c.persistMu.Lock()
	} else if !c.persistMu.TryLock() {
		return
	}
	c.mu.Lock()
	bound := c.mu.bound
	c.mu.Unlock()
	if need < bound-c.ahead/2 {
		c.persistMu.Unlock()
		return // another goroutine extended it while we waited
	}
	newBound := addSat(max(c.phys.UnixNano(), need), c.ahead)
	err := c.store.Store(newBound)
	// On error, raise the bound in memory all the same: the fatal handler
	// has been told, and the clock must not spin retrying a dead disk.
	c.mu.Lock()
	if newBound > c.mu.bound {
		c.mu.bound = newBound
	}
	c.mu.Unlock()
	c.persistMu.Unlock()
	if err != nil {
		c.onFatal(fmt.Errorf("hlc: cannot persist wall-time bound %s; the clock cannot promise monotonic timestamps across a restart: %w",
			Timestamp{WallTime: newBound}, err))
	}
}

// addSat returns a+b (b ≥ 0), saturating at math.MaxInt64.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
