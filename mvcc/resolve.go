package mvcc

import (
	"bytes"
	"fmt"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
	"google.golang.org/protobuf/proto"
)

// LockUpdate tells ResolveIntent what became of a transaction.
type LockUpdate struct {
	// Txn identifies the transaction (ID, epoch). Its WriteTimestamp is the
	// commit timestamp for COMMITTED and the pushed timestamp for PENDING.
	Txn *api.TxnMeta
	// Status: COMMITTED makes the intent a committed version at the later of
	// its timestamp and Txn.WriteTimestamp; ABORTED removes it; PENDING
	// moves it up to Txn.WriteTimestamp (a push) and keeps the lock.
	Status api.TransactionStatus
	// IgnoredSeqNums are the transaction's writes rolled back by
	// savepoints: the intent falls back to its newest write outside them,
	// or disappears if it has none.
	IgnoredSeqNums []*api.SeqRange
}

// ResolveIntent applies up to key's intent. It is idempotent: a key without
// an intent of up.Txn is left alone (resolved=false).
//
// An intent of an older epoch than up.Txn is removed when the transaction
// commits: the committed epoch did not write it.
func ResolveIntent(rw ReadWriter, ms *Stats, key []byte, up LockUpdate) (resolved bool, err error) {
	if err := checkTS(up.Txn.WriteTS()); err != nil {
		return false, err
	}
	st, err := loadKeyState(rw, key)
	if err != nil {
		return false, err
	}
	lk := st.lock
	if lk == nil || !lk.isTxn(up.Txn) {
		return false, nil
	}
	held := lk.rec.Txn
	remove := up.Status == api.TransactionStatus_ABORTED ||
		(up.Status == api.TransactionStatus_COMMITTED && held.GetEpoch() < up.Txn.GetEpoch())
	if up.Status == api.TransactionStatus_PENDING && held.GetEpoch() != up.Txn.GetEpoch() {
		return false, nil // a push of another epoch says nothing about this intent
	}
	// Savepoint rollbacks: find the newest write that survives.
	raw, history, seq := st.provRaw, lk.rec.GetHistory(), held.GetSequence()
	if !remove && seqIgnored(held.GetSequence(), up.IgnoredSeqNums) {
		remove = true
		for i := len(history) - 1; i >= 0; i-- {
			if !seqIgnored(history[i].GetSequence(), up.IgnoredSeqNums) {
				raw, seq, history, remove = history[i].GetValue(), history[i].GetSequence(), history[:i], false
				break
			}
		}
	}

	// Take the provisional value out.
	old := st.prov
	ms.removeVersion(old)
	newest := st.committed
	var newTS hlc.Timestamp
	if !remove {
		newTS = lk.provTS.Forward(up.Txn.WriteTS())
		ek := keys.EncodeEngineKey(key, newTS)
		newest = version{present: true, ts: newTS, keyLen: len(ek), valLen: len(raw)}
		ms.addVersion(newest)
	}
	if remove || newTS != old.ts {
		if err := rw.Delete(keys.EncodeEngineKey(key, old.ts), nil); err != nil {
			return false, err
		}
	}
	if !remove && (newTS != old.ts || !bytes.Equal(raw, st.provRaw)) {
		if err := rw.Set(keys.EncodeEngineKey(key, newTS), raw, nil); err != nil {
			return false, err
		}
	}
	ms.newestChanged(old, newest)

	if up.Status == api.TransactionStatus_PENDING && !remove {
		rec := &api.LockRecord{Txn: proto.Clone(held).(*api.TxnMeta), History: history}
		rec.Txn.WriteTimestamp = api.NewTimestamp(newTS)
		rec.Txn.Sequence = seq
		size, err := putLock(rw, key, rec)
		if err != nil {
			return false, err
		}
		ms.lockChanged(lk.size, size)
		return true, nil
	}
	if err := deleteLock(rw, key); err != nil {
		return false, err
	}
	ms.lockChanged(lk.size, 0)
	return true, nil
}

// ResolveIntentRange resolves every intent of up.Txn on keys in [start,
// end), up to max (0 = all). It returns how many it resolved and, if max
// stopped it, the key to resume at.
func ResolveIntentRange(rw ReadWriter, ms *Stats, start, end []byte, up LockUpdate, max int64) (n int64, resumeKey []byte, err error) {
	if err := checkSpan(start, end); err != nil {
		return 0, nil, err
	}
	locks, err := scanLocks(rw, start, end)
	if err != nil {
		return 0, nil, err
	}
	for _, lk := range locks {
		if !lk.isTxn(up.Txn) {
			continue
		}
		if max > 0 && n >= max {
			return n, lk.key, nil
		}
		ok, err := ResolveIntent(rw, ms, lk.key, up)
		if err != nil {
			return n, nil, fmt.Errorf("mvcc: resolving %s: %w", keys.Pretty(lk.key), err)
		}
		if ok {
			n++
		}
	}
	return n, nil, nil
}
