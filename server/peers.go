package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/ranges"
)

// peers is the node's view of the other nodes: their addresses (learned
// from heartbeats, joins and node records), one gRPC connection per
// address, and liveness as the records in the system keyspace say.
type peers struct {
	n *Node

	mu struct {
		sync.Mutex
		addrs    map[uint64]string           // node ID -> address
		conns    map[string]*grpc.ClientConn // dialled address -> connection
		records  map[uint64]*api.NodeRecord
		liveness map[uint64]*api.Liveness
		// failing counts consecutive failed heartbeats per node.
		failing map[uint64]int
		closed  bool
	}
}

func newPeers(n *Node) *peers {
	p := &peers{n: n}
	p.mu.addrs = map[uint64]string{}
	p.mu.conns = map[string]*grpc.ClientConn{}
	p.mu.records = map[uint64]*api.NodeRecord{}
	p.mu.liveness = map[uint64]*api.Liveness{}
	p.mu.failing = map[uint64]int{}
	return p
}

// learn records a node's address (id 0: an address whose node is unknown,
// which only opens no connection yet).
func (p *peers) learn(id uint64, addr string) {
	if id == 0 || addr == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.addrs[id] = addr
}

// addr returns a node's address.
func (p *peers) addr(id uint64) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.mu.addrs[id]
	return a, ok
}

// resolveForRaft is raftgroup's Resolver: the address the transport dials.
func (p *peers) resolveForRaft(id uint64) (string, error) {
	a, ok := p.addr(id)
	if !ok {
		return "", fmt.Errorf("server: no address known for node %d", id)
	}
	if rw := p.n.cfg.TestingKnobs.RewriteAddr; rw != nil {
		a = rw(a)
	}
	return a, nil
}

// conn returns the connection to addr, creating it.
func (p *peers) conn(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return nil, fmt.Errorf("server: node stopped")
	}
	target := addr
	if rw := p.n.cfg.TestingKnobs.RewriteAddr; rw != nil {
		target = rw(addr) // connections are per dialled address, so a new rewrite takes effect
	}
	if c, ok := p.mu.conns[target]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(target, p.dialOptions()...)
	if err != nil {
		return nil, fmt.Errorf("server: dialing %s: %w", addr, err)
	}
	p.mu.conns[target] = c
	return c, nil
}

// dialOptions are the options of every node-to-node connection.
func (p *peers) dialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(p.n.tracing.GRPCClientStatsHandler()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
	}
}

// nodeClient returns the node service at addr.
func (p *peers) nodeClient(addr string) (api.NodeClient, error) {
	c, err := p.conn(addr)
	if err != nil {
		return nil, err
	}
	return api.NewNodeClient(c), nil
}

// close closes every connection.
func (p *peers) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.closed = true
	for _, c := range p.mu.conns {
		c.Close()
	}
	p.mu.conns = nil
}

// setRecords replaces the node records and liveness records read from the
// system keyspace.
func (p *peers) setRecords(recs map[uint64]*api.NodeRecord, live map[uint64]*api.Liveness) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.records, p.mu.liveness = recs, live
	for id, r := range recs {
		if r.GetAddress() != "" {
			p.mu.addrs[id] = r.GetAddress()
		}
	}
}

// isLive reports whether a node's liveness record is current at now.
func isLive(l *api.Liveness, now time.Time) bool {
	return l != nil && l.GetExpiration() > now.UnixNano()
}

// liveStores is ranges' LiveStores: the stores of live, not draining
// nodes (store ID = node ID: one store per node).
func (p *peers) liveStores() []ranges.NodeStore {
	now := p.n.clock.PhysicalNow()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []ranges.NodeStore
	for id, l := range p.mu.liveness {
		if isLive(l, time.Unix(0, now)) && !l.GetDraining() {
			out = append(out, ranges.NodeStore{NodeID: id, StoreID: id})
		}
	}
	slices.SortFunc(out, func(a, b ranges.NodeStore) int { return int(a.NodeID) - int(b.NodeID) })
	return out
}

// clusterSize is how many nodes the cluster has (at least 1): the nodes
// that ever wrote a liveness record, or the distinct addresses known if
// more (before the records are read). A node ID allocated to a join that
// never completed has the joiner's address and no liveness, so it does not
// count twice. The offset monitor needs a majority of them to fail-stop
// this node.
func (p *peers) clusterSize() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	addrs := map[string]bool{}
	for _, a := range p.mu.addrs {
		addrs[a] = true
	}
	return max(1, len(p.mu.liveness), len(addrs))
}

// seedNodes lists the nodes the router may ask for range 1 before it knows
// where range 1 is: every node with a known address.
func (p *peers) seedNodes() []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]uint64, 0, len(p.mu.addrs))
	for id := range p.mu.addrs {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// snapshot returns copies of the records, liveness and known addresses.
func (p *peers) snapshot() (map[uint64]*api.NodeRecord, map[uint64]*api.Liveness, map[uint64]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	addrs := make(map[uint64]string, len(p.mu.addrs))
	for k, v := range p.mu.addrs {
		addrs[k] = v
	}
	return p.mu.records, p.mu.liveness, addrs
}

// heartbeatResult records a heartbeat's outcome; it reports whether the
// node just went from reachable to failing (twice in a row).
func (p *peers) heartbeatResult(id uint64, ok bool) (wentDown bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ok {
		p.mu.failing[id] = 0
		return false
	}
	p.mu.failing[id]++
	return p.mu.failing[id] == 2
}

// Dial implements client.Dialer: this node's own store is called
// directly, others over their connection.
func (n *Node) Dial(ctx context.Context, nodeID uint64) (api.InternalClient, error) {
	if nodeID == n.NodeID() {
		if s := n.store.Load(); s != nil {
			return localInternal{s}, nil
		}
	}
	addr, ok := n.peers.addr(nodeID)
	if !ok {
		return nil, fmt.Errorf("server: no address known for node %d", nodeID)
	}
	c, err := n.peers.conn(addr)
	if err != nil {
		return nil, err
	}
	return api.NewInternalClient(c), nil
}

// localInternal calls the node's own store without a network hop.
type localInternal struct{ s *ranges.Store }

func (l localInternal) Batch(ctx context.Context, ba *api.BatchRequest, _ ...grpc.CallOption) (*api.BatchResponse, error) {
	// A copy, as the wire would make: the router may retry with ba.
	return l.s.Batch(ctx, proto.Clone(ba).(*api.BatchRequest))
}
