package keys

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// PrefixEnd returns the smallest key greater than every key that has prefix
// b: the last byte below 0xff incremented, the rest dropped. No such key
// exists for an empty b (PrefixEnd returns KeyMax, which bounds every
// addressable key) or a run of 0xff (PrefixEnd returns a copy of b).
func PrefixEnd(b []byte) []byte {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0xff {
			end := make([]byte, i+1)
			copy(end, b)
			end[i]++
			return end
		}
	}
	if len(b) == 0 {
		return append([]byte(nil), KeyMax...)
	}
	return append([]byte(nil), b...)
}

// Next returns the smallest key greater than k: k with 0x00 appended.
func Next(k []byte) []byte {
	return append(append(make([]byte, 0, len(k)+1), k...), 0)
}

// ---- range-ID local keys ----

// RangeIDPrefix is the prefix of every range-ID local key of rangeID,
// replicated and unreplicated.
func RangeIDPrefix(rangeID RangeID) []byte {
	b := make([]byte, 0, len(rangeIDPrefix)+8+1+4+8)
	b = append(b, rangeIDPrefix...)
	return binary.BigEndian.AppendUint64(b, uint64(rangeID))
}

// RangeLocalPrefix is an alias of RangeIDPrefix: every piece of local state
// a replica of rangeID keeps under its range ID.
func RangeLocalPrefix(rangeID RangeID) []byte { return RangeIDPrefix(rangeID) }

// RangeLocalSpan returns [start, end) covering every range-ID local key of
// rangeID, replicated and unreplicated (raft log included): delete it to
// remove a replica's local state.
func RangeLocalSpan(rangeID RangeID) (start, end []byte) {
	p := RangeIDPrefix(rangeID)
	return p, PrefixEnd(p)
}

// RangeReplicatedSpan returns [start, end) covering rangeID's replicated
// range-ID local keys (the ones a snapshot carries).
func RangeReplicatedSpan(rangeID RangeID) (start, end []byte) {
	p := append(RangeIDPrefix(rangeID), replicatedInfix)
	return p, PrefixEnd(p)
}

// RangeUnreplicatedSpan returns [start, end) covering rangeID's
// unreplicated range-ID local keys (raft log, hard state, truncated state).
func RangeUnreplicatedSpan(rangeID RangeID) (start, end []byte) {
	p := append(RangeIDPrefix(rangeID), unreplicatedInfix)
	return p, PrefixEnd(p)
}

func rangeIDKey(rangeID RangeID, infix byte, code []byte) []byte {
	b := RangeIDPrefix(rangeID)
	b = append(b, infix)
	return append(b, code...)
}

// RaftLogPrefix is the prefix of every raft log key of rangeID.
func RaftLogPrefix(rangeID RangeID) []byte {
	return rangeIDKey(rangeID, unreplicatedInfix, codeRaftLog)
}

// RaftLogKey is the key of raft log entry index of rangeID. Log keys of a
// range sort by index.
func RaftLogKey(rangeID RangeID, index uint64) []byte {
	return binary.BigEndian.AppendUint64(RaftLogPrefix(rangeID), index)
}

// RaftLogSpan returns [start, end) covering log entries [lo, hi) of rangeID.
// Use hi = math.MaxUint64 with end = PrefixEnd(RaftLogPrefix(rangeID)) to
// reach the end of the log instead.
func RaftLogSpan(rangeID RangeID, lo, hi uint64) (start, end []byte) {
	return RaftLogKey(rangeID, lo), RaftLogKey(rangeID, hi)
}

// RaftHardStateKey holds rangeID's raft HardState (term, vote, commit).
func RaftHardStateKey(rangeID RangeID) []byte {
	return rangeIDKey(rangeID, unreplicatedInfix, codeRaftHardState)
}

// RaftTruncatedStateKey holds the index and term of rangeID's last
// truncated log entry.
func RaftTruncatedStateKey(rangeID RangeID) []byte {
	return rangeIDKey(rangeID, unreplicatedInfix, codeRaftTruncated)
}

// RangeTombstoneKey marks that a replica of rangeID was removed from this
// store, with the replica ID below which it must not be recreated.
func RangeTombstoneKey(rangeID RangeID) []byte {
	return rangeIDKey(rangeID, unreplicatedInfix, codeRangeTombstone)
}

// RangeAppliedStateKey holds rangeID's applied index, lease applied index and
// stats, updated with every applied command.
func RangeAppliedStateKey(rangeID RangeID) []byte {
	return rangeIDKey(rangeID, replicatedInfix, codeAppliedState)
}

// RangeDescriptorKey holds rangeID's descriptor, the truth about its span
// and replicas (meta is an index of it).
func RangeDescriptorKey(rangeID RangeID) []byte {
	return rangeIDKey(rangeID, replicatedInfix, codeDescriptor)
}

// RangeLeaseKey holds rangeID's current lease.
func RangeLeaseKey(rangeID RangeID) []byte {
	return rangeIDKey(rangeID, replicatedInfix, codeLease)
}

// RangeGCThresholdKey holds the timestamp below which rangeID's versions may
// have been garbage collected; reads below it are refused.
func RangeGCThresholdKey(rangeID RangeID) []byte {
	return rangeIDKey(rangeID, replicatedInfix, codeGCThreshold)
}

// ErrNotRangeIDKey is wrapped by the range-ID decoders for keys of another
// kind.
var ErrNotRangeIDKey = errors.New("keys: not a range-ID local key")

// DecodeRangeIDKey splits a range-ID local key into its range ID, whether
// it is replicated, its 4-byte code and whatever follows the code.
func DecodeRangeIDKey(k []byte) (rangeID RangeID, replicated bool, code, rest []byte, err error) {
	if !bytes.HasPrefix(k, rangeIDPrefix) || len(k) < len(rangeIDPrefix)+8+1+4 {
		return 0, false, nil, nil, fmt.Errorf("%w: %q", ErrNotRangeIDKey, k)
	}
	b := k[len(rangeIDPrefix):]
	rangeID = RangeID(binary.BigEndian.Uint64(b))
	switch b[8] {
	case replicatedInfix:
		replicated = true
	case unreplicatedInfix:
	default:
		return 0, false, nil, nil, fmt.Errorf("%w: bad infix %q in %q", ErrNotRangeIDKey, b[8], k)
	}
	return rangeID, replicated, b[9:13], b[13:], nil
}

// DecodeRaftLogKey returns the range ID and index of a raft log key.
func DecodeRaftLogKey(k []byte) (rangeID RangeID, index uint64, err error) {
	rangeID, replicated, code, rest, err := DecodeRangeIDKey(k)
	if err != nil {
		return 0, 0, err
	}
	if replicated || !bytes.Equal(code, codeRaftLog) || len(rest) != 8 {
		return 0, 0, fmt.Errorf("keys: not a raft log key: %q", k)
	}
	return rangeID, binary.BigEndian.Uint64(rest), nil
}

// ---- range-local keys addressed by a global key ----

// TransactionKey is the key of the transaction record of txn txnID anchored
// at key: it is local to the range that holds key, and sorts next to other
// range-local keys of key.
func TransactionKey(key, txnID []byte) []byte {
	b := make([]byte, 0, len(keyLocalPrefix)+len(key)+2+4+len(txnID))
	b = append(b, keyLocalPrefix...)
	b = appendEscaped(b, key)
	b = append(b, codeTxnRecord...)
	return append(b, txnID...)
}

// DecodeTransactionKey returns the anchor key and txn ID of a transaction
// record key.
func DecodeTransactionKey(k []byte) (key, txnID []byte, err error) {
	key, code, rest, err := decodeKeyLocal(k)
	if err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(code, codeTxnRecord) {
		return nil, nil, fmt.Errorf("keys: not a transaction key: %q", k)
	}
	return key, rest, nil
}

func decodeKeyLocal(k []byte) (key, code, rest []byte, err error) {
	if !bytes.HasPrefix(k, keyLocalPrefix) {
		return nil, nil, nil, fmt.Errorf("keys: not a key-addressed local key: %q", k)
	}
	key, rest, err = decodeEscaped(k[len(keyLocalPrefix):])
	if err != nil {
		return nil, nil, nil, err
	}
	if len(rest) < 4 {
		return nil, nil, nil, fmt.Errorf("keys: key-addressed local key %q has no code", k)
	}
	return key, rest[:4], rest[4:], nil
}

// appendEscaped appends b with every 0x00 written as 0x00 0xff, then the
// terminator 0x00 0x01: an order-preserving encoding after which more bytes
// may follow without ambiguity.
func appendEscaped(dst, b []byte) []byte {
	for {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			dst = append(dst, b...)
			return append(dst, 0x00, 0x01)
		}
		dst = append(dst, b[:i]...)
		dst = append(dst, 0x00, 0xff)
		b = b[i+1:]
	}
}

func decodeEscaped(b []byte) (key, rest []byte, err error) {
	var out []byte
	for {
		i := bytes.IndexByte(b, 0)
		if i < 0 || i+1 >= len(b) {
			return nil, nil, errors.New("keys: unterminated escaped key")
		}
		out = append(out, b[:i]...)
		switch b[i+1] {
		case 0x01:
			if out == nil {
				out = []byte{}
			}
			return out, b[i+2:], nil
		case 0xff:
			out = append(out, 0)
			b = b[i+2:]
		default:
			return nil, nil, fmt.Errorf("keys: bad escape 0x00 0x%02x", b[i+1])
		}
	}
}

// ---- lock table ----

// LockTableKey is the key of the lock record of global key key.
func LockTableKey(key []byte) []byte {
	b := make([]byte, 0, len(LockTablePrefix)+len(key))
	b = append(b, LockTablePrefix...)
	return append(b, key...)
}

// DecodeLockTableKey returns the global key a lock-table key locks. The
// result aliases k.
func DecodeLockTableKey(k []byte) ([]byte, error) {
	if !bytes.HasPrefix(k, LockTablePrefix) {
		return nil, fmt.Errorf("keys: not a lock-table key: %q", k)
	}
	return k[len(LockTablePrefix):], nil
}

// LockTableSpan returns the lock-table span holding the locks of global
// keys in [start, end).
func LockTableSpan(start, end []byte) (lockStart, lockEnd []byte) {
	return LockTableKey(start), LockTableKey(end)
}

// ---- meta ----

// MetaKey is the meta key of the range that ends at rangeEndKey. Meta keys
// are ordered by end key, so the range holding key k is described by the
// first meta key > MetaKey(k).
func MetaKey(rangeEndKey []byte) []byte {
	b := make([]byte, 0, len(MetaMin)+len(rangeEndKey))
	b = append(b, MetaMin...)
	return append(b, rangeEndKey...)
}

// DecodeMetaKey returns the range end key of a meta key; it aliases k.
func DecodeMetaKey(k []byte) ([]byte, error) {
	if !bytes.HasPrefix(k, MetaMin) {
		return nil, fmt.Errorf("keys: not a meta key: %q", k)
	}
	return k[len(MetaMin):], nil
}

// ---- system ----

// NodeRecordKey holds the record (address, locality, ...) of node nodeID.
func NodeRecordKey(nodeID uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), nodeRecordPrefix...), nodeID)
}

// NodeRecordSpan covers every node record.
func NodeRecordSpan() (start, end []byte) {
	return append([]byte(nil), nodeRecordPrefix...), PrefixEnd(nodeRecordPrefix)
}

// DecodeNodeRecordKey returns the node ID of a node record key.
func DecodeNodeRecordKey(k []byte) (uint64, error) {
	if !bytes.HasPrefix(k, nodeRecordPrefix) || len(k) != len(nodeRecordPrefix)+8 {
		return 0, fmt.Errorf("keys: not a node record key: %q", k)
	}
	return binary.BigEndian.Uint64(k[len(nodeRecordPrefix):]), nil
}

// NodeLivenessKey holds the liveness record of node nodeID.
func NodeLivenessKey(nodeID uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), nodeLivenessPrefix...), nodeID)
}

// NodeLivenessSpan covers every liveness record.
func NodeLivenessSpan() (start, end []byte) {
	return append([]byte(nil), nodeLivenessPrefix...), PrefixEnd(nodeLivenessPrefix)
}

// ---- user keys ----

// UserKey places a client's key k in the user keyspace.
func UserKey(k []byte) []byte {
	b := make([]byte, 0, 1+len(k))
	b = append(b, userPrefixByte)
	return append(b, k...)
}

// DecodeUserKey returns the client's key of a user-keyspace key; it aliases k.
func DecodeUserKey(k []byte) ([]byte, error) {
	if len(k) == 0 || k[0] != userPrefixByte {
		return nil, fmt.Errorf("keys: not a user key: %q", k)
	}
	return k[1:], nil
}

// UserSpan maps a client span [start, end) into the user keyspace. An empty
// end means "to the end of the user keyspace".
func UserSpan(start, end []byte) (s, e []byte) {
	s = UserKey(start)
	if len(end) == 0 {
		return s, UserSpanEnd
	}
	return s, UserKey(end)
}

// IsLocal reports whether k is a non-addressable local key.
func IsLocal(k []byte) bool { return len(k) > 0 && k[0] == localPrefixByte }

// Addr returns the addressable key that decides which range k belongs to:
// k itself for addressable keys, the locked key for lock-table keys, the
// anchor key for key-addressed local keys. Range-ID local keys have no
// address (they belong to a range by ID) and give an error.
func Addr(k []byte) ([]byte, error) {
	switch {
	case !IsLocal(k):
		return k, nil
	case bytes.HasPrefix(k, LockTablePrefix):
		return DecodeLockTableKey(k)
	case bytes.HasPrefix(k, keyLocalPrefix):
		key, _, _, err := decodeKeyLocal(k)
		return key, err
	default:
		return nil, fmt.Errorf("keys: %s has no address", Pretty(k))
	}
}
