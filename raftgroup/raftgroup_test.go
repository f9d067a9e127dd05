package raftgroup_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meridiandb/meridian/raftgroup"
	"github.com/meridiandb/meridian/raftgroup/grouptest"
)

const waitTimeout = 20 * time.Second

func mustPropose(t *testing.T, c *grouptest.Cluster, group uint64, cmd string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	n, _, err := c.Propose(ctx, group, cmd)
	if err != nil {
		t.Fatalf("propose %q: %v", cmd, err)
	}
	return n
}

// waitApplied waits until every running node has applied key=want in group.
func waitApplied(t *testing.T, c *grouptest.Cluster, group uint64, key, want string) {
	t.Helper()
	c.WaitFor(waitTimeout, fmt.Sprintf("%s=%s on every node", key, want), func() bool {
		for _, n := range c.Nodes() {
			if !c.Running(n.ID) {
				continue
			}
			if v, _ := n.KV.Get(group, key); v != want {
				return false
			}
		}
		return true
	})
}

func TestElectionAndReelection(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1})
	old := c.WaitLeader(1, waitTimeout)
	mustPropose(t, c, 1, "put a 1")
	waitApplied(t, c, 1, "a", "1")

	c.Isolate(old)
	var nl uint64
	c.WaitFor(waitTimeout, "a new leader among the majority", func() bool {
		for _, id := range c.NodeIDs() {
			if id == old {
				continue
			}
			st, _ := c.Node(id).Host.Status(1)
			if st.IsLeader() {
				nl = id
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := c.Node(nl).Host.Propose(ctx, 1, []byte("put a 2")); err != nil {
		t.Fatalf("proposing on the new leader %d: %v", nl, err)
	}
	c.Net.Heal()
	waitApplied(t, c, 1, "a", "2")
	c.WaitFor(waitTimeout, "the old leader to step down", func() bool {
		st, _ := c.Node(old).Host.Status(1)
		return !st.IsLeader() || old == c.Leader(1)
	})
}

// TestLeadershipTransfer moves each group's leadership to a chosen node
// (grouptest's MoveLeader, which BenchmarkPropose uses to spread leaders),
// and the new leader commits.
func TestLeadershipTransfer(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 6})
	for g := uint64(1); g <= 6; g++ {
		c.WaitLeader(g, waitTimeout)
	}
	for g := uint64(1); g <= 6; g++ {
		want := (g-1)%3 + 1
		c.MoveLeader(g, want, waitTimeout)
		for _, n := range c.Nodes() {
			st, err := n.Host.Status(g)
			if err != nil {
				t.Fatal(err)
			}
			if (n.ID == want) != st.IsLeader() {
				t.Fatalf("group %d: node %d leader=%t after moving leadership to node %d", g, n.ID, st.IsLeader(), want)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		_, err := c.Node(want).Host.Propose(ctx, g, []byte("put moved yes"))
		cancel()
		if err != nil {
			t.Fatalf("group %d: proposing on its new leader %d: %v", g, want, err)
		}
		waitApplied(t, c, g, "moved", "yes")
	}
}

func TestPartitionedMinorityCannotCommit(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1})
	leader := c.WaitLeader(1, waitTimeout)
	mustPropose(t, c, 1, "put k before")
	waitApplied(t, c, 1, "k", "before")
	c.Isolate(leader)

	// The isolated leader accepts the proposal into its log but cannot
	// commit it; once it notices it lost its quorum (CheckQuorum) it steps
	// down and the outcome becomes unknown.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	type res struct{ err error }
	done := make(chan res, 1)
	go func() {
		_, err := c.Node(leader).Host.Propose(ctx, 1, []byte("put k minority"))
		done <- res{err}
	}()
	var r res
	c.WaitFor(waitTimeout, "the minority proposal to end", func() bool {
		select {
		case r = <-done:
			return true
		default:
			return false
		}
	})
	if r.err == nil {
		t.Fatal("an isolated leader committed a proposal")
	}
	if !raftgroup.IsOutcomeUnknown(r.err) && !raftgroup.IsNotProposed(r.err) {
		t.Fatalf("want outcome-unknown or not-proposed, got %v", r.err)
	}
	if ctx.Err() != nil || errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("the proposal ended only because its context did: %v", r.err)
	}
	// The majority moves on; after healing, the minority's entry is gone.
	mustPropose(t, c, 1, "put k majority")
	c.Net.Heal()
	waitApplied(t, c, 1, "k", "majority")
	for _, n := range c.Nodes() {
		if v, _ := n.KV.Get(1, "k"); v != "majority" {
			t.Fatalf("node %d has k=%q", n.ID, v)
		}
	}
}

func TestRestartKeepsCommittedAndAppliesOnce(t *testing.T) {
	dir := t.TempDir()
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 2, Dir: dir})
	for g := uint64(1); g <= 2; g++ {
		c.WaitLeader(g, waitTimeout)
		for i := 0; i < 20; i++ {
			mustPropose(t, c, g, "incr n")
		}
		waitApplied(t, c, g, "n", "20")
	}
	for _, id := range c.NodeIDs() {
		c.Stop(id)
	}
	for _, id := range c.NodeIDs() {
		c.Restart(id)
	}
	for g := uint64(1); g <= 2; g++ {
		for _, n := range c.Nodes() {
			if v, _ := n.KV.Get(g, "n"); v != "20" {
				t.Fatalf("after restart node %d group %d has n=%q, want 20", n.ID, g, v)
			}
		}
		c.WaitLeader(g, waitTimeout)
		mustPropose(t, c, g, "incr n")
		waitApplied(t, c, g, "n", "21")
		for _, n := range c.Nodes() {
			for id, cnt := range n.KV.Counts(g) {
				if cnt != 1 {
					t.Fatalf("node %d group %d: command %s applied %d times", n.ID, g, id, cnt)
				}
			}
		}
	}
}

// Proposals racing with leadership transfers end applied (exactly once
// everywhere) or with an error that says whether they might have applied;
// a not-proposed command never applies, and no command applies twice.
func TestProposalsDuringLeaderChanges(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1, TickInterval: 5 * time.Millisecond})
	c.WaitLeader(1, waitTimeout)

	type outcome struct {
		id  raftgroup.CommandID
		err error
	}
	var mu sync.Mutex
	var outcomes []outcome
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// 40 proposals that raft accepted; refusals (not the leader, a
			// transfer in progress) are recorded and retried.
			for proposed := 0; proposed < 40 && ctx.Err() == nil; {
				l := c.Leader(1)
				if l == 0 {
					l = 1
				}
				id := raftgroup.NewCommandID()
				pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := c.Node(l).Host.ProposeWithID(pctx, 1, id, []byte("incr x"))
				pcancel()
				mu.Lock()
				outcomes = append(outcomes, outcome{id, err})
				mu.Unlock()
				if raftgroup.IsNotProposed(err) {
					time.Sleep(2 * time.Millisecond)
					continue
				}
				proposed++
			}
		}()
	}
	// Move leadership around while they propose.
	for i := 0; i < 6; i++ {
		l := c.WaitLeader(1, waitTimeout)
		to := l%3 + 1
		if err := c.Node(l).Host.TransferLeadership(1, to); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	// Let every replica apply everything.
	final := raftgroup.NewCommandID()
	l := c.WaitLeader(1, waitTimeout)
	if _, err := c.Node(l).Host.ProposeWithID(ctx, 1, final, []byte("incr x")); err != nil {
		t.Fatalf("final proposal: %v", err)
	}
	c.WaitFor(waitTimeout, "every replica to apply the final command", func() bool {
		for _, n := range c.Nodes() {
			if n.KV.Count(1, final) != 1 {
				return false
			}
		}
		return true
	})
	applied, unknown := 0, 0
	for _, o := range outcomes {
		for _, n := range c.Nodes() {
			cnt := n.KV.Count(1, o.id)
			switch {
			case cnt > 1:
				t.Fatalf("command %s applied %d times on node %d", o.id, cnt, n.ID)
			case o.err == nil && cnt != 1:
				t.Fatalf("acknowledged command %s not applied on node %d", o.id, n.ID)
			case raftgroup.IsNotProposed(o.err) && cnt != 0:
				t.Fatalf("command %s reported not proposed but applied on node %d", o.id, n.ID)
			case o.err != nil && !raftgroup.IsNotProposed(o.err) && !raftgroup.IsOutcomeUnknown(o.err):
				t.Fatalf("command %s ended with an unclassified error: %v", o.id, o.err)
			}
		}
		if o.err == nil {
			applied++
		} else if raftgroup.IsOutcomeUnknown(o.err) {
			unknown++
		}
	}
	if applied == 0 {
		t.Fatal("no proposal succeeded")
	}
	t.Logf("%d proposals: %d applied, %d outcome unknown, %d not proposed", len(outcomes), applied, unknown, len(outcomes)-applied-unknown)
}

func TestHundredGroupsOverGRPC(t *testing.T) {
	const groups = 100
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: groups, GRPC: true, TickInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, groups)
	for g := uint64(1); g <= groups; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A put is idempotent, so an ambiguous outcome (an election
			// while it was in flight on a loaded machine) is retried.
			for {
				_, _, err := c.Propose(ctx, g, fmt.Sprintf("put k %d", g))
				if err == nil {
					return
				}
				if !raftgroup.IsOutcomeUnknown(err) || ctx.Err() != nil {
					errs <- fmt.Errorf("group %d: %w", g, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for g := uint64(1); g <= groups; g++ {
		waitApplied(t, c, g, "k", fmt.Sprint(g))
	}
	var m raftgroup.Metrics
	for _, n := range c.Nodes() {
		nm := n.Host.Metrics()
		m.Fsyncs += nm.Fsyncs
		m.EntriesAppended += nm.EntriesAppended
	}
	t.Logf("entries appended %d with %d fsyncs across the cluster", m.EntriesAppended, m.Fsyncs)
}

func TestReadIndexOnFollower(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1, TickInterval: 5 * time.Millisecond})
	l := c.WaitLeader(1, waitTimeout)
	mustPropose(t, c, 1, "put r 7")
	f := l%3 + 1
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.Node(f).Host.ReadIndex(ctx, 1); err != nil {
		t.Fatalf("read index on follower %d: %v", f, err)
	}
	// ReadIndex returned: the follower has applied everything committed when
	// it was called, so the acknowledged write is visible there without a wait.
	if v, _ := c.Node(f).KV.Get(1, "r"); v != "7" {
		t.Fatalf("follower %d reads r=%q after ReadIndex, want 7", f, v)
	}
}

func TestProposeErrors(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1})
	l := c.WaitLeader(1, waitTimeout)
	f := l%3 + 1
	ctx := context.Background()
	c.WaitFor(waitTimeout, "the follower to learn the leader", func() bool {
		st, _ := c.Node(f).Host.Status(1)
		return st.LeaderNode == l
	})

	_, err := c.Node(f).Host.Propose(ctx, 1, []byte("put a b"))
	var np *raftgroup.NotProposedError
	if !errors.As(err, &np) || !errors.Is(err, raftgroup.ErrNotLeader) || np.LeaderNode != l {
		t.Fatalf("proposing on a follower: want not-leader with hint %d, got %v", l, err)
	}
	if _, err := c.Node(l).Host.Propose(ctx, 99, []byte("put a b")); !errors.Is(err, raftgroup.ErrGroupNotFound) || !raftgroup.IsNotProposed(err) {
		t.Fatalf("unknown group: got %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Node(l).Host.Propose(cctx, 1, []byte("put a b")); !raftgroup.IsNotProposed(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: got %v", err)
	}
	// A command no node's gRPC server would take, refused before raft.
	huge := make([]byte, raftgroup.DefaultMaxCommandBytes+1)
	if _, err := c.Node(l).Host.Propose(ctx, 1, huge); !raftgroup.IsNotProposed(err) || !errors.Is(err, raftgroup.ErrCommandTooLarge) {
		t.Fatalf("oversized command: got %v", err)
	}
	if _, err := c.Node(l).Host.Propose(ctx, 1, []byte("put a c")); err != nil {
		t.Fatalf("after the oversized command: %v", err)
	}
}

// TestCrashUnderLoad crashes nodes (losing every unsynced write) while
// proposals stream in, and restarts them: every acknowledged proposal
// survives, the replicas converge, and no command applies twice. It guards
// the persistence order: entries apply only once durable, a replica's
// applied index never outruns the raft state it restarts from, and a
// follower acknowledges only what it synced.
func TestCrashUnderLoad(t *testing.T) {
	const groups = 3
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: groups, TickInterval: 5 * time.Millisecond})
	var acked [groups + 1]int
	for round := 0; round < 3; round++ {
		victim := c.WaitLeader(uint64(round%groups+1), waitTimeout)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		var done int
		for p := 0; p < 8; p++ {
			g := uint64(p%groups + 1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
					_, _, err := c.Propose(pctx, g, "incr n")
					pcancel()
					if err == nil {
						mu.Lock()
						acked[g]++
						done++
						mu.Unlock()
					}
				}
			}()
		}
		c.WaitFor(waitTimeout, "proposals to apply before the crash", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return done >= 30
		})
		c.Crash(victim)
		c.WaitFor(waitTimeout, "proposals to apply without the crashed node", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return done >= 60
		})
		cancel()
		wg.Wait()
		c.Restart(victim)
	}
	for g := uint64(1); g <= groups; g++ {
		c.WaitLeader(g, waitTimeout)
		mustPropose(t, c, g, "incr n")
		acked[g]++
		var last string
		c.WaitFor(waitTimeout, fmt.Sprintf("group %d to converge", g), func() bool {
			var vals []string
			for _, n := range c.Nodes() {
				v, _ := n.KV.Get(g, "n")
				vals = append(vals, v)
			}
			last = fmt.Sprint(vals)
			return vals[0] == vals[1] && vals[1] == vals[2]
		})
		v, _ := c.Node(1).KV.Get(g, "n")
		var n int
		fmt.Sscan(v, &n)
		// Ambiguous outcomes may have applied too, so n can exceed acked.
		if n < acked[g] {
			t.Fatalf("group %d: n=%d after %d acknowledged increments (replicas: %s)", g, n, acked[g], last)
		}
		for _, node := range c.Nodes() {
			for id, cnt := range node.KV.Counts(g) {
				if cnt != 1 {
					t.Fatalf("node %d group %d: command %s applied %d times", node.ID, g, id, cnt)
				}
			}
		}
	}
}

// TestFollowersConvergeUnderLoss: a leader skips heartbeats right after
// appends; followers still apply everything, exactly once, also when the
// network loses messages (a lost append is noticed at the next heartbeat).
func TestFollowersConvergeUnderLoss(t *testing.T) {
	c := grouptest.NewCluster(t, grouptest.Options{Nodes: 3, Groups: 1, Seed: 7, TickInterval: 5 * time.Millisecond})
	c.WaitLeader(1, waitTimeout)
	for i := 1; i <= 20; i++ {
		mustPropose(t, c, 1, "incr n")
		if i == 10 {
			c.Net.SetDropProbability(0.2)
		}
	}
	c.Net.SetDropProbability(0)
	waitApplied(t, c, 1, "n", "20")
	for _, n := range c.Nodes() {
		for id, cnt := range n.KV.Counts(1) {
			if cnt != 1 {
				t.Fatalf("node %d applied %s %d times", n.ID, id, cnt)
			}
		}
	}
}
