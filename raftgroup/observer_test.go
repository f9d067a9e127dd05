package raftgroup_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meridiandb/meridian/raftgroup"
	"github.com/meridiandb/meridian/raftgroup/grouptest"
)

// recordingObserver counts what a host reports to its Observer.
type recordingObserver struct {
	mu             sync.Mutex
	fsyncs         int
	fsyncedEntries int
	applied        []time.Duration
	negative       bool
}

func (o *recordingObserver) Fsynced(d time.Duration, entries int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fsyncs++
	o.fsyncedEntries += entries
	o.negative = o.negative || d < 0 || entries < 0
}

func (o *recordingObserver) ProposalApplied(d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.applied = append(o.applied, d)
	o.negative = o.negative || d < 0
}

// TestObserver checks that a host reports every synced commit of raft state
// (with the log entries it made durable) and every local proposal it
// applied.
func TestObserver(t *testing.T) {
	var mu sync.Mutex
	obs := map[uint64]*recordingObserver{}
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1, Observer: func(id uint64) raftgroup.Observer {
		mu.Lock()
		defer mu.Unlock()
		obs[id] = &recordingObserver{}
		return obs[id]
	}})
	leader := c.WaitLeader(1, waitTimeout)
	const n = 20
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for i := 0; i < n; i++ {
		if _, err := c.Node(leader).Host.Propose(ctx, 1, []byte(fmt.Sprintf("put k%d v", i))); err != nil {
			t.Fatalf("propose %d on leader %d: %v", i, leader, err)
		}
	}
	waitApplied(t, c, 1, fmt.Sprintf("k%d", n-1), "v")

	mu.Lock()
	defer mu.Unlock()
	for id, o := range obs {
		o.mu.Lock()
		if o.fsyncs == 0 || o.fsyncedEntries < n {
			t.Errorf("node %d: observer saw %d fsyncs making %d entries durable; want at least %d entries", id, o.fsyncs, o.fsyncedEntries, n)
		}
		if o.negative {
			t.Errorf("node %d: observer saw a negative duration or entry count", id)
		}
		want := 0
		if id == leader {
			want = n
		}
		if len(o.applied) != want {
			t.Errorf("node %d: observer saw %d applied proposals, want %d", id, len(o.applied), want)
		}
		o.mu.Unlock()
	}
}
