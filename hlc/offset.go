package hlc

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ToleratedOffsetFraction is the fraction of the maximum offset a node may be
// away from a majority of its peers before it stops serving. Stopping before
// the full max offset leaves room for the estimates' own error and for the
// drift between two checks.
const ToleratedOffsetFraction = 0.8

// DefaultOffsetStaleAfter is how long an offset sample counts when
// OffsetMonitorConfig.StaleAfter is zero (ten 1-second heartbeats).
const DefaultOffsetStaleAfter = 10 * time.Second

// OffsetSample is one clock reading exchanged on an RPC with a peer. Sent and
// Received are read from this node's physical clock (Clock.PhysicalNow) just
// before the request leaves and just after the response arrives; Remote is
// the peer's physical clock (not its HLC, which may run ahead of it) read
// while it handled the request.
type OffsetSample struct {
	Peer     string
	Sent     int64 // local physical time the request was sent, ns
	Remote   int64 // the peer's physical time in its response, ns
	Received int64 // local physical time the response arrived, ns
}

// OffsetEstimate is what one sample says about a peer's clock. The peer read
// its clock at some local instant in [Sent, Received], so the true offset is
// within Error of Offset (ignoring drift during one round trip).
type OffsetEstimate struct {
	Peer       string
	Offset     time.Duration // peer's clock minus ours, at the round trip's midpoint
	Error      time.Duration // half the round trip
	MeasuredAt int64         // local physical time of the sample (its Received)
}

func (e OffsetEstimate) String() string {
	return fmt.Sprintf("%s offset %s ±%s", e.Peer, e.Offset, e.Error)
}

// estimate turns a sample into an estimate.
func (s OffsetSample) estimate() OffsetEstimate {
	rtt := s.Received - s.Sent
	mid := s.Sent + rtt/2
	return OffsetEstimate{
		Peer:       s.Peer,
		Offset:     time.Duration(s.Remote - mid),
		Error:      time.Duration(rtt - rtt/2), // rounds up, so the bound stays a bound
		MeasuredAt: s.Received,
	}
}

// definitelyBeyond reports whether the peer is away by more than threshold
// even at the near end of the estimate's error interval. An estimate whose
// interval straddles the threshold does not count: a slow round trip alone
// must not stop a node.
func (e OffsetEstimate) definitelyBeyond(threshold time.Duration) bool {
	off := e.Offset
	if off < 0 {
		off = -off
	}
	return off-e.Error > threshold
}

// overlaps reports whether the error intervals of e and f intersect.
func (e OffsetEstimate) overlaps(f OffsetEstimate) bool {
	return e.Offset-e.Error <= f.Offset+f.Error && f.Offset-f.Error <= e.Offset+e.Error
}

// OffsetMonitorConfig configures an OffsetMonitor.
type OffsetMonitorConfig struct {
	// StaleAfter is how long after its measurement a sample stops counting.
	// Zero means DefaultOffsetStaleAfter.
	StaleAfter time.Duration
	// OnFailStop is called once, on the first Check that finds this node
	// more than ToleratedOffsetFraction × max offset away from a majority of
	// its peers. The server passes a function that stops the node. It is
	// called without the monitor's lock held.
	OnFailStop func(*ClockOffsetError)
	// ClusterSize, if set, returns how many nodes the cluster has (this one
	// included). Check then fail-stops only when the far peers are a
	// majority of the whole cluster, not merely of the peers it has fresh
	// samples from: with one skewed peer as the only fresh sample, a
	// healthy node must not stop. Without it, the majority is of the
	// known peers.
	ClusterSize func() int
}

// OffsetMonitor estimates the offset of each peer's physical clock from this
// node's, from the clock readings exchanged on RPCs, and decides when this
// node's clock is so far off that it must stop serving (fail-stop). It is
// safe for concurrent use.
//
// The RPC layer calls Record for every round trip that carries a clock
// reading and Check after each heartbeat round; metrics read Estimates.
type OffsetMonitor struct {
	phys       PhysicalClock
	maxOffset  time.Duration
	threshold  time.Duration
	staleAfter time.Duration
	onFailStop func(*ClockOffsetError)
	cluster    func() int
	stopped    atomic.Bool // OnFailStop has been called

	mu struct {
		sync.Mutex
		peers map[string]OffsetEstimate
	}
}

// NewOffsetMonitor returns a monitor reading clock's physical clock and max
// offset, so that its samples and its verdicts use the same time as the rest
// of the node.
func NewOffsetMonitor(clock *Clock, cfg OffsetMonitorConfig) *OffsetMonitor {
	m := &OffsetMonitor{
		phys:       clock.PhysicalClock(),
		maxOffset:  clock.MaxOffset(),
		threshold:  time.Duration(math.Round(float64(clock.MaxOffset()) * ToleratedOffsetFraction)),
		staleAfter: cfg.StaleAfter,
		onFailStop: cfg.OnFailStop,
		cluster:    cfg.ClusterSize,
	}
	if m.staleAfter <= 0 {
		m.staleAfter = DefaultOffsetStaleAfter
	}
	m.mu.peers = make(map[string]OffsetEstimate)
	return m
}

// Threshold returns the offset beyond which a peer counts against this node:
// ToleratedOffsetFraction × max offset.
func (m *OffsetMonitor) Threshold() time.Duration { return m.threshold }

// Record adds a sample. Per peer the monitor keeps one estimate: a new sample
// replaces it if the kept one is stale, or if the new one is not older and
// either at least as precise (error no larger) or in disagreement with it
// (their error intervals do not overlap: a clock moved, and the newer reading
// is the one that holds now). Otherwise the more precise estimate stays until
// it goes stale. Record fails only on a sample received before it was sent.
func (m *OffsetMonitor) Record(s OffsetSample) error {
	if s.Received < s.Sent {
		return fmt.Errorf("hlc: offset sample from peer %s received (%d) before it was sent (%d)", s.Peer, s.Received, s.Sent)
	}
	e := s.estimate()
	now := m.phys.UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.mu.peers[s.Peer]
	switch {
	case !ok, m.staleLocked(old, now):
		m.mu.peers[s.Peer] = e
	case e.MeasuredAt < old.MeasuredAt:
		// Arrived out of order: the kept estimate is newer.
	case e.Error <= old.Error, !e.overlaps(old):
		m.mu.peers[s.Peer] = e
	}
	return nil
}

func (m *OffsetMonitor) staleLocked(e OffsetEstimate, now int64) bool {
	return now-e.MeasuredAt > int64(m.staleAfter)
}

// Estimates returns the current (non-stale) estimate for each peer, sorted by
// peer. Stale estimates are dropped.
func (m *OffsetMonitor) Estimates() []OffsetEstimate {
	now := m.phys.UnixNano()
	m.mu.Lock()
	out := make([]OffsetEstimate, 0, len(m.mu.peers))
	for p, e := range m.mu.peers {
		if m.staleLocked(e, now) {
			delete(m.mu.peers, p)
			continue
		}
		out = append(out, e)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b OffsetEstimate) int { return strings.Compare(a.Peer, b.Peer) })
	return out
}

// Check decides whether this node's clock is more than Threshold away from a
// strict majority of its known, non-stale peers (and, with ClusterSize, of
// the cluster's nodes), counting a peer only when
// its estimate is beyond the threshold even after subtracting its error. If
// so it returns a *ClockOffsetError and, the first time, passes it to
// OnFailStop. With no known peers there is nothing to compare with and Check
// returns nil.
func (m *OffsetMonitor) Check() error {
	ests := m.Estimates()
	if len(ests) == 0 {
		return nil
	}
	var far []OffsetEstimate
	for _, e := range ests {
		if e.definitelyBeyond(m.threshold) {
			far = append(far, e)
		}
	}
	if 2*len(far) <= len(ests) {
		return nil
	}
	if m.cluster != nil {
		// A majority of the cluster's nodes (this one, never far from
		// itself, included in the count).
		if n := m.cluster(); 2*len(far) <= n {
			return nil
		}
	}
	err := &ClockOffsetError{Far: far, Known: len(ests), Threshold: m.threshold, MaxOffset: m.maxOffset}
	if m.onFailStop != nil && m.stopped.CompareAndSwap(false, true) {
		m.onFailStop(err)
	}
	return err
}

// ClockOffsetError says this node's clock is too far from a majority of its
// peers for the timestamp guarantees to hold; the node must stop serving.
type ClockOffsetError struct {
	Far       []OffsetEstimate // the peers definitely beyond Threshold, sorted by peer
	Known     int              // how many non-stale peers were compared
	Threshold time.Duration    // ToleratedOffsetFraction × MaxOffset
	MaxOffset time.Duration
}

func (e *ClockOffsetError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "hlc: clock synchronization error: this node is more than %s (%.0f%% of max offset %s) away from %d of %d known peers:",
		e.Threshold, ToleratedOffsetFraction*100, e.MaxOffset, len(e.Far), e.Known)
	for i, f := range e.Far {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte(' ')
		b.WriteString(f.String())
	}
	return b.String()
}
