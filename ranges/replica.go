package ranges

import (
	"sync"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/ranges/concurrency"
	"github.com/meridiandb/meridian/ranges/tscache"
)

// Replica is a store's copy of one range: its Raft group (in the store's
// raftgroup.Host) plus the range state it has applied. On the leaseholder
// it also evaluates requests (latches, timestamp cache, MVCC in a batch)
// and proposes the results.
type Replica struct {
	store     *Store
	rangeID   keys.RangeID
	replicaID uint64

	latches *concurrency.LatchManager
	tsc     *tscache.Cache

	mu struct {
		sync.RWMutex
		state *rangeState
		// transferring is set while this holder hands its lease away: it
		// serves nothing until the transfer applied or failed.
		transferring bool
		// leaseReq is non-nil while a lease request or extension is in
		// flight; waiters block on it.
		leaseReq chan struct{}
		// removed is set once the replica applied a descriptor without
		// itself; it is being destroyed.
		removed bool
		// splits are right-hand ranges whose state the last Apply wrote;
		// they start once that apply batch is committed (Applied).
		splits []*rangeState
	}
}

func newReplica(s *Store, st *rangeState, replicaID uint64) *Replica {
	r := &Replica{
		store:     s,
		rangeID:   keys.RangeID(st.desc.GetRangeId()),
		replicaID: replicaID,
		latches:   concurrency.NewLatchManager(),
		tsc:       tscache.New(s.cfg.TimestampCacheBytes, st.lease.GetStart().ToHLC()),
	}
	r.mu.state = st
	return r
}

// Desc returns the range descriptor this replica has applied.
func (r *Replica) Desc() *api.RangeDescriptor {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.mu.state.desc
}

// Lease returns the lease this replica has applied.
func (r *Replica) Lease() *api.Lease {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.mu.state.lease
}

// RangeID returns the replica's range ID.
func (r *Replica) RangeID() keys.RangeID { return r.rangeID }

func (r *Replica) self() *api.ReplicaDescriptor {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.mu.state.desc.ReplicaByID(r.replicaID)
}
