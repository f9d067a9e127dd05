package ranges

import (
	"bytes"
	"context"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
)

// The store's queues: one loop visits every replica this store holds a
// valid lease for, at a steady pace, and gives each queue a look:
//
//   - split: a range whose stats exceed RangeMaxBytes splits at the middle
//     of its data;
//   - meta repair: a range whose meta entry is missing or older than its
//     descriptor gets it rewritten (after a crash between a split and its
//     meta update);
//   - GC: a range holding versions older than GCTTL has those no read at or
//     above now − GCTTL can see removed through Raft, and its GC threshold
//     raised (reads below it are refused);
//   - raft log: every replica's log is truncated by raftgroup's
//     TruncationPolicy as entries apply (StoreConfig.Truncation), which is
//     this store's raft log queue.
//
//   - replicate: a range with fewer voters than min(3, live stores) gets
//     one more — a learner, its snapshot, then promotion.
//
// Replacing replicas of dead nodes and rebalancing come later; each queue keeps its counters in
// QueueMetrics for the metrics endpoint.

// QueueMetrics counts what the queues did.
type QueueMetrics struct {
	Splits, SplitFailures     int64
	MetaRepairs, MetaFailures int64
	GCRuns, GCVersionsRemoved int64
	ReplicasAdded             int64
	ReplicaAddFailures        int64
}

// Metrics returns the store's queue counters.
func (s *Store) Metrics() QueueMetrics {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.qmetrics
}

func (s *Store) queueLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.QueueInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.RunQueuesOnce(s.stopCtx)
	}
}

// RunQueuesOnce gives every replica this store leases one pass of every
// queue (the loop does this every QueueInterval; tests call it directly).
// An under-replicated range whose lease nobody holds (an idle range lets
// its lease lapse) is leased by its Raft leader first, so idle ranges
// up-replicate too.
func (s *Store) RunQueuesOnce(ctx context.Context) {
	for _, r := range s.Replicas() {
		if ctx.Err() != nil {
			return
		}
		now := s.cfg.Clock.Now()
		l := r.Lease()
		if l.GetReplica().GetReplicaId() != r.replicaID || !r.leaseValid(l, now) {
			if !s.leaseForReplication(ctx, r, l, now) {
				continue
			}
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		s.maybeRepairMeta(rctx, r)
		s.maybeGC(rctx, r)
		s.maybeSplit(rctx, r)
		s.maybeReplicate(rctx, r)
		cancel()
	}
}

// leaseForReplication acquires the lease of an under-replicated range that
// no replica holds, if this replica leads its Raft group; it reports
// whether this replica now holds a valid lease.
func (s *Store) leaseForReplication(ctx context.Context, r *Replica, l *api.Lease, now hlc.Timestamp) bool {
	if s.cfg.LiveStores == nil || s.draining.Load() || r.Desc().GetEndKey() == nil {
		return false
	}
	if l.GetReplica() != nil && now.Less(l.GetExpiration().ToHLC()) {
		return false // someone else's lease may still be valid
	}
	d := r.Desc()
	if v := len(d.Voters()); v >= min(3, len(s.cfg.LiveStores())) && v == len(d.GetReplicas()) {
		return false
	}
	if st, err := s.host.Status(uint64(r.rangeID)); err != nil || !st.IsLeader() {
		return false
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := r.ensureLease(lctx, hlc.Timestamp{})
	return err == nil
}

func (s *Store) count(f func(m *QueueMetrics)) {
	s.qmu.Lock()
	f(&s.qmetrics)
	s.qmu.Unlock()
}

// maybeSplit splits a range larger than RangeMaxBytes at its middle key.
func (s *Store) maybeSplit(ctx context.Context, r *Replica) {
	if s.cfg.RangeMaxBytes <= 0 || s.cfg.Sender == nil {
		return
	}
	r.mu.RLock()
	total := r.mu.state.stats.Total()
	desc := r.mu.state.desc
	r.mu.RUnlock()
	if total <= s.cfg.RangeMaxBytes || bytes.Compare(desc.GetStartKey(), keys.UserSpanStart) < 0 {
		return
	}
	key, err := s.middleKey(desc, total)
	if err != nil || key == nil {
		return
	}
	if _, _, err := r.AdminSplit(ctx, key); err != nil {
		s.log.Debug("split queue: split failed", "range", desc.GetRangeId(), "err", err)
		s.count(func(m *QueueMetrics) { m.SplitFailures++ })
		return
	}
	s.count(func(m *QueueMetrics) { m.Splits++ })
}

// middleKey returns the first key at which at least half of the range's
// bytes lie to its left (never the range's start, never between two
// versions of one key), or nil when the range holds a single key.
func (s *Store) middleKey(d *api.RangeDescriptor, total int64) ([]byte, error) {
	it, err := s.engine.DB().NewIter(&pebble.IterOptions{
		LowerBound: keys.EncodeEngineKey(d.GetStartKey(), hlc.Timestamp{}),
		UpperBound: keys.EncodeEngineKey(d.GetEndKey(), hlc.Timestamp{}),
	})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var seen int64
	var prev []byte
	for ok := it.First(); ok; ok = it.Next() {
		k, _, err := keys.DecodeEngineKey(it.Key())
		if err != nil {
			return nil, err
		}
		if seen*2 >= total && !bytes.Equal(k, prev) && bytes.Compare(k, d.GetStartKey()) > 0 {
			return append([]byte(nil), k...), nil
		}
		seen += int64(len(it.Key()) + len(it.Value()))
		prev = append(prev[:0], k...)
	}
	return nil, it.Error()
}

// maybeRepairMeta rewrites a range's meta entry if it is missing or holds
// an older descriptor.
func (s *Store) maybeRepairMeta(ctx context.Context, r *Replica) {
	if s.cfg.Sender == nil {
		return
	}
	d := r.Desc()
	ba := &api.BatchRequest{Header: &api.BatchHeader{}}
	ba.Add(&api.GetRequest{Key: keys.MetaKey(d.GetEndKey())})
	br, err := s.cfg.Sender.Send(ctx, ba)
	if err != nil {
		return
	}
	if v := br.GetResponses()[0].GetGet().GetValue(); v != nil {
		var cur api.RangeDescriptor
		if proto.Unmarshal(v.GetRawBytes(), &cur) == nil && (proto.Equal(&cur, d) || cur.GetGeneration() > d.GetGeneration()) {
			return
		}
	}
	if err := s.putMeta(ctx, d); err != nil {
		s.count(func(m *QueueMetrics) { m.MetaFailures++ })
		return
	}
	s.log.Info("meta repaired", "range", d.GetRangeId())
	s.count(func(m *QueueMetrics) { m.MetaRepairs++ })
}
