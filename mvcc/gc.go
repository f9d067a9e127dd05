package mvcc

import (
	"bytes"

	"github.com/cockroachdb/pebble/v2"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
)

// GC removes the versions of keys in [start, end) that no read at or above
// threshold can see: for each key, every committed version older than its
// newest committed version at or below threshold, and that version too if
// it is a tombstone. Versions above threshold and intents are never touched.
// After GC, reads at timestamps >= threshold return what they returned
// before; reads below threshold must be refused by the caller (the range
// keeps its GC threshold: the Low-Water Mark). It returns the number of
// versions removed.
func GC(rw ReadWriter, ms *Stats, start, end []byte, threshold hlc.Timestamp) (int64, error) {
	if err := checkSpan(start, end); err != nil {
		return 0, err
	}
	if err := checkTS(threshold); err != nil {
		return 0, err
	}
	locks, err := scanLocks(rw, start, end)
	if err != nil {
		return 0, err
	}
	lc := lockCursor{locks: locks}
	it, err := rw.NewIter(&pebble.IterOptions{
		LowerBound: keys.EncodeEngineKey(start, hlc.Timestamp{}),
		UpperBound: keys.EncodeEngineKey(end, hlc.Timestamp{}),
	})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	var removed int64
	var key []byte
	var doomed []version
	for valid := it.First(); valid; {
		k, _, err := keys.DecodeEngineKey(it.Key())
		if err != nil {
			return removed, err
		}
		key = append(key[:0], k...)
		lk := lc.at(key)
		doomed = doomed[:0]
		kept := 0      // versions of key that stay
		found := false // reached the newest committed version <= threshold
		for ; valid; valid = it.Next() {
			k, ts, err := keys.DecodeEngineKey(it.Key())
			if err != nil {
				return removed, err
			}
			if !bytes.Equal(k, key) {
				break
			}
			v := version{present: true, ts: ts, keyLen: len(it.Key()), valLen: len(it.Value())}
			switch {
			case (lk != nil && ts == lk.provTS) || threshold.Less(ts):
				kept++
			case !found:
				found = true
				if v.valLen > 0 {
					kept++
				} else {
					doomed = append(doomed, v)
				}
			default:
				doomed = append(doomed, v)
			}
		}
		for _, v := range doomed {
			if err := rw.Delete(keys.EncodeEngineKey(key, v.ts), nil); err != nil {
				return removed, err
			}
			ms.removeVersion(v)
			removed++
		}
		if kept == 0 && len(doomed) > 0 {
			// Only a tombstone and what it shadowed: the key is gone. Its
			// newest version was a tombstone, so liveness is unchanged.
			ms.newestChanged(doomed[0], version{})
		}
	}
	return removed, it.Error()
}
