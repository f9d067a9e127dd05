// Package keys owns the byte layout of every key a Meridian node stores and
// the one Pebble Comparer that orders all of them.
//
// # Where to start reading
//
// constants.go lays out the keyspace; engine.go is the encoding Pebble sees
// (a key plus an optional HLC timestamp) and the Comparer; keys.go builds and
// decodes each kind of key; pretty.go renders keys for logs and FormatKey.
//
// # The keyspace
//
// Keys are ordered byte strings. The first byte says which keyspace a key
// belongs to:
//
//	0x01 'i' <rangeID:8 BE> 'u' <code:4> [...]  range-ID local, unreplicated (raft log, hard state, truncated state)
//	0x01 'i' <rangeID:8 BE> 'r' <code:4>        range-ID local, replicated (applied state, descriptor, lease, ...)
//	0x01 'k' <escaped key> <code:4> [...]       range-local keyed by a global key (transaction records)
//	0x01 'z' 'k' <key>                          the lock table: one lock record per locked key
//	0x01 's' "ident"                            the store's identity (cluster, node, store IDs); never replicated
//	0x02 <range end key>                        meta: one range descriptor per range, ordered by end key
//	0x03 <name>                                 system keys: ID generators, cluster ID, node records
//	'u'  <user key>                             user keys (SQL/gRPC keys), any bytes, 0x00 included
//
// Keys that start with 0x01 ("local" keys) are not addressable: no range's
// [start, end) covers them; they belong to a range by its ID or, for the
// key-addressed kinds, by the global key inside them (see Addr). The
// addressable keyspace is [MetaMin, KeyMax). User keys live under the 'u'
// prefix, so a user key, whatever its bytes, can never collide with or sort
// among system, meta or local keys.
//
// # The engine encoding
//
// Every key above is stored in Pebble as an engine key:
//
//	key | 0x00 | wall (8 bytes BE) | logical (4 bytes BE, omitted when 0) | length byte
//
// where the length byte counts the timestamp bytes plus itself (9 or 13). An
// empty timestamp is encoded as just key | 0x00: an unversioned key, used for
// range-local state, lock records and, in mvcc, nothing else. The Comparer
// orders engine keys by key ascending, then timestamp descending, with the
// unversioned key first, so a SeekGE(key@ts) lands on the newest version at or
// below ts. Split returns the key plus its 0x00 sentinel, so Pebble's bloom
// filters work on whole keys and every version of a key shares one prefix.
// This is CockroachDB's layout (pkg/storage/mvcc_key.go), without the legacy
// synthetic byte.
//
// Invariants:
//   - The encoding is canonical: a zero logical part is always omitted, and a
//     timestamp's wall time is never negative. DecodeEngineKey rejects anything
//     else, so byte equality is key equality.
//   - For keys a, b and timestamps s, t: EncodeEngineKey(a, s) sorts before
//     EncodeEngineKey(b, t) under Comparer iff a < b bytewise, or a == b and s
//     is empty and t is not, or a == b and s > t.
//   - All raft log keys of a range share RaftLogPrefix and sort by index.
//
// # Who calls it
//
// Everything above api: mvcc and raftgroup write engine keys into the same
// Pebble store; ranges, txn, client and server build range-local, meta,
// system and user keys. keys imports only hlc and Pebble's comparer types.
//
// # Flow
//
// A client writes user key "k": the client layer stores keys.UserKey("k");
// mvcc writes EncodeEngineKey(UserKey("k"), ts) as the value's Pebble key and,
// for an intent, EncodeEngineKey(LockTableKey(UserKey("k")), {}) as its lock
// record. raftgroup appends entry 7 of range 3 at
// EncodeEngineKey(RaftLogKey(3, 7), hlc.Timestamp{}).
package keys
