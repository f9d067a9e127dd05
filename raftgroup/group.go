package raftgroup

import (
	"io"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"sync/atomic"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/meridiandb/meridian/api"
)

// EntryType says what a committed entry carries.
type EntryType int

const (
	// EntryCommand carries a proposed command.
	EntryCommand EntryType = iota
	// EntryEmpty is an entry raft writes itself (a new leader's first entry).
	// It changes nothing but the applied index.
	EntryEmpty
	// EntryConfChange changes the group's membership; raftgroup has already
	// applied it to raft when the state machine sees it.
	EntryConfChange
)

// Entry is a committed log entry handed to a StateMachine.
type Entry struct {
	Index uint64
	Term  uint64
	Type  EntryType
	// ID and Command are set for EntryCommand.
	ID      CommandID
	Command []byte
	// ConfChange and ConfState are set for EntryConfChange: the change, and
	// the membership after it (persist it with the applied index).
	ConfChange *raftpb.ConfChangeV2
	ConfState  *raftpb.ConfState
	// Result is set by the StateMachine; Propose returns it to the proposer
	// of this command on this node.
	Result any
}

// StateMachine is what a group's committed entries are applied to. Apply is
// called by the worker that owns the group, with entries in log order, after
// they are durable. It must be deterministic: every replica applies the same
// entries to the same state.
//
// Apply writes its effects into b, which raftgroup commits (without fsync)
// together with the applies of every other group in the same worker cycle,
// before any proposal applied by it completes. It must write the applied
// index (and, for conf changes, the ConfState) into b too, so both are
// persisted atomically with the entries' effects, and hand both back in
// GroupConfig on restart. An error stops the group.
//
// Snapshot and ApplySnapshot move a whole state machine to a replica whose
// log is behind the leader's truncation point (or empty).
type StateMachine interface {
	Apply(group uint64, entries []Entry, b *pebble.Batch) error

	// Snapshot returns the group's state as of its applied index, with that
	// index and the membership at it. It is called on a snapshot sender's
	// goroutine, concurrently with Apply, so it must read a consistent view
	// (a Pebble snapshot, or a copy). raftgroup closes Data.
	Snapshot(group uint64) (*SnapshotData, error)

	// ApplySnapshot replaces the group's state with a snapshot's. Its writes
	// go into b, which raftgroup commits (with fsync) atomically with raft's
	// own state for the snapshot, so a crash leaves either the old state or
	// the new one. It must also record meta.Index as the applied index and
	// meta.ConfState as the membership.
	ApplySnapshot(group uint64, meta SnapshotMeta, data io.Reader, b *pebble.Batch) error
}

// AppliedHook is implemented by a StateMachine that must act once the
// writes of its latest Apply are committed (for example, to start another
// group whose state those writes created). Applied is called on the worker,
// after the cycle's apply batch is committed and before the proposals it
// satisfied complete.
type AppliedHook interface {
	Applied(group uint64)
}

// SnapshotFilter is implemented by a StateMachine that may have to decline
// a snapshot before raft sees it (for example, one whose span overlaps
// another replica the caller still holds). A declined snapshot is reported
// to the sender as not applied, and retried later.
type SnapshotFilter interface {
	AcceptSnapshot(group uint64, meta SnapshotMeta, data []byte) bool
}

// SnapshotData is a state machine's snapshot, as Snapshot returns it.
type SnapshotData struct {
	Index     uint64
	ConfState *raftpb.ConfState
	// Size is the length of Data in bytes, if known (else 0).
	Size int64
	Data io.ReadCloser
}

// SnapshotMeta describes a snapshot being applied.
type SnapshotMeta struct {
	Index     uint64
	Term      uint64
	ConfState *raftpb.ConfState
}

// Peer maps a replica of a group to the node that hosts it.
type Peer struct {
	ReplicaID uint64
	NodeID    uint64
}

// GroupConfig describes a replica of a group to CreateGroup.
type GroupConfig struct {
	// ID is the group's ID (the range ID), never 0.
	ID uint64
	// ReplicaID is this replica's raft ID within the group, never 0.
	ReplicaID uint64
	// Peers maps every member's replica ID to its node (self included).
	Peers []Peer
	// ConfState is the membership as of Applied. For a brand-new group it
	// may be nil: the voters are then every replica in Peers.
	ConfState *raftpb.ConfState
	// Applied is the last index the state machine applied (0 for a new
	// group, which starts at InitialIndex).
	Applied uint64
	// StateMachine receives committed entries.
	StateMachine StateMachine
}

// Status is a point-in-time view of a replica, readable from any goroutine.
type Status struct {
	Group      uint64
	ReplicaID  uint64
	State      raft.StateType
	Term       uint64
	Leader     uint64 // leader's replica ID, 0 if unknown
	LeaderNode uint64 // leader's node ID, 0 if unknown
	Commit     uint64
	Applied    uint64
	FirstIndex uint64
	LastIndex  uint64
	// Progress is, on a leader, each member's match index as of its last
	// tick (nil elsewhere).
	Progress map[uint64]uint64
}

// IsLeader reports whether the replica was the leader when the status was taken.
func (s Status) IsLeader() bool { return s.State == raft.StateLeader }

type proposal struct {
	id   CommandID
	data []byte
	cc   *raftpb.ConfChangeV2 // set for a membership change instead of data
	term uint64               // term it was proposed in, set by the worker
	// proposedAt is when the worker handed it to raft (for
	// Observer.ProposalApplied).
	proposedAt time.Time
	// ccChecked: the worker has verified raft appended the conf change.
	ccChecked bool
	doneCh    chan proposalResult
}

type proposalResult struct {
	result any
	err    error
}

func (p *proposal) finish(r proposalResult) {
	select {
	case p.doneCh <- r:
	default: // already finished; the channel has room for exactly one
	}
}

type readRequest struct {
	rctx  [8]byte
	index uint64 // set once raft returned the read state; 0 before
	// term and lead are the replica's term and known leader when the
	// request went to raft; if either changes before raft answers, raft
	// dropped it (worker-only).
	term, lead uint64
	// abandoned is set when the caller gave up (its context ended).
	abandoned atomic.Bool
	doneCh    chan error
}

// finish answers the request once (later answers are dropped).
func (r *readRequest) finish(err error) {
	select {
	case r.doneCh <- err:
	default:
	}
}

// group is one replica. rn and everything under "worker-only" is touched only
// by the worker that currently owns the group (the scheduler guarantees at
// most one); other goroutines hand it work through mu.
type group struct {
	id        uint64
	replicaID uint64
	sm        StateMachine
	storage   *storage

	// worker-only
	rn          *raft.RawNode
	pendingRead []*readRequest
	// tickedThisCycle: the current cycle ticked raft (quiescence is decided
	// on ticks).
	tickedThisCycle bool
	// appliedUncommitted is the last applied index whose apply batch may
	// not be committed yet; applied catches up once it is.
	appliedUncommitted uint64
	// appendsSent: on a leader, per follower, the last append sent since
	// the last heartbeat (see heartbeatRedundant).
	appendsSent map[uint64]appendSent
	// ticks counts the raft ticks this replica has taken; heard holds, per
	// replica, the tick count when a message from it last arrived (see
	// heardRecently).
	ticks uint64
	heard map[uint64]uint64

	status   atomic.Pointer[Status]
	progress atomic.Pointer[map[uint64]uint64] // leader only, refreshed on ticks
	applied  atomic.Uint64

	// quiesced groups are not ticked (read by Tick without the worker).
	quiesced atomic.Bool
	// quietLeaderNode: the node of the leader a quiesced follower sleeps
	// under (ReportNodeDown wakes it when that node dies).
	quietLeaderNode atomic.Uint64

	mu struct {
		sync.Mutex
		work      groupWork
		peers     map[uint64]uint64 // replica ID -> node ID
		pending   map[CommandID]*proposal
		snapsOut  map[uint64]uint64        // replica ID → index of the snapshot being sent to it (0 until taken)
		snapsSent map[uint64]uint64        // replica ID → index of a snapshot it applied, until it acknowledges it (leader)
		backoff   map[uint64]time.Duration // per-replica snapshot retry backoff
		// closed is set once the group stopped taking work: it failed
		// (wraps ErrGroupFailed), was destroyed (ErrGroupDestroyed), or its
		// host stopped (ErrStopped). Work queued after that is refused.
		closed error
	}
}

// groupWork is what other goroutines queue for the worker.
type groupWork struct {
	msgs        []*api.RaftMessage
	props       []*proposal
	reads       []*readRequest
	snapsIn     []*incomingSnapshot
	snapReports []snapReport
	ticks       int
	campaign    bool
	transfer    uint64
	unreachable []uint64
	truncate    uint64
	destroy     chan error
}

type snapReport struct {
	replica uint64
	ok      bool
}

func (g *group) nodeOf(replicaID uint64) uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mu.peers[replicaID]
}

// pendingLocked reports whether a proposal with this ID is queued or in
// raft.
func (g *group) pendingLocked(id CommandID) bool {
	if _, ok := g.mu.pending[id]; ok {
		return true
	}
	for _, p := range g.mu.work.props {
		if p.id == id {
			return true
		}
	}
	return false
}

// requeue puts back what answer does not end (reports, truncation,
// campaign and transfer requests, ticks) of work taken for a cycle that
// could not run it; messages are dropped (raft resends what matters).
func (g *group) requeue(w groupWork) {
	g.mu.Lock()
	defer g.mu.Unlock()
	q := &g.mu.work
	q.snapReports = append(w.snapReports, q.snapReports...)
	q.unreachable = append(w.unreachable, q.unreachable...)
	q.truncate = max(q.truncate, w.truncate)
	q.campaign = q.campaign || w.campaign
	if q.transfer == 0 {
		q.transfer = w.transfer
	}
	q.ticks += w.ticks
}

// takeWork hands the worker everything queued since its last cycle.
func (g *group) takeWork() groupWork {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.mu.work
	g.mu.work = groupWork{}
	return w
}

// answer ends every piece of work in w with err: queued proposals were
// never handed to raft (not proposed), the rest simply fail.
func (g *group) answer(w groupWork, err error) {
	for _, p := range w.props {
		p.finish(proposalResult{err: &NotProposedError{Group: g.id, Reason: err}})
	}
	for _, r := range w.reads {
		r.finish(err)
	}
	for _, s := range w.snapsIn {
		if !s.answered {
			s.answered = true
			s.done <- snapshotResult{err: err}
		}
	}
	if w.destroy != nil {
		w.destroy <- err
	}
}

// closeLocked refuses further work with err and returns what was queued
// (except a pending destroy, which still runs), for the caller to answer.
func (g *group) closeLocked(err error) groupWork {
	if g.mu.closed == nil {
		g.mu.closed = err
	}
	w := g.mu.work
	g.mu.work = groupWork{destroy: w.destroy}
	w.destroy = nil
	g.failPendingLocked(err)
	return w
}

// failReads ends every read waiting for raft (worker-only).
func (g *group) failReads(err error) {
	for _, r := range g.pendingRead {
		r.finish(err)
	}
	g.pendingRead = nil
}

// failPendingLocked ends every pending proposal with an ambiguous outcome.
func (g *group) failPendingLocked(reason error) {
	for id, p := range g.mu.pending {
		p.finish(proposalResult{err: &OutcomeUnknownError{Group: g.id, ID: id, Reason: reason}})
		delete(g.mu.pending, id)
	}
}

// noteHeard records a message from a replica (worker-only).
func (g *group) noteHeard(replica uint64) {
	if g.heard == nil {
		g.heard = make(map[uint64]uint64)
	}
	g.heard[replica] = g.ticks
}

// heardRecently reports whether a message from replica arrived within the
// last window ticks (worker-only). Unlike raft's Progress.RecentActive,
// which raft clears for every follower at each quorum check until it next
// hears from it, it does not forget a live follower for a moment.
func (g *group) heardRecently(replica uint64, window int) bool {
	t, ok := g.heard[replica]
	return ok && g.ticks-t <= uint64(window)
}
