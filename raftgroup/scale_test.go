//go:build !race

// Scale tests run without the race detector: on 2 cores it would make them
// minutes long without checking anything the smaller tests do not.

package raftgroup_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meridiandb/meridian/raftgroup/grouptest"
)

func allLeaders(c *grouptest.Cluster, groups int) (map[uint64]uint64, bool) {
	leaders := make(map[uint64]uint64, groups)
	for g := uint64(1); g <= uint64(groups); g++ {
		l := c.Leader(g)
		if l == 0 {
			return nil, false
		}
		leaders[g] = l
	}
	return leaders, true
}

func proposeAll(t *testing.T, c *grouptest.Cluster, groups []uint64, cmd string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(groups))
	for _, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := c.Propose(ctx, g, cmd); err != nil {
				errs <- fmt.Errorf("group %d: %w", g, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// 1,000 groups on 3 nodes elect and commit; once idle they quiesce and
// exchange no messages at all over a window of ticks; when the node that
// leads many of them dies (and liveness reports it), they wake and elect.
func TestThousandGroupsElectCommitQuiesceAndWake(t *testing.T) {
	const groups = 1000
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: groups})
	var leaders map[uint64]uint64
	c.WaitFor(60*time.Second, "every group to elect a leader", func() bool {
		var ok bool
		leaders, ok = allLeaders(c, groups)
		return ok
	})
	all := make([]uint64, 0, groups)
	for g := uint64(1); g <= groups; g++ {
		all = append(all, g)
	}
	proposeAll(t, c, all, "put k v")

	quiesced := func() bool {
		for _, n := range c.Nodes() {
			for _, g := range all {
				if !n.Host.Quiesced(g) {
					return false
				}
			}
		}
		return true
	}
	c.WaitFor(60*time.Second, "every replica of every group to quiesce", quiesced)

	sent := func() (n uint64) {
		for _, node := range c.Nodes() {
			n += node.Host.Metrics().MessagesSent
		}
		return n
	}
	before := sent()
	for i := 0; i < 50; i++ {
		c.Tick()
		time.Sleep(time.Millisecond)
	}
	if after := sent(); after != before {
		t.Fatalf("quiesced groups sent %d messages over 50 ticks", after-before)
	}
	if !quiesced() {
		t.Fatal("a group woke up with nothing to do")
	}
	t.Logf("1,000 quiesced groups on 3 nodes: 0 messages over 50 ticks")

	// Kill the node leading the most groups.
	count := map[uint64]int{}
	for _, l := range leaders {
		count[l]++
	}
	var victim uint64
	for n, k := range count {
		if victim == 0 || k > count[victim] {
			victim = n
		}
	}
	var orphaned []uint64
	for g, l := range leaders {
		if l == victim {
			orphaned = append(orphaned, g)
		}
	}
	c.Stop(victim)
	c.ReportNodeDown(victim)
	c.WaitFor(60*time.Second, fmt.Sprintf("the %d groups node %d led to elect new leaders", len(orphaned), victim), func() bool {
		for _, g := range orphaned {
			if l := c.Leader(g); l == 0 || l == victim {
				return false
			}
		}
		return true
	})
	proposeAll(t, c, orphaned, "put k after")
}
