package mvcc

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
)

func ukey(i int) []byte { return keys.UserKey(fmt.Appendf(nil, "k%04d", i)) }

// TestDurabilityOnDisk writes with Sync on the real filesystem, closes,
// reopens and reads everything back: values, an intent and the stats.
func TestDurabilityOnDisk(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ms Stats
	b := e.NewBatch()
	for i := range 100 {
		if err := Put(b, &ms, ukey(i), hlc.Timestamp{WallTime: 10}, fmt.Appendf(nil, "v%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	txn := &api.TxnMeta{Id: []byte("txn-1"), WriteTimestamp: api.NewTimestamp(hlc.Timestamp{WallTime: 20})}
	if err := Put(b, &ms, ukey(7), txn.WriteTS(), []byte("provisional"), txn); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for i := range 100 {
		v, ok, err := Get(e.DB(), ukey(i), hlc.Timestamp{WallTime: 15}, ReadOptions{})
		if err != nil || !ok || string(v.RawBytes) != fmt.Sprintf("v%d", i) {
			t.Fatalf("key %d after reopen: %q %t %v", i, v.RawBytes, ok, err)
		}
	}
	if v, ok, err := Get(e.DB(), ukey(7), hlc.Timestamp{WallTime: 20}, ReadOptions{Txn: txn}); err != nil || !ok || string(v.RawBytes) != "provisional" {
		t.Fatalf("intent after reopen: %q %t %v", v.RawBytes, ok, err)
	}
	got, err := ComputeStats(e.DB(), keys.UserSpanStart, keys.UserSpanEnd)
	if err != nil || got != ms {
		t.Fatalf("stats after reopen %s (%v), before %s", got, err, ms)
	}
}

// TestCrashKeepsSynced crashes a store (keeping only what was fsynced) after
// a synced and an unsynced batch: the synced one survives whole.
func TestCrashKeepsSynced(t *testing.T) {
	fs := vfs.NewCrashableMem()
	e, err := Open("db", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	write := func(from, to int, opts *pebble.WriteOptions) {
		b := e.NewBatch()
		defer b.Close()
		for i := from; i < to; i++ {
			if err := Put(b, nil, ukey(i), hlc.Timestamp{WallTime: 10}, []byte("v"), nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(opts); err != nil {
			t.Fatal(err)
		}
	}
	write(0, 50, pebble.Sync)
	write(50, 100, pebble.NoSync)
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e, err = Open("db", Options{FS: crashed})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	res, err := Scan(e.DB(), keys.UserSpanStart, keys.UserSpanEnd, hlc.Timestamp{WallTime: 10}, ReadOptions{}, false)
	if err != nil {
		t.Fatal(err)
	}
	// The unsynced batch is lost (with this FS it always is) or, if Pebble
	// happened to sync it, whole: never partly, never the synced one.
	if len(res.KVs) != 50 && len(res.KVs) != 100 {
		t.Fatalf("after the crash %d keys survived, want the 50 synced (or all 100)", len(res.KVs))
	}
	for i, kv := range res.KVs {
		if string(kv.Key) != string(ukey(i)) {
			t.Fatalf("key %d is %q", i, kv.Key)
		}
	}
}
