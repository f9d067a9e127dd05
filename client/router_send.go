package client

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meridiandb/meridian/api"
)

// sendToReplicas sends ba (addressed to e's range) to the range's
// replicas: the cached leaseholder first, then the others in descriptor
// order (voters before learners), following NotLeaseholder hints. It
// returns the first response served, a batch error other than
// NotLeaseholder/RangeNotFound as its typed Go error, an
// *api.AmbiguousResultError when a write's RPC failed after it may have
// been sent, or a *sendError when no replica served.
func (r *Router) sendToReplicas(ctx context.Context, ba *api.BatchRequest, e CacheEntry) (*api.BatchResponse, error) {
	desc := e.Desc
	isWrite := !ba.IsReadOnly()
	var orderBuf [8]*api.ReplicaDescriptor
	var triedBuf [8]uint64
	order := replicaOrder(e, orderBuf[:0])
	tried := triedBuf[:0]
	wasTried := func(n uint64) bool {
		for _, t := range tried {
			if t == n {
				return true
			}
		}
		return false
	}
	var (
		hint     *api.ReplicaDescriptor
		hintSeq  int64
		lastErr  error
		attempts = 2*len(order) + 2
	)
	for a := 0; a < attempts; a++ {
		var target *api.ReplicaDescriptor
		if hint != nil {
			target, hint = hint, nil
		} else {
			for _, rep := range order {
				if !wasTried(rep.GetNodeId()) {
					target = rep
					break
				}
			}
			if target == nil {
				break
			}
		}
		if !wasTried(target.GetNodeId()) {
			tried = append(tried, target.GetNodeId())
		}
		if target.GetReplicaId() != 0 {
			ba.Header.Replica = target
		} else {
			ba.Header.Replica = nil
		}

		conn, err := r.cfg.Dialer.Dial(ctx, target.GetNodeId())
		if err != nil {
			if ctx.Err() != nil {
				return nil, giveUp(ctx, err)
			}
			r.log.Debug("client: dial failed", "node", target.GetNodeId(), "range", desc.GetRangeId(), "err", err)
			lastErr = fmt.Errorf("client: dial n%d: %w", target.GetNodeId(), err)
			continue
		}
		resp, err := conn.Batch(ctx, ba)
		if err != nil {
			code := status.Code(err)
			if isWrite && (ctx.Err() != nil || code != codes.Unavailable) {
				// The write may have reached the replica and applied; only
				// the caller can find out.
				return nil, fmt.Errorf("client: range %d on n%d: %w", desc.GetRangeId(), target.GetNodeId(),
					errors.Join(&api.AmbiguousResultError{Message: err.Error()}, ctx.Err()))
			}
			if ctx.Err() != nil {
				return nil, giveUp(ctx, err)
			}
			r.log.Debug("client: rpc failed", "node", target.GetNodeId(), "range", desc.GetRangeId(), "err", err)
			lastErr = fmt.Errorf("client: n%d: %w", target.GetNodeId(), err)
			continue
		}
		if perr := resp.GetHeader().GetError(); perr != nil {
			gerr := perr.GoError()
			switch t := gerr.(type) {
			case *api.NotLeaseholderError:
				lastErr = gerr
				l := t.GetLease()
				h := l.GetReplica()
				if h.GetNodeId() == 0 {
					continue
				}
				r.cache.UpdateLeaseholder(desc, h, l.GetSequence())
				// Follow the hint unless it points back at the replica
				// that refused, or at a holder already tried under a
				// lease no newer than one we followed.
				if h.GetNodeId() != target.GetNodeId() && (!wasTried(h.GetNodeId()) || l.GetSequence() > hintSeq) {
					hint = h
					hintSeq = max(hintSeq, l.GetSequence())
				}
				continue
			case *api.RangeNotFoundError:
				lastErr = gerr
				continue
			default:
				return nil, gerr
			}
		}
		if resp.GetHeader() == nil {
			resp.Header = &api.BatchResponseHeader{}
		}
		// Only a leaseholder serves a consistent batch; any replica may
		// serve an inconsistent read, which says nothing about the lease.
		consistent := ba.GetHeader().GetReadConsistency() == api.ReadConsistency_CONSISTENT
		if consistent && (e.Leaseholder == nil || !e.Leaseholder.SameReplica(target)) {
			r.cache.UpdateLeaseholder(desc, target, 0)
		}
		return resp, nil
	}
	if lastErr == nil {
		lastErr = errors.New("no replicas")
	}
	return nil, &sendError{rangeID: desc.GetRangeId(), last: lastErr}
}

// replicaOrder appends to out the replicas to try: the leaseholder (if
// known), then voters, then learners, each once.
func replicaOrder(e CacheEntry, out []*api.ReplicaDescriptor) []*api.ReplicaDescriptor {
	reps := e.Desc.GetReplicas()
	lh := e.Leaseholder
	if lh != nil {
		out = append(out, lh)
	}
	for _, typ := range [...]api.ReplicaType{api.ReplicaType_VOTER, api.ReplicaType_LEARNER} {
		for _, rep := range reps {
			if rep.GetType() == typ && (lh == nil || rep.GetNodeId() != lh.GetNodeId()) {
				out = append(out, rep)
			}
		}
	}
	return out
}
