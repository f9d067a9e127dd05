package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meridiandb/meridian/api"
	meridianv1 "github.com/meridiandb/meridian/api/meridian/v1"
)

// The gRPC server starts before the node has joined a cluster (it must
// answer init and join), so the services that need the store are gates:
// they answer UNAVAILABLE until the store runs, then delegate.

var errNotJoined = status.Error(codes.Unavailable, "node is not part of a cluster yet (waiting to join, or for `meridian init`)")

type internalGate struct {
	api.UnimplementedInternalServer
	n *Node
}

func (g *internalGate) Batch(ctx context.Context, ba *api.BatchRequest) (*api.BatchResponse, error) {
	s := g.n.store.Load()
	if s == nil {
		return nil, errNotJoined
	}
	return s.Batch(ctx, ba)
}

type adminGate struct {
	api.UnimplementedAdminServer
	n *Node
}

func (g *adminGate) TransferLease(ctx context.Context, req *api.TransferLeaseRequest) (*api.TransferLeaseResponse, error) {
	s := g.n.store.Load()
	if s == nil {
		return nil, errNotJoined
	}
	return s.Admin().TransferLease(ctx, req)
}

func (g *adminGate) AdminSplit(ctx context.Context, req *api.AdminSplitRequest) (*api.AdminSplitResponse, error) {
	s := g.n.store.Load()
	if s == nil {
		return nil, errNotJoined
	}
	return s.Admin().AdminSplit(ctx, req)
}

func (g *adminGate) ChangeReplicas(ctx context.Context, req *api.ChangeReplicasRequest) (*api.ChangeReplicasResponse, error) {
	s := g.n.store.Load()
	if s == nil {
		return nil, errNotJoined
	}
	return s.Admin().ChangeReplicas(ctx, req)
}

func (g *adminGate) RangeStatus(ctx context.Context, req *api.RangeStatusRequest) (*api.RangeStatusResponse, error) {
	s := g.n.store.Load()
	if s == nil {
		return nil, errNotJoined
	}
	return s.Admin().RangeStatus(ctx, req)
}

type raftGate struct {
	api.UnimplementedRaftTransportServer
	n *Node
}

func (g *raftGate) RaftMessages(stream grpc.BidiStreamingServer[api.RaftMessageBatch, api.RaftStreamResponse]) error {
	tr := g.n.transport.Load()
	if tr == nil {
		return errNotJoined
	}
	return tr.RaftMessages(stream)
}

func (g *raftGate) RaftSnapshot(stream grpc.ClientStreamingServer[api.SnapshotChunk, api.SnapshotResponse]) error {
	tr := g.n.transport.Load()
	if tr == nil {
		return errNotJoined
	}
	return tr.RaftSnapshot(stream)
}

type kvGate struct {
	meridianv1.UnimplementedKVServer
	n *Node
}

func (g *kvGate) kv() (meridianv1.KVServer, error) {
	if g.n.draining.Load() {
		return nil, status.Error(codes.Unavailable, "node is draining; use another node")
	}
	h := g.n.kv.Load()
	if h == nil {
		return nil, errNotJoined
	}
	return h.srv, nil
}

func (g *kvGate) Get(ctx context.Context, req *meridianv1.GetRequest) (*meridianv1.GetResponse, error) {
	kv, err := g.kv()
	if err != nil {
		return nil, err
	}
	return kv.Get(ctx, req)
}

func (g *kvGate) Put(ctx context.Context, req *meridianv1.PutRequest) (*meridianv1.PutResponse, error) {
	kv, err := g.kv()
	if err != nil {
		return nil, err
	}
	return kv.Put(ctx, req)
}

func (g *kvGate) Delete(ctx context.Context, req *meridianv1.DeleteRequest) (*meridianv1.DeleteResponse, error) {
	kv, err := g.kv()
	if err != nil {
		return nil, err
	}
	return kv.Delete(ctx, req)
}

func (g *kvGate) Scan(req *meridianv1.ScanRequest, stream grpc.ServerStreamingServer[meridianv1.ScanResponse]) error {
	kv, err := g.kv()
	if err != nil {
		return err
	}
	return kv.Scan(req, stream)
}

func (g *kvGate) DeleteRange(ctx context.Context, req *meridianv1.DeleteRangeRequest) (*meridianv1.DeleteRangeResponse, error) {
	kv, err := g.kv()
	if err != nil {
		return nil, err
	}
	return kv.DeleteRange(ctx, req)
}

func (g *kvGate) Txn(ctx context.Context, req *meridianv1.TxnRequest) (*meridianv1.TxnResponse, error) {
	kv, err := g.kv()
	if err != nil {
		return nil, err
	}
	return kv.Txn(ctx, req)
}

func (g *kvGate) Session(stream grpc.BidiStreamingServer[meridianv1.SessionRequest, meridianv1.SessionResponse]) error {
	kv, err := g.kv()
	if err != nil {
		return err
	}
	return kv.Session(stream)
}
