package ranges_test

import (
	"context"
	"testing"
	"time"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/ranges/rangetest"
)

// The admin service, over gRPC: range status lists every range with its
// leaseholder, and a lease transfer moves the lease to the named node.
func TestAdminStatusAndTransferLease(t *testing.T) {
	// Only traffic extends a lease: a long one does not lapse (on a slow
	// machine) between the put that takes it and the checks below.
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3, GRPC: true, SplitKeys: [][]byte{uk("m")}, LeaseDuration: 20 * time.Second})
	put(t, c, "a", "1")
	ctx := context.Background()
	var lh uint64
	c.WaitFor(waitTimeout, "a leaseholder", func() bool {
		lh = leaseholder(t, c, uk("a"))
		return lh != 0
	})
	st, err := api.NewAdminClient(c.Node(lh).Conn()).RangeStatus(ctx, &api.RangeStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.GetRanges()) != 3 {
		t.Fatalf("node %d lists %d ranges, want 3 (system, [u, um), [um, max))", lh, len(st.GetRanges()))
	}
	d, _ := c.RangeFor(uk("a"))
	var found bool
	for _, rs := range st.GetRanges() {
		if rs.GetRangeDescriptor().GetRangeId() == d.GetRangeId() {
			found = true
			if !rs.GetLeaseholder() || rs.GetRaft().GetLeader() == 0 || rs.GetStats().GetLiveCount() != 1 {
				t.Fatalf("status of range %d on its leaseholder: %v", d.GetRangeId(), rs)
			}
		}
	}
	if !found {
		t.Fatalf("range %d missing from status", d.GetRangeId())
	}
	target := lh%3 + 1
	if _, err := api.NewAdminClient(c.Node(lh).Conn()).TransferLease(ctx, &api.TransferLeaseRequest{RangeId: d.GetRangeId(), TargetNodeId: target}); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(waitTimeout, "the lease to reach the target", func() bool { return leaseholder(t, c, uk("a")) == target })
	put(t, c, "a", "2")
	if v, _ := get(t, c, "a"); v != "2" {
		t.Fatalf("after the transfer a = %q", v)
	}
}

// ChangeReplicas over gRPC: remove a voter, then add it back (a fresh
// replica ID, a snapshot), and the range keeps serving throughout.
func TestAdminChangeReplicas(t *testing.T) {
	// No background queues: the replicate queue would re-add the removed
	// replica by itself.
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3, GRPC: true, QueueInterval: time.Hour})
	put(t, c, "a", "1")
	var lh uint64
	c.WaitFor(waitTimeout, "a leaseholder", func() bool {
		lh = leaseholder(t, c, uk("a"))
		return lh != 0
	})
	d, _ := c.RangeFor(uk("a"))
	victim := lh%3 + 1
	admin := api.NewAdminClient(c.Node(lh).Conn())
	ctx := context.Background()
	resp, err := admin.ChangeReplicas(ctx, &api.ChangeReplicasRequest{RangeId: d.GetRangeId(), Changes: []*api.ReplicaChange{{Type: api.ReplicaChangeType_REMOVE_VOTER, NodeId: victim, StoreId: victim}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetRangeDescriptor().GetReplicas()) != 2 {
		t.Fatalf("after removing node %d: %v", victim, resp.GetRangeDescriptor())
	}
	put(t, c, "a", "2")
	if _, err := admin.ChangeReplicas(ctx, &api.ChangeReplicasRequest{RangeId: d.GetRangeId(), Changes: []*api.ReplicaChange{{Type: api.ReplicaChangeType_REMOVE_VOTER, NodeId: lh, StoreId: lh}}}); err == nil {
		t.Fatal("the leaseholder removed itself")
	}
	resp, err = admin.ChangeReplicas(ctx, &api.ChangeReplicasRequest{RangeId: d.GetRangeId(), Changes: []*api.ReplicaChange{{Type: api.ReplicaChangeType_ADD_VOTER, NodeId: victim, StoreId: victim}}})
	if err != nil {
		t.Fatal(err)
	}
	rd := resp.GetRangeDescriptor().ReplicaByNode(victim)
	if rd == nil || rd.GetType() != api.ReplicaType_VOTER || rd.GetReplicaId() <= 3 {
		t.Fatalf("re-added replica %v: want a voter with a fresh replica ID", rd)
	}
	if v, _ := get(t, c, "a"); v != "2" {
		t.Fatalf("a = %q", v)
	}
}

// RangeStatus reads each replica's lease while leases move: under the race
// detector this fails if it reads the replica's state outside its lock
// (Apply replaces the lease under it).
func TestRangeStatusWhileLeasesMove(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3, GRPC: true})
	put(t, c, "a", "1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			for _, n := range c.Nodes() {
				if _, err := api.NewAdminClient(n.Conn()).RangeStatus(ctx, &api.RangeStatusRequest{}); err != nil && ctx.Err() == nil {
					t.Errorf("range status on node %d: %v", n.ID, err)
				}
			}
		}
	}()
	for i := range 10 {
		moveLease(t, c, "a", uint64(i%3+1))
	}
	cancel()
	<-done
}
