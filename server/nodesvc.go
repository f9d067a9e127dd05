package server

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/keys"
)

// nodeService implements api.NodeServer.
type nodeService struct {
	api.UnimplementedNodeServer
	n *Node
}

// Heartbeat answers with this node's identity and clock. It learns the
// sender's address only when both belong to the same cluster.
func (s *nodeService) Heartbeat(_ context.Context, req *api.HeartbeatRequest) (*api.HeartbeatResponse, error) {
	n := s.n
	ident := n.ident.Load()
	if ident != nil && req.GetClusterId() == ident.GetClusterId() && req.GetMaxOffsetNanos() == int64(n.cfg.MaxOffset) {
		n.peers.learn(req.GetNodeId(), req.GetAddress())
		if ts := req.GetNow(); ts != nil {
			if err := n.clock.Update(ts.ToHLC()); err != nil {
				n.log.Warn("heartbeat clock reading rejected", "peer", req.GetNodeId(), "err", err)
			}
		}
	}
	return &api.HeartbeatResponse{
		NodeId: ident.GetNodeId(), ClusterId: ident.GetClusterId(), Address: n.addr,
		MaxOffsetNanos: int64(n.cfg.MaxOffset), Now: api.NewTimestamp(n.clock.Now()), PhysicalNow: n.phys.UnixNano(),
	}, nil
}

func (s *nodeService) Join(ctx context.Context, req *api.JoinRequest) (*api.JoinResponse, error) {
	return s.n.admit(ctx, req)
}

// Init bootstraps a new cluster on a node waiting for it.
func (s *nodeService) Init(ctx context.Context, _ *api.InitRequest) (*api.InitResponse, error) {
	n := s.n
	if len(n.cfg.Join) == 0 && n.ident.Load() == nil {
		return nil, status.Error(codes.FailedPrecondition, "node is still starting")
	}
	if n.ident.Load() == nil {
		// A --join node may not have joined yet while another --join node
		// already bootstrapped: then that is the cluster (the join loop
		// joins it), and a second bootstrap would make two.
		if id := n.joinedPeerCluster(ctx); id != "" {
			return &api.InitResponse{ClusterId: id, AlreadyInitialized: true}, nil
		}
		if ctx.Err() != nil {
			// The peers were not all asked: bootstrapping now could make a
			// second cluster.
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	id, err := n.bootstrap()
	if errors.Is(err, errAlreadyInitialized) {
		return &api.InitResponse{ClusterId: id, AlreadyInitialized: true}, nil
	}
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &api.InitResponse{ClusterId: id}, nil
}

// joinedPeerCluster asks the --join nodes for their cluster; it returns
// the first cluster ID one of them reports, or "".
func (n *Node) joinedPeerCluster(ctx context.Context) string {
	for _, addr := range n.cfg.Join {
		if addr == n.addr || addr == n.lis.Addr().String() {
			continue
		}
		c, err := n.peers.nodeClient(addr)
		if err != nil {
			continue
		}
		// Wait for the connection (it may be in reconnect backoff since
		// the peer was down at startup) rather than fail fast and take a
		// peer that is up for one without a cluster.
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := c.Heartbeat(hctx, &api.HeartbeatRequest{Address: n.addr, MaxOffsetNanos: int64(n.cfg.MaxOffset)}, grpc.WaitForReady(true))
		cancel()
		if err == nil && resp.GetClusterId() != "" {
			return resp.GetClusterId()
		}
	}
	return ""
}

// LocalStatus reports this node.
func (s *nodeService) LocalStatus(ctx context.Context, _ *api.LocalStatusRequest) (*api.NodeStatus, error) {
	n := s.n
	st := &api.NodeStatus{
		NodeId: n.NodeID(), Address: n.addr, SqlAddress: n.advertised(n.cfg.SQLAddr), HttpAddress: n.advertised(n.HTTPAddr()),
		StartedAt: n.startedAt.UnixNano(), Build: build(), Live: n.live.Load(), Draining: n.draining.Load(),
		MaxOffsetNanos: int64(n.cfg.MaxOffset), CommitWait: n.cfg.CommitWait, Guarantee: n.cfg.guarantee(),
	}
	st.ClockSource, st.ClockErrorBoundNanos = n.clockSourceInForce()
	if store := n.store.Load(); store != nil {
		rs, err := store.Admin().RangeStatus(ctx, &api.RangeStatusRequest{})
		if err != nil {
			return nil, StatusError(err)
		}
		for _, r := range rs.GetRanges() {
			st.Replicas++
			if r.GetLeaseholder() {
				st.Leaseholders++
			}
		}
	}
	return st, nil
}

// clockSourceInForce names the clock source the node uses now and its
// error bound ε.
func (n *Node) clockSourceInForce() (string, int64) {
	if a, ok := n.clockSrc.(interface {
		Current() (string, time.Duration)
	}); ok {
		name, eps := a.Current()
		return name, int64(eps)
	}
	r, err := n.clockSrc.Now()
	if err != nil {
		return n.clockSrc.Name() + " (unavailable: " + err.Error() + ")", 0
	}
	return n.clockSrc.Name(), int64(r.Width())
}

// ClusterStatus reports every node with a record: its own LocalStatus when
// it answers, else what its records say.
func (s *nodeService) ClusterStatus(ctx context.Context, _ *api.ClusterStatusRequest) (*api.ClusterStatusResponse, error) {
	n := s.n
	recs, live, err := n.readRecords(ctx)
	if err != nil {
		if n.router.Load() == nil {
			return nil, errNotJoined
		}
		return nil, StatusError(err)
	}
	now := time.Unix(0, n.clock.PhysicalNow())
	out := make([]*api.NodeStatus, 0, len(recs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, rec := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := &api.NodeStatus{NodeId: id, Address: rec.GetAddress(), SqlAddress: rec.GetSqlAddress(),
				HttpAddress: rec.GetHttpAddress(), StartedAt: rec.GetStartedAt(), Build: rec.GetBuild()}
			if id == n.NodeID() {
				if got, err := s.LocalStatus(ctx, nil); err != nil {
					st.Error = err.Error()
				} else {
					st = got
				}
			} else if c, cerr := n.peers.nodeClient(rec.GetAddress()); cerr != nil {
				st.Error = cerr.Error()
			} else {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				got, err := c.LocalStatus(cctx, &api.LocalStatusRequest{})
				cancel()
				if err != nil {
					st.Error = status.Convert(err).Message()
				} else {
					st = got
				}
			}
			l := live[id]
			st.Live = isLive(l, now)
			st.Draining = st.GetDraining() || l.GetDraining()
			mu.Lock()
			out = append(out, st)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].GetNodeId() < out[j].GetNodeId() })
	return &api.ClusterStatusResponse{Nodes: out}, nil
}

// ListRanges reads every range descriptor from meta and asks each node
// with a known address for its replicas' status, to name leaseholders and
// sizes.
func (s *nodeService) ListRanges(ctx context.Context, req *api.ListRangesRequest) (*api.ListRangesResponse, error) {
	n := s.n
	router := n.router.Load()
	if router == nil {
		return nil, errNotJoined
	}
	start, end := keys.MetaMin, keys.MetaMax
	if len(req.GetKey()) > 0 {
		// The range holding key is the first whose end key is above it.
		start = keys.MetaKey(keys.Next(keys.UserKey(req.GetKey())))
	}
	br, err := router.Send(ctx, &api.BatchRequest{
		Header:   &api.BatchHeader{},
		Requests: []*api.RequestUnion{api.WrapRequest(&api.ScanRequest{Key: start, EndKey: end})},
	})
	if err != nil {
		return nil, StatusError(err)
	}
	var out []*api.RangeInfo
	byID := map[uint64]*api.RangeInfo{}
	for _, kv := range br.GetResponses()[0].GetScan().GetRows() {
		d := &api.RangeDescriptor{}
		if err := proto.Unmarshal(kv.GetValue().GetRawBytes(), d); err != nil {
			continue
		}
		ri := &api.RangeInfo{RangeDescriptor: d}
		out = append(out, ri)
		byID[d.GetRangeId()] = ri
		if len(req.GetKey()) > 0 {
			break
		}
	}
	nodes := map[uint64]bool{}
	for _, ri := range out {
		for _, r := range ri.GetRangeDescriptor().GetReplicas() {
			nodes[r.GetNodeId()] = true
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs, err := n.rangeStatusOf(ctx, id)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, r := range rs.GetRanges() {
				ri := byID[r.GetRangeDescriptor().GetRangeId()]
				if ri == nil {
					continue
				}
				if r.GetLeaseholder() {
					ri.LeaseholderNodeId = id
				}
				if r.GetLeaseholder() || ri.GetSizeBytes() == 0 {
					st := r.GetStats()
					ri.SizeBytes = st.GetKeyBytes() + st.GetValBytes()
					ri.LiveKeys = st.GetLiveCount()
				}
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b *api.RangeInfo) int {
		return bytes.Compare(a.GetRangeDescriptor().GetStartKey(), b.GetRangeDescriptor().GetStartKey())
	})
	return &api.ListRangesResponse{Ranges: out}, nil
}

// rangeStatusOf asks a node for the status of its replicas.
func (n *Node) rangeStatusOf(ctx context.Context, id uint64) (*api.RangeStatusResponse, error) {
	if id == n.NodeID() {
		if s := n.store.Load(); s != nil {
			return s.Admin().RangeStatus(ctx, &api.RangeStatusRequest{})
		}
	}
	addr, ok := n.peers.addr(id)
	if !ok {
		return nil, errors.New("no address")
	}
	c, err := n.peers.conn(addr)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return api.NewAdminClient(c).RangeStatus(cctx, &api.RangeStatusRequest{})
}
