package ranges

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/raftgroup"
)

// Leases are expiration-based, in HLC time, and change only through Raft:
// the Raft leader requests one for itself when the range has none (or it
// expired); the holder extends it while requests keep coming (an idle range
// lets it lapse, so its Raft group can quiesce); the holder may transfer it.
// A command carries the sequence of the lease it was evaluated under and
// applies only if that is still the lease, so a deposed holder cannot
// write. A holder serves only while its lease is valid at now + ε (ε = the
// clock's max offset): inside that "stasis" window another node's clock may
// already read past the expiration, so two holders never serve at once under
// bounded skew.
//
// Cost: every range in use renews its lease through Raft about twice per
// LeaseDuration. Epoch-based leases (tied to node liveness) or leader leases
// (tied to Raft leadership with store-level heartbeats) would cut that to
// nothing per range; the command format leaves room for either.

// leaseValid reports whether l is valid at ts with the stasis margin.
func (r *Replica) leaseValid(l *api.Lease, ts hlc.Timestamp) bool {
	if l.GetReplica() == nil {
		return false
	}
	return ts.AddNanos(int64(r.store.cfg.Clock.MaxOffset())).Less(l.GetExpiration().ToHLC())
}

func (r *Replica) notLeaseholder(l *api.Lease) error {
	return &api.NotLeaseholderError{Replica: r.self(), Lease: l, RangeId: uint64(r.rangeID)}
}

// ensureLease returns the lease this replica holds, valid at ts, acquiring
// one if the range has none and this replica leads Raft; otherwise a
// NotLeaseholderError naming the holder (or the leader) if known.
func (r *Replica) ensureLease(ctx context.Context, ts hlc.Timestamp) (*api.Lease, error) {
	for {
		now := r.store.cfg.Clock.Now()
		at := now.Forward(ts)
		r.mu.RLock()
		l, transferring := r.mu.state.lease, r.mu.transferring
		r.mu.RUnlock()
		ours := l.GetReplica().GetReplicaId() == r.replicaID
		switch {
		case transferring:
			return nil, r.notLeaseholder(nil)
		case ours && r.leaseValid(l, at):
			if remaining := l.GetExpiration().ToHLC().WallTime - now.WallTime; remaining < int64(r.store.cfg.LeaseDuration/2) {
				r.extendLeaseAsync()
			}
			return l, nil
		case !ours && l.GetReplica() != nil && now.Less(l.GetExpiration().ToHLC()):
			return nil, r.notLeaseholder(l)
		}
		// No valid lease (or ours is in its stasis window): the Raft leader
		// acquires (or extends) it, unless its store is draining.
		st, err := r.store.host.Status(uint64(r.rangeID))
		if err != nil {
			return nil, err
		}
		if !st.IsLeader() || r.store.draining.Load() {
			var hint *api.Lease
			if rd := r.Desc().ReplicaByID(st.Leader); rd != nil && st.Leader != r.replicaID {
				hint = &api.Lease{Replica: rd}
			}
			return nil, r.notLeaseholder(hint)
		}
		if err := r.requestLease(ctx); err != nil {
			return nil, err
		}
	}
}

// requestLease proposes a lease (or an extension) for this replica and
// waits for it to apply. Concurrent callers share one request. It returns
// nil when the caller should look at the lease again.
func (r *Replica) requestLease(ctx context.Context) error {
	r.mu.Lock()
	if ch := r.mu.leaseReq; ch != nil {
		r.mu.Unlock()
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ch := make(chan struct{})
	r.mu.leaseReq = ch
	prev := r.mu.state.lease
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.mu.leaseReq = nil
		r.mu.Unlock()
		close(ch)
	}()

	now := r.store.cfg.Clock.Now()
	if prev.GetReplica().GetReplicaId() != r.replicaID && (r.store.draining.Load() || now.Less(prev.GetExpiration().ToHLC())) {
		// Someone else holds a lease that has not expired (a transfer
		// applied since this request was decided on), or the store is
		// draining: nothing to request.
		return nil
	}
	nl := &api.Lease{
		Replica:    r.self(),
		Start:      api.NewTimestamp(now),
		Expiration: api.NewTimestamp(now.AddNanos(int64(r.store.cfg.LeaseDuration))),
		Sequence:   prev.GetSequence() + 1,
		ProposedTs: api.NewTimestamp(now),
	}
	if prev.GetReplica().GetReplicaId() == r.replicaID {
		nl.Start, nl.Sequence = prev.GetStart(), prev.GetSequence() // an extension
	}
	// Otherwise the previous lease has expired (checked above), so the new
	// one may start now; apply re-checks that leases never overlap.
	_, err := r.propose(ctx, &api.ReplicatedCommand{LeaseSequence: prev.GetSequence(), NewLease: nl})
	if err != nil && ctx.Err() == nil && !errors.Is(err, errLeaseRejected) {
		var nlh *api.NotLeaseholderError
		if errors.As(err, &nlh) {
			return err
		}
		// An ambiguous lease request is harmless: look at the lease again.
		time.Sleep(time.Millisecond)
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// extendLeaseAsync extends this holder's lease in the background.
func (r *Replica) extendLeaseAsync() {
	r.mu.RLock()
	busy := r.mu.leaseReq != nil
	r.mu.RUnlock()
	if busy {
		return
	}
	r.store.goBackground(func() {
		ctx, cancel := context.WithTimeout(r.store.stopCtx, r.store.cfg.LeaseDuration/2)
		defer cancel()
		_ = r.requestLease(ctx)
	})
}

// TransferLease hands this holder's lease to another replica of the range.
// From the moment it is proposed until it applies (or fails) this replica
// serves nothing; the new holder treats everything before the new lease's
// start as read.
func (r *Replica) TransferLease(ctx context.Context, target uint64) error {
	now := r.store.cfg.Clock.Now()
	r.mu.Lock()
	prev := r.mu.state.lease
	targetDesc := r.mu.state.desc.ReplicaByID(target)
	switch {
	case targetDesc == nil:
		r.mu.Unlock()
		return &api.InvalidRequestError{Index: -1, Message: "lease transfer target is not a replica of the range"}
	case prev.GetReplica().GetReplicaId() != r.replicaID || !r.leaseValid(prev, now) || r.mu.transferring:
		r.mu.Unlock()
		return r.notLeaseholder(prev)
	case target == r.replicaID:
		r.mu.Unlock()
		return nil
	}
	r.mu.transferring = true
	r.mu.Unlock()
	nl := &api.Lease{
		Replica:    targetDesc,
		Start:      api.NewTimestamp(now),
		Expiration: api.NewTimestamp(now.AddNanos(int64(r.store.cfg.LeaseDuration))),
		Sequence:   prev.GetSequence() + 1,
		ProposedTs: api.NewTimestamp(now),
	}
	_, err := r.propose(ctx, &api.ReplicatedCommand{LeaseSequence: prev.GetSequence(), NewLease: nl, LeaseTransfer: true})
	var amb *api.AmbiguousResultError
	if err != nil && !errors.As(err, &amb) {
		// Certainly not applied: serve again.
		r.mu.Lock()
		r.mu.transferring = false
		r.mu.Unlock()
		return err
	}
	// Applied, or unknown: keep not serving until the lease says otherwise
	// (apply clears transferring; an unknown outcome clears once the lease
	// shows the transfer failed).
	if err != nil {
		r.mu.Lock()
		if r.mu.state.lease.GetSequence() == prev.GetSequence() {
			r.mu.transferring = false
		}
		r.mu.Unlock()
	}
	return err
}

// maybeTransferLeadership makes Raft leadership follow the lease: a leader
// that sees another replica hold a valid lease hands leadership to it.
// A draining store's leader hands leadership to another voter when no
// other replica holds the lease, so that one can acquire it.
func (r *Replica) maybeTransferLeadership(now hlc.Timestamp, draining bool) {
	st, err := r.store.host.Status(uint64(r.rangeID))
	if err != nil || !st.IsLeader() {
		return
	}
	l := r.Lease()
	holder := l.GetReplica().GetReplicaId()
	switch {
	case holder != 0 && holder != r.replicaID && now.Less(l.GetExpiration().ToHLC()):
		_ = r.store.host.TransferLeadership(uint64(r.rangeID), holder)
	case draining && (holder != r.replicaID || !r.leaseValid(l, now)):
		if target := r.drainTarget(); target != 0 {
			_ = r.store.host.TransferLeadership(uint64(r.rangeID), target)
		}
	}
}

// propose replicates a command and returns the result it applied with, as
// a Go error the client can act on: NotLeaseholder (not applied; retry
// elsewhere), AmbiguousResult (may have applied), or the command's own
// rejection.
func (r *Replica) propose(ctx context.Context, cmd *api.ReplicatedCommand) (any, error) {
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	// The span covers replication and the local apply: Propose returns
	// once the command applied here.
	ctx, span := r.store.tracer.Start(ctx, "raft.propose", trace.WithAttributes(
		attribute.Int64("meridian.range_id", int64(r.rangeID)), attribute.Int("meridian.command_bytes", len(data))))
	res, err := r.store.host.Propose(ctx, uint64(r.rangeID), data)
	if err != nil {
		span.RecordError(err)
	} else {
		span.AddEvent("applied")
	}
	span.End()
	switch {
	case err == nil:
	case errors.Is(err, raftgroup.ErrCommandTooLarge):
		// No replica would take it: a client error, not one to retry.
		return nil, &api.InvalidRequestError{Message: fmt.Sprintf("range %d: the write is too large to replicate: %v", r.rangeID, err)}
	case raftgroup.IsNotProposed(err):
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, r.notLeaseholder(r.Lease())
	case raftgroup.IsOutcomeUnknown(err):
		return nil, &api.AmbiguousResultError{Message: err.Error()}
	default:
		return nil, err
	}
	if e, ok := res.(error); ok {
		if errors.Is(e, errLeaseChanged) {
			return nil, r.notLeaseholder(r.Lease())
		}
		return nil, e
	}
	return res, nil
}
