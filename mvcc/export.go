package mvcc

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
)

// ExportSpan streams everything mvcc stores for [start, end) to fn: first
// the lock records of the span's keys, then every version of every key, each
// group in engine order, which is the order a SpanImporter (and an SST)
// needs. fn must copy what it keeps. The span must be addressable (at or
// above keys.LocalMax), so its lock records sort before its versions.
// Export from a snapshot (*pebble.Snapshot) for a consistent copy.
func ExportSpan(r Reader, start, end []byte, fn func(engineKey, value []byte) error) error {
	if err := checkAddressable(start, end); err != nil {
		return err
	}
	ls, le := keys.LockTableSpan(start, end)
	for _, span := range [][2][]byte{{ls, le}, {start, end}} {
		it, err := r.NewIter(&pebble.IterOptions{
			LowerBound: keys.EncodeEngineKey(span[0], hlc.Timestamp{}),
			UpperBound: keys.EncodeEngineKey(span[1], hlc.Timestamp{}),
		})
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			v, err := it.ValueAndErr()
			if err == nil {
				err = fn(it.Key(), v)
			}
			if err != nil {
				_ = it.Close()
				return err
			}
		}
		if err := it.Close(); err != nil {
			return err
		}
	}
	return nil
}

func checkAddressable(start, end []byte) error {
	if keys.Comparer.Compare(keys.EncodeEngineKey(start, hlc.Timestamp{}), keys.EncodeEngineKey(keys.LocalMax, hlc.Timestamp{})) < 0 ||
		keys.Comparer.Compare(keys.EncodeEngineKey(start, hlc.Timestamp{}), keys.EncodeEngineKey(end, hlc.Timestamp{})) >= 0 {
		return fmt.Errorf("mvcc: span [%s, %s) is empty or not addressable", keys.Pretty(start), keys.Pretty(end))
	}
	return nil
}

// SpanImporter builds an SST, in the engine's table format, from a stream
// produced by ExportSpan and ingests it. The SST also carries range
// deletions of the span and its lock records, so ingesting it replaces
// whatever the store held there, atomically: the replica's state is exactly
// the sender's.
type SpanImporter struct {
	e          *Engine
	path       string
	w          *sstable.Writer
	start, end []byte // engine keys of the MVCC span
	lockStart  []byte
	lockEnd    []byte
	last       []byte
	n          int
	done       bool
}

var importSeq atomic.Uint64

// NewSpanImporter starts an import of [start, end).
func (e *Engine) NewSpanImporter(start, end []byte) (*SpanImporter, error) {
	if err := checkAddressable(start, end); err != nil {
		return nil, err
	}
	dir := e.fs.PathJoin(e.dir, "import")
	if err := e.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mvcc: import dir: %w", err)
	}
	path := e.fs.PathJoin(dir, fmt.Sprintf("span-%d.sst", importSeq.Add(1)))
	f, err := e.fs.Create(path, "mvcc-import")
	if err != nil {
		return nil, fmt.Errorf("mvcc: creating %s: %w", path, err)
	}
	ls, le := keys.LockTableSpan(start, end)
	s := &SpanImporter{
		e: e, path: path,
		w:         sstable.NewWriter(objstorageprovider.NewFileWritable(f), e.opts.MakeWriterOptions(0, e.db.TableFormat())),
		start:     keys.EncodeEngineKey(start, hlc.Timestamp{}),
		end:       keys.EncodeEngineKey(end, hlc.Timestamp{}),
		lockStart: keys.EncodeEngineKey(ls, hlc.Timestamp{}),
		lockEnd:   keys.EncodeEngineKey(le, hlc.Timestamp{}),
	}
	// Range deletions first, in order; the SST's own points share its
	// sequence number and so are not deleted by them.
	if err := s.w.DeleteRange(s.lockStart, s.lockEnd); err != nil {
		s.Abort()
		return nil, err
	}
	if err := s.w.DeleteRange(s.start, s.end); err != nil {
		s.Abort()
		return nil, err
	}
	return s, nil
}

// Add appends one exported entry. Entries must come in engine order and lie
// in the span or its lock records.
func (s *SpanImporter) Add(engineKey, value []byte) error {
	cmp := keys.Comparer.Compare
	inLocks := cmp(s.lockStart, engineKey) <= 0 && cmp(engineKey, s.lockEnd) < 0
	inSpan := cmp(s.start, engineKey) <= 0 && cmp(engineKey, s.end) < 0
	if !inLocks && !inSpan {
		return fmt.Errorf("mvcc: import of %s outside the span", keys.PrettyEngineKey(engineKey))
	}
	if s.last != nil && cmp(s.last, engineKey) >= 0 {
		return fmt.Errorf("mvcc: import of %s out of order (after %s)", keys.PrettyEngineKey(engineKey), keys.PrettyEngineKey(s.last))
	}
	if err := s.w.Set(engineKey, value); err != nil {
		return err
	}
	s.last = append(s.last[:0], engineKey...)
	s.n++
	return nil
}

// Finish writes the SST and ingests it. The caller recomputes the span's
// stats afterwards (ComputeStats) or takes them from the sender.
func (s *SpanImporter) Finish(ctx context.Context) error {
	if s.done {
		return errors.New("mvcc: import already finished")
	}
	s.done = true
	if err := s.w.Close(); err != nil {
		_ = s.e.fs.Remove(s.path)
		return fmt.Errorf("mvcc: writing %s: %w", s.path, err)
	}
	err := s.e.db.Ingest(ctx, []string{s.path})
	// Pebble links the file into the store; the import name can go.
	_ = s.e.fs.Remove(s.path)
	if err != nil {
		return fmt.Errorf("mvcc: ingesting %s: %w", filepath.Base(s.path), err)
	}
	return nil
}

// Abort discards the import.
func (s *SpanImporter) Abort() {
	if s.done {
		return
	}
	s.done = true
	_ = s.w.Close()
	_ = s.e.fs.Remove(s.path)
}
