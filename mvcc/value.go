package mvcc

import (
	"bytes"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
	"google.golang.org/protobuf/proto"
)

// Stored values. An empty stored value is a deletion tombstone; anything
// else is a one-byte tag followed by the user's value, so that an empty user
// value is still a value and the format has room for a header later.
const valueTagBytes = 0x01

func encodeValue(v []byte) []byte {
	b := make([]byte, 1+len(v))
	b[0] = valueTagBytes
	copy(b[1:], v)
	return b
}

// decodeValue returns the user value of a stored value and false for a
// tombstone. The result aliases raw.
func decodeValue(raw []byte) ([]byte, bool, error) {
	if len(raw) == 0 {
		return nil, false, nil
	}
	if raw[0] != valueTagBytes {
		return nil, false, fmt.Errorf("mvcc: unknown value tag 0x%02x", raw[0])
	}
	return raw[1:], true, nil
}

// lockInfo is a decoded lock record and its size in the engine.
type lockInfo struct {
	key    []byte // the locked key
	rec    *api.LockRecord
	size   int // engine key + value bytes
	provTS hlc.Timestamp
}

func (l *lockInfo) isTxn(txn *api.TxnMeta) bool {
	return txn != nil && l != nil && bytes.Equal(l.rec.GetTxn().GetId(), txn.GetId())
}

func lockEngineKey(key []byte) []byte {
	return keys.EncodeEngineKey(keys.LockTableKey(key), hlc.Timestamp{})
}

func decodeLock(key, engineKey, raw []byte) (*lockInfo, error) {
	rec := &api.LockRecord{}
	if err := proto.Unmarshal(raw, rec); err != nil {
		return nil, fmt.Errorf("mvcc: corrupt lock record of %s: %w", keys.Pretty(key), err)
	}
	if rec.GetTxn() == nil || rec.GetTxn().GetWriteTimestamp() == nil {
		return nil, fmt.Errorf("mvcc: lock record of %s has no transaction", keys.Pretty(key))
	}
	return &lockInfo{key: key, rec: rec, size: len(engineKey) + len(raw), provTS: rec.Txn.WriteTS()}, nil
}

// seekLock reads the lock record of key, or nil if it has none, with an
// unbounded iterator that the caller goes on to use for the key's versions
// (one iterator per operation is cheaper than a point Get plus an
// iterator).
func seekLock(it *pebble.Iterator, key []byte) (*lockInfo, error) {
	ek := lockEngineKey(key)
	if !it.SeekPrefixGE(ek) {
		if err := it.Error(); err != nil {
			return nil, fmt.Errorf("mvcc: reading lock of %s: %w", keys.Pretty(key), err)
		}
		return nil, nil
	}
	raw, err := it.ValueAndErr()
	if err != nil {
		return nil, fmt.Errorf("mvcc: reading lock of %s: %w", keys.Pretty(key), err)
	}
	return decodeLock(key, ek, raw)
}

// putLock writes rec as key's lock record and returns its size.
func putLock(w Writer, key []byte, rec *api.LockRecord) (int, error) {
	raw, err := proto.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("mvcc: encoding lock of %s: %w", keys.Pretty(key), err)
	}
	ek := lockEngineKey(key)
	if err := w.Set(ek, raw, nil); err != nil {
		return 0, err
	}
	return len(ek) + len(raw), nil
}

func deleteLock(w Writer, key []byte) error {
	return w.Delete(lockEngineKey(key), nil)
}

// seqIgnored reports whether seq falls in one of the rolled-back ranges.
func seqIgnored(seq int32, ignored []*api.SeqRange) bool {
	for _, r := range ignored {
		if r.GetStart() <= seq && seq <= r.GetEnd() {
			return true
		}
	}
	return false
}

// ownValue returns the stored value the lock holder sees at seq: the
// provisional value if its sequence is visible, else the newest visible
// history entry. ok is false when none of the intent's writes is visible
// and the reader must look at committed versions.
func ownValue(l *lockInfo, prov []byte, seq int32, ignored []*api.SeqRange) (raw []byte, ok bool) {
	if cur := l.rec.Txn.GetSequence(); cur <= seq && !seqIgnored(cur, ignored) {
		return prov, true
	}
	h := l.rec.GetHistory()
	for i := len(h) - 1; i >= 0; i-- {
		if s := h[i].GetSequence(); s <= seq && !seqIgnored(s, ignored) {
			return h[i].GetValue(), true
		}
	}
	return nil, false
}
