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
//     requests; collect its Ready; send the messages that do not acknowledge
//     anything (appends, heartbeats, vote requests). Then once more for the
//     groups queued meanwhile (a follower's appends, a leader's
//     acknowledgements and proposals that arrived while it staged), so they
//     share this cycle's fsync instead of waiting for the next.
//  3. On leaders, apply the committed entries that were already durable
//     before this cycle (all groups in one batch, no fsync) and complete
//     the proposals they satisfy, so a leader's commits do not wait for the
//     fsync of what was proposed since. (A follower completes no proposals;
//     it applies in step 5, after its acknowledgements are out.)
//  4. Stage every group's new entries (and hard state, when its term or
//     vote changed) into ONE Pebble batch and commit it with ONE fsync
//     (group commit; no fsync if raft says none is needed).
//  5. Send every group's acknowledgements, then per group apply the rest
//     of its committed entries through the StateMachine, complete the
//     proposals and reads they satisfy, Advance.
//
// The worker yields its processor (runtime.Gosched) after the sends of
// each pass of step 2, after those of step 5 and after each cycle. A goroutine a worker wakes — the
// transport's sender for a peer, gRPC's writer, a proposer whose command
// applied — otherwise waits until the worker next blocks; with few
// processors each loopback hop took 1-1.5 ms under load.
//
// There is one worker per two processors (at least 1, at most 8) unless
// Config.Workers says otherwise. An idle worker starts a cycle with
// whatever is queued, so more workers than the processors keep busy only
// cut the same work into more, smaller batches: more fsyncs for the same
// commands. The price on a small machine (one worker up to 3 processors):
// a slow fsync or a large snapshot's apply holds up every group on the node
// for its duration.
//
// Persist before acknowledging; apply only what is durable. Raft's commit
// index is volatile: it is persisted only with a term or vote change, and a
// restart raises it to the state machine's applied index, which the durable
// log always covers. (etcd raft's
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
// fed by a queue per peer bounded in messages and bytes (full → drop; raft
// retransmits), in batches of at most 2 MiB (a larger message goes alone) so
// the receiver's gRPC limit never breaks the stream, re-dialled with
// backoff (StreamBreaks counts the breaks). Commands are bounded by
// Config.MaxCommandBytes, below what a node's server accepts. Every batch carries the sender's HLC reading, and the
// receiver ratchets its clock with it (a reading too far ahead is rejected
// and the batch dropped). Both ends set fixed flow-control windows (dial
// options, and ServerOptions for the node's gRPC server): gRPC's dynamic
// windows send a PING per round trip of data to estimate the
// bandwidth-delay product, which cost more than the messages themselves.
// Batches are protobufs on the wire but decoded by wire.go rather than
// proto.Unmarshal (through a gRPC codec named "meridian-raft"): etcd raft's
// messages have a pointer per scalar field, and the generic decoder's
// allocation per field was a fifth of the benchmark's allocations. Anything
// unusual falls back to proto.Unmarshal, and a fuzz test holds the two to
// the same results.
// MemNetwork is the in-memory twin with fault
// injection (one-way cuts, partitions, loss, delay) for deterministic tests.
//
// # Snapshots
//
// When a follower needs entries the leader's log no longer has (or has an
// empty log: an uninitialised replica, created with an empty ConfState on a
// node that has no data yet), raft asks for a snapshot. Storage.Snapshot
// only names the position it must cover; the data comes from the
// StateMachine (Snapshot) when the snapshot is sent, at its applied index,
// and the MsgSnap's metadata is rewritten to match. A snapshot travels on a
// stream of its own (never the message stream), in 1 MiB chunks paced by
// gRPC's flow control, bounded by MaxSnapshotBytes; the receiver holds it in
// memory until the last chunk (a broken stream leaves nothing behind), then
// steps the MsgSnap into raft and, if raft accepts it, the StateMachine's
// ApplySnapshot writes into the same batch as raft's new state, committed
// with one fsync: a crash leaves the old state or the new, never a mix.
// Failed sends are retried with exponential backoff, one in flight per
// follower.
//
// # Log truncation (Low-Water Mark)
//
// Truncate(group, index) deletes a replica's log up to index (never past
// what it applied). With Config.Truncation set, every replica applies a
// TruncationPolicy after applying entries: a follower truncates to what it
// applied; a leader keeps what its live followers still need unless one
// lags by more than MaxLagEntries (it then gets a snapshot), and the entries
// after the index of any snapshot it is sending.
//
// # Membership
//
// CreateGroup with an initial membership, or with an empty ConfState for an
// uninitialised replica that waits for a snapshot; ProposeConfChange for
// ConfChangeV2 changes (add or remove voters and learners; joint consensus;
// learner first, then promote — the caller sequences that);
// TransferLeadership; DestroyGroup deletes a replica's raft state durably.
// raftgroup refuses (not proposed) a change raft would silently drop because
// another is pending, and one raft could not apply to the current membership
// (it would panic applying it on every replica); a committed one of those is
// skipped alike everywhere.
//
// # Quiescence
//
// A leader with nothing pending whose followers have every entry stops
// ticking and sends its followers a heartbeat marked quiesce; they stop
// ticking too. Idle groups then send nothing and cost almost nothing (Tick
// skips them, and ticks queued before a group quiesced are dropped). A
// group wakes on a proposal, a read, a membership or leadership request, or any message other than quiesce heartbeats and
// heartbeat responses; and when the caller reports, from node liveness,
// that the node of its leader died (ReportNodeDown) — otherwise a quiesced
// group would never elect again. Heartbeats are coalesced by the transport:
// every message bound for one node in one flush shares a batch.
//
// # Messages a leader does not send
//
// A heartbeat (without a ReadIndex context) to a follower that got an
// append with the same term and commit index since the previous heartbeat
// says nothing the append did not, and is dropped before the transport
// (raft tolerates lost messages); every other heartbeat round still goes
// out when no append did, so a lost append is noticed. Proposals of one
// cycle go to raft as one MsgProp, so they share one append per follower.
//
// When an entry commits, raft sends each follower that already has it an
// append without entries, only to carry the new commit index, and the
// follower answers it: with one write in flight per group, half of the
// eight messages a write costs. The leader holds such a commit notice for
// up to Config.CommitNoticeDelay (2 ms); the next write's append carries
// the commit index instead and replaces it, and one still held when the
// delay runs out is sent then (notice.go). A heartbeat replaces only a
// notice to a follower that acknowledged every entry: raft sends the same
// empty append to find a lost one, and a heartbeat does not do that job.
// None is held while a leadership transfer is pending. A write's
// proposer is answered by the leader, which applies the entry itself;
// followers learn of a commit at most that much later (a lease moved to
// one of them takes effect there that much later, for example).
//
// # Hooks for the owner
//
// Config.UnknownGroup is called when a message or snapshot arrives for a
// group the host lacks, so the owner can create an uninitialised replica;
// a replica learns the node of any sender it has no address for from the
// batch that carried the message. A StateMachine may also implement
// AppliedHook (act once an apply batch is committed — ranges starts a
// split's right-hand group there, so it never exists on disk without its
// descriptor) and SnapshotFilter (decline a snapshot before raft sees it).
// Status carries, on a leader, each member's match index as of its last
// tick.
//
// Callers: ranges/ (one Host per store). Tests and later packages reuse the
// harness in raftgroup/grouptest.
package raftgroup
