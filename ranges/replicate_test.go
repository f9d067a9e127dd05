package ranges_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/ranges"
	"github.com/meridiandb/meridian/ranges/rangetest"
)

// One node starts alone and takes data; two more join; the replicate queue
// gives every range three voters (each new one a learner first, caught up
// by a snapshot, then promoted); the cluster is consistent; and with one of
// the three stopped, reads and writes continue.
func TestUpReplicationToThreeNodes(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 1, SplitKeys: [][]byte{uk("h"), uk("p")}})
	for i := 0; i < 60; i++ {
		put(t, c, fmt.Sprintf("%c%02d", 'a'+i%26, i), fmt.Sprint(i))
	}
	c.AddNode()
	c.AddNode()
	c.WaitFor(waitTimeout, "every range to have 3 voters", func() bool {
		reps := c.Node(1).Store.Replicas()
		for _, r := range reps {
			if len(r.Desc().Voters()) < 3 {
				return false
			}
		}
		return len(reps) == 4
	})
	c.WaitConsistent(waitTimeout)
	for _, n := range c.Nodes()[1:] {
		if n.Store.Host().Metrics().SnapshotsApplied == 0 {
			t.Fatalf("node %d got its replicas without a snapshot", n.ID)
		}
	}
	c.Stop(2)
	put(t, c, "after", "stop")
	for i := 0; i < 60; i += 7 {
		if v, _ := get(t, c, fmt.Sprintf("%c%02d", 'a'+i%26, i)); v != fmt.Sprint(i) {
			t.Fatalf("%c%02d = %q with node 2 down", 'a'+i%26, i, v)
		}
	}
	if v, _ := get(t, c, "after"); v != "stop" {
		t.Fatal("write with node 2 down lost")
	}
}

// Ranges nobody has used up-replicate too: the replicate queue leases an
// under-replicated range whose lease lapsed (or never existed).
func TestIdleRangesUpReplicate(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 1, SplitKeys: [][]byte{uk("h")}})
	c.AddNode()
	c.AddNode()
	c.WaitFor(waitTimeout, "every idle range to have 3 voters", func() bool {
		reps := c.Node(1).Store.Replicas()
		for _, r := range reps {
			if len(r.Desc().GetReplicas()) < 3 {
				return false
			}
		}
		return len(reps) == 3
	})
}

// An AddReplica that fails after its learner step (a timeout while the
// learner catches up, a lost lease, a crash) leaves a learner behind; the
// replicate queue promotes it and still gives the range three voters.
func TestLeftoverLearnerDoesNotBlockUpReplication(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 1, QueueInterval: time.Hour})
	put(t, c, "a", "1")
	c.AddNode()
	c.AddNode()
	var r *ranges.Replica
	for _, x := range c.Node(1).Store.Replicas() {
		if bytes.Compare(x.Desc().GetStartKey(), keys.UserSpanStart) >= 0 {
			r = x
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	// Step 1 of AddReplica, as if step 2 then failed.
	if _, err := r.AddLearner(ctx, ranges.NodeStore{NodeID: 2, StoreID: 2}); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(waitTimeout, "three voters despite the leftover learner", func() bool {
		c.Node(1).Store.RunQueuesOnce(ctx)
		return len(r.Desc().Voters()) == 3 && len(r.Desc().GetReplicas()) == 3
	})
}
