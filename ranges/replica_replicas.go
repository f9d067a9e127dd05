package ranges

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/raftgroup"
)

// NodeStore names a store on a live node, a candidate for new replicas.
type NodeStore struct {
	NodeID, StoreID uint64
}

// AddReplica adds a voting replica of the range on a store: first as a
// learner (descriptor, then Raft membership), which receives a snapshot;
// once it has caught up it is promoted to voter (descriptor, then
// membership). Meta follows each descriptor change. Must run on the
// leaseholder.
func (r *Replica) AddReplica(ctx context.Context, target NodeStore) (*api.RangeDescriptor, error) {
	// 1. The learner, in the descriptor and then in Raft.
	learner, err := r.AddLearner(ctx, target)
	if err != nil {
		return nil, err
	}
	return r.promoteLearner(ctx, learner, learner.ReplicaByStore(target.StoreID))
}

// promoteLearner makes a learner of the range a voter once it has caught
// up (steps 2 and 3 of AddReplica; the replicate queue also uses it to
// finish a learner an earlier AddReplica left behind).
func (r *Replica) promoteLearner(ctx context.Context, learner *api.RangeDescriptor, rd *api.ReplicaDescriptor) (*api.RangeDescriptor, error) {
	// 2. Wait for its snapshot and the entries after it.
	if err := r.waitCaughtUp(ctx, rd.GetReplicaId()); err != nil {
		return nil, err
	}
	// 3. Promote: Raft membership first, then the descriptor. The
	// descriptor (what `range list` and clients see) must not claim a
	// voter Raft does not count yet: until the promotion has applied and a
	// quorum of the new configuration knows it committed, losing the leader
	// can leave the old, smaller configuration without a quorum. The
	// ReadIndex round after the change makes the followers learn the
	// commit index, so one of them can lead the new configuration.
	lease, err := r.ensureLease(ctx, r.store.cfg.Clock.Now())
	if err != nil {
		return nil, err
	}
	if _, err := r.store.host.ProposeConfChange(ctx, uint64(r.rangeID), confChange(raftpb.ConfChangeAddNode, rd.GetReplicaId())); err != nil {
		return nil, fmt.Errorf("ranges: promoting %d in range %d: %w", rd.GetReplicaId(), r.rangeID, err)
	}
	if err := r.store.host.ReadIndex(ctx, uint64(r.rangeID)); err != nil {
		return nil, fmt.Errorf("ranges: promoting %d in range %d: confirming the new configuration: %w", rd.GetReplicaId(), r.rangeID, err)
	}
	voter := proto.Clone(learner).(*api.RangeDescriptor)
	voter.ReplicaByID(rd.GetReplicaId()).Type = api.ReplicaType_VOTER
	voter.Generation++
	if err := r.changeDescriptor(ctx, lease, voter); err != nil {
		return nil, err
	}
	_ = r.store.updateMeta(ctx, voter)
	return voter, nil
}

func confChange(t raftpb.ConfChangeType, replica uint64) *raftpb.ConfChangeV2 {
	return &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: t.Enum(), NodeId: &replica}}}
}

// changeDescriptor replicates a new descriptor for the range.
func (r *Replica) changeDescriptor(ctx context.Context, lease *api.Lease, d *api.RangeDescriptor) error {
	b := r.store.engine.NewBatch()
	defer b.Close()
	if err := putProto(b, keys.RangeDescriptorKey(r.rangeID), d); err != nil {
		return err
	}
	_, err := r.propose(ctx, &api.ReplicatedCommand{LeaseSequence: lease.GetSequence(), WriteBatch: append([]byte(nil), b.Repr()...), NewDescriptor: d})
	return err
}

// waitCaughtUp waits until a replica's log matches what this leader had
// applied when the wait began.
func (r *Replica) waitCaughtUp(ctx context.Context, replica uint64) error {
	st, err := r.store.host.Status(uint64(r.rangeID))
	if err != nil {
		return err
	}
	target := st.Applied
	for {
		st, err := r.store.host.Status(uint64(r.rangeID))
		if err != nil {
			return err
		}
		if st.Progress[replica] >= target {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ranges: waiting for replica %d of range %d to catch up: %w", replica, r.rangeID, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// peersOf maps a descriptor's replicas to their nodes, for raftgroup.
func peersOf(d *api.RangeDescriptor) []raftgroup.Peer {
	var peers []raftgroup.Peer
	for _, rd := range d.GetReplicas() {
		peers = append(peers, raftgroup.Peer{ReplicaID: rd.GetReplicaId(), NodeID: rd.GetNodeId()})
	}
	return peers
}

// createUninitialized creates, on a message from a range's leader, a
// replica with no state that waits for a snapshot.
func (s *Store) createUninitialized(groupID, toReplica, fromReplica, fromNode uint64) {
	id := keys.RangeID(groupID)
	if s.tombstoned(id, toReplica) {
		return // a message for a replica this store already removed
	}
	s.mu.Lock()
	if _, ok := s.mu.replicas[id]; ok || s.mu.stopped || toReplica == 0 || fromReplica == 0 {
		s.mu.Unlock()
		return
	}
	st := &rangeState{desc: &api.RangeDescriptor{RangeId: groupID}, lease: &api.Lease{}, confState: &raftpb.ConfState{}}
	r := newReplica(s, st, toReplica)
	s.mu.replicas[id] = r
	s.mu.Unlock()
	err := s.host.CreateGroup(raftgroup.GroupConfig{
		ID: groupID, ReplicaID: toReplica,
		Peers:     []raftgroup.Peer{{ReplicaID: fromReplica, NodeID: fromNode}, {ReplicaID: toReplica, NodeID: s.cfg.NodeID}},
		ConfState: &raftpb.ConfState{}, StateMachine: r,
	})
	if err != nil {
		s.mu.Lock()
		delete(s.mu.replicas, id)
		s.mu.Unlock()
		s.log.Warn("could not create an uninitialised replica", "range", groupID, "err", err)
	}
}

// maybeReplicate adds a voter to a range with fewer than min(3, live
// stores) of them.
func (s *Store) maybeReplicate(ctx context.Context, r *Replica) {
	if s.cfg.LiveStores == nil {
		return
	}
	live := s.cfg.LiveStores()
	d := r.Desc()
	// A learner left by an AddReplica that failed half-way (a timeout
	// while it caught up, a lost lease, a crash) is finished first: it is
	// most likely still catching up, and a new replica on its store would
	// be blocked by it. (A learner on a dead store stays until replacing
	// dead replicas is built.)
	for _, rd := range d.GetReplicas() {
		if rd.GetType() == api.ReplicaType_LEARNER {
			if _, err := r.promoteLearner(ctx, d, rd); err != nil {
				s.log.Debug("replicate queue: promoting a leftover learner failed", "range", d.GetRangeId(), "store", rd.GetStoreId(), "err", err)
				s.count(func(m *QueueMetrics) { m.ReplicaAddFailures++ })
				return
			}
			s.count(func(m *QueueMetrics) { m.ReplicasAdded++ })
			return
		}
	}
	want := min(3, len(live))
	if len(d.Voters()) >= want {
		return
	}
	for _, ns := range live {
		if d.ReplicaByStore(ns.StoreID) != nil {
			continue
		}
		if _, err := r.AddReplica(ctx, ns); err != nil {
			s.log.Debug("replicate queue: adding a replica failed", "range", d.GetRangeId(), "store", ns.StoreID, "err", err)
			s.count(func(m *QueueMetrics) { m.ReplicaAddFailures++ })
			return
		}
		s.count(func(m *QueueMetrics) { m.ReplicasAdded++ })
		return
	}
}

// RemoveReplica removes a replica (voter or learner) of the range:
// descriptor first, then Raft membership. The leaseholder cannot remove
// itself (transfer the lease first). The removed replica's data stays on its
// store until replica GC (later work) deletes it.
func (r *Replica) RemoveReplica(ctx context.Context, target NodeStore) (*api.RangeDescriptor, error) {
	lease, err := r.ensureLease(ctx, r.store.cfg.Clock.Now())
	if err != nil {
		return nil, err
	}
	desc := r.Desc()
	rd := desc.ReplicaByStore(target.StoreID)
	switch {
	case rd == nil:
		return nil, &api.InvalidRequestError{Index: -1, Message: fmt.Sprintf("range %d has no replica on store %d", desc.GetRangeId(), target.StoreID)}
	case rd.GetReplicaId() == r.replicaID:
		return nil, &api.InvalidRequestError{Index: -1, Message: "the leaseholder cannot remove itself; transfer the lease first"}
	}
	next := proto.Clone(desc).(*api.RangeDescriptor)
	next.Replicas = next.Replicas[:0]
	for _, x := range desc.GetReplicas() {
		if x.GetReplicaId() != rd.GetReplicaId() {
			next.Replicas = append(next.Replicas, proto.Clone(x).(*api.ReplicaDescriptor))
		}
	}
	next.Generation++
	if err := r.changeDescriptor(ctx, lease, next); err != nil {
		return nil, err
	}
	if _, err := r.store.host.ProposeConfChange(ctx, uint64(r.rangeID), confChange(raftpb.ConfChangeRemoveNode, rd.GetReplicaId())); err != nil {
		return nil, fmt.Errorf("ranges: removing replica %d from range %d: %w", rd.GetReplicaId(), r.rangeID, err)
	}
	_ = r.store.updateMeta(ctx, next)
	return next, nil
}

// AddLearner adds a non-voting replica (it receives a snapshot and every
// entry, but does not vote).
func (r *Replica) AddLearner(ctx context.Context, target NodeStore) (*api.RangeDescriptor, error) {
	lease, err := r.ensureLease(ctx, r.store.cfg.Clock.Now())
	if err != nil {
		return nil, err
	}
	desc := r.Desc()
	if desc.ReplicaByStore(target.StoreID) != nil {
		return nil, &api.InvalidRequestError{Index: -1, Message: fmt.Sprintf("range %d already has a replica on store %d", desc.GetRangeId(), target.StoreID)}
	}
	learner := proto.Clone(desc).(*api.RangeDescriptor)
	rd := &api.ReplicaDescriptor{NodeId: target.NodeID, StoreId: target.StoreID, ReplicaId: desc.GetNextReplicaId(), Type: api.ReplicaType_LEARNER}
	learner.Replicas = append(learner.Replicas, rd)
	learner.NextReplicaId++
	learner.Generation++
	if err := r.changeDescriptor(ctx, lease, learner); err != nil {
		return nil, err
	}
	if _, err := r.store.host.ProposeConfChange(ctx, uint64(r.rangeID), confChange(raftpb.ConfChangeAddLearnerNode, rd.GetReplicaId())); err != nil {
		return nil, fmt.Errorf("ranges: adding learner %d to range %d: %w", rd.GetReplicaId(), r.rangeID, err)
	}
	_ = r.store.updateMeta(ctx, learner)
	return learner, nil
}

// removedLocked runs on a replica as it applies a descriptor that no longer
// names it: it stops serving, and a goroutine destroys it — its Raft
// group, its range-local state and its data — leaving a tombstone so late
// messages for this (or an older) replica ID do not bring it back. (r.mu is
// held.)
func (r *Replica) removedLocked() {
	if r.mu.removed {
		return
	}
	r.mu.removed = true
	s := r.store
	s.goBackground(func() {
		if err := s.destroyReplica(r); err != nil {
			s.log.Warn("destroying a removed replica failed", "range", r.rangeID, "err", err)
		}
	})
}

func (s *Store) destroyReplica(r *Replica) error {
	ctx, cancel := context.WithTimeout(s.stopCtx, time.Minute)
	defer cancel()
	if err := s.host.DestroyGroup(ctx, uint64(r.rangeID)); err != nil {
		return err
	}
	s.mu.Lock()
	if s.mu.replicas[r.rangeID] == r {
		delete(s.mu.replicas, r.rangeID)
	}
	s.mu.Unlock()
	r.mu.RLock()
	desc := r.mu.state.desc
	r.mu.RUnlock()
	b := s.engine.DB().NewBatch()
	defer b.Close()
	for _, sp := range r.snapshotSpans(desc) {
		if err := b.DeleteRange(sp[0], sp[1], nil); err != nil {
			return err
		}
	}
	if err := putProto(b, keys.RangeTombstoneKey(r.rangeID), &api.ReplicaDescriptor{ReplicaId: r.replicaID}); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

// tombstoned reports whether replica IDs up to some value of a range were
// removed from this store.
func (s *Store) tombstoned(id keys.RangeID, replicaID uint64) bool {
	var ts api.ReplicaDescriptor
	found, err := getProto(s.engine.DB(), keys.RangeTombstoneKey(id), &ts)
	return err == nil && found && replicaID <= ts.GetReplicaId()
}
