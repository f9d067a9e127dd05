package ranges

import (
	"context"
	"time"

	"github.com/meridiandb/meridian/api"
)

// Draining reports whether Drain was called.
func (s *Store) Draining() bool { return s.draining.Load() }

// Drain prepares the store to shut down without making its ranges
// unavailable for a lease duration: from now on it acquires no lease and
// hands Raft leadership away, and it transfers every lease it holds to
// another voter (preferring stores LiveStores lists). It returns when the
// store holds no valid lease that another voter could take (a range with
// no other voter keeps its lease), or with ctx's error. Drain is not undone; a
// drained store is stopped next.
func (s *Store) Drain(ctx context.Context) error {
	s.draining.Store(true)
	for {
		held := 0
		now := s.cfg.Clock.Now()
		for _, r := range s.Replicas() {
			l := r.Lease()
			if l.GetReplica().GetReplicaId() != r.replicaID || !r.leaseValid(l, now) {
				continue
			}
			target := r.drainTarget()
			if target == 0 {
				continue // no other voter to take it: the lease stays
			}
			held++
			tctx, cancel := context.WithTimeout(ctx, time.Second)
			err := r.TransferLease(tctx, target)
			cancel()
			if err != nil {
				s.log.Info("drain: lease transfer failed", "range", r.rangeID, "to", target, "err", err)
			}
		}
		if held == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// drainTarget picks the voter a draining store hands a lease (and Raft
// leadership) to: one on a live store. Without liveness (no LiveStores)
// any other voter; 0 when no other voter is known to be live (better to
// keep the lease than hand it to a node that may be dead).
func (r *Replica) drainTarget() uint64 {
	live := map[uint64]bool{}
	if r.store.cfg.LiveStores != nil {
		for _, ns := range r.store.cfg.LiveStores() {
			live[ns.StoreID] = true
		}
	}
	var fallback uint64
	for _, rd := range r.Desc().GetReplicas() {
		if rd.GetReplicaId() == r.replicaID || rd.GetType() != api.ReplicaType_VOTER {
			continue
		}
		if live[rd.GetStoreId()] {
			return rd.GetReplicaId()
		}
		if fallback == 0 && r.store.cfg.LiveStores == nil {
			fallback = rd.GetReplicaId()
		}
	}
	return fallback
}
