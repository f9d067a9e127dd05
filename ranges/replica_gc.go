package ranges

import (
	"context"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/mvcc"
	"github.com/meridiandb/meridian/ranges/concurrency"
)

// runGC removes, through Raft, the versions of the range no read at or
// above now − GCTTL can see, and raises the range's GC threshold to that
// point: reads below it are refused from then on (Low-Water Mark). It
// returns the number of versions removed.
func (r *Replica) runGC(ctx context.Context) (int64, error) {
	now := r.store.cfg.Clock.Now()
	threshold := now.AddNanos(-int64(r.store.cfg.GCTTL))
	lease, err := r.ensureLease(ctx, now)
	if err != nil {
		return 0, err
	}
	// A non-MVCC write latch over the range: no read may run while versions
	// below the new threshold disappear.
	desc := r.Desc()
	var spans concurrency.SpanSet
	spans.AddWrite(desc.GetStartKey(), desc.GetEndKey(), hlc.Timestamp{})
	g, err := r.latches.Acquire(ctx, &spans)
	if err != nil {
		return 0, err
	}
	defer r.latches.Release(g)
	b := r.store.engine.NewBatch()
	defer b.Close()
	var delta mvcc.Stats
	n, err := mvcc.GC(b, &delta, desc.GetStartKey(), desc.GetEndKey(), threshold)
	if err != nil {
		return 0, err
	}
	_, err = r.propose(ctx, &api.ReplicatedCommand{
		LeaseSequence: lease.GetSequence(), WriteBatch: append([]byte(nil), b.Repr()...),
		StatsDelta: delta.ToProto(), GcThreshold: api.NewTimestamp(threshold),
	})
	return n, err
}

// maybeGC runs GC on a range that holds old versions, at most once per
// tenth of the TTL.
func (s *Store) maybeGC(ctx context.Context, r *Replica) {
	if s.cfg.GCTTL <= 0 {
		return
	}
	r.mu.RLock()
	st := r.mu.state
	garbage := st.stats.ValCount > st.stats.LiveCount
	last := st.gcThreshold
	r.mu.RUnlock()
	next := s.cfg.Clock.Now().AddNanos(-int64(s.cfg.GCTTL))
	if !garbage || next.WallTime-last.WallTime < int64(s.cfg.GCTTL/10) {
		return
	}
	n, err := r.runGC(ctx)
	if err != nil {
		s.log.Debug("gc queue: gc failed", "range", r.rangeID, "err", err)
		return
	}
	s.count(func(m *QueueMetrics) { m.GCRuns++; m.GCVersionsRemoved += n })
}
