package mvcc

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
)

// TestBatchReadsOwnWrites: ranges evaluates a whole command in one indexed
// batch, so later operations in the batch must see earlier ones, and
// nothing is visible outside until commit.
func TestBatchReadsOwnWrites(t *testing.T) {
	e, err := Open("", Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	txn := &api.TxnMeta{Id: []byte("t"), WriteTimestamp: api.NewTimestamp(hlc.Timestamp{WallTime: 10})}
	b := e.NewBatch()
	defer b.Close()
	var ms Stats
	for i := range 3 {
		if err := Put(b, &ms, ukey(i), txn.WriteTS(), []byte("v"), txn); err != nil {
			t.Fatal(err)
		}
	}
	if v, ok, err := Get(b, ukey(1), txn.WriteTS(), ReadOptions{Txn: txn}); err != nil || !ok || string(v.RawBytes) != "v" {
		t.Fatalf("batch read of own intent: %q %t %v", v.RawBytes, ok, err)
	}
	if _, _, err := Get(b, ukey(1), hlc.Timestamp{WallTime: 20}, ReadOptions{}); err == nil {
		t.Fatal("another reader in the batch saw no conflict")
	}
	if res, err := Scan(e.DB(), keys.UserSpanStart, keys.UserSpanEnd, hlc.Timestamp{WallTime: 20}, ReadOptions{}, false); err != nil || len(res.KVs) != 0 {
		t.Fatalf("uncommitted batch visible outside: %v %v", res.KVs, err)
	}
	n, _, err := ResolveIntentRange(b, &ms, keys.UserSpanStart, keys.UserSpanEnd,
		LockUpdate{Txn: txn, Status: api.TransactionStatus_COMMITTED}, 0)
	if err != nil || n != 3 {
		t.Fatalf("resolved %d: %v", n, err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	res, err := Scan(e.DB(), keys.UserSpanStart, keys.UserSpanEnd, hlc.Timestamp{WallTime: 20}, ReadOptions{}, false)
	if err != nil || len(res.KVs) != 3 {
		t.Fatalf("after commit: %v %v", res.KVs, err)
	}
	if got, _ := ComputeStats(e.DB(), keys.UserSpanStart, keys.UserSpanEnd); got != ms || ms.IntentCount != 0 || ms.LiveCount != 3 {
		t.Fatalf("stats %s, recomputed %s", ms, got)
	}
}
