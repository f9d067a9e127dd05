package raftgroup_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/raftgroup"
	"github.com/meridiandb/meridian/raftgroup/grouptest"
)

func confChange(t raftpb.ConfChangeType, replica uint64) *raftpb.ConfChangeV2 {
	return &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: t.Enum(), NodeId: &replica}}}
}

// changeMembership proposes cc on the current leader until it applies.
func changeMembership(t *testing.T, c *grouptest.Cluster, group uint64, cc *raftpb.ConfChangeV2) *raftpb.ConfState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for {
		l := c.WaitLeader(group, waitTimeout)
		cs, err := c.Node(l).Host.ProposeConfChange(ctx, group, cc)
		if err == nil {
			return cs
		}
		if ctx.Err() != nil {
			t.Fatalf("membership change %v: %v", cc, err)
		}
		if raftgroup.IsOutcomeUnknown(err) {
			t.Fatalf("membership change %v: ambiguous: %v", cc, err)
		}
		// Not proposed (another change pending, leadership moving): retry.
		c.Tick()
		time.Sleep(5 * time.Millisecond)
	}
}

func firstIndex(t *testing.T, n *grouptest.Node, group uint64) uint64 {
	t.Helper()
	st, err := n.Host.Status(group)
	if err != nil {
		t.Fatal(err)
	}
	return st.FirstIndex
}

// raftApplied is a replica's applied index as raft sees it (at least
// InitialIndex, unlike the state machine's count of entries it applied).
func raftApplied(t *testing.T, n *grouptest.Node, group uint64) uint64 {
	t.Helper()
	st, err := n.Host.Status(group)
	if err != nil {
		t.Fatal(err)
	}
	return st.Applied
}

// truncatePastFollower cuts a follower of group 1 off, proposes n
// increments of "n" and waits until the leader's log no longer holds what
// the follower needs next. It returns the leader and the follower.
func truncatePastFollower(t *testing.T, c *grouptest.Cluster, n int) (l, f uint64) {
	t.Helper()
	l = c.WaitLeader(1, waitTimeout)
	f = l%3 + 1
	c.Isolate(f)
	for i := 0; i < n; i++ {
		mustPropose(t, c, 1, "incr n")
	}
	c.WaitFor(waitTimeout, "the leader to truncate past the lagging follower", func() bool {
		return firstIndex(t, c.Node(l), 1) > raftApplied(t, c.Node(f), 1)+1
	})
	return l, f
}

func TestLaggingFollowerCatchesUpBySnapshot(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1, Truncation: &raftgroup.TruncationPolicy{MinEntries: 10}})
	// The policy ignores the unreachable follower: the others truncate.
	_, f := truncatePastFollower(t, c, 60)
	c.Net.Heal()
	waitApplied(t, c, 1, "n", "60")

	// It could only have caught up through a snapshot: the entries it
	// missed are gone from every log.
	c.WaitFor(waitTimeout, "the follower's snapshot to be counted", func() bool {
		return c.Node(f).Host.Metrics().SnapshotsApplied > 0
	})
	// And then it gets entries again.
	mustPropose(t, c, 1, "incr n")
	waitApplied(t, c, 1, "n", "61")
	for _, n := range c.Nodes() {
		for id, cnt := range n.KV.Counts(1) {
			if cnt != 1 {
				t.Fatalf("node %d applied %s %d times", n.ID, id, cnt)
			}
		}
	}
}

// proposeInLoop has n goroutines propose "incr m" to group 1 on h, one
// command at a time (backing off when h is not the leader), until the
// returned stop is called; stop waits for them.
func proposeInLoop(h *raftgroup.Host, n int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				pctx, pcancel := context.WithTimeout(ctx, time.Second)
				if _, err := h.Propose(pctx, 1, []byte("incr m")); raftgroup.IsNotProposed(err) {
					time.Sleep(10 * time.Millisecond)
				}
				pcancel()
			}
		}()
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// TestBriefOutageCatchesUpFromLog: a follower cut off for about one
// election timeout, lagging well within MaxLagEntries, catches up from the
// leader's log, not by snapshot. (raft marks every follower inactive at each
// quorum check until it hears from it again; truncation once took that for
// a dead follower.)
func TestBriefOutageCatchesUpFromLog(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1, Truncation: &raftgroup.TruncationPolicy{MinEntries: 10}})
	l := c.WaitLeader(1, waitTimeout)
	f := l%3 + 1
	mustPropose(t, c, 1, "incr n")
	waitApplied(t, c, 1, "n", "1")
	c.Isolate(f)
	for i := 0; i < 11; i++ { // one election timeout: the leader's quorum check
		c.Tick()
	}
	for i := 0; i < 40; i++ { // and entries enough to truncate
		mustPropose(t, c, 1, "incr n")
	}
	c.Net.Heal()
	waitApplied(t, c, 1, "n", "41")
	if n := c.Node(f).Host.Metrics().SnapshotsApplied; n != 0 {
		t.Fatalf("the follower needed %d snapshots to catch up 40 entries", n)
	}
}

// TestSnapshotCatchUpUnderLoad: a follower that needs a snapshot catches up
// while the leader keeps applying (and truncating) faster than one snapshot
// round trip: the leader keeps the entries after the snapshot's index. (It
// used to truncate them, so the follower got snapshot after snapshot, and
// reading the term of a snapshot's index could fail.)
func TestSnapshotCatchUpUnderLoad(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1, TickInterval: 5 * time.Millisecond,
		Truncation: &raftgroup.TruncationPolicy{MinEntries: 10, MaxLagEntries: 50}})
	l, f := truncatePastFollower(t, c, 150)
	// The snapshot takes long enough for the leader to apply (and, but for
	// the rule, truncate) well past its index meanwhile.
	c.Net.SetSnapshotDelay(300 * time.Millisecond)
	stop := proposeInLoop(c.Node(l).Host, 4)
	c.Net.Heal()
	// Under load, the follower gets within reach of the leader.
	c.WaitFor(waitTimeout, "the follower to catch up under load", func() bool {
		return raftApplied(t, c.Node(f), 1)+50 >= raftApplied(t, c.Node(l), 1)
	})
	stop()
	// Without the rule it never got there (snapshot after snapshot). The
	// counts vary with leadership moves on a loaded machine: logged only.
	t.Logf("follower applied %d snapshots; %d sends failed", c.Node(f).Host.Metrics().SnapshotsApplied, c.Node(l).Host.Metrics().SnapshotsFailed)
}

// TestSnapshotProtectedUntilAcknowledged: after a follower applied a
// snapshot, the leader keeps the entries after its index until the
// follower's acknowledgement arrives (by the message stream, later); until
// then raft still has the follower far behind. Cutting them in that window
// cost the follower a second snapshot. The window is a few milliseconds
// here, so this does not reliably fail without the rule (a reviewer's
// variant did in 2 of 5 runs); it holds the behaviour: one snapshot.
func TestSnapshotProtectedUntilAcknowledged(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1, TickInterval: 20 * time.Millisecond,
		Truncation: &raftgroup.TruncationPolicy{MinEntries: 10, MaxLagEntries: 1000}})
	l, f := truncatePastFollower(t, c, 1100)
	st0, _ := c.Node(l).Host.Status(1)
	c.Net.SetSnapshotDelay(300 * time.Millisecond)
	c.Net.SetDelay(2 * time.Millisecond) // the acknowledgement comes after the snapshot's answer
	stop := proposeInLoop(c.Node(l).Host, 1)
	c.Net.Heal()
	c.WaitFor(waitTimeout, "the follower to get its snapshot and entries after it", func() bool {
		return c.Node(f).Host.Metrics().SnapshotsApplied > 0 && raftApplied(t, c.Node(f), 1) > raftApplied(t, c.Node(l), 1)-50
	})
	stop()
	st, _ := c.Node(l).Host.Status(1)
	n := c.Node(f).Host.Metrics().SnapshotsApplied
	if st.Term != st0.Term || !st.IsLeader() {
		t.Logf("leadership moved (term %d -> %d); %d snapshots", st0.Term, st.Term, n)
		return
	}
	if n != 1 {
		t.Fatalf("the follower needed %d snapshots", n)
	}
}

func TestAddedReplicaGetsSnapshotThenEntries(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1, GRPC: true, TickInterval: 10 * time.Millisecond})
	c.WaitLeader(1, waitTimeout)
	for i := 0; i < 30; i++ {
		mustPropose(t, c, 1, "incr n")
	}
	waitApplied(t, c, 1, "n", "30")
	for _, n := range c.Nodes() {
		if err := n.Host.Truncate(1, n.KV.Applied(1)); err != nil {
			t.Fatal(err)
		}
	}
	c.WaitFor(waitTimeout, "every log truncated", func() bool {
		for _, n := range c.Nodes() {
			if firstIndex(t, n, 1) <= 30 {
				return false
			}
		}
		return true
	})
	id := c.AddNode()
	cs := changeMembership(t, c, 1, confChange(raftpb.ConfChangeAddLearnerNode, id))
	if len(cs.GetLearners()) != 1 || cs.GetLearners()[0] != id {
		t.Fatalf("after adding learner %d: %v", id, cs)
	}
	waitApplied(t, c, 1, "n", "30")
	c.WaitFor(waitTimeout, "the new replica's snapshot to be counted", func() bool {
		return c.Node(id).Host.Metrics().SnapshotsApplied > 0
	})
	cs = changeMembership(t, c, 1, confChange(raftpb.ConfChangeAddNode, id))
	if len(cs.GetVoters()) != 4 {
		t.Fatalf("after promoting %d: %v", id, cs)
	}
	mustPropose(t, c, 1, "incr n")
	waitApplied(t, c, 1, "n", "31")
}

// Membership goes 3 → 5 → 3 (each addition learner first, then promotion)
// while a client keeps proposing; no acknowledged increment is lost or
// applied twice.
func TestMembership3To5To3WhileProposing(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1, TickInterval: 5 * time.Millisecond})
	c.WaitLeader(1, waitTimeout)
	ctx, cancel := context.WithCancel(context.Background())
	var acked atomic.Int64
	var ids sync.Map // CommandID -> acknowledged
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			l := c.Leader(1)
			if l == 0 {
				time.Sleep(time.Millisecond)
				continue
			}
			id := raftgroup.NewCommandID()
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := c.Node(l).Host.ProposeWithID(pctx, 1, id, []byte("incr n"))
			pcancel()
			if err == nil {
				acked.Add(1)
				ids.Store(id, true)
			}
		}
	}()
	n4 := c.AddNode()
	n5 := c.AddNode()
	for _, id := range []uint64{n4, n5} {
		changeMembership(t, c, 1, confChange(raftpb.ConfChangeAddLearnerNode, id))
		changeMembership(t, c, 1, confChange(raftpb.ConfChangeAddNode, id))
	}
	var cs *raftpb.ConfState
	for _, id := range []uint64{n4, n5} {
		cs = changeMembership(t, c, 1, confChange(raftpb.ConfChangeRemoveNode, id))
	}
	cancel()
	<-done
	if len(cs.GetVoters()) != 3 {
		t.Fatalf("final membership %v, want 3 voters", cs)
	}
	if acked.Load() == 0 {
		t.Fatal("no proposal succeeded during the membership changes")
	}
	final := mustPropose(t, c, 1, "incr n")
	_ = final
	c.WaitFor(waitTimeout, "nodes 1-3 to converge", func() bool {
		a := c.Node(1).KV.Applied(1)
		return a == c.Node(2).KV.Applied(1) && a == c.Node(3).KV.Applied(1)
	})
	for _, n := range c.Nodes()[:3] {
		counts := n.KV.Counts(1)
		ids.Range(func(k, _ any) bool {
			if counts[k.(raftgroup.CommandID)] != 1 {
				t.Errorf("node %d: acknowledged command applied %d times", n.ID, counts[k.(raftgroup.CommandID)])
			}
			return true
		})
		for id, cnt := range counts {
			if cnt > 1 {
				t.Errorf("node %d: command %s applied %d times", n.ID, id, cnt)
			}
		}
	}
	t.Logf("%d increments acknowledged during 3 -> 5 -> 3", acked.Load())
}

func TestRemoveLeader(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1})
	l := c.WaitLeader(1, waitTimeout)
	mustPropose(t, c, 1, "put a 1")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cs, err := c.Node(l).Host.ProposeConfChange(ctx, 1, confChange(raftpb.ConfChangeRemoveNode, l))
	if err != nil {
		t.Fatalf("removing the leader: %v", err)
	}
	for _, v := range cs.GetVoters() {
		if v == l {
			t.Fatalf("leader %d still a voter: %v", l, cs)
		}
	}
	var nl uint64
	c.WaitFor(waitTimeout, "a new leader among the remaining replicas", func() bool {
		for _, id := range c.NodeIDs() {
			if id == l {
				continue
			}
			if st, _ := c.Node(id).Host.Status(1); st.IsLeader() {
				nl = id
				return true
			}
		}
		return false
	})
	if _, err := c.Node(nl).Host.Propose(ctx, 1, []byte("put a 2")); err != nil {
		t.Fatalf("proposing on the new leader: %v", err)
	}
	// The removed replica is destroyed, with all its raft state.
	if err := c.Node(l).Host.DestroyGroup(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(l).Host.Status(1); !errors.Is(err, raftgroup.ErrGroupNotFound) {
		t.Fatalf("status of a destroyed group: %v", err)
	}
	db := c.Node(l).DB
	for _, k := range [][]byte{keys.RaftHardStateKey(1), keys.RaftTruncatedStateKey(1), keys.RaftLogKey(1, raftgroup.InitialIndex+1)} {
		if _, closer, err := db.Get(keys.EncodeEngineKey(k, hlc.Timestamp{})); !errors.Is(err, pebble.ErrNotFound) {
			if closer != nil {
				closer.Close()
			}
			t.Fatalf("raft state %s survived DestroyGroup (err %v)", keys.Pretty(k), err)
		}
	}
}

// A snapshot that fails to arrive is retried with backoff, and the failed
// attempts leave the follower as it was.
func TestSnapshotFailuresRetryWithBackoff(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1, Truncation: &raftgroup.TruncationPolicy{MinEntries: 5}})
	l := c.WaitLeader(1, waitTimeout)
	f := l%3 + 1
	c.Isolate(f)
	for i := 0; i < 20; i++ {
		mustPropose(t, c, 1, "incr n")
	}
	c.WaitFor(waitTimeout, "truncation past the isolated follower", func() bool {
		return firstIndex(t, c.Node(l), 1) > raftApplied(t, c.Node(f), 1)+1
	})
	before, _ := c.Node(f).KV.Get(1, "n")
	c.Net.FailSnapshots(true)
	c.Net.Heal()
	c.WaitFor(waitTimeout, "several failed snapshot attempts", func() bool {
		return c.Node(l).Host.Metrics().SnapshotsFailed >= 3
	})
	if got, _ := c.Node(f).KV.Get(1, "n"); got != before || c.Node(f).Host.Metrics().SnapshotsApplied != 0 {
		t.Fatalf("failed snapshots changed the follower: n %q -> %q", before, got)
	}
	// Backoff: 3 failures take at least 100ms + 200ms between attempts.
	start := time.Now()
	n0 := c.Node(l).Host.Metrics().SnapshotsFailed
	c.WaitFor(waitTimeout, "two more failed attempts", func() bool {
		return c.Node(l).Host.Metrics().SnapshotsFailed >= n0+2
	})
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("two retries within %v: no backoff", el)
	}
	c.Net.FailSnapshots(false)
	waitApplied(t, c, 1, "n", "20")
}

// A snapshot stream that breaks halfway leaves nothing behind on the
// receiver, which keeps working.
func TestHalfReceivedSnapshotLeavesNoTrace(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1, GRPC: true, TickInterval: 10 * time.Millisecond})
	l := c.WaitLeader(1, waitTimeout)
	mustPropose(t, c, 1, "put a 1")
	waitApplied(t, c, 1, "a", "1")
	f := l%3 + 1
	target := c.Node(f)
	before := target.KV.Applied(1)

	conn, err := grpc.NewClient(target.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := api.NewRaftTransportClient(conn).RaftSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	idx, term := uint64(1000), uint64(99)
	msg := &raftpb.Message{Type: raftpb.MsgSnap.Enum(), To: &f, From: &l, Term: &term,
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: &idx, Term: &term, ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}}
	if err := s.Send(&api.SnapshotChunk{Header: &api.SnapshotHeader{FromNode: l, ToNode: f, GroupId: 1, Message: msg, Size: 1 << 20}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&api.SnapshotChunk{Data: make([]byte, 64<<10)}); err != nil {
		t.Fatal(err)
	}
	cancel() // the stream breaks before the last chunk
	// The receiver neither applied it nor stepped it into raft.
	mustPropose(t, c, 1, "put a 2")
	waitApplied(t, c, 1, "a", "2")
	st, _ := target.Host.Status(1)
	if st.Term == term || st.FirstIndex > before+1 || target.Host.Metrics().SnapshotsApplied != 0 {
		t.Fatalf("half a snapshot left a trace: %+v, %d snapshots applied", st, target.Host.Metrics().SnapshotsApplied)
	}
}

// A snapshot whose application fails leaves nothing on disk: the replica's
// group stops, and after a restart the node opens its old state and catches
// up with a good snapshot (it would panic on restart if half of the failed
// snapshot had been persisted).
func TestFailedSnapshotApplyLeavesNothing(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1, Truncation: &raftgroup.TruncationPolicy{MinEntries: 5}})
	l := c.WaitLeader(1, waitTimeout)
	f := l%3 + 1
	c.Isolate(f)
	for i := 0; i < 20; i++ {
		mustPropose(t, c, 1, "incr n")
	}
	c.WaitFor(waitTimeout, "truncation past the isolated follower", func() bool {
		return firstIndex(t, c.Node(l), 1) > raftApplied(t, c.Node(f), 1)+1
	})
	c.Node(f).KV.FailApplySnapshot.Store(true)
	c.Net.Heal()
	c.WaitFor(waitTimeout, "the follower's group to fail on the bad snapshot", func() bool {
		_, err := c.Node(f).Host.Propose(context.Background(), 1, []byte("incr n"))
		return errors.Is(err, raftgroup.ErrGroupFailed)
	})
	c.Stop(f)
	c.Restart(f) // must not panic: the failed snapshot left no raft state
	c.Node(f).KV.FailApplySnapshot.Store(false)
	waitApplied(t, c, 1, "n", "20")
}

// Work queued on a group in the same cycle as its destruction is answered,
// never left waiting.
func TestDestroyAnswersQueuedWork(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1})
	l := c.WaitLeader(1, waitTimeout)
	f := l%3 + 1
	h := c.Node(f).Host
	readDone := make(chan error, 1)
	go func() { readDone <- h.ReadIndex(context.Background(), 1) }()
	if err := h.DestroyGroup(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(waitTimeout, "the read queued with the destroy to be answered", func() bool {
		select {
		case err := <-readDone:
			if err != nil && !errors.Is(err, raftgroup.ErrGroupDestroyed) && !errors.Is(err, raftgroup.ErrGroupNotFound) {
				t.Errorf("read on a destroyed group: %v", err)
			}
			return true
		default:
			return false
		}
	})
	if _, err := h.Propose(context.Background(), 1, []byte("put a b")); !raftgroup.IsNotProposed(err) {
		t.Fatalf("propose on a destroyed group: %v", err)
	}
}

// TestInvalidConfChangeRefused: a membership change raft could not apply
// (it panics applying one) is refused before it is proposed, and the group
// goes on.
func TestInvalidConfChangeRefused(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 1, Groups: 1})
	l := c.WaitLeader(1, waitTimeout)
	mustPropose(t, c, 1, "put a 1")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for name, cc := range map[string]*raftpb.ConfChangeV2{
		"remove the only voter":    confChange(raftpb.ConfChangeRemoveNode, l),
		"leave a non-joint config": {},
	} {
		_, err := c.Node(l).Host.ProposeConfChange(ctx, 1, cc)
		if !raftgroup.IsNotProposed(err) || !errors.Is(err, raftgroup.ErrInvalidConfChange) {
			t.Fatalf("%s: %v, want not proposed: invalid membership change", name, err)
		}
	}
	mustPropose(t, c, 1, "put a 2")
	waitApplied(t, c, 1, "a", "2")
}

// TestQuiescedLeaderIgnoresStaleTicks: ticks queued for a group just
// before its leader quiesced (Tick skips quiesced groups, but not one that
// quiesces after the tick was queued) are dropped: a quiesced leader that
// ticked would heartbeat without the quiesce mark, wake its followers and
// then leave them without heartbeats until they elected another leader.
func TestQuiescedLeaderIgnoresStaleTicks(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1})
	l := c.WaitLeader(1, waitTimeout)
	mustPropose(t, c, 1, "put a 1")
	c.WaitFor(waitTimeout, "every replica to quiesce", func() bool {
		for _, n := range c.Nodes() {
			if !n.Host.Quiesced(1) {
				return false
			}
		}
		return true
	})
	h := c.Node(l).Host
	// The leader counts a quiesce heartbeat after handing it over, so a
	// follower can be quiesced a moment before the count shows it: take
	// the baseline once the count has held still for 100 ms.
	sent := h.Metrics().MessagesSent
	for settled, deadline := false, time.Now().Add(waitTimeout); !settled; {
		if time.Now().After(deadline) {
			t.Fatal("the quiesced leader kept sending messages")
		}
		time.Sleep(100 * time.Millisecond)
		now := h.Metrics().MessagesSent
		settled, sent = now == sent, now
	}
	h.QueueTicks(1, 3)
	for h.QueuedTicks(1) != 0 {
		time.Sleep(time.Millisecond)
	}
	// Nothing ticks the cluster from here (no WaitFor): the leader has no
	// reason to send anything. Give the cycle that took the ticks time to
	// end.
	time.Sleep(50 * time.Millisecond)
	if n := h.Metrics().MessagesSent - sent; n != 0 {
		t.Fatalf("the quiesced leader sent %d messages after stale ticks", n)
	}
	for _, n := range c.Nodes() {
		if !n.Host.Quiesced(1) {
			t.Fatalf("node %d woke up", n.ID)
		}
	}
}

// fsyncHook runs fn (once, when armed) on the worker right after a synced
// commit of raft state.
type fsyncHook struct {
	armed atomic.Bool
	fn    func()
}

func (o *fsyncHook) Fsynced(time.Duration, int) {
	if o.armed.CompareAndSwap(true, false) {
		o.fn()
	}
}
func (o *fsyncHook) ProposalApplied(time.Duration) {}

// TestConcurrentDestroy: a DestroyGroup that arrives while another destroy
// of the group is being committed (it finds no destroy queued) is answered,
// not left waiting on a group nothing processes any more.
func TestConcurrentDestroy(t *testing.T) {
	hooks := map[uint64]*fsyncHook{1: {}, 2: {}, 3: {}}
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1, Observer: func(id uint64) raftgroup.Observer { return hooks[id] }})
	l := c.WaitLeader(1, waitTimeout)
	f := l%3 + 1
	h := c.Node(f).Host
	second := make(chan error, 1)
	hooks[f].fn = func() {
		// The first destroy's batch is committed, finishDestroy not yet run.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			second <- h.DestroyGroup(ctx, 1)
		}()
		time.Sleep(100 * time.Millisecond) // let it queue its destroy
	}
	hooks[f].armed.Store(true)
	if err := h.DestroyGroup(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	// nil if it queued while the first destroy was committed (the usual
	// case); "already being destroyed" if the hook caught an earlier fsync
	// and it came while the first was still queued; "not found" if it came
	// after; never its deadline.
	if err := <-second; errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the second DestroyGroup was never answered: %v", err)
	}
}

// TestDuplicateCommandIDs: two proposals with one command ID at the same
// time both end (one applies; the other applies too if it came after, or is
// refused as already pending), never hang until their deadline.
func TestDuplicateCommandIDs(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1})
	l := c.WaitLeader(1, waitTimeout)
	h := c.Node(l).Host
	for i := range 50 {
		id := raftgroup.NewCommandID()
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
				_, err := h.ProposeWithID(ctx, 1, id, []byte("incr x"))
				errs <- err
			}()
		}
		applied := 0
		for range 2 {
			err := <-errs
			switch {
			case err == nil:
				applied++
			case raftgroup.IsNotProposed(err):
			default:
				t.Fatalf("round %d: a proposal with a duplicated ID ended with %v", i, err)
			}
		}
		if applied == 0 {
			t.Fatalf("round %d: neither proposal applied", i)
		}
	}
}

// A read raft drops when leadership moves is answered with
// ErrLeaderChanged, not left to the caller's deadline.
func TestReadIndexFailsWhenLeaderStepsDown(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1})
	l := c.WaitLeader(1, waitTimeout)
	mustPropose(t, c, 1, "put a 1")
	c.Isolate(l)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Node(l).Host.ReadIndex(ctx, 1) }()
	c.WaitFor(waitTimeout, "the isolated leader's read to end", func() bool {
		select {
		case err := <-done:
			if !errors.Is(err, raftgroup.ErrLeaderChanged) {
				t.Errorf("read on a leader that lost its quorum: %v", err)
			}
			return true
		default:
			return false
		}
	})
}
