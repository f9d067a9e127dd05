package ranges

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/mvcc"
	"github.com/meridiandb/meridian/raftgroup"
	"github.com/meridiandb/meridian/ranges/concurrency"
)

// Sender sends a batch to wherever its range lives (the client router in a
// server; the test cluster's sender in tests). ranges uses it to write meta
// and allocate range IDs: it never reaches into another range's engine.
type Sender interface {
	Send(ctx context.Context, ba *api.BatchRequest) (*api.BatchResponse, error)
}

// ErrNoSender is returned by operations that need the store's Sender when
// none is configured.
var ErrNoSender = errors.New("ranges: the store has no Sender to write meta with")

// AdminSplit splits the range at key (a logical user key inside the range,
// not its start): the leaseholder proposes the split through the range's
// own Raft log; as it applies, every replica shrinks the left-hand range and
// creates the right-hand one [key, end) from its own data — nothing is
// copied, the MVCC stats divide exactly, the right-hand range starts with the
// left's leaseholder and a fresh Raft group of the same members. The
// range-local descriptors are the truth; meta is then updated through the
// Sender (a newer generation always wins), and the meta-repair pass fixes
// it if the node dies in between.
func (r *Replica) AdminSplit(ctx context.Context, key []byte) (left, right *api.RangeDescriptor, err error) {
	if r.store.cfg.Sender == nil {
		return nil, nil, ErrNoSender
	}
	desc := r.Desc()
	if !desc.ContainsKey(key) {
		// Routed by a stale descriptor: say where the key is now.
		return nil, nil, &api.RangeKeyMismatchError{RequestedStartKey: key, Ranges: r.store.descriptorsFor(desc, key)}
	}
	if bytes.Equal(key, desc.GetStartKey()) {
		return nil, nil, &api.InvalidRequestError{Index: -1, Message: fmt.Sprintf("split key %s is already range %d's start", keys.Pretty(key), desc.GetRangeId())}
	}
	if bytes.Compare(key, keys.UserSpanStart) <= 0 || bytes.Compare(key, keys.UserSpanEnd) >= 0 {
		return nil, nil, &api.InvalidRequestError{Index: -1, Message: "only the user keyspace splits"}
	}
	lease, err := r.ensureLease(ctx, r.store.cfg.Clock.Now())
	if err != nil {
		return nil, nil, err
	}
	// A new range ID, from the generator in range 1.
	id, err := r.store.allocateRangeID(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("ranges: allocating a range ID: %w", err)
	}
	// Hold the whole range still while the split is evaluated and applied.
	var spans concurrency.SpanSet
	spans.AddWrite(desc.GetStartKey(), desc.GetEndKey(), r.store.cfg.Clock.Now())
	g, err := r.latches.Acquire(ctx, &spans)
	if err != nil {
		return nil, nil, err
	}
	defer r.latches.Release(g)
	desc = r.Desc()
	if !desc.ContainsKey(key) || bytes.Equal(key, desc.GetStartKey()) {
		return nil, nil, &api.RangeKeyMismatchError{RequestedStartKey: key, Ranges: []*api.RangeDescriptor{desc}}
	}

	left = proto.Clone(desc).(*api.RangeDescriptor)
	left.EndKey, left.Generation = key, desc.GetGeneration()+1
	right = proto.Clone(desc).(*api.RangeDescriptor)
	right.RangeId, right.StartKey, right.Generation = uint64(id), key, desc.GetGeneration()+1

	db := r.store.engine.DB()
	ls, err := mvcc.ComputeStats(db, left.GetStartKey(), left.GetEndKey())
	if err != nil {
		return nil, nil, err
	}
	rs, err := mvcc.ComputeStats(db, right.GetStartKey(), right.GetEndKey())
	if err != nil {
		return nil, nil, err
	}
	b := r.store.engine.NewBatch()
	defer b.Close()
	if err := putProto(b, keys.RangeDescriptorKey(r.rangeID), left); err != nil {
		return nil, nil, err
	}
	rid := keys.RangeID(right.GetRangeId())
	if err := putProto(b, keys.RangeDescriptorKey(rid), right); err != nil {
		return nil, nil, err
	}
	rl := proto.Clone(lease).(*api.Lease)
	if err := putProto(b, keys.RangeLeaseKey(rid), rl); err != nil {
		return nil, nil, err
	}
	r.mu.RLock()
	gcT := r.mu.state.gcThreshold
	r.mu.RUnlock()
	rst := &rangeState{desc: right, lease: rl, applied: raftgroup.InitialIndex, stats: rs, confState: confStateFor(right), gcThreshold: gcT}
	if err := rst.writeApplied(b); err != nil {
		return nil, nil, err
	}
	_, err = r.propose(ctx, &api.ReplicatedCommand{
		LeaseSequence: lease.GetSequence(),
		WriteBatch:    append([]byte(nil), b.Repr()...),
		Split:         &api.SplitTrigger{Left: left, Right: right, LeftStats: ls.ToProto(), RightStats: rs.ToProto()},
	})
	if err != nil {
		return nil, nil, err
	}
	if r.store.cfg.TestingKnobs.SkipMetaUpdateAfterSplit {
		return left, right, nil
	}
	if err := r.store.updateMeta(ctx, left, right); err != nil {
		// The split happened; meta is repaired later from the range-local
		// descriptors.
		r.store.log.Warn("meta update after split failed; left for repair", "range", left.GetRangeId(), "err", err)
	}
	return left, right, nil
}

// splitAppliedLocked runs on every replica as a split applies: the left
// range shrinks, and the right one is created from the state the split's
// batch writes — once that batch is committed (Applied), so the right
// range's Raft group never exists on disk without its descriptor (r.mu is
// held).
func (r *Replica) splitAppliedLocked(sp *api.SplitTrigger) error {
	st := r.mu.state
	st.desc = sp.GetLeft()
	st.stats = mvcc.StatsFromProto(sp.GetLeftStats())
	right := sp.GetRight()
	rst := &rangeState{
		desc: right, lease: proto.Clone(st.lease).(*api.Lease), applied: raftgroup.InitialIndex,
		stats: mvcc.StatsFromProto(sp.GetRightStats()), confState: confStateFor(right),
		gcThreshold: st.gcThreshold,
	}
	r.mu.splits = append(r.mu.splits, rst)
	return nil
}

// Applied implements raftgroup.AppliedHook: it starts the right-hand
// ranges of splits whose batch is now committed.
func (r *Replica) Applied(uint64) {
	r.mu.Lock()
	splits := r.mu.splits
	r.mu.splits = nil
	r.mu.Unlock()
	for _, st := range splits {
		// Once addSplitReplica registers the new replica its own Apply
		// may change st: read nothing from st after the call.
		id := st.desc.GetRangeId()
		if err := r.store.addSplitReplica(st); err != nil {
			r.store.log.Error("could not start the right-hand range of a split", "range", id, "err", err)
		}
	}
}

// addSplitReplica creates the right-hand replica of a split (idempotent:
// a split re-applied after a restart finds it there).
func (s *Store) addSplitReplica(st *rangeState) error {
	id := keys.RangeID(st.desc.GetRangeId())
	s.mu.RLock()
	_, exists := s.mu.replicas[id]
	s.mu.RUnlock()
	if exists {
		return nil
	}
	self := st.desc.ReplicaByStore(s.cfg.StoreID)
	if self == nil {
		return fmt.Errorf("ranges: split range %d has no replica on store %d", id, s.cfg.StoreID)
	}
	r := newReplica(s, st, self.GetReplicaId())
	// Reads the left range served below now on these keys are not in the
	// new replica's timestamp cache: treat everything up to now as read.
	r.tsc.SetLowWater(s.cfg.Clock.Now())
	// Once registered, the replica's Apply (on any worker) may change st
	// under r.mu: take what is needed from it first.
	holdsLease := st.lease.GetReplica().GetReplicaId() == self.GetReplicaId()
	if err := s.registerReplica(r, st); err != nil {
		return err
	}
	// The leaseholder's replica campaigns at once, so the new range has a
	// Raft leader (where its lease is) without waiting an election timeout.
	if holdsLease {
		return s.host.Campaign(uint64(id))
	}
	return nil
}

// allocateRangeID increments the range ID generator in range 1.
func (s *Store) allocateRangeID(ctx context.Context) (keys.RangeID, error) {
	ba := &api.BatchRequest{Header: &api.BatchHeader{}}
	ba.Add(&api.IncrementRequest{Key: keys.RangeIDGeneratorKey, Increment: 1})
	br, err := s.cfg.Sender.Send(ctx, ba)
	if err != nil {
		return 0, err
	}
	return keys.RangeID(br.GetResponses()[0].GetIncrement().GetNewValue()), nil
}

// updateMeta writes the meta entries of descriptors through the Sender,
// idempotently: an entry holding a newer generation is left alone.
func (s *Store) updateMeta(ctx context.Context, descs ...*api.RangeDescriptor) error {
	for _, d := range descs {
		if err := s.putMeta(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) putMeta(ctx context.Context, d *api.RangeDescriptor) error {
	mk := keys.MetaKey(d.GetEndKey())
	val, err := proto.Marshal(d)
	if err != nil {
		return err
	}
	for attempt := 0; attempt < 10; attempt++ {
		ba := &api.BatchRequest{Header: &api.BatchHeader{}}
		ba.Add(&api.GetRequest{Key: mk})
		br, err := s.cfg.Sender.Send(ctx, ba)
		if err != nil {
			return err
		}
		cur := br.GetResponses()[0].GetGet().GetValue()
		cput := &api.ConditionalPutRequest{Key: mk, Value: val, ExpectAbsent: cur == nil}
		if cur != nil {
			var old api.RangeDescriptor
			if err := proto.Unmarshal(cur.GetRawBytes(), &old); err != nil {
				return fmt.Errorf("ranges: corrupt meta entry %s: %w", keys.Pretty(mk), err)
			}
			if old.GetGeneration() > d.GetGeneration() || proto.Equal(&old, d) {
				return nil // newer (or the same) already there
			}
			cput.ExpectedValue = cur.GetRawBytes()
		}
		ba = &api.BatchRequest{Header: &api.BatchHeader{}}
		ba.Add(cput)
		_, err = s.cfg.Sender.Send(ctx, ba)
		var cf *api.ConditionFailedError
		if errors.As(err, &cf) {
			continue // raced with another update: look again
		}
		return err
	}
	return fmt.Errorf("ranges: meta entry %s kept changing", keys.Pretty(mk))
}
