package raftgroup

import (
	"errors"
	"fmt"
)

// Errors from Propose and ReadIndex fall into two classes the caller must
// tell apart: NotProposedError (the command certainly did not and will not
// apply; retrying is safe) and OutcomeUnknownError (it may or may not apply;
// the caller must treat the result as ambiguous).

// NotProposedError says a command was not handed to raft.
type NotProposedError struct {
	Group uint64
	// Reason is one of the Err* sentinels below, or a context error.
	Reason error
	// LeaderReplica and LeaderNode name the leader this replica knows of
	// (zero if none), when Reason is ErrNotLeader.
	LeaderReplica uint64
	LeaderNode    uint64
}

func (e *NotProposedError) Error() string {
	if errors.Is(e.Reason, ErrNotLeader) && e.LeaderNode != 0 {
		return fmt.Sprintf("raftgroup: group %d: not proposed: %v (leader is replica %d on node %d)", e.Group, e.Reason, e.LeaderReplica, e.LeaderNode)
	}
	return fmt.Sprintf("raftgroup: group %d: not proposed: %v", e.Group, e.Reason)
}

func (e *NotProposedError) Unwrap() error { return e.Reason }

// OutcomeUnknownError says a command was proposed but this replica cannot
// tell whether it will apply: leadership changed, the context ended, or the
// host stopped before it applied here.
type OutcomeUnknownError struct {
	Group  uint64
	ID     CommandID
	Reason error
}

func (e *OutcomeUnknownError) Error() string {
	return fmt.Sprintf("raftgroup: group %d: outcome of command %s unknown: %v", e.Group, e.ID, e.Reason)
}

func (e *OutcomeUnknownError) Unwrap() error { return e.Reason }

var (
	// ErrNotLeader: this replica is not the group's leader.
	ErrNotLeader = errors.New("not the leader")
	// ErrCommandTooLarge: the command exceeds Config.MaxCommandBytes.
	ErrCommandTooLarge = errors.New("command too large")
	// ErrInvalidConfChange: raft cannot apply this membership change to the
	// group's current membership (it would remove every voter, change two
	// voters at once outside joint consensus, ...).
	ErrInvalidConfChange = errors.New("invalid membership change")
	// ErrGroupNotFound: this host has no such group.
	ErrGroupNotFound = errors.New("group not found")
	// ErrDropped: raft refused the proposal (e.g. a leadership transfer is
	// in progress, or too much is uncommitted).
	ErrDropped = errors.New("proposal dropped by raft")
	// ErrLeaderChanged: the proposer lost leadership (or its term changed)
	// before the command applied.
	ErrLeaderChanged = errors.New("leadership changed")
	// ErrConfChangeInProgress: raft refused a membership change because
	// another one is not yet applied.
	ErrConfChangeInProgress = errors.New("another membership change is in progress")
	// ErrGroupDestroyed: the replica was destroyed.
	ErrGroupDestroyed = errors.New("group destroyed")
	// ErrStopped: the host is stopping.
	ErrStopped = errors.New("raftgroup host stopped")
	// ErrGroupFailed: the group's state machine or storage returned an
	// error, and the group stopped processing.
	ErrGroupFailed = errors.New("group failed")
)

// IsNotProposed reports whether err says the command certainly did not apply.
func IsNotProposed(err error) bool {
	var e *NotProposedError
	return errors.As(err, &e)
}

// IsOutcomeUnknown reports whether err says the command may or may not apply.
func IsOutcomeUnknown(err error) bool {
	var e *OutcomeUnknownError
	return errors.As(err, &e)
}
