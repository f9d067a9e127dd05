package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/ranges"
)

// identKey is where the store ident lives in the engine.
var identKey = keys.EncodeEngineKey(keys.StoreIdentKey, hlc.Timestamp{})

// loadIdent reads the store's identity; nil for a new store.
func (n *Node) loadIdent() (*api.StoreIdent, error) {
	v, closer, err := n.engine.DB().Get(identKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("server: reading the store's identity: %w", err)
	}
	defer closer.Close()
	ident := &api.StoreIdent{}
	if err := proto.Unmarshal(v, ident); err != nil || ident.GetNodeId() == 0 || ident.GetClusterId() == "" {
		return nil, fmt.Errorf("server: the store at %s has a corrupt identity record", n.cfg.Store)
	}
	return ident, nil
}

// newClusterID returns a random (version 4) UUID in text form.
func newClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// record is this node's node record.
func (n *Node) record(id uint64) *api.NodeRecord {
	return &api.NodeRecord{
		NodeId: id, Address: n.addr, SqlAddress: n.advertised(n.cfg.SQLAddr), HttpAddress: n.advertised(n.HTTPAddr()),
		StartedAt: n.startedAt.UnixNano(), Build: build(),
	}
}

// bootstrap makes this node node 1 of a new cluster: the initial ranges,
// the cluster ID, the node ID generator, its node record and its store
// ident, in one synced batch. It returns the new cluster's ID, or the
// existing one (and false) if the node already belongs to a cluster.
func (n *Node) bootstrap() (clusterID string, err error) {
	n.initMu.Lock()
	defer n.initMu.Unlock()
	if ident := n.ident.Load(); ident != nil {
		return ident.GetClusterId(), errAlreadyInitialized
	}
	ident := &api.StoreIdent{ClusterId: newClusterID(), NodeId: 1, StoreId: 1}
	identBytes, _ := proto.Marshal(ident)
	rec, _ := proto.Marshal(n.record(1))
	if _, err := ranges.Bootstrap(n.engine, ranges.BootstrapConfig{
		Replicas:  []ranges.InitialReplica{{NodeID: 1, StoreID: 1}},
		Timestamp: n.clock.Now(),
		SystemValues: []ranges.SystemValue{
			{Key: keys.ClusterIDKey, Value: []byte(ident.GetClusterId())},
			{Key: keys.NodeIDGeneratorKey, Value: api.EncodeCounter(1)},
			{Key: keys.StoreIDGeneratorKey, Value: api.EncodeCounter(1)},
			{Key: keys.NodeRecordKey(1), Value: rec},
		},
		LocalValues: []ranges.SystemValue{{Key: keys.StoreIdentKey, Value: identBytes}},
	}); err != nil {
		return "", fmt.Errorf("server: bootstrapping a new cluster: %w", err)
	}
	n.log.Info("bootstrapped a new cluster", "cluster", ident.GetClusterId(), "node", 1)
	if err := n.startStore(ident); err != nil {
		// The identity is on disk: this process cannot serve it; stop.
		n.fail(err)
		return "", err
	}
	return ident.GetClusterId(), nil
}

var errAlreadyInitialized = errors.New("server: the node already belongs to a cluster")

// joinLoop asks the --join nodes to admit this node until one does (or
// init bootstraps it, or the node stops).
func (n *Node) joinLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.HeartbeatInterval)
	defer t.Stop()
	logged := time.Time{}
	for {
		select {
		case <-n.stopCtx.Done():
			return
		case <-n.joined:
			return
		case <-t.C:
		}
		var lastErr error
		for _, addr := range n.cfg.Join {
			if addr == n.addr || addr == n.lis.Addr().String() {
				continue
			}
			done, err := n.tryJoin(addr)
			if done {
				return
			}
			lastErr = err
		}
		if lastErr != nil && time.Since(logged) > 10*time.Second {
			n.log.Info("not joined yet", "err", lastErr)
			logged = time.Now()
		}
	}
}

// tryJoin asks one node to admit this one. done means the node has joined
// (through this call or otherwise).
func (n *Node) tryJoin(addr string) (done bool, err error) {
	ctx, cancel := context.WithTimeout(n.stopCtx, 5*time.Second)
	defer cancel()
	c, err := n.peers.nodeClient(addr)
	if err != nil {
		return false, err
	}
	resp, err := c.Join(ctx, &api.JoinRequest{
		Address: n.addr, SqlAddress: n.advertised(n.cfg.SQLAddr), HttpAddress: n.advertised(n.HTTPAddr()),
		MaxOffsetNanos: int64(n.cfg.MaxOffset),
	})
	if err != nil {
		if s, ok := status.FromError(err); ok && s.Code() == codes.InvalidArgument {
			n.fail(fmt.Errorf("server: %s refused to admit this node: %s", addr, s.Message()))
			return true, err
		}
		return false, fmt.Errorf("joining through %s: %w", addr, err)
	}
	n.initMu.Lock()
	defer n.initMu.Unlock()
	if n.ident.Load() != nil {
		return true, nil // init won the race; the allocated ID stays unused
	}
	ident := &api.StoreIdent{ClusterId: resp.GetClusterId(), NodeId: resp.GetNodeId(), StoreId: resp.GetStoreId()}
	b, _ := proto.Marshal(ident)
	if err := n.engine.DB().Set(identKey, b, pebble.Sync); err != nil {
		n.fail(fmt.Errorf("server: writing the store's identity: %w", err))
		return true, err
	}
	n.log.Info("joined the cluster", "cluster", ident.GetClusterId(), "node", ident.GetNodeId(), "via", addr)
	n.peers.learn(0, addr)
	if err := n.startStore(ident); err != nil {
		n.fail(err)
	}
	return true, nil
}

// admit allocates a node ID for a joining node and records it.
func (n *Node) admit(ctx context.Context, req *api.JoinRequest) (*api.JoinResponse, error) {
	router := n.router.Load()
	ident := n.ident.Load()
	if router == nil || ident == nil {
		return nil, status.Error(codes.FailedPrecondition, "this node is not part of an initialised cluster yet")
	}
	if req.GetMaxOffsetNanos() != int64(n.cfg.MaxOffset) {
		return nil, status.Errorf(codes.InvalidArgument,
			"--max-offset differs: the joining node has %s, this cluster uses %s; every node must use the same",
			time.Duration(req.GetMaxOffsetNanos()), n.cfg.MaxOffset)
	}
	if req.GetAddress() == "" {
		return nil, status.Error(codes.InvalidArgument, "a joining node must say its address")
	}
	br, err := router.Send(ctx, &api.BatchRequest{Header: &api.BatchHeader{}, Requests: []*api.RequestUnion{
		api.WrapRequest(&api.IncrementRequest{Key: keys.NodeIDGeneratorKey, Increment: 1}),
	}})
	if err != nil {
		return nil, StatusError(err)
	}
	id := uint64(br.GetResponses()[0].GetIncrement().GetNewValue())
	rec := &api.NodeRecord{NodeId: id, Address: req.GetAddress(), SqlAddress: req.GetSqlAddress(),
		HttpAddress: req.GetHttpAddress(), StartedAt: time.Now().UnixNano()}
	if err := n.putProto(ctx, keys.NodeRecordKey(id), rec); err != nil {
		return nil, StatusError(err)
	}
	n.peers.learn(id, req.GetAddress())
	n.log.Info("admitted a node", "new_node", id, "address", req.GetAddress())
	return &api.JoinResponse{ClusterId: ident.GetClusterId(), NodeId: id, StoreId: id}, nil
}

// putProto writes a message at a system key through the router.
func (n *Node) putProto(ctx context.Context, key []byte, m proto.Message) error {
	router := n.router.Load()
	if router == nil {
		return errors.New("server: not part of a cluster")
	}
	v, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	_, err = router.Send(ctx, &api.BatchRequest{Header: &api.BatchHeader{}, Requests: []*api.RequestUnion{
		api.WrapRequest(&api.PutRequest{Key: key, Value: v}),
	}})
	return err
}
