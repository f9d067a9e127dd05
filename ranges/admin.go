package ranges

import (
	"bytes"
	"context"
	"errors"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/keys"
)

// Admin serves api.AdminServer for a store: lease transfers and range
// status for tests and the CLI. Splits and replica changes arrive with the
// next issue; until then they answer Unimplemented.
type Admin struct {
	api.UnimplementedAdminServer
	store *Store
}

// Admin returns the store's admin service.
func (s *Store) Admin() *Admin { return &Admin{store: s} }

// TransferLease moves a range's lease to the replica on the target node (or
// store). It must be sent to the current leaseholder.
func (a *Admin) TransferLease(ctx context.Context, req *api.TransferLeaseRequest) (*api.TransferLeaseResponse, error) {
	r, err := a.store.Replica(keys.RangeID(req.GetRangeId()))
	if err != nil {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	d := r.Desc()
	target := d.ReplicaByNode(req.GetTargetNodeId())
	if req.GetTargetStoreId() != 0 {
		target = d.ReplicaByStore(req.GetTargetStoreId())
	}
	if target == nil {
		return nil, status.Errorf(codes.InvalidArgument, "ranges: range %d has no replica on node %d store %d", req.GetRangeId(), req.GetTargetNodeId(), req.GetTargetStoreId())
	}
	if err := r.TransferLease(ctx, target.GetReplicaId()); err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &api.TransferLeaseResponse{Lease: r.Lease()}, nil
}

// AdminSplit splits the range holding split_key (or range_id) at that key.
// It must reach the range's leaseholder.
func (a *Admin) AdminSplit(ctx context.Context, req *api.AdminSplitRequest) (*api.AdminSplitResponse, error) {
	var r *Replica
	for _, rr := range a.store.Replicas() {
		d := rr.Desc()
		if (req.GetRangeId() != 0 && d.GetRangeId() == req.GetRangeId()) || (req.GetRangeId() == 0 && d.ContainsKey(req.GetSplitKey())) {
			r = rr
		}
	}
	if r == nil {
		return nil, status.Errorf(codes.NotFound, "ranges: no range on this store holds the split key")
	}
	left, right, err := r.AdminSplit(ctx, req.GetSplitKey())
	if err != nil {
		var inv *api.InvalidRequestError
		if errors.As(err, &inv) {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &api.AdminSplitResponse{Left: left, Right: right}, nil
}

// ChangeReplicas adds or removes voters and learners (ADD_VOTER adds a
// learner, waits for its snapshot, then promotes it). It must reach the
// range's leaseholder.
func (a *Admin) ChangeReplicas(ctx context.Context, req *api.ChangeReplicasRequest) (*api.ChangeReplicasResponse, error) {
	r, err := a.store.Replica(keys.RangeID(req.GetRangeId()))
	if err != nil {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	if g := req.GetExpectedGeneration(); g != 0 && r.Desc().GetGeneration() != g {
		return nil, status.Errorf(codes.Aborted, "ranges: range %d is at generation %d, not %d", req.GetRangeId(), r.Desc().GetGeneration(), g)
	}
	var d *api.RangeDescriptor
	for _, ch := range req.GetChanges() {
		target := NodeStore{NodeID: ch.GetNodeId(), StoreID: ch.GetStoreId()}
		switch ch.GetType() {
		case api.ReplicaChangeType_ADD_VOTER:
			d, err = r.AddReplica(ctx, target)
		case api.ReplicaChangeType_ADD_LEARNER:
			d, err = r.AddLearner(ctx, target)
		case api.ReplicaChangeType_REMOVE_VOTER, api.ReplicaChangeType_REMOVE_LEARNER:
			d, err = r.RemoveReplica(ctx, target)
		default:
			return nil, status.Errorf(codes.InvalidArgument, "ranges: unknown replica change %v", ch.GetType())
		}
		if err != nil {
			return nil, status.Error(codes.FailedPrecondition, err.Error())
		}
	}
	return &api.ChangeReplicasResponse{RangeDescriptor: d}, nil
}

// RangeStatus lists every replica on the store (or the one for a range ID,
// or the one holding a key) with its descriptor, lease, Raft state and
// stats.
func (a *Admin) RangeStatus(_ context.Context, req *api.RangeStatusRequest) (*api.RangeStatusResponse, error) {
	s := a.store
	now := s.cfg.Clock.Now()
	resp := &api.RangeStatusResponse{NodeId: s.cfg.NodeID, Now: api.NewTimestamp(now)}
	for _, r := range s.Replicas() {
		d := r.Desc()
		if len(d.GetEndKey()) == 0 {
			continue // uninitialised
		}
		if req.GetRangeId() != 0 && d.GetRangeId() != req.GetRangeId() {
			continue
		}
		if len(req.GetKey()) > 0 && !d.ContainsKey(req.GetKey()) {
			continue
		}
		// The state is shared with Apply, which changes its fields under
		// r.mu: copy what is needed while holding it.
		r.mu.RLock()
		lease, stats := r.mu.state.lease, r.mu.state.stats
		r.mu.RUnlock()
		rs := &api.RangeStatus{NodeId: s.cfg.NodeID, StoreId: s.cfg.StoreID, RangeDescriptor: d, Lease: lease, Stats: stats.ToProto()}
		rs.Leaseholder = lease.GetReplica().GetReplicaId() == r.replicaID && r.leaseValid(lease, now)
		if hs, err := s.host.Status(uint64(r.rangeID)); err == nil {
			rs.Raft = &api.RaftStatus{
				Leader: hs.Leader, Term: hs.Term, Commit: hs.Commit, Applied: hs.Applied,
				State: hs.State.String(), Quiesced: s.host.Quiesced(uint64(r.rangeID)),
			}
		}
		resp.Ranges = append(resp.Ranges, rs)
	}
	slices.SortFunc(resp.Ranges, func(x, y *api.RangeStatus) int {
		return bytes.Compare(x.GetRangeDescriptor().GetStartKey(), y.GetRangeDescriptor().GetStartKey())
	})
	return resp, nil
}
