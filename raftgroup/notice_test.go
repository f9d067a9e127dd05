package raftgroup_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/meridiandb/meridian/raftgroup/grouptest"
)

// TestCommitNotices: a leader holds the append that only tells a follower a
// new commit index, and the next write's append carries it instead, so a
// write costs half the messages; the last write's notice, with nothing
// after it, still reaches the followers once its delay runs out. (Ticks are
// manual: electing and the warm-up take some, the writes and the wait after
// them none, so no heartbeat carries the last commit index.)
func TestCommitNotices(t *testing.T) {
	const writes = 20
	sent := func(delay time.Duration) (perWrite float64, elided, delayed uint64) {
		c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1, CommitNoticeDelay: delay})
		lead := c.WaitLeader(1, waitTimeout)
		mustPropose(t, c, 1, "put warm up")
		waitApplied(t, c, 1, "warm", "up")
		before := c.Node(lead).Host.Metrics()
		var msgs uint64
		for _, n := range c.Nodes() {
			msgs -= n.Host.Metrics().MessagesSent
		}
		for i := range writes {
			mustPropose(t, c, 1, fmt.Sprintf("put k %d", i))
		}
		// Every follower applies the last write, without a tick (so
		// without heartbeats): with notices held, only because the held
		// one is sent when its delay runs out.
		deadline := time.Now().Add(waitTimeout)
		for _, n := range c.Nodes() {
			for {
				if v, _ := n.KV.Get(1, "k"); v == fmt.Sprint(writes-1) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("node %d did not apply the last write (delay %v)", n.ID, delay)
				}
				time.Sleep(time.Millisecond)
			}
		}
		for _, n := range c.Nodes() {
			msgs += n.Host.Metrics().MessagesSent
		}
		after := c.Node(lead).Host.Metrics()
		return float64(msgs) / writes, after.CommitNoticesElided - before.CommitNoticesElided, after.CommitNoticesDelayed - before.CommitNoticesDelayed
	}
	eager, elided, delayed := sent(-1)
	if elided != 0 || delayed != 0 {
		t.Fatalf("notices not held: %d elided, %d delayed, want none", elided, delayed)
	}
	held, elided, delayed := sent(time.Second)
	t.Logf("messages per write: %.1f sending commit notices at once, %.1f holding them; %d elided, %d delayed", eager, held, elided, delayed)
	// Each write but the last: two appends and two answers (plus, sent at
	// once, two notices and two answers).
	if held > 0.6*eager {
		t.Errorf("holding commit notices: %.1f messages per write, sending them at once %.1f; want at most 60%%", held, eager)
	}
	// Two notices per write, each replaced by the next write's appends (or
	// by a heartbeat a tick queued before the writes sent), or sent when
	// its delay ran out: surely the last write's, and another if the next
	// write took longer than the delay to come.
	if elided < writes || delayed == 0 {
		t.Errorf("%d notices elided and %d sent when their delay ran out, want at least %d elided and one sent", elided, delayed, writes)
	}
}
