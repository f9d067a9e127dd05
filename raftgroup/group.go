package raftgroup

import (
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"sync/atomic"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
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
type StateMachine interface {
	Apply(group uint64, entries []Entry, b *pebble.Batch) error
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
}

// IsLeader reports whether the replica was the leader when the status was taken.
func (s Status) IsLeader() bool { return s.State == raft.StateLeader }

type proposal struct {
	id     CommandID
	data   []byte
	term   uint64 // term it was proposed in, set by the worker
	doneCh chan proposalResult
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
	rctx   [8]byte
	index  uint64 // set once raft returned the read state; 0 before
	doneCh chan error
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
	// appliedUncommitted is the last applied index whose apply batch may
	// not be committed yet; applied catches up once it is.
	appliedUncommitted uint64

	status  atomic.Pointer[Status]
	applied atomic.Uint64

	mu struct {
		sync.Mutex
		msgs        []*raftpb.Message
		props       []*proposal
		reads       []*readRequest
		ticks       int
		campaign    bool
		transfer    uint64
		unreachable []uint64
		peers       map[uint64]uint64 // replica ID -> node ID
		pending     map[CommandID]*proposal
		failed      error
		destroyed   bool
	}
}

func (g *group) nodeOf(replicaID uint64) uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mu.peers[replicaID]
}

// hasWork reports whether anything is queued for the worker.
func (g *group) takeWork() (msgs []*raftpb.Message, props []*proposal, reads []*readRequest, ticks int, campaign bool, transfer uint64, unreachable []uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	msgs, props, reads = g.mu.msgs, g.mu.props, g.mu.reads
	ticks, campaign, transfer, unreachable = g.mu.ticks, g.mu.campaign, g.mu.transfer, g.mu.unreachable
	g.mu.msgs, g.mu.props, g.mu.reads, g.mu.unreachable = nil, nil, nil, nil
	g.mu.ticks, g.mu.campaign, g.mu.transfer = 0, false, 0
	return
}

// failPendingLocked ends every pending proposal with an ambiguous outcome.
func (g *group) failPendingLocked(reason error) {
	for id, p := range g.mu.pending {
		p.finish(proposalResult{err: &OutcomeUnknownError{Group: g.id, ID: id, Reason: reason}})
		delete(g.mu.pending, id)
	}
}
