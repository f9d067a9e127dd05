package raftgroup

import (
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/meridiandb/meridian/api"
)

// Commit notices.
//
// When a leader learns that an entry committed, raft sends every follower
// that already holds the entry an append without entries, whose only news
// is the new commit index; the follower answers it. With one proposal in
// flight per group (a client waiting for its write), that is four of the
// eight messages a write costs, and the follower needs the news only to
// apply the entry, which no waiting client depends on: the leader applies
// and answers on its own. So the leader holds such a notice back for up to
// Config.CommitNoticeDelay. A later append to that follower carries the
// commit index itself and replaces it (the next write to the group usually
// comes well within the delay), and so may a heartbeat (see below);
// otherwise it is sent when the delay runs out. A follower thus learns of a commit at most that
// much later. To raft, a held notice is a message sent and not yet
// delivered; if sending it fails when it is due, raft is not told (its
// heartbeats carry the commit index too).
//
// Raft sends the same empty append for other reasons: to a follower that
// answered a heartbeat while appends to it are unacknowledged (if one was
// lost, the follower's answer to this one makes the leader resend), and to
// the target of a leadership transfer. Those must not be lost to a
// heartbeat, which does not do their job. So an empty append is held only
// with no transfer pending, and only one to a follower that acknowledged
// every entry may be replaced by a heartbeat; any append replaces any held
// one, since the follower checks it against its log just the same.

// noticeKey names a held notice: a group and the follower replica.
type noticeKey struct{ group, replica uint64 }

type heldNotice struct {
	node uint64 // the follower's node
	env  *api.RaftMessage
	at   time.Time
	// acked: the follower had acknowledged every entry when it was held,
	// so the notice carries nothing but the commit index.
	acked bool
}

// notices holds a host's commit notices until they are replaced or due.
type notices struct {
	delay time.Duration
	send  func(node uint64, env *api.RaftMessage) bool
	// elided counts notices replaced by a later message; sent, those sent
	// when due.
	elided, sent atomic.Uint64
	n            atomic.Int64 // len(held), read without the lock

	mu      sync.Mutex
	held    map[noticeKey]heldNotice
	timer   *time.Timer // armed while anything is held
	armed   bool
	stopped bool
	flushes sync.WaitGroup // flushes sending outside the lock
}

func newNotices(delay time.Duration, send func(uint64, *api.RaftMessage) bool) *notices {
	return &notices{delay: delay, send: send, held: make(map[noticeKey]heldNotice)}
}

// mayHold reports whether m, sent by a leader, is an empty append that may
// be held: to a follower being replicated to that has been sent every entry
// (not a probe of its log, nor one that unblocks a full in-flight window),
// with no leadership transfer pending; and whether that follower has
// acknowledged every entry (worker-only; after the Ready that produced m).
func (g *group) mayHold(m *raftpb.Message) (ok, acked bool) {
	if m.GetType() != raftpb.MsgApp || len(m.GetEntries()) > 0 {
		return false, false
	}
	g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id == m.GetTo() {
			ok = pr.State == tracker.StateReplicate && !pr.MsgAppFlowPaused && pr.Next == m.GetIndex()+1
			acked = pr.Match == m.GetIndex()
		}
	})
	if ok && g.rn.BasicStatus().LeadTransferee != 0 {
		ok = false
	}
	return ok, acked
}

// maybeHold holds env, an append of group for the follower on node, if it
// is an empty one that may wait (see mayHold). It returns false if it did
// not (the caller sends it).
func (h *Host) maybeHold(g *group, node uint64, env *api.RaftMessage) bool {
	if h.notices.delay <= 0 {
		return false
	}
	ok, acked := g.mayHold(env.GetMessage())
	return ok && h.notices.hold(g.id, node, env, acked)
}

// hold keeps env (an empty append of group for the follower on node) until
// it is replaced or due, in place of an older one, whose deadline it keeps.
// It returns false if notices are not held (the caller sends it).
func (n *notices) hold(group, node uint64, env *api.RaftMessage, acked bool) bool {
	if n.delay <= 0 {
		return false
	}
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return false
	}
	k := noticeKey{group, env.GetMessage().GetTo()}
	if old, ok := n.held[k]; ok {
		n.elided.Add(1) // this one carries a later commit index
		now = old.at
	}
	n.held[k] = heldNotice{node: node, env: env, at: now, acked: acked}
	n.n.Store(int64(len(n.held)))
	if !n.armed {
		n.armed = true
		if n.timer == nil {
			n.timer = time.AfterFunc(n.delay, n.flush)
		} else {
			n.timer.Reset(n.delay)
		}
	}
	return true
}

// replace drops the notice held for m's recipient in group if m, about to
// be sent, does its job: any append; a heartbeat of the same term with at
// least its commit index, if all the notice carries is the commit index.
func (n *notices) replace(group uint64, m *raftpb.Message) {
	if n.n.Load() == 0 {
		return
	}
	switch m.GetType() {
	case raftpb.MsgApp, raftpb.MsgHeartbeat:
	default:
		return
	}
	k := noticeKey{group, m.GetTo()}
	n.mu.Lock()
	defer n.mu.Unlock()
	h, ok := n.held[k]
	if !ok {
		return
	}
	if m.GetType() == raftpb.MsgHeartbeat {
		held := h.env.GetMessage()
		if !h.acked || m.GetTerm() != held.GetTerm() || m.GetCommit() < held.GetCommit() {
			return
		}
	}
	n.removeLocked(k)
	n.elided.Add(1)
}

// removeLocked deletes a held notice (n.mu held).
func (n *notices) removeLocked(k noticeKey) {
	delete(n.held, k)
	n.n.Store(int64(len(n.held)))
}

// drop drops the notice held for replica in group: the caller sends it
// what makes the notice moot (a quiescing leader's heartbeat, which it
// sends only to followers that acknowledged every entry).
func (n *notices) drop(group, replica uint64) {
	if n.n.Load() == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if k := (noticeKey{group, replica}); n.held[k].env != nil {
		n.removeLocked(k)
		n.elided.Add(1)
	}
}

// forget drops every notice held for group (destroyed on this host).
func (n *notices) forget(group uint64) {
	if n.n.Load() == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for k := range n.held {
		if k.group == group {
			n.removeLocked(k)
		}
	}
}

// flush sends the notices that are due and re-arms the timer for the rest
// (on the timer's goroutine).
func (n *notices) flush() {
	now := time.Now()
	var due []heldNotice
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return
	}
	var next time.Duration
	for k, h := range n.held {
		// A notice due within a tenth of the delay goes now, rather than
		// re-arming the timer for a few microseconds.
		if left := n.delay - now.Sub(h.at); left > n.delay/10 {
			if next == 0 || left < next {
				next = left
			}
			continue
		}
		due = append(due, h)
		n.removeLocked(k)
	}
	n.armed = next > 0
	if n.armed {
		n.timer.Reset(next)
	}
	n.flushes.Add(1)
	n.mu.Unlock()
	defer n.flushes.Done()
	n.sent.Add(uint64(len(due)))
	for _, h := range due {
		n.send(h.node, h.env)
	}
}

// stop drops what is held and waits for a flush in progress; nothing is
// held or sent after it.
func (n *notices) stop() {
	n.mu.Lock()
	n.stopped = true
	if n.timer != nil {
		n.timer.Stop()
	}
	clear(n.held)
	n.n.Store(0)
	n.mu.Unlock()
	n.flushes.Wait()
}
