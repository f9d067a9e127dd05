package mvcc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"

	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/internal/leakcheck"
	"github.com/meridiandb/meridian/keys"
)

// Benchmarks compare MVCC operations with raw Pebble operations on the same
// store (same keys, comparer and LSM shape), so the ratio is the MVCC
// overhead. Stores of 1M keys take seconds to build, so each is built once
// per process (by writing SSTs directly and ingesting them), warmed into a
// block cache big enough to hold them, and shared; they live under one temp
// dir removed by TestMain.

const (
	benchKeys   = 1_000_000
	benchValLen = 32
)

var (
	benchMu     sync.Mutex
	benchDir    string
	benchStores = map[string]*Engine{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, e := range benchStores {
		_ = e.Close()
	}
	if benchDir != "" {
		_ = os.RemoveAll(benchDir)
	}
	// Every Engine a test opens is closed, and Close must stop all of
	// Pebble's goroutines.
	if code == 0 {
		if err := leakcheck.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "leakcheck:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func benchKey(i int) []byte { return keys.UserKey(fmt.Appendf(nil, "key-%08d", i)) }

func versionTS(j int) hlc.Timestamp { return hlc.Timestamp{WallTime: int64(j+1) * 10} }

// benchStore returns a store of benchKeys keys with the given number of
// versions each (version j at versionTS(j)), built on first use.
func benchStore(b *testing.B, name string, versions int) *Engine {
	benchMu.Lock()
	defer benchMu.Unlock()
	if e, ok := benchStores[name]; ok {
		return e
	}
	if benchDir == "" {
		d, err := os.MkdirTemp("", "mvcc-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchDir = d
	}
	e, err := Open(filepath.Join(benchDir, name), Options{CacheSize: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	val := encodeValue(make([]byte, benchValLen))
	const perSST = 100_000
	var paths []string
	for lo := 0; lo < benchKeys; lo += perSST {
		path := filepath.Join(benchDir, fmt.Sprintf("%s-%d.sst", name, lo))
		f, err := e.fs.Create(path, "bench")
		if err != nil {
			b.Fatal(err)
		}
		w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), e.opts.MakeWriterOptions(6, e.db.TableFormat()))
		var kbuf []byte
		for i := lo; i < lo+perSST; i++ {
			for j := versions - 1; j >= 0; j-- {
				kbuf = keys.AppendEngineKey(kbuf[:0], benchKey(i), versionTS(j))
				if err := w.Set(kbuf, val); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		paths = append(paths, path)
	}
	if err := e.db.Ingest(context.Background(), paths); err != nil {
		b.Fatal(err)
	}
	// Warm the block cache (sized to hold the store) with one full pass, so
	// whichever of the MVCC and raw benchmarks runs first is not the one
	// paying for cold blocks.
	it, err := e.db.NewIter(nil)
	if err != nil {
		b.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		_ = it.Value()
	}
	if err := it.Close(); err != nil {
		b.Fatal(err)
	}
	benchStores[name] = e
	return e
}

// BenchmarkGet reads a random key at a timestamp above every version: MVCC
// Get (lock-table lookup, then a prefix seek to the newest visible version)
// against a raw Pebble Get of that version's exact engine key.
func BenchmarkGet(b *testing.B) {
	for _, versions := range []int{1, 10} {
		name := fmt.Sprintf("versions=%d", versions)
		readTS := hlc.Timestamp{WallTime: 1 << 40}
		b.Run(name+"/mvcc", func(b *testing.B) {
			e := benchStore(b, name, versions)
			rng := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			for b.Loop() {
				v, ok, err := Get(e.db, benchKey(rng.IntN(benchKeys)), readTS, ReadOptions{})
				if err != nil || !ok || len(v.RawBytes) != benchValLen {
					b.Fatalf("get: %t %v", ok, err)
				}
			}
		})
		b.Run(name+"/raw", func(b *testing.B) {
			e := benchStore(b, name, versions)
			rng := rand.New(rand.NewPCG(1, 2))
			newest := versionTS(versions - 1)
			b.ReportAllocs()
			for b.Loop() {
				v, closer, err := e.db.Get(keys.EncodeEngineKey(benchKey(rng.IntN(benchKeys)), newest))
				if err != nil || len(v) != benchValLen+1 {
					b.Fatalf("raw get: %v", err)
				}
				_ = closer.Close()
			}
		})
	}
}

// BenchmarkScan reads 100 consecutive keys from a random start: MVCC Scan
// against a raw Pebble iterator over the same 100 entries.
func BenchmarkScan(b *testing.B) {
	const n = 100
	readTS := hlc.Timestamp{WallTime: 1 << 40}
	b.Run("mvcc", func(b *testing.B) {
		e := benchStore(b, "versions=1", 1)
		rng := rand.New(rand.NewPCG(5, 6))
		b.ReportAllocs()
		for b.Loop() {
			i := rng.IntN(benchKeys - n)
			res, err := Scan(e.db, benchKey(i), benchKey(i+n), readTS, ReadOptions{}, false)
			if err != nil || len(res.KVs) != n {
				b.Fatalf("scan: %d %v", len(res.KVs), err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		e := benchStore(b, "versions=1", 1)
		rng := rand.New(rand.NewPCG(5, 6))
		b.ReportAllocs()
		for b.Loop() {
			i := rng.IntN(benchKeys - n)
			it, err := e.db.NewIter(&pebble.IterOptions{
				LowerBound: keys.EncodeEngineKey(benchKey(i), hlc.Timestamp{}),
				UpperBound: keys.EncodeEngineKey(benchKey(i+n), hlc.Timestamp{}),
			})
			if err != nil {
				b.Fatal(err)
			}
			c := 0
			for ok := it.First(); ok; ok = it.Next() {
				_ = it.Value()
				c++
			}
			_ = it.Close()
			if c != n {
				b.Fatalf("raw scan: %d", c)
			}
		}
	})
}

// putWall hands out ever higher write timestamps, across runs in a process.
var putWall atomic.Int64

func init() { putWall.Store(1 << 30) }

// BenchmarkPut runs last: its writes leave the "put" store compacting in
// the background, which would slow whatever ran after it.
//
// BenchmarkPut writes a new version of a random existing key, 100 writes
// per unsynced batch: MVCC Put (lock lookup, newest-version seek, Set)
// against a raw Get + Set of the same engine key in the same kind of batch.
func BenchmarkPut(b *testing.B) {
	const perBatch = 100
	val := make([]byte, benchValLen)
	run := func(b *testing.B, op func(batch *pebble.Batch, key []byte, ts hlc.Timestamp)) {
		e := benchStore(b, "put", 1)
		rng := rand.New(rand.NewPCG(3, 4))
		batch := e.NewBatch()
		n := 0
		b.ReportAllocs()
		for b.Loop() {
			op(batch, benchKey(rng.IntN(benchKeys)), hlc.Timestamp{WallTime: putWall.Add(1)})
			if n++; n == perBatch {
				if err := batch.Commit(pebble.NoSync); err != nil {
					b.Fatal(err)
				}
				batch.Close()
				batch, n = e.NewBatch(), 0
			}
		}
		batch.Close()
	}
	b.Run("mvcc", func(b *testing.B) {
		run(b, func(batch *pebble.Batch, key []byte, ts hlc.Timestamp) {
			if err := Put(batch, nil, key, ts, val, nil); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("raw", func(b *testing.B) {
		raw := encodeValue(val)
		run(b, func(batch *pebble.Batch, key []byte, ts hlc.Timestamp) {
			ek := keys.EncodeEngineKey(key, ts)
			if _, closer, err := batch.Get(ek); err == nil {
				_ = closer.Close()
			} else if !errors.Is(err, pebble.ErrNotFound) {
				b.Fatal(err)
			}
			if err := batch.Set(ek, raw, nil); err != nil {
				b.Fatal(err)
			}
		})
	})
}
