// Package ranges makes the keyspace a set of replicated ranges: a Store per
// node owns its engine (mvcc on Pebble) and its Replicas, one per range it
// holds; each Replica is a Raft group (raftgroup) plus the range state it
// applied. Sub-packages hold the pieces with invariants of their own:
// ranges/concurrency (span latches), ranges/tscache (timestamp cache), and
// ranges/rangetest (the in-process test cluster later packages reuse).
//
// # Where to start reading
//
// store.go (opening replicas, the Internal.Batch service), replica_send.go
// (evaluating a batch on the leaseholder), replica_apply.go (what every
// replica applies, snapshots), replica_lease.go (leases), replica_split.go
// (splits and meta updates), replica_replicas.go (adding and removing
// replicas), replica_gc.go (MVCC GC), queue.go (the store's queues),
// admin.go (the Admin service), bootstrap.go (the initial ranges), state.go
// (the persisted range state).
//
// # Evaluate on the leaseholder, replicate the result
//
// A batch for a range goes to the replica holding its lease. There it
// acquires latches on its spans (held until its writes applied, so an
// Increment or ConditionalPut never loses an update), reads straight from
// the engine (reads never go through Raft) and records them in the
// timestamp cache; writes are moved above the timestamp cache and above any
// newer version, evaluated into a Pebble batch, and proposed as an
// api.ReplicatedCommand carrying that batch, the stats delta and the
// sequence of the lease it was evaluated under. Every replica applies the
// command the same way: if the lease sequence still matches, the batch goes
// in unchanged, atomically with the new applied state (index, stats,
// membership); otherwise nothing applies and the proposer answers
// NotLeaseholder, so a deposed leaseholder can never write.
//
// # Leases
//
// See replica_lease.go: expiration-based, in HLC time, proposed through
// Raft by the Raft leader when the range has none, extended only while in
// use, transferable; a holder serves only while its lease is valid at
// now + ε (stasis), so two holders never serve at once under bounded skew.
// Raft leadership follows the lease (Store.leaseLoop), because raftgroup
// accepts proposals only on the leader.
//
// # Invariants
//
//   - The range-local state (descriptor, lease, applied state) and the
//     range's data change only by applying Raft commands (or a snapshot),
//     atomically with the applied index.
//   - A command applies only under the lease it was evaluated under.
//   - Writes land above every read recorded for their keys.
//
// # Splits, replicas and queues
//
// A split goes through the range's own Raft log: every replica shrinks the
// left range and creates the right one from its own data; the range-local
// descriptors are the truth and meta (written through the injected Sender,
// a newer generation always winning) is an index repaired by a queue. A
// new replica is added as a learner (descriptor, then Raft membership),
// caught up by a snapshot, then promoted in Raft first and in the
// descriptor after a ReadIndex round, so the descriptor never counts a
// voter Raft does not; a removed replica destroys itself and leaves a
// tombstone. The store's queues — split (by size), GC, meta repair,
// replicate (up to three voters; a leftover learner is promoted first) —
// run on a paced loop for the ranges it leases (an under-replicated range
// nobody leases is leased by its Raft leader for this); the Raft log is
// truncated by raftgroup's policy. Drain hands leases to live voters and
// stops taking them.
//
// # Not yet here
//
// Replacing the replicas of dead nodes, rebalancing, load-based splits,
// merges, replica GC of replicas removed while their node was down.
//
// Callers: server (one Store per store directory), tests via rangetest.
package ranges
