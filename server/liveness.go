package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
)

// heartbeatLoop heartbeats every known node each HeartbeatInterval: it
// learns their IDs and addresses, feeds the clock offset monitor (and
// fail-stops this node if its clock is too far from a majority), and tells
// Raft about nodes that stopped answering.
func (n *Node) heartbeatLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		n.heartbeatRound()
		select {
		case <-n.stopCtx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) heartbeatRound() {
	_, _, addrs := n.peers.snapshot()
	targets := map[string]uint64{}
	for id, a := range addrs {
		if id != n.NodeID() {
			targets[a] = id
		}
	}
	for _, a := range n.cfg.Join {
		if _, ok := targets[a]; !ok && a != n.addr && a != n.lis.Addr().String() {
			targets[a] = 0
		}
	}
	var wg sync.WaitGroup
	for addr, id := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := n.heartbeat(addr) == nil
			if id != 0 && n.peers.heartbeatResult(id, ok) {
				if s := n.store.Load(); s != nil {
					n.log.Info("node stopped answering heartbeats", "peer", id, "addr", addr)
					s.Host().ReportNodeDown(id)
				}
			}
		}()
	}
	wg.Wait()
	if n.NodeID() != 0 {
		_ = n.offsets.Check()
	}
}

// heartbeat sends one heartbeat and acts on the answer.
func (n *Node) heartbeat(addr string) error {
	ctx, cancel := context.WithTimeout(n.stopCtx, n.cfg.HeartbeatInterval)
	defer cancel()
	c, err := n.peers.nodeClient(addr)
	if err != nil {
		return err
	}
	ident := n.ident.Load()
	sent := n.phys.UnixNano()
	resp, err := c.Heartbeat(ctx, &api.HeartbeatRequest{
		NodeId: ident.GetNodeId(), ClusterId: ident.GetClusterId(), Address: n.addr,
		MaxOffsetNanos: int64(n.cfg.MaxOffset), Now: api.NewTimestamp(n.clock.Now()),
	})
	if err != nil {
		return err
	}
	received := n.phys.UnixNano()
	if ident != nil && resp.GetClusterId() != "" && resp.GetClusterId() != ident.GetClusterId() {
		err := fmt.Errorf("server: this node's store (%s) belongs to cluster %s, but node %d at %s belongs to cluster %s; "+
			"a store cannot move between clusters: start this node with a new --store to join that cluster",
			n.cfg.Store, ident.GetClusterId(), resp.GetNodeId(), addr, resp.GetClusterId())
		if !n.live.Load() {
			n.fail(err)
		} else {
			n.log.Error("peer of another cluster", "err", err)
		}
		return err
	}
	if resp.GetMaxOffsetNanos() != int64(n.cfg.MaxOffset) {
		err := fmt.Errorf("server: --max-offset differs: this node has %s, node %d at %s has %s; every node must use the same",
			n.cfg.MaxOffset, resp.GetNodeId(), addr, time.Duration(resp.GetMaxOffsetNanos()))
		if !n.live.Load() {
			n.fail(err)
		} else {
			n.log.Error("peer with another max offset", "err", err)
		}
		return err
	}
	if resp.GetClusterId() == "" || resp.GetNodeId() == 0 {
		return nil // a node waiting to join: nothing to learn yet
	}
	n.peers.learn(resp.GetNodeId(), addr)
	if ident == nil {
		return nil
	}
	_ = n.offsets.Record(hlc.OffsetSample{
		Peer: fmt.Sprintf("n%d", resp.GetNodeId()), Sent: sent, Remote: resp.GetPhysicalNow(), Received: received,
	})
	if err := n.clock.Update(resp.GetNow().ToHLC()); err != nil {
		n.log.Warn("heartbeat clock reading rejected", "peer", resp.GetNodeId(), "err", err)
	}
	return nil
}

// livenessLoop keeps this node's liveness record current and refreshes the
// node's view of the other nodes' records.
func (n *Node) livenessLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.LivenessTTL / 3)
	defer t.Stop()
	recorded := false
	for {
		ctx, cancel := context.WithTimeout(n.stopCtx, n.cfg.LivenessTTL/2)
		if err := n.writeLiveness(ctx); err != nil {
			if n.stopCtx.Err() == nil {
				n.log.Debug("liveness record not written", "err", err)
			}
		} else if !n.live.Swap(true) {
			n.log.Info("node is live", "addr", n.addr)
		}
		if !recorded && n.live.Load() {
			recorded = n.putProto(ctx, keys.NodeRecordKey(n.NodeID()), n.record(n.NodeID())) == nil
		}
		if err := n.refreshRecords(ctx); err != nil && n.stopCtx.Err() == nil {
			n.log.Debug("node records not read", "err", err)
		}
		cancel()
		select {
		case <-n.stopCtx.Done():
			return
		case <-t.C:
		}
	}
}

// writeLiveness extends this node's liveness record.
func (n *Node) writeLiveness(ctx context.Context) error {
	id := n.NodeID()
	if id == 0 {
		return nil
	}
	exp := n.clock.PhysicalNow() + int64(n.cfg.LivenessTTL)
	return n.putProto(ctx, keys.NodeLivenessKey(id), &api.Liveness{NodeId: id, Expiration: exp, Draining: n.draining.Load()})
}

// refreshRecords reads every node record and liveness record.
func (n *Node) refreshRecords(ctx context.Context) error {
	recs, live, err := n.readRecords(ctx)
	if err != nil {
		return err
	}
	n.peers.setRecords(recs, live)
	return nil
}

// readRecords scans the node and liveness records through the router.
func (n *Node) readRecords(ctx context.Context) (map[uint64]*api.NodeRecord, map[uint64]*api.Liveness, error) {
	router := n.router.Load()
	if router == nil {
		return nil, nil, fmt.Errorf("server: not part of a cluster")
	}
	rs, re := keys.NodeRecordSpan()
	ls, le := keys.NodeLivenessSpan()
	br, err := router.Send(ctx, &api.BatchRequest{Header: &api.BatchHeader{}, Requests: []*api.RequestUnion{
		api.WrapRequest(&api.ScanRequest{Key: rs, EndKey: re}),
		api.WrapRequest(&api.ScanRequest{Key: ls, EndKey: le}),
	}})
	if err != nil {
		return nil, nil, err
	}
	recs := map[uint64]*api.NodeRecord{}
	for _, kv := range br.GetResponses()[0].GetScan().GetRows() {
		r := &api.NodeRecord{}
		if proto.Unmarshal(kv.GetValue().GetRawBytes(), r) == nil && r.GetNodeId() != 0 {
			recs[r.GetNodeId()] = r
		}
	}
	live := map[uint64]*api.Liveness{}
	for _, kv := range br.GetResponses()[1].GetScan().GetRows() {
		l := &api.Liveness{}
		if proto.Unmarshal(kv.GetValue().GetRawBytes(), l) == nil && l.GetNodeId() != 0 {
			live[l.GetNodeId()] = l
		}
	}
	return recs, live, nil
}
