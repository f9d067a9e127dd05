// Package api holds the protobuf messages and gRPC services that cross
// process boundaries, with their generated code committed (`make proto`
// regenerates it), and the little hand-written Go that makes them pleasant:
// Error methods on the error messages (errors.go) and conversions to and from
// hlc.Timestamp (timestamp.go).
//
// Invariants: the .proto files are the source of truth; field numbers are
// never reused; errors that cross a node boundary are defined here and
// nowhere else. api imports only hlc (and below).
//
// Who calls it: every package from keys up. mvcc returns *WriteTooOldError,
// *ReadWithinUncertaintyError and *LockConflictError as they are; the node
// that evaluated a request sends them back to the gateway unchanged.
//
// Files: data.proto (Timestamp, TxnMeta, LockRecord, MVCCStats),
// errors.proto (the errors), raft.proto (node-to-node Raft transport).
package api
