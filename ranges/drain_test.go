package ranges_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meridiandb/meridian/ranges/rangetest"
)

// A draining store hands every lease it holds to another replica and does
// not take one back, while writes keep succeeding.
func TestDrainMovesLeasesAway(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3, SplitKeys: [][]byte{uk("m")}})
	for _, k := range []string{"a", "z"} {
		put(t, c, k, "v1")
	}
	var lh uint64
	c.WaitFor(waitTimeout, "agreement on the leaseholder", func() bool {
		lh = leaseholder(t, c, uk("a"))
		return lh != 0
	})
	s := c.Node(lh).Store
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if !s.Draining() {
		t.Fatal("Draining() = false after Drain")
	}
	// Writes keep working (served elsewhere), and the drained store never
	// takes a lease back.
	for i := range 10 {
		for _, k := range []string{"a", "z"} {
			put(t, c, k, fmt.Sprint("v", i+2))
		}
		for _, k := range []string{"a", "z"} {
			if got := leaseholder(t, c, uk(k)); got == lh {
				t.Fatalf("after write %d: node %d (draining) holds the lease of %s", i, lh, k)
			}
		}
	}
	now := c.Node(lh).Clock.Now()
	for _, r := range s.Replicas() {
		if l := r.Lease(); l.GetReplica().GetNodeId() == lh && now.Less(l.GetExpiration().ToHLC()) {
			t.Fatalf("range %d: draining node %d still holds lease %v", r.RangeID(), lh, l)
		}
	}
}
