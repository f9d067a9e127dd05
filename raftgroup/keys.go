package raftgroup

import (
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
)

// The engine keys raftgroup writes. They are the keys/ range-local keys of a
// group, encoded as unversioned engine keys so that they share the node's one
// Pebble instance (and its one comparer) with MVCC data.

func logKey(group, index uint64) []byte {
	return keys.EncodeEngineKey(keys.RaftLogKey(keys.RangeID(group), index), hlc.Timestamp{})
}

func hardStateKey(group uint64) []byte {
	return keys.EncodeEngineKey(keys.RaftHardStateKey(keys.RangeID(group)), hlc.Timestamp{})
}

func truncatedStateKey(group uint64) []byte {
	return keys.EncodeEngineKey(keys.RaftTruncatedStateKey(keys.RangeID(group)), hlc.Timestamp{})
}

// logSpan returns the engine-key bounds [start, end) of every log entry of a
// group.
func logSpan(group uint64) (start, end []byte) {
	return logKey(group, 0), logKey(group, ^uint64(0))
}

// decodeLogIndex returns the index of an encoded log key.
func decodeLogIndex(engineKey []byte) (uint64, error) {
	k, _, err := keys.DecodeEngineKey(engineKey)
	if err != nil {
		return 0, err
	}
	_, index, err := keys.DecodeRaftLogKey(k)
	return index, err
}
