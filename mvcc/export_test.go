package mvcc

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
)

type kv struct{ k, v []byte }

func exportAll(t *testing.T, r Reader, start, end []byte) []kv {
	var out []kv
	if err := ExportSpan(r, start, end, func(k, v []byte) error {
		out = append(out, kv{bytes.Clone(k), bytes.Clone(v)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSpanSnapshot ships a span (versions, tombstones, an intent) from one
// engine to another that holds stale data in the span and other data
// outside it: afterwards the span is an exact copy and the rest untouched.
func TestSpanSnapshot(t *testing.T) {
	open := func() *Engine {
		e, err := Open("", Options{FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	src, dst := open(), open()
	defer src.Close()
	defer dst.Close()
	start, end := ukey(100), ukey(200)
	txn := &api.TxnMeta{Id: []byte("t"), WriteTimestamp: api.NewTimestamp(hlc.Timestamp{WallTime: 50})}
	b := src.NewBatch()
	for i := 90; i < 210; i++ {
		for ts := int64(1); ts <= 3; ts++ {
			if err := Put(b, nil, ukey(i), hlc.Timestamp{WallTime: ts * 10}, fmt.Appendf(nil, "src%d@%d", i, ts), nil); err != nil {
				t.Fatal(err)
			}
		}
		if i%7 == 0 {
			if err := Delete(b, nil, ukey(i), hlc.Timestamp{WallTime: 40}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := Put(b, nil, ukey(150), txn.WriteTS(), []byte("intent"), txn); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	// The destination has stale data in the span (including a lock the
	// snapshot must remove) and its own data around it.
	b = dst.NewBatch()
	other := &api.TxnMeta{Id: []byte("o"), WriteTimestamp: api.NewTimestamp(hlc.Timestamp{WallTime: 5})}
	for _, i := range []int{50, 120, 199, 250} {
		if err := Put(b, nil, ukey(i), hlc.Timestamp{WallTime: 1}, []byte("dst"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := Put(b, nil, ukey(130), other.WriteTS(), []byte("stale intent"), other); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := dst.DB().Flush(); err != nil { // stale data in an SST too
		t.Fatal(err)
	}

	snap := src.DB().NewSnapshot()
	defer snap.Close()
	want := exportAll(t, snap, start, end)
	imp, err := dst.NewSpanImporter(start, end)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range want {
		if err := imp.Add(e.k, e.v); err != nil {
			t.Fatal(err)
		}
	}
	if err := imp.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}

	got := exportAll(t, dst.DB(), start, end)
	if len(got) != len(want) {
		t.Fatalf("imported %d entries, exported %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].k, want[i].k) || !bytes.Equal(got[i].v, want[i].v) {
			t.Fatalf("entry %d: %s, want %s", i, keys.PrettyEngineKey(got[i].k), keys.PrettyEngineKey(want[i].k))
		}
	}
	ws, _ := ComputeStats(snap, start, end)
	gs, _ := ComputeStats(dst.DB(), start, end)
	if ws != gs || ws.IntentCount != 1 {
		t.Fatalf("stats %s, source %s", gs, ws)
	}
	for _, i := range []int{50, 250} {
		if v, ok, err := Get(dst.DB(), ukey(i), hlc.Timestamp{WallTime: 100}, ReadOptions{}); err != nil || !ok || string(v.RawBytes) != "dst" {
			t.Fatalf("key %d outside the span: %q %t %v", i, v.RawBytes, ok, err)
		}
	}
	if v, _, err := Get(dst.DB(), ukey(120), hlc.Timestamp{WallTime: 25}, ReadOptions{}); err != nil || string(v.RawBytes) != "src120@2" {
		t.Fatalf("imported read: %q %v", v.RawBytes, err)
	}
	if _, _, err := Get(dst.DB(), ukey(150), hlc.Timestamp{WallTime: 60}, ReadOptions{}); err == nil {
		t.Fatal("imported intent does not conflict")
	}
}

func TestSpanImporterRejects(t *testing.T) {
	e, err := Open("", Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.NewSpanImporter(keys.LockTableKey(ukey(1)), ukey(2)); err == nil {
		t.Fatal("import of a local span accepted")
	}
	imp, err := e.NewSpanImporter(ukey(10), ukey(20))
	if err != nil {
		t.Fatal(err)
	}
	defer imp.Abort()
	if err := imp.Add(keys.EncodeEngineKey(ukey(30), hlc.Timestamp{WallTime: 1}), nil); err == nil {
		t.Fatal("key outside the span accepted")
	}
	if err := imp.Add(keys.EncodeEngineKey(ukey(12), hlc.Timestamp{WallTime: 1}), nil); err != nil {
		t.Fatal(err)
	}
	if err := imp.Add(keys.EncodeEngineKey(ukey(12), hlc.Timestamp{WallTime: 2}), nil); err == nil {
		t.Fatal("out-of-order key accepted")
	}
}
