package ranges

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/mvcc"
	"github.com/meridiandb/meridian/raftgroup"
)

// Apply implements raftgroup.StateMachine: every replica applies the same
// commands in the same order, so every replica's state is the same. A
// command's effects, the new lease (if any) and the applied state go into b
// together.
func (r *Replica) Apply(_ uint64, ents []raftgroup.Entry, b *pebble.Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.mu.state
	for i := range ents {
		e := &ents[i]
		switch e.Type {
		case raftgroup.EntryConfChange:
			st.confState = e.ConfState
		case raftgroup.EntryCommand:
			var cmd api.ReplicatedCommand
			if err := proto.Unmarshal(e.Command, &cmd); err != nil {
				return fmt.Errorf("ranges: range %d: corrupt command at index %d: %w", r.rangeID, e.Index, err)
			}
			res, err := r.applyCommandLocked(&cmd, b)
			if err != nil {
				return err
			}
			e.Result = res
		}
		st.applied = e.Index
	}
	return st.writeApplied(b)
}

// applyCommandLocked applies one command; a rejected command (lease moved)
// returns its rejection as the result and changes nothing.
func (r *Replica) applyCommandLocked(cmd *api.ReplicatedCommand, b *pebble.Batch) (any, error) {
	st := r.mu.state
	cur := st.lease
	if nl := cmd.GetNewLease(); nl != nil {
		if cmd.GetLeaseSequence() != cur.GetSequence() {
			return errLeaseRejected, nil
		}
		sameHolder := cur.GetReplica() != nil && nl.GetReplica().GetReplicaId() == cur.GetReplica().GetReplicaId()
		// A new holder may start only once the previous lease expired,
		// unless the previous holder hands it over: two holders never
		// overlap.
		if !sameHolder && !cmd.GetLeaseTransfer() && cur.GetExpiration() != nil &&
			nl.GetStart().ToHLC().Less(cur.GetExpiration().ToHLC()) {
			return errLeaseRejected, nil
		}
		if sameHolder && nl.GetExpiration().ToHLC().Less(cur.GetExpiration().ToHLC()) {
			return nil, nil // an older extension; keep the later expiration
		}
		if err := putProto(b, keys.RangeLeaseKey(r.rangeID), nl); err != nil {
			return nil, err
		}
		st.lease = nl
		if nl.GetReplica().GetReplicaId() == r.replicaID && !sameHolder {
			// A new holder has seen no reads: everything below its start
			// must be treated as read.
			r.tsc.SetLowWater(nl.GetStart().ToHLC())
		}
		if cmd.GetLeaseTransfer() {
			r.mu.transferring = false
			// Raft leadership follows the lease at once (the lease loop
			// would do it within a tick): the new holder can only write once
			// it leads.
			if holder := nl.GetReplica().GetReplicaId(); holder != r.replicaID {
				if st, err := r.store.host.Status(uint64(r.rangeID)); err == nil && st.IsLeader() {
					_ = r.store.host.TransferLeadership(uint64(r.rangeID), holder)
				}
			}
		}
		return nil, nil
	}
	if cmd.GetLeaseSequence() != cur.GetSequence() {
		return errLeaseChanged, nil
	}
	if len(cmd.GetWriteBatch()) > 0 {
		wb := r.store.engine.DB().NewBatch()
		defer wb.Close()
		if err := wb.SetRepr(append([]byte(nil), cmd.GetWriteBatch()...)); err != nil {
			return nil, fmt.Errorf("ranges: range %d: corrupt write batch: %w", r.rangeID, err)
		}
		if err := b.Apply(wb, nil); err != nil {
			return nil, err
		}
	}
	if nd := cmd.GetNewDescriptor(); nd != nil {
		if nd.ReplicaByID(r.replicaID) == nil {
			// This replica was removed: its data goes with it, so do not
			// apply the batch here.
			r.removedLocked()
			return nil, nil
		}
		st.desc = nd
		// Let raftgroup reach every member the descriptor names.
		if err := r.store.host.SetPeers(uint64(r.rangeID), peersOf(nd)); err != nil {
			return nil, err
		}
	}
	if t := cmd.GetGcThreshold().ToHLC(); st.gcThreshold.Less(t) {
		st.gcThreshold = t
	}
	if sp := cmd.GetSplit(); sp != nil {
		if err := r.splitAppliedLocked(sp); err != nil {
			return nil, err
		}
		return nil, nil
	}
	st.stats.Add(mvcc.StatsFromProto(cmd.GetStatsDelta()))
	return nil, nil
}

// Snapshot implements raftgroup.StateMachine: the range's replicated state
// and every engine key of its span (versions and locks), read from one
// Pebble snapshot, as a stream of length-prefixed key/value pairs.
func (r *Replica) Snapshot(_ uint64) (*raftgroup.SnapshotData, error) {
	snap := r.store.engine.DB().NewSnapshot()
	r.mu.RLock()
	st := *r.mu.state
	r.mu.RUnlock()
	// The in-memory state may be ahead of the Pebble snapshot by an apply
	// batch not yet committed; read the state from the snapshot itself.
	var buf bytes.Buffer
	write := func(k, v []byte) {
		var n [binary.MaxVarintLen64]byte
		buf.Write(n[:binary.PutUvarint(n[:], uint64(len(k)))])
		buf.Write(k)
		buf.Write(n[:binary.PutUvarint(n[:], uint64(len(v)))])
		buf.Write(v)
	}
	var as api.RangeAppliedState
	for _, sp := range r.snapshotSpans(st.desc) {
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: sp[0], UpperBound: sp[1]})
		if err != nil {
			snap.Close()
			return nil, err
		}
		for ok := it.First(); ok; ok = it.Next() {
			if bytes.Equal(it.Key(), localKey(keys.RangeAppliedStateKey(r.rangeID))) {
				if err := proto.Unmarshal(it.Value(), &as); err != nil {
					it.Close()
					snap.Close()
					return nil, err
				}
			}
			write(it.Key(), it.Value())
		}
		if err := it.Close(); err != nil {
			snap.Close()
			return nil, err
		}
	}
	snap.Close()
	return &raftgroup.SnapshotData{
		Index:     as.GetRaftAppliedIndex(),
		ConfState: as.GetConfState(),
		Size:      int64(buf.Len()),
		Data:      io.NopCloser(&buf),
	}, nil
}

// snapshotSpans are the engine-key spans a range's snapshot covers: its
// replicated range-ID local keys, its MVCC data and its lock records.
func (r *Replica) snapshotSpans(d *api.RangeDescriptor) [][2][]byte {
	ls, le := keys.RangeReplicatedSpan(r.rangeID)
	lockS, lockE := keys.LockTableSpan(d.GetStartKey(), d.GetEndKey())
	return [][2][]byte{
		{localKey(ls), localKey(le)},
		{localKey(d.GetStartKey()), localKey(d.GetEndKey())},
		{localKey(lockS), localKey(lockE)},
	}
}

type snapshotKV struct{ k, v []byte }

// decodeSnapshot reads a snapshot stream back into its pairs and the
// range state they hold.
func (r *Replica) decodeSnapshot(raw []byte) (kvs []snapshotKV, desc *api.RangeDescriptor, lease *api.Lease, as *api.RangeAppliedState, err error) {
	desc, lease, as = &api.RangeDescriptor{}, &api.Lease{}, &api.RangeAppliedState{}
	descKey := localKey(keys.RangeDescriptorKey(r.rangeID))
	leaseKey := localKey(keys.RangeLeaseKey(r.rangeID))
	appliedKey := localKey(keys.RangeAppliedStateKey(r.rangeID))
	err = r.forEachSnapshotPair(raw, func(k, v []byte) (bool, error) {
		kvs = append(kvs, snapshotKV{k, v})
		var err error
		switch {
		case bytes.Equal(k, descKey):
			err = proto.Unmarshal(v, desc)
		case bytes.Equal(k, leaseKey):
			err = proto.Unmarshal(v, lease)
		case bytes.Equal(k, appliedKey):
			err = proto.Unmarshal(v, as)
		}
		return false, err
	})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return kvs, desc, lease, as, nil
}

// forEachSnapshotPair walks the length-prefixed pairs of a snapshot stream
// until fn asks to stop.
func (r *Replica) forEachSnapshotPair(raw []byte, fn func(k, v []byte) (stop bool, err error)) error {
	for len(raw) > 0 {
		var parts [2][]byte
		for i := range parts {
			n, w := binary.Uvarint(raw)
			if w <= 0 || uint64(len(raw)-w) < n {
				return fmt.Errorf("ranges: range %d: corrupt snapshot", r.rangeID)
			}
			parts[i], raw = raw[w:w+int(n)], raw[w+int(n):]
		}
		stop, err := fn(parts[0], parts[1])
		if err != nil {
			return fmt.Errorf("ranges: range %d: corrupt snapshot state: %w", r.rangeID, err)
		}
		if stop {
			return nil
		}
	}
	return nil
}

// snapshotDescriptor reads only the descriptor of a snapshot (the
// range-local state comes first in the stream, so this stops early).
func (r *Replica) snapshotDescriptor(raw []byte) (*api.RangeDescriptor, error) {
	descKey := localKey(keys.RangeDescriptorKey(r.rangeID))
	var desc *api.RangeDescriptor
	err := r.forEachSnapshotPair(raw, func(k, v []byte) (bool, error) {
		if !bytes.Equal(k, descKey) {
			return false, nil
		}
		desc = &api.RangeDescriptor{}
		return true, proto.Unmarshal(v, desc)
	})
	if err == nil && desc == nil {
		err = fmt.Errorf("ranges: range %d: snapshot without a descriptor", r.rangeID)
	}
	return desc, err
}

// AcceptSnapshot implements raftgroup.SnapshotFilter: a snapshot whose span
// overlaps another replica on this store is declined. That happens when
// this store has not yet applied the split that creates the range: its left
// range still holds the span and may still apply writes to it, which would
// land on top of the snapshot. The leader retries; once the split applied
// here the snapshot fits.
func (r *Replica) AcceptSnapshot(_ uint64, _ raftgroup.SnapshotMeta, data []byte) bool {
	desc, err := r.snapshotDescriptor(data)
	if err != nil {
		return false
	}
	for _, o := range r.store.Replicas() {
		if o == r {
			continue
		}
		od := o.Desc()
		if len(od.GetEndKey()) == 0 {
			continue
		}
		if bytes.Compare(od.GetStartKey(), desc.GetEndKey()) < 0 && bytes.Compare(desc.GetStartKey(), od.GetEndKey()) < 0 {
			return false
		}
	}
	return true
}

// ApplySnapshot implements raftgroup.StateMachine: it replaces the range's
// state with the snapshot's, in b.
func (r *Replica) ApplySnapshot(_ uint64, meta raftgroup.SnapshotMeta, data io.Reader, b *pebble.Batch) error {
	raw, err := io.ReadAll(data)
	if err != nil {
		return err
	}
	kvs, desc, lease, as, err := r.decodeSnapshot(raw)
	if err != nil {
		return err
	}
	if desc.GetRangeId() != uint64(r.rangeID) || as.GetRaftAppliedIndex() != meta.Index {
		return fmt.Errorf("ranges: range %d: snapshot of range %d at %d presented at %d", r.rangeID, desc.GetRangeId(), as.GetRaftAppliedIndex(), meta.Index)
	}
	// Clear what the replica had, then write the snapshot.
	for _, sp := range r.snapshotSpans(desc) {
		if err := b.DeleteRange(sp[0], sp[1], nil); err != nil {
			return err
		}
	}
	for _, p := range kvs {
		if err := b.Set(p.k, p.v, nil); err != nil {
			return err
		}
	}
	if err := r.store.host.SetPeers(uint64(r.rangeID), peersOf(desc)); err != nil {
		return err
	}
	r.mu.Lock()
	r.mu.state = &rangeState{desc: desc, lease: lease, applied: meta.Index, stats: mvcc.StatsFromProto(as.GetStats()), confState: meta.ConfState, gcThreshold: as.GetGcThreshold().ToHLC()}
	r.mu.Unlock()
	r.tsc.SetLowWater(lease.GetStart().ToHLC())
	return nil
}
