// Package raftgroup runs many Raft groups in one process on etcd raft's
// RawNode (go.etcd.io/raft/v3 v3.7.0) and moves opaque commands through
// them. It knows nothing of MVCC: a group's committed commands go to a
// StateMachine the caller supplies (ranges/ applies them to mvcc).
//
// # Shape
//
// A Host (one per node) owns its groups' RawNodes, a scheduler with a fixed
// pool of workers, a ticker, and a Transport. Everything that touches a
// group's RawNode runs on the one worker that currently owns the group: the
// scheduler keeps each group queued, processing, or processing-and-dirty, so
// at most one worker holds it (Singular Update Queue). Other goroutines —
// Propose, ReadIndex, the transport — only queue work on the group under its
// small mutex and enqueue it.
//
// # A worker cycle (the Ready loop, batched)
//
//  1. Take up to MaxBatchGroups queued groups.
//  2. For each: feed raft its queued ticks, messages, proposals and read
//     requests; collect its Ready.
//  3. Stage every group's new entries and hard state into ONE Pebble batch and
//     commit it with ONE fsync (group commit; no fsync if raft says none is
//     needed).
//  4. Per group: send its messages, apply its committed entries through the
//     StateMachine, complete the proposals and reads they satisfy, Advance.
//
// Persist before send; apply only what is durable. (etcd raft's
// AsyncStorageWrites would pipeline the fsync with the next cycle; the
// synchronous order is simpler and already amortises one fsync over every
// group in the batch.)
//
// # Storage
//
// A group's log entries, hard state and truncated state live in the node's
// single Pebble instance under keys/'s range-local keys, encoded as
// unversioned engine keys (so keys.Comparer orders them). The tail of the log
// is cached in memory. The applied index belongs to the caller, who persists
// it atomically with the effects of applied entries and hands it back in
// GroupConfig.Applied on restart, together with the ConfState as of that
// index. New groups start from an empty log truncated at InitialIndex /
// InitialTerm on every replica, so replicas created with the same membership
// agree without a snapshot.
//
// # Proposals
//
// Propose returns once the command applied on this replica, with the result
// the StateMachine recorded, or with an error of one of two kinds: a
// *NotProposedError (not the leader — with a hint —, group unknown, context
// done before proposing, raft dropped it: certainly not applied, safe to
// retry) or an *OutcomeUnknownError (proposed, but leadership or term changed,
// the context ended or the host stopped before it applied here: the caller
// must treat it as ambiguous). Commands carry a CommandID inside the log entry
// so a StateMachine can recognise a command re-submitted with
// ProposeWithID after an ambiguous outcome (Idempotent Receiver). Proposals
// are accepted only on the leader (raft's proposal forwarding is off), so a
// proposer always knows which term it proposed in.
//
// ReadIndex gives linearizable reads without a log write: it returns once this
// replica has applied everything the group had committed when it was called,
// as confirmed by a quorum.
//
// # Transport
//
// GRPCTransport keeps one bidirectional gRPC stream per peer node
// (Single-Socket Channel) carrying batches of messages for every group
// (Request Batch), written without waiting for replies (Request Pipeline),
// fed by a bounded queue per peer (full → drop; raft retransmits), re-dialled
// with backoff. Every batch carries the sender's HLC reading, and the
// receiver ratchets its clock with it (a reading too far ahead is rejected
// and the batch dropped). MemNetwork is the in-memory twin with fault
// injection (one-way cuts, partitions, loss, delay) for deterministic tests.
//
// # Not yet here
//
// Snapshots, log truncation, membership changes driven by the caller, and
// quiescence arrive with the lifecycle half. Storage.Snapshot reports a
// snapshot as temporarily unavailable until then.
//
// Callers: ranges/ (one Host per store). Tests and later packages reuse the
// harness in raftgroup/grouptest.
package raftgroup
