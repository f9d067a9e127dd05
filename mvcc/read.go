package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
)

// ReadOptions tune Get and Scan.
type ReadOptions struct {
	// Txn is the reading transaction, or nil. A transaction sees its own
	// intents of its current epoch as of its Sequence (later writes of the
	// same transaction are invisible; earlier ones come from the intent's
	// history).
	Txn *api.TxnMeta
	// IgnoredSeqNums lists the reader's sequence numbers rolled back by
	// savepoints: their writes are invisible to it.
	IgnoredSeqNums []*api.SeqRange
	// UncertaintyLimit, when above the read timestamp, makes a committed
	// version (value or tombstone) in (ts, UncertaintyLimit] fail the read
	// with *api.ReadWithinUncertaintyError, and another transaction's intent
	// in that window a lock conflict.
	UncertaintyLimit hlc.Timestamp
	// FailOnMoreRecent is for locking reads (and DeleteRange): a committed
	// version at or above ts fails with *api.WriteTooOldError, and any other
	// transaction's intent, whatever its timestamp, is a conflict.
	FailOnMoreRecent bool
	// MaxKeys and TargetBytes limit a scan (0 = no limit): it stops after
	// MaxKeys results, or after the result that makes the key and value bytes
	// reach TargetBytes (so at least one result is returned), and reports
	// where to resume.
	MaxKeys     int64
	TargetBytes int64
}

// Value is a value read at a timestamp.
type Value struct {
	// RawBytes is the user's value (possibly empty, never a tombstone).
	RawBytes []byte
	// Timestamp is the version's timestamp (the provisional timestamp for an
	// intent the reader wrote).
	Timestamp hlc.Timestamp
}

// KeyValue is one scan result.
type KeyValue struct {
	Key   []byte
	Value Value
}

// ScanResult is what Scan returns.
type ScanResult struct {
	KVs []KeyValue
	// ResumeKey is set when a limit stopped the scan early: a forward scan
	// resumes at [ResumeKey, end), a reverse one at [start, ResumeKey)
	// (ResumeKey is then an exclusive end).
	ResumeKey []byte
	NumBytes  int64
}

// reader holds the per-operation read state shared by Get and Scan.
type reader struct {
	ts     hlc.Timestamp
	opts   *ReadOptions
	seekTS hlc.Timestamp // max(ts, uncertainty limit): nothing above matters
	// conflicts collects other transactions' locks met by a scan.
	conflicts []*api.Lock
	// tooOld is the largest WriteTooOld timestamp met (FailOnMoreRecent).
	tooOld    hlc.Timestamp
	tooOldKey []byte
}

func newReader(ts hlc.Timestamp, opts *ReadOptions) reader {
	return reader{ts: ts, opts: opts, seekTS: ts.Forward(opts.UncertaintyLimit)}
}

// err returns the error a finished read must report, conflicts first.
func (rd *reader) err() error {
	if len(rd.conflicts) > 0 {
		return &api.LockConflictError{Locks: rd.conflicts}
	}
	if !rd.tooOld.IsEmpty() {
		return &api.WriteTooOldError{Key: rd.tooOldKey, Timestamp: api.NewTimestamp(rd.ts), ActualTimestamp: api.NewTimestamp(rd.tooOld)}
	}
	return nil
}

var errStaleEpoch = errors.New("mvcc: intent of a newer epoch than the reader's")

// readKey reads key with the iterator positioned at key's newest version
// (it must have one) and lk its lock, if any. It returns the stored value
// and its timestamp, or ok=false when nothing is visible; the value is only
// valid until the iterator moves. A conflicting lock or a too-recent
// version is recorded in rd and reads as invisible; uncertainty is returned
// as an error at once. On return the iterator is at some version of key or
// past it.
func (rd *reader) readKey(it *pebble.Iterator, key []byte, lk *lockInfo) (raw []byte, vts hlc.Timestamp, ok bool, err error) {
	o := rd.opts
	if lk != nil {
		if !lk.isTxn(o.Txn) {
			if o.FailOnMoreRecent || lk.provTS.LessEq(rd.seekTS) {
				rd.conflicts = append(rd.conflicts, &api.Lock{Key: slices.Clone(key), Txn: lk.rec.Txn})
				return nil, hlc.Timestamp{}, false, nil
			}
		} else if e := lk.rec.Txn.GetEpoch(); e == o.Txn.GetEpoch() {
			prov, err := provisionalValue(it, key, lk)
			if err != nil {
				return nil, hlc.Timestamp{}, false, err
			}
			if v, ok := ownValue(lk, prov, o.Txn.GetSequence(), o.IgnoredSeqNums); ok {
				return v, lk.provTS, true, nil
			}
		} else if e > o.Txn.GetEpoch() {
			return nil, hlc.Timestamp{}, false, fmt.Errorf("%w: %s", errStaleEpoch, keys.Pretty(key))
		}
	} else if !o.FailOnMoreRecent {
		// Skip versions above everything this read cares about.
		if _, ts, _ := keys.DecodeEngineKey(it.Key()); rd.seekTS.Less(ts) {
			if !it.SeekGE(keys.EncodeEngineKey(key, rd.seekTS)) {
				return nil, hlc.Timestamp{}, false, it.Error()
			}
		}
	}
	for valid := it.Valid(); valid; valid = it.Next() {
		k, ts, err := keys.DecodeEngineKey(it.Key())
		if err != nil {
			return nil, hlc.Timestamp{}, false, err
		}
		if !bytes.Equal(k, key) {
			break
		}
		if lk != nil && ts == lk.provTS {
			continue // the provisional value, handled above
		}
		if rd.ts.LessEq(ts) && o.FailOnMoreRecent {
			if next := ts.Next(); rd.tooOld.Less(next) {
				rd.tooOld, rd.tooOldKey = next, slices.Clone(key)
			}
			return nil, hlc.Timestamp{}, false, nil
		}
		if rd.ts.Less(ts) {
			if ts.LessEq(o.UncertaintyLimit) {
				return nil, hlc.Timestamp{}, false, &api.ReadWithinUncertaintyError{
					Key: slices.Clone(key), ReadTimestamp: api.NewTimestamp(rd.ts),
					ValueTimestamp: api.NewTimestamp(ts), UncertaintyLimit: api.NewTimestamp(o.UncertaintyLimit)}
			}
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, hlc.Timestamp{}, false, err
		}
		if len(v) == 0 {
			return nil, ts, false, nil // tombstone
		}
		return v, ts, true, nil
	}
	return nil, hlc.Timestamp{}, false, it.Error()
}

// provisionalValue returns the provisional value of lk, which the iterator
// is positioned on (an intent is always its key's newest version). The
// result aliases the iterator.
func provisionalValue(it *pebble.Iterator, key []byte, lk *lockInfo) ([]byte, error) {
	if !it.Valid() {
		if err := it.Error(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("mvcc: intent on %s at %s has no provisional value", keys.Pretty(key), lk.provTS)
	}
	k, ts, err := keys.DecodeEngineKey(it.Key())
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(k, key) || ts != lk.provTS {
		return nil, fmt.Errorf("mvcc: intent on %s at %s has no provisional value (found %s)",
			keys.Pretty(key), lk.provTS, keys.PrettyEngineKey(it.Key()))
	}
	return it.ValueAndErr()
}

func checkReadTS(ts hlc.Timestamp, opts *ReadOptions) error {
	if err := checkTS(ts); err != nil {
		return err
	}
	return checkTS(opts.UncertaintyLimit)
}

// Get reads the newest version of key visible at ts. A tombstone or no
// version gives ok=false. Errors: *api.LockConflictError for another
// transaction's intent at or below ts (or the uncertainty limit, or at all
// with FailOnMoreRecent), *api.ReadWithinUncertaintyError,
// *api.WriteTooOldError with FailOnMoreRecent.
func Get(r Reader, key []byte, ts hlc.Timestamp, opts ReadOptions) (Value, bool, error) {
	if err := checkReadTS(ts, &opts); err != nil {
		return Value{}, false, err
	}
	it, err := r.NewIter(nil)
	if err != nil {
		return Value{}, false, err
	}
	defer it.Close()
	// One iterator for both lookups: the lock record, then the versions.
	lk, err := seekLock(it, key)
	if err != nil {
		return Value{}, false, err
	}
	rd := newReader(ts, &opts)
	seek := hlc.Timestamp{} // the whole key: its newest version first
	if lk == nil && !opts.FailOnMoreRecent {
		seek = rd.seekTS
	}
	if !it.SeekPrefixGE(keys.EncodeEngineKey(key, seek)) && lk == nil {
		return Value{}, false, it.Error()
	}
	raw, vts, ok, err := rd.readKey(it, key, lk)
	if err != nil {
		return Value{}, false, err
	}
	if err := rd.err(); err != nil {
		return Value{}, false, err
	}
	if !ok {
		return Value{}, false, nil
	}
	v, live, err := decodeValue(raw)
	if err != nil || !live {
		return Value{}, false, err
	}
	return Value{RawBytes: slices.Clone(v), Timestamp: vts}, true, nil
}

// scanLocks reads every lock record of keys in [start, end), ascending.
func scanLocks(r Reader, start, end []byte) ([]*lockInfo, error) {
	ls, le := keys.LockTableSpan(start, end)
	it, err := r.NewIter(&pebble.IterOptions{
		LowerBound: keys.EncodeEngineKey(ls, hlc.Timestamp{}),
		UpperBound: keys.EncodeEngineKey(le, hlc.Timestamp{}),
	})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var locks []*lockInfo
	for ok := it.First(); ok; ok = it.Next() {
		lockKey, _, err := keys.DecodeEngineKey(it.Key())
		if err != nil {
			return nil, err
		}
		key, err := keys.DecodeLockTableKey(lockKey)
		if err != nil {
			return nil, err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		lk, err := decodeLock(slices.Clone(key), it.Key(), v)
		if err != nil {
			return nil, err
		}
		locks = append(locks, lk)
	}
	return locks, it.Error()
}

// lockCursor walks a sorted lock list alongside a scan.
type lockCursor struct {
	locks   []*lockInfo
	reverse bool
}

// at returns the lock of key, consuming locks the scan has passed.
func (c *lockCursor) at(key []byte) *lockInfo {
	for len(c.locks) > 0 {
		var l *lockInfo
		if c.reverse {
			l = c.locks[len(c.locks)-1]
		} else {
			l = c.locks[0]
		}
		cmp := bytes.Compare(l.key, key)
		if c.reverse {
			cmp = -cmp
		}
		if cmp > 0 {
			return nil
		}
		if c.reverse {
			c.locks = c.locks[:len(c.locks)-1]
		} else {
			c.locks = c.locks[1:]
		}
		if cmp == 0 {
			return l
		}
	}
	return nil
}

// Scan reads the keys of [start, end) visible at ts, ascending (or
// descending with reverse), with Get's semantics per key. Every lock
// conflict in the scanned part is reported in one *api.LockConflictError.
func Scan(r Reader, start, end []byte, ts hlc.Timestamp, opts ReadOptions, reverse bool) (ScanResult, error) {
	var res ScanResult
	if err := checkSpan(start, end); err != nil {
		return res, err
	}
	if err := checkReadTS(ts, &opts); err != nil {
		return res, err
	}
	locks, err := scanLocks(r, start, end)
	if err != nil {
		return res, err
	}
	lc := lockCursor{locks: locks, reverse: reverse}
	lower, upper := keys.EncodeEngineKey(start, hlc.Timestamp{}), keys.EncodeEngineKey(end, hlc.Timestamp{})
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return res, err
	}
	defer it.Close()
	rd := newReader(ts, &opts)
	if opts.MaxKeys > 0 {
		res.KVs = make([]KeyValue, 0, min(opts.MaxKeys, 1024))
	} else {
		res.KVs = make([]KeyValue, 0, 32)
	}
	// arena holds the keys and values returned, copied out of the iterator
	// with one allocation per few KiB instead of two per result.
	var arena []byte
	copyOut := func(b []byte) []byte {
		if cap(arena)-len(arena) < len(b) {
			arena = make([]byte, 0, max(4096, len(b)))
		}
		arena = append(arena, b...)
		return arena[len(arena)-len(b) : len(arena) : len(arena)]
	}
	var valid bool
	if reverse {
		valid = it.Last()
	} else {
		valid = it.First()
	}
	var key []byte
	for valid {
		k, _, err := keys.DecodeEngineKey(it.Key())
		if err != nil {
			return res, err
		}
		key = append(key[:0], k...)
		if (opts.MaxKeys > 0 && int64(len(res.KVs)) >= opts.MaxKeys) ||
			(opts.TargetBytes > 0 && res.NumBytes >= opts.TargetBytes) {
			if reverse {
				res.ResumeKey = keys.Next(key)
			} else {
				res.ResumeKey = slices.Clone(key)
			}
			break
		}
		if reverse {
			// Go to the key's newest version.
			if !it.SeekGE(keys.EncodeEngineKey(key, hlc.Timestamp{})) {
				return res, fmt.Errorf("mvcc: lost %s while scanning: %w", keys.Pretty(key), it.Error())
			}
		}
		raw, vts, ok, err := rd.readKey(it, key, lc.at(key))
		if err != nil {
			return ScanResult{}, err
		}
		if ok {
			v, live, err := decodeValue(raw)
			if err != nil {
				return ScanResult{}, err
			}
			if live {
				kv := KeyValue{Key: copyOut(key), Value: Value{RawBytes: copyOut(v), Timestamp: vts}}
				res.KVs = append(res.KVs, kv)
				res.NumBytes += int64(len(kv.Key) + len(v))
			}
		}
		// Move to the next key.
		if reverse {
			valid = it.SeekLT(keys.EncodeEngineKey(key, hlc.Timestamp{}))
		} else if it.Valid() {
			// Usually the key has one version: try Next before NextPrefix.
			for i := 0; valid && i < 2; i++ {
				k, _, err := keys.DecodeEngineKey(it.Key())
				if err != nil || !bytes.Equal(k, key) {
					break
				}
				if i == 0 {
					valid = it.Next()
				} else {
					valid = it.NextPrefix()
				}
			}
		} else {
			valid = false
		}
	}
	if err := it.Error(); err != nil {
		return res, err
	}
	if err := rd.err(); err != nil {
		return ScanResult{}, err
	}
	return res, nil
}
