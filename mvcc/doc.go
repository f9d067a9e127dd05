// Package mvcc is versioned storage on Pebble: every key holds a history of
// values (Versioned Value), each at an HLC timestamp, plus at most one
// provisional value of an uncommitted transaction (an intent) whose lock
// record sits in keys' lock-table keyspace.
//
// # Where to start reading
//
// engine.go opens the store; read.go is the visibility rules (Get, Scan);
// write.go is Put/Delete/DeleteRange; resolve.go turns intents into
// committed versions or removes them; gc.go drops history no reader can
// see; stats.go keeps the per-span counters; export.go streams a span for
// a Raft snapshot and ingests one as an SST.
//
// # Layout
//
// A version of key at ts is stored at keys.EncodeEngineKey(key, ts); its
// value is empty for a deletion tombstone, else a tag byte and the user's
// bytes. An intent is the provisional value at its transaction's write
// timestamp, plus an api.LockRecord (TxnMeta, sequence history) at
// keys.EncodeEngineKey(keys.LockTableKey(key), {}).
//
// Invariants:
//   - A key has at most one intent, and the intent's provisional value is
//     the key's newest version (writes above an intent conflict; writes
//     below a committed version are too old).
//   - Versions of a key have distinct timestamps; a write never lands at or
//     below an existing committed version of its key.
//   - The stats every operation adds to its *Stats equal what ComputeStats
//     finds afterwards.
//   - mvcc knows no Raft and no transaction protocol: it never decides
//     whether a transaction committed; callers tell it (ResolveIntent).
//
// # Who calls it
//
// ranges evaluates requests with these functions inside a Pebble indexed
// batch (Engine.NewBatch) and commits the batch through Raft; raftgroup gets
// the same *pebble.DB through Engine.DB() for its log. Nothing below ranges
// imports mvcc.
//
// # Flow
//
// Put(k, ts, v, txn) in a batch: with one iterator, SeekPrefixGE to k's
// lock record, then to k's newest version (both bloom-filtered); refuse
// with LockConflictError or WriteTooOldError; else write the version and
// the lock record. Get(k, ts): the same lock seek, then SeekPrefixGE to
// k@max(ts, uncertainty limit) and walk down to the first version <= ts,
// failing on uncertain versions on the way. Scans read the span's lock
// records first (one short lock-table scan) and merge them with the
// versions. The batch is committed (synced) by the caller.
//
// Decisions worth knowing: DeleteRange writes point tombstones (no Pebble
// range keys yet); stats have no GC-bytes-age; a scan reports every lock
// conflict in what it scanned, but returns an uncertainty error at the
// first uncertain key.
package mvcc
