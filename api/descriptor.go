package api

import (
	"bytes"
	"fmt"

	"github.com/meridiandb/meridian/hlc"
)

// ContainsKey reports whether key lies in the descriptor's span
// [StartKey, EndKey).
func (d *RangeDescriptor) ContainsKey(key []byte) bool {
	return bytes.Compare(d.GetStartKey(), key) <= 0 && bytes.Compare(key, d.GetEndKey()) < 0
}

// ContainsSpan reports whether the span [key, endKey) lies entirely in the
// descriptor's span. An empty endKey means the single key.
func (d *RangeDescriptor) ContainsSpan(key, endKey []byte) bool {
	if len(endKey) == 0 {
		return d.ContainsKey(key)
	}
	return bytes.Compare(d.GetStartKey(), key) <= 0 && bytes.Compare(key, endKey) < 0 &&
		bytes.Compare(endKey, d.GetEndKey()) <= 0
}

// ReplicaByNode returns the descriptor's replica on nodeID, or nil.
func (d *RangeDescriptor) ReplicaByNode(nodeID uint64) *ReplicaDescriptor {
	for _, r := range d.GetReplicas() {
		if r.GetNodeId() == nodeID {
			return r
		}
	}
	return nil
}

// ReplicaByStore returns the descriptor's replica on storeID, or nil.
func (d *RangeDescriptor) ReplicaByStore(storeID uint64) *ReplicaDescriptor {
	for _, r := range d.GetReplicas() {
		if r.GetStoreId() == storeID {
			return r
		}
	}
	return nil
}

// ReplicaByID returns the replica with Raft ID replicaID, or nil.
func (d *RangeDescriptor) ReplicaByID(replicaID uint64) *ReplicaDescriptor {
	for _, r := range d.GetReplicas() {
		if r.GetReplicaId() == replicaID {
			return r
		}
	}
	return nil
}

// Voters returns the replicas of type VOTER, in descriptor order.
func (d *RangeDescriptor) Voters() []*ReplicaDescriptor {
	var out []*ReplicaDescriptor
	for _, r := range d.GetReplicas() {
		if r.GetType() == ReplicaType_VOTER {
			out = append(out, r)
		}
	}
	return out
}

// Validate checks the descriptor's invariants: a non-zero range ID, a
// non-empty span with StartKey < EndKey, and replicas with non-zero, unique
// replica IDs below NextReplicaId, at most one per store, each with a node
// and a store.
func (d *RangeDescriptor) Validate() error {
	if d == nil {
		return fmt.Errorf("api: nil range descriptor")
	}
	if d.GetRangeId() == 0 {
		return fmt.Errorf("api: range descriptor without a range ID")
	}
	if bytes.Compare(d.GetStartKey(), d.GetEndKey()) >= 0 {
		return fmt.Errorf("api: range %d: start key %q is not below end key %q", d.GetRangeId(), d.GetStartKey(), d.GetEndKey())
	}
	ids := make(map[uint64]bool, len(d.GetReplicas()))
	stores := make(map[uint64]bool, len(d.GetReplicas()))
	for _, r := range d.GetReplicas() {
		switch {
		case r == nil:
			return fmt.Errorf("api: range %d: nil replica", d.GetRangeId())
		case r.GetNodeId() == 0 || r.GetStoreId() == 0 || r.GetReplicaId() == 0:
			return fmt.Errorf("api: range %d: replica %s has a zero ID", d.GetRangeId(), r.Short())
		case ids[r.GetReplicaId()]:
			return fmt.Errorf("api: range %d: replica ID %d appears twice", d.GetRangeId(), r.GetReplicaId())
		case stores[r.GetStoreId()]:
			return fmt.Errorf("api: range %d: store %d holds two replicas", d.GetRangeId(), r.GetStoreId())
		case r.GetReplicaId() >= d.GetNextReplicaId():
			return fmt.Errorf("api: range %d: replica ID %d is not below next replica ID %d", d.GetRangeId(), r.GetReplicaId(), d.GetNextReplicaId())
		}
		ids[r.GetReplicaId()] = true
		stores[r.GetStoreId()] = true
	}
	return nil
}

// Short renders the replica as n<node>/s<store>/r<replica>, with
// "(learner)" for learners, for errors and logs.
func (r *ReplicaDescriptor) Short() string {
	if r == nil {
		return "<nil>"
	}
	s := fmt.Sprintf("n%d/s%d/r%d", r.GetNodeId(), r.GetStoreId(), r.GetReplicaId())
	if r.GetType() == ReplicaType_LEARNER {
		s += "(learner)"
	}
	return s
}

// SameReplica reports whether r and o name the same replica (node, store
// and replica ID; the type may differ, as across a promotion).
func (r *ReplicaDescriptor) SameReplica(o *ReplicaDescriptor) bool {
	return r.GetNodeId() == o.GetNodeId() && r.GetStoreId() == o.GetStoreId() && r.GetReplicaId() == o.GetReplicaId()
}

// Covers reports whether ts lies in the lease's interval [Start,
// Expiration). It does not apply the stasis rule: a holder checking
// whether it may serve a read at ts passes ts + ε. A nil lease covers
// nothing.
func (l *Lease) Covers(ts hlc.Timestamp) bool {
	if l == nil {
		return false
	}
	return l.GetStart().ToHLC().LessEq(ts) && ts.Less(l.GetExpiration().ToHLC())
}

// Equivalent reports whether newer may replace l without a new sequence
// number: the same holder and start, and an expiration no earlier than l's
// (an extension). Sequence and ProposedTs are not compared. Two nil leases
// are equivalent.
func (l *Lease) Equivalent(newer *Lease) bool {
	if l == nil || newer == nil {
		return l == nil && newer == nil
	}
	return l.GetReplica().SameReplica(newer.GetReplica()) &&
		l.GetStart().ToHLC() == newer.GetStart().ToHLC() &&
		l.GetExpiration().ToHLC().LessEq(newer.GetExpiration().ToHLC())
}

// Short renders the lease for errors and logs.
func (l *Lease) Short() string {
	if l == nil {
		return "<no lease>"
	}
	return fmt.Sprintf("lease #%d held by %s [%s, %s)", l.GetSequence(), l.GetReplica().Short(), l.GetStart().ToHLC(), l.GetExpiration().ToHLC())
}
