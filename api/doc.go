// Package api holds the protobuf messages and gRPC services that cross
// process boundaries, with their generated code committed (`make proto`
// regenerates it), and the hand-written Go that makes them pleasant: Error
// methods on the error messages, conversions to and from hlc.Timestamp,
// descriptor and lease helpers, and batch validation.
//
// Invariants:
//   - The .proto files are the source of truth; field numbers are never
//     reused.
//   - Errors that cross a node boundary are defined here and nowhere else.
//     They travel as an Error (exactly one detail) built by ErrorFromGo and
//     turned back into the same typed Go error by (*Error).GoError, so
//     errors.As works on the gateway. A new detail needs a oneof field, a
//     setOn method and a GoError case; a coverage test enforces it.
//   - A client's key is at most MaxKeySize (16 KiB; the public API checks
//     it) and a value at most MaxValueSize (4 MiB); a batch's keys, which
//     carry a keyspace prefix, are at most MaxInternalKeySize.
//     (*BatchRequest).Validate checks batches on the gateway and again on
//     the replica.
//   - api imports only hlc (and below), plus etcd raft's raftpb for the
//     transport.
//
// Who calls it: every package from keys up. mvcc returns *WriteTooOldError,
// *ReadWithinUncertaintyError and *LockConflictError as they are; ranges
// returns NotLeaseholder, RangeNotFound, RangeKeyMismatch and AmbiguousResult
// errors; client/ matches them with errors.As.
//
// Files:
//   - data.proto: Timestamp, TxnMeta, LockRecord, MVCCStats.
//   - errors.proto: the MVCC errors (WriteTooOld, ReadWithinUncertainty,
//     LockConflict); errors.go their Error methods.
//   - descriptor.proto: RangeDescriptor, ReplicaDescriptor, Lease;
//     descriptor.go their helpers.
//   - kv.proto: Span, Value, KeyValue.
//   - range_errors.proto: node errors and the Error wrapper;
//     range_errors.go the Go conversions.
//   - batch.proto: BatchRequest/BatchResponse and service Internal;
//     batch.go the limits, request helpers and Validate.
//   - admin.proto: service Admin (lease transfer, split, replica changes,
//     range status), served by ranges.Admin.
//   - replicated.proto: what ranges replicate through Raft
//     (ReplicatedCommand: a write batch under a lease sequence, lease
//     changes, split triggers, GC thresholds, new descriptors) and persist
//     as range state (RangeAppliedState).
//   - raft.proto: the node-to-node Raft transport (messages and snapshots).
//   - timestamp.go: conversions to and from hlc.Timestamp.
package api
