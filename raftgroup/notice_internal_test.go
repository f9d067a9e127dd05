package raftgroup

import (
	"log/slog"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
)

// noticeLeader is a lone RawNode made leader of a 3-voter group by hand,
// whose messages go through the same holding and replacing as Host.send.
type noticeLeader struct {
	t       *testing.T
	storage *raft.MemoryStorage
	g       *group
	n       *notices
	sent    []*raftpb.Message // what reached the wire, in order
}

func newNoticeLeader(t *testing.T) *noticeLeader {
	t.Helper()
	st := raft.NewMemoryStorage()
	cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	if err := st.ApplySnapshot(&raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(1), Term: proto.Uint64(1), ConfState: cs}}); err != nil {
		t.Fatal(err)
	}
	rn, err := raft.NewRawNode(&raft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: st, MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, Applied: 1, Logger: newRaftLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	l := &noticeLeader{t: t, storage: st, g: &group{id: 7, replicaID: 1, rn: rn}}
	// An hour: nothing is sent for being due while the test looks.
	l.n = newNotices(time.Hour, func(uint64, *api.RaftMessage) bool { return true })
	t.Cleanup(l.n.stop)
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	l.cycle()
	l.step(raftpb.MsgVoteResp, 2, 0)
	l.cycle()
	if rn.BasicStatus().RaftState != raft.StateLeader {
		t.Fatal("not leader after a vote")
	}
	last, _ := st.LastIndex()
	l.step(raftpb.MsgAppResp, 2, last)
	l.step(raftpb.MsgAppResp, 3, last)
	l.cycle()
	// Start clean: the notices of the leader's first entry are gone.
	l.n.mu.Lock()
	clear(l.n.held)
	l.n.n.Store(0)
	l.n.mu.Unlock()
	l.n.elided.Store(0)
	l.sent = nil
	return l
}

func (l *noticeLeader) step(typ raftpb.MessageType, from, index uint64) {
	l.t.Helper()
	term := l.g.rn.BasicStatus().Term
	err := l.g.rn.Step(&raftpb.Message{Type: typ.Enum(), From: proto.Uint64(from), To: proto.Uint64(1), Term: term, Index: proto.Uint64(index)})
	if err != nil {
		l.t.Fatal(err)
	}
}

// cycle persists and sends what raft has ready, as a worker cycle does.
func (l *noticeLeader) cycle() {
	for l.g.rn.HasReady() {
		rd := l.g.rn.Ready()
		if rd.HardState != nil {
			_ = l.storage.SetHardState(rd.HardState)
		}
		_ = l.storage.Append(rd.Entries)
		for _, m := range rd.Messages {
			if m.GetTo() == 1 {
				continue
			}
			if m.GetType() == raftpb.MsgHeartbeat && l.g.heartbeatRedundant(m) {
				continue
			}
			env := &api.RaftMessage{GroupId: l.g.id, Message: m}
			if ok, acked := l.g.mayHold(m); ok && l.n.hold(l.g.id, m.GetTo(), env, acked) {
				continue
			}
			l.n.replace(l.g.id, m)
			l.sent = append(l.sent, m)
			if m.GetType() == raftpb.MsgApp {
				l.g.noteAppend(m)
			}
		}
		l.g.rn.Advance(rd)
	}
}

func (l *noticeLeader) held(replica uint64) *raftpb.Message {
	l.n.mu.Lock()
	defer l.n.mu.Unlock()
	return l.n.held[noticeKey{l.g.id, replica}].env.GetMessage()
}

// TestNoticesHeldAndReplaced: when an entry commits, the empty appends
// that only carry the commit index are held, and the next entry's appends
// replace them.
func TestNoticesHeldAndReplaced(t *testing.T) {
	l := newNoticeLeader(t)
	if err := l.g.rn.Propose([]byte("a")); err != nil {
		t.Fatal(err)
	}
	l.cycle()
	index, _ := l.storage.LastIndex()
	l.step(raftpb.MsgAppResp, 2, index) // commits
	l.cycle()
	for _, m := range l.sent {
		if m.GetType() == raftpb.MsgApp && len(m.GetEntries()) == 0 {
			t.Errorf("a commit notice to %d was sent, not held", m.GetTo())
		}
	}
	for _, r := range []uint64{2, 3} {
		if m := l.held(r); m == nil || m.GetCommit() != index {
			t.Fatalf("held for %d: %v, want a notice of commit %d", r, m, index)
		}
	}
	if err := l.g.rn.Propose([]byte("b")); err != nil {
		t.Fatal(err)
	}
	l.cycle()
	if n := l.n.n.Load(); n != 0 {
		t.Errorf("%d notices still held after the next entry's appends went out", n)
	}
	if e := l.n.elided.Load(); e != 2 {
		t.Errorf("%d notices elided, want 2", e)
	}
}

// TestProbeNotReplacedByHeartbeat: raft's empty append to a follower that
// answers a heartbeat while an append to it is unacknowledged is how a lost
// append is found (the follower's answer makes the leader resend). Held,
// it must wait to be sent, not be replaced by the heartbeats that keep
// coming: replication to that follower would stall.
func TestProbeNotReplacedByHeartbeat(t *testing.T) {
	l := newNoticeLeader(t)
	if err := l.g.rn.Propose([]byte("a")); err != nil {
		t.Fatal(err)
	}
	l.cycle() // its appends are lost on the way
	index, _ := l.storage.LastIndex()
	for range 5 {
		// One cycle: both followers answer a heartbeat, and a tick.
		l.step(raftpb.MsgHeartbeatResp, 2, 0)
		l.step(raftpb.MsgHeartbeatResp, 3, 0)
		l.g.rn.Tick()
		l.cycle()
	}
	for _, r := range []uint64{2, 3} {
		if m := l.held(r); m == nil || m.GetIndex() != index {
			t.Errorf("held for %d: %v, want the empty append at index %d, kept until due", r, m, index)
		}
	}
}

// TestNoHoldDuringTransfer: the empty append raft sends a leadership
// transfer's target goes at once.
func TestNoHoldDuringTransfer(t *testing.T) {
	l := newNoticeLeader(t)
	if err := l.g.rn.Propose([]byte("a")); err != nil {
		t.Fatal(err)
	}
	l.cycle()
	l.g.rn.TransferLeader(2)
	l.cycle()
	if m := l.held(2); m != nil {
		t.Errorf("held during a transfer: %v", m)
	}
}

// TestNoticesSentWhenDue: a held notice is sent once its delay runs out,
// however often a later one replaced it meanwhile; nothing is sent after
// stop.
func TestNoticesSentWhenDue(t *testing.T) {
	got := make(chan uint64, 10)
	n := newNotices(20*time.Millisecond, func(_ uint64, env *api.RaftMessage) bool {
		got <- env.GetMessage().GetCommit()
		return true
	})
	defer n.stop()
	notice := func(commit uint64) *api.RaftMessage {
		return &api.RaftMessage{GroupId: 1, Message: &raftpb.Message{Type: raftpb.MsgApp.Enum(), To: proto.Uint64(2), Commit: proto.Uint64(commit)}}
	}
	start := time.Now()
	n.hold(1, 2, notice(1), true)
	// Replaced every 5 ms until one is sent: the first one's deadline
	// stands. (A deadline that moved with each replacement would never
	// come; 10 s bounds the wait on a loaded machine.)
	var first time.Duration
	for c := uint64(2); first == 0; c++ {
		if time.Since(start) > 10*time.Second {
			t.Fatal("a notice replaced every 5 ms was never sent: its deadline moved with each replacement")
		}
		select {
		case commit := <-got:
			first = time.Since(start)
			t.Logf("first sent after %v, commit %d", first, commit)
		case <-time.After(5 * time.Millisecond):
			n.hold(1, 2, notice(c), true)
		}
	}
	n.stop()
	for len(got) > 0 {
		<-got
	}
	if n.hold(1, 2, notice(1000), true) {
		t.Error("held after stop")
	}
}

// TestNoticesDroppedAndForgotten: a quiescing leader drops the notice to a
// follower its quiesce heartbeat tells the commit index (counted as
// elided), and a destroyed group's notices are forgotten, never sent.
func TestNoticesDroppedAndForgotten(t *testing.T) {
	var sent []uint64
	n := newNotices(time.Hour, func(_ uint64, env *api.RaftMessage) bool {
		sent = append(sent, env.GetGroupId())
		return true
	})
	defer n.stop()
	notice := func(group, to uint64) *api.RaftMessage {
		return &api.RaftMessage{GroupId: group, Message: &raftpb.Message{Type: raftpb.MsgApp.Enum(), To: proto.Uint64(to), Commit: proto.Uint64(5)}}
	}
	for _, g := range []uint64{1, 2} {
		for _, to := range []uint64{2, 3} {
			n.hold(g, to, notice(g, to), true)
		}
	}
	n.drop(1, 2)
	n.drop(1, 9) // nothing held for it
	if e := n.elided.Load(); e != 1 {
		t.Errorf("%d elided after dropping one notice, want 1", e)
	}
	n.forget(2)
	n.mu.Lock()
	var left []noticeKey
	for k := range n.held {
		left = append(left, k)
	}
	n.mu.Unlock()
	if len(left) != 1 || left[0] != (noticeKey{1, 3}) || n.n.Load() != 1 {
		t.Errorf("held after dropping (1, 2) and forgetting group 2: %v (count %d), want only (1, 3)", left, n.n.Load())
	}
	if len(sent) != 0 {
		t.Errorf("sent %v, want nothing", sent)
	}
}
