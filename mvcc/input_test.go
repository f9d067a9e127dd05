package mvcc

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
	"google.golang.org/protobuf/proto"
)

// TestBadInput: spans, timestamps and keys a client could send give errors,
// never panics.
func TestBadInput(t *testing.T) {
	e, err := Open("", Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	b := e.NewBatch()
	defer b.Close()
	a, z := ukey(1), ukey(2)
	ts := hlc.Timestamp{WallTime: 10}
	neg := hlc.Timestamp{WallTime: -5}
	for name, err := range map[string]error{
		"inverted scan":        func() error { _, err := Scan(b, z, a, ts, ReadOptions{}, false); return err }(),
		"empty scan":           func() error { _, err := Scan(b, a, a, ts, ReadOptions{}, true); return err }(),
		"negative read ts":     func() error { _, _, err := Get(b, a, neg, ReadOptions{}); return err }(),
		"negative uncertainty": func() error { _, _, err := Get(b, a, ts, ReadOptions{UncertaintyLimit: neg}); return err }(),
		"negative write ts":    Put(b, nil, a, neg, []byte("v"), nil),
		"write without ts":     Put(b, nil, a, hlc.Timestamp{}, []byte("v"), nil),
		"write of a local key": Put(b, nil, keys.RangeLeaseKey(1), ts, []byte("v"), nil),
		"inverted gc":          func() error { _, err := GC(b, nil, z, a, ts); return err }(),
		"inverted resolve": func() error {
			_, _, err := ResolveIntentRange(b, nil, z, a, LockUpdate{Txn: &api.TxnMeta{}}, 0)
			return err
		}(),
		"inverted delete range": func() error { _, _, err := DeleteRange(b, nil, z, a, ts, DeleteRangeOptions{}); return err }(),
		"inverted stats":        func() error { _, err := ComputeStats(b, z, a); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzStoredRecords feeds garbage as stored values and lock records: the
// decoders return errors, and reads over a corrupt lock record fail
// cleanly.
func FuzzStoredRecords(f *testing.F) {
	good, _ := proto.Marshal(&api.LockRecord{Txn: &api.TxnMeta{Id: []byte("t"), WriteTimestamp: api.NewTimestamp(hlc.Timestamp{WallTime: 5})}})
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{valueTagBytes, 'x'})
	f.Add([]byte{0xff, 0x01})
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _, _ = decodeValue(raw)
		lk, err := decodeLock(ukey(1), lockEngineKey(ukey(1)), raw)
		if err == nil && lk.rec.GetTxn() == nil {
			t.Fatal("lock record without a transaction accepted")
		}
		e, err := Open("", Options{FS: vfs.NewMem(), CacheSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		b := e.NewBatch()
		defer b.Close()
		_ = b.Set(lockEngineKey(ukey(1)), raw, nil)
		_ = b.Set(keys.EncodeEngineKey(ukey(1), hlc.Timestamp{WallTime: 5}), raw, nil)
		_ = b.Set(keys.EncodeEngineKey(ukey(2), hlc.Timestamp{WallTime: 5}), raw, nil)
		_, _, _ = Get(b, ukey(1), hlc.Timestamp{WallTime: 9}, ReadOptions{Txn: &api.TxnMeta{Id: []byte("t")}})
		_, _ = Scan(b, ukey(0), ukey(3), hlc.Timestamp{WallTime: 9}, ReadOptions{}, false)
		_ = Put(b, nil, ukey(1), hlc.Timestamp{WallTime: 10}, []byte("v"), nil)
		_, _ = ResolveIntent(b, nil, ukey(1), LockUpdate{Txn: &api.TxnMeta{Id: []byte("t")}, Status: api.TransactionStatus_COMMITTED})
		_, _ = GC(b, nil, ukey(0), ukey(3), hlc.Timestamp{WallTime: 20})
	})
}
