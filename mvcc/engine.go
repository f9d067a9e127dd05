package mvcc

import (
	"bytes"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
)

// Reader is what the read operations need: *pebble.DB, *pebble.Snapshot and
// an indexed *pebble.Batch all satisfy it. Every operation uses one
// iterator (a lock-table seek, then the key's versions), so a point Get is
// not part of it.
type Reader interface {
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// Writer is what the write operations add: an indexed *pebble.Batch
// satisfies it (and so does *pebble.DB, for tests).
type Writer interface {
	Set(key, value []byte, o *pebble.WriteOptions) error
	Delete(key []byte, o *pebble.WriteOptions) error
}

// ReadWriter reads its own writes: an indexed *pebble.Batch. Every write
// operation reads first (locks, newer versions), so writes need one.
type ReadWriter interface {
	Reader
	Writer
}

// Options configure Open.
type Options struct {
	// FS is the filesystem; nil means the real one. Unit tests pass
	// vfs.NewMem().
	FS vfs.FS
	// CacheSize is the block cache size in bytes; 0 means 64 MiB.
	CacheSize int64
	// MemTableSize is the size of each memtable in bytes; 0 means
	// DefaultMemTableSize. Pebble starts with a small memtable and doubles
	// it up to this size, so a mostly idle store does not pay for it.
	MemTableSize uint64
	// Logger receives Pebble's log output; nil discards informational
	// messages (errors still reach stderr).
	Logger pebble.Logger
}

// Engine is one Pebble store holding MVCC data, lock records and, written by
// raftgroup through DB(), range-local state and raft logs.
type Engine struct {
	db   *pebble.DB
	opts *pebble.Options
	fs   vfs.FS
	dir  string
}

// FormatMajorVersion is the on-disk format Open creates and upgrades to:
// the newest stable one, which ingests SSTs (with excises) and writes
// columnar blocks.
const FormatMajorVersion = pebble.FormatNewest

type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{}) {}
func (quietLogger) Errorf(format string, args ...interface{}) {
	pebble.DefaultLogger.Errorf(format, args...)
}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	pebble.DefaultLogger.Fatalf(format, args...)
}

// DefaultMemTableSize is the memtable size of an Engine: every raft log
// entry is written to the memtable and, with a small one, flushed to L0
// again and again before its truncation deletes it; 64 MiB memtables let
// the write-heavy raft log churn in memory (Pebble's default is 4 MiB).
const DefaultMemTableSize = 64 << 20

// Open opens (creating if needed) the store in dir with keys.Comparer.
func Open(dir string, o Options) (*Engine, error) {
	fs := o.FS
	if fs == nil {
		fs = vfs.Default
	}
	cacheSize := o.CacheSize
	if cacheSize == 0 {
		cacheSize = 64 << 20
	}
	memTable := o.MemTableSize
	if memTable == 0 {
		memTable = DefaultMemTableSize
	}
	cache := pebble.NewCache(cacheSize)
	defer cache.Unref()
	popts := &pebble.Options{
		FS:                 fs,
		Comparer:           keys.Comparer,
		FormatMajorVersion: FormatMajorVersion,
		Cache:              cache,
		MemTableSize:       memTable,
		Logger:             o.Logger,
	}
	if popts.Logger == nil {
		popts.Logger = quietLogger{}
	}
	for i := range popts.Levels {
		// Bloom filters on every level: Split makes them per key, so a
		// point read skips tables that hold no version of its key.
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	popts.EnsureDefaults()
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("mvcc: opening %q: %w", dir, err)
	}
	return &Engine{db: db, opts: popts, fs: fs, dir: dir}, nil
}

// DB returns the underlying Pebble store, for packages (raftgroup) that
// write range-local keys into the same batches. They must use keys'
// encoding and never write into the MVCC or lock-table keyspaces.
func (e *Engine) DB() *pebble.DB { return e.db }

// NewBatch returns an indexed batch: operations read their own writes in it,
// and nothing is visible to others until it is committed.
func (e *Engine) NewBatch() *pebble.Batch { return e.db.NewIndexedBatch() }

// Close closes the store. Unsynced writes may be lost.
func (e *Engine) Close() error {
	if err := e.db.Close(); err != nil {
		return fmt.Errorf("mvcc: closing: %w", err)
	}
	return nil
}

// checkSpan rejects an empty or inverted span (Pebble refuses inverted
// iterator bounds, and a node must not fail on a client's bad span).
func checkSpan(start, end []byte) error {
	if bytes.Compare(start, end) >= 0 {
		return fmt.Errorf("mvcc: empty span [%s, %s)", keys.Pretty(start), keys.Pretty(end))
	}
	return nil
}

// checkTS rejects timestamps the engine encoding cannot order (negative
// wall times; hlc never produces them, a client might).
func checkTS(ts hlc.Timestamp) error {
	if ts.WallTime < 0 || ts.Logical < 0 {
		return fmt.Errorf("mvcc: invalid timestamp %s", ts)
	}
	return nil
}
