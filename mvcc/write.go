package mvcc

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
	"google.golang.org/protobuf/proto"
)

// ErrSequenceReplayMismatch is returned when a transaction replays a
// sequence number with a different value than it first wrote: a bug in the
// writer, never a retry.
var ErrSequenceReplayMismatch = errors.New("mvcc: sequence replayed with a different value")

// keyState is what a write needs to know about a key before it changes it.
type keyState struct {
	lock *lockInfo
	prov version // the intent's provisional value, if lock != nil
	// provRaw is the provisional value's stored bytes.
	provRaw []byte
	// committed is the newest committed version (below any intent).
	committed version
}

// newest is the key's newest version, provisional or committed.
func (s *keyState) newest() version {
	if s.lock != nil {
		return s.prov
	}
	return s.committed
}

// loadKeyState reads key's lock, provisional value and newest committed
// version.
func loadKeyState(r Reader, key []byte) (keyState, error) {
	var s keyState
	it, err := r.NewIter(nil)
	if err != nil {
		return s, err
	}
	defer it.Close()
	lk, err := seekLock(it, key)
	if err != nil {
		return s, err
	}
	s.lock = lk
	valid := it.SeekPrefixGE(keys.EncodeEngineKey(key, hlc.Timestamp{}))
	if lk != nil {
		prov, err := provisionalValue(it, key, lk)
		if err != nil {
			return s, err
		}
		s.provRaw = bytes.Clone(prov)
		s.prov = version{present: true, ts: lk.provTS, keyLen: len(it.Key()), valLen: len(prov)}
		valid = it.Next()
	}
	if valid {
		_, ts, err := keys.DecodeEngineKey(it.Key())
		if err != nil {
			return s, err
		}
		s.committed = version{present: true, ts: ts, keyLen: len(it.Key()), valLen: len(it.Value())}
	}
	return s, it.Error()
}

// Put writes value as key's version at ts. With txn nil the version is
// committed at once; with txn it is an intent: the provisional value at ts
// plus a lock record naming txn (ts should be txn's write timestamp).
//
//   - A committed version at or above ts: *api.WriteTooOldError carrying the
//     timestamp to retry at (one tick above the newest version).
//   - Another transaction's intent: *api.LockConflictError naming it.
//   - The same transaction's intent: replaced (at the later of the two
//     timestamps); the replaced value joins the lock's sequence history if
//     the epoch is unchanged, so a savepoint rollback can restore it.
//   - A sequence the intent already holds (a replay): nothing happens if the
//     value is the same, ErrSequenceReplayMismatch if not.
//
// ms, if not nil, gets the change in stats.
func Put(rw ReadWriter, ms *Stats, key []byte, ts hlc.Timestamp, value []byte, txn *api.TxnMeta) error {
	return put(rw, ms, key, ts, encodeValue(value), txn)
}

// Delete writes a tombstone for key at ts, with Put's rules.
func Delete(rw ReadWriter, ms *Stats, key []byte, ts hlc.Timestamp, txn *api.TxnMeta) error {
	return put(rw, ms, key, ts, nil, txn)
}

func put(rw ReadWriter, ms *Stats, key []byte, ts hlc.Timestamp, raw []byte, txn *api.TxnMeta) error {
	if ts.IsEmpty() {
		return fmt.Errorf("mvcc: write of %s without a timestamp", keys.Pretty(key))
	}
	if err := checkTS(ts); err != nil {
		return err
	}
	if keys.IsLocal(key) {
		return fmt.Errorf("mvcc: write of local key %s", keys.Pretty(key))
	}
	st, err := loadKeyState(rw, key)
	if err != nil {
		return err
	}
	var history []*api.IntentValue
	if lk := st.lock; lk != nil {
		if !lk.isTxn(txn) {
			return &api.LockConflictError{Locks: []*api.Lock{{Key: bytes.Clone(key), Txn: lk.rec.Txn}}}
		}
		held := lk.rec.Txn
		switch {
		case txn.GetEpoch() < held.GetEpoch():
			return fmt.Errorf("%w: writing %s at epoch %d over epoch %d", errStaleEpoch, keys.Pretty(key), txn.GetEpoch(), held.GetEpoch())
		case txn.GetEpoch() == held.GetEpoch() && txn.GetSequence() <= held.GetSequence():
			return checkReplay(key, lk, st.provRaw, txn.GetSequence(), raw)
		case txn.GetEpoch() == held.GetEpoch():
			history = append(lk.rec.GetHistory(), &api.IntentValue{Sequence: held.GetSequence(), Value: st.provRaw})
		}
		// The transaction's timestamp only moves up.
		ts = ts.Forward(lk.provTS)
	} else if st.committed.present && ts.LessEq(st.committed.ts) {
		return &api.WriteTooOldError{Key: bytes.Clone(key), Timestamp: api.NewTimestamp(ts),
			ActualTimestamp: api.NewTimestamp(st.committed.ts.Next())}
	}

	old := st.newest()
	if st.lock != nil {
		// Remove the replaced provisional value.
		ms.removeVersion(st.prov)
		if st.prov.ts != ts {
			if err := rw.Delete(keys.EncodeEngineKey(key, st.prov.ts), nil); err != nil {
				return err
			}
		}
	}
	ek := keys.EncodeEngineKey(key, ts)
	if err := rw.Set(ek, raw, nil); err != nil {
		return err
	}
	nv := version{present: true, ts: ts, keyLen: len(ek), valLen: len(raw)}
	ms.addVersion(nv)
	ms.newestChanged(old, nv)
	oldLockSize := 0
	if st.lock != nil {
		oldLockSize = st.lock.size
	}
	newLockSize := 0
	if txn != nil {
		meta := proto.Clone(txn).(*api.TxnMeta)
		meta.WriteTimestamp = api.NewTimestamp(ts)
		if newLockSize, err = putLock(rw, key, &api.LockRecord{Txn: meta, History: history}); err != nil {
			return err
		}
	}
	ms.lockChanged(oldLockSize, newLockSize)
	return nil
}

// checkReplay handles a write of a sequence the intent already holds.
func checkReplay(key []byte, lk *lockInfo, provRaw []byte, seq int32, raw []byte) error {
	if seq == lk.rec.Txn.GetSequence() {
		if bytes.Equal(provRaw, raw) {
			return nil
		}
	} else {
		for _, h := range lk.rec.GetHistory() {
			if h.GetSequence() == seq {
				if bytes.Equal(h.GetValue(), raw) {
					return nil
				}
				break
			}
		}
	}
	return fmt.Errorf("%w: %s sequence %d", ErrSequenceReplayMismatch, keys.Pretty(key), seq)
}

// DeleteRangeOptions name the writing transaction (nil for a committed
// write) and what it must not see, and limit the keys deleted.
type DeleteRangeOptions struct {
	Txn            *api.TxnMeta
	IgnoredSeqNums []*api.SeqRange
	// MaxKeys bounds the keys deleted (0 = all); the rest is left for a
	// resumed call.
	MaxKeys int64
}

// DeleteRange writes a tombstone at ts on every key of [start, end) that is
// live at ts (for a transaction, as it sees it), up to o.MaxKeys. It fails,
// writing nothing, like a locking scan: *api.WriteTooOldError for a
// committed version at or above ts anywhere in the span, one
// *api.LockConflictError for other transactions' intents. It returns the
// deleted keys and, if maxKeys stopped it, where to resume.
//
// Tombstones are point writes, O(live keys); Pebble range keys would make it
// O(1) but every reader would have to merge them.
func DeleteRange(rw ReadWriter, ms *Stats, start, end []byte, ts hlc.Timestamp, o DeleteRangeOptions) (deleted [][]byte, resumeKey []byte, err error) {
	res, err := Scan(rw, start, end, ts, ReadOptions{Txn: o.Txn, IgnoredSeqNums: o.IgnoredSeqNums,
		FailOnMoreRecent: true, MaxKeys: o.MaxKeys}, false)
	if err != nil {
		return nil, nil, err
	}
	for _, kv := range res.KVs {
		if err := Delete(rw, ms, kv.Key, ts, o.Txn); err != nil {
			return nil, nil, err
		}
		deleted = append(deleted, kv.Key)
	}
	return deleted, res.ResumeKey, nil
}
