package hlc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// WallTimeStore durably holds one number: an upper bound on the wall times a
// node's Clock has handed out. Store must not return until the value is
// durable (it survives a crash of the process or the machine). Load returns
// 0 and no error when nothing has been stored yet.
//
// A Clock calls Store from one goroutine at a time, with increasing values.
type WallTimeStore interface {
	Load() (int64, error)
	Store(wallTime int64) error
}

// NewPersistentClock returns a clock that survives restarts: it never hands
// out a timestamp at or below the bound found in store, and before it hands
// out a wall time at or beyond the bound it has persisted, it persists a new
// bound `ahead` beyond it. The store is written about once per ahead/2 of
// wall time while the clock is in use, by whichever caller of Now crosses the
// half-way mark; a caller blocks on the write only if the clock reaches the
// bound before that write is done.
//
// On start the clock forwards its floor to the loaded bound rather than
// waiting for the physical clock to pass it (see doc.go, "Restarts"), and it
// persists a fresh bound before returning, so a store that cannot be written
// fails here, with an error, rather than later in Now.
//
// ahead trades write frequency against how far the clock may run ahead of
// physical time after a restart with a clock that went backwards; keep it
// well below maxOffset (maxOffset/2 or less).
func NewPersistentClock(
	phys PhysicalClock, maxOffset time.Duration, store WallTimeStore, ahead time.Duration, opts ...Option,
) (*Clock, error) {
	if store == nil {
		return nil, errors.New("hlc: NewPersistentClock with a nil WallTimeStore")
	}
	if ahead <= 0 {
		return nil, fmt.Errorf("hlc: NewPersistentClock with persistence interval %s, want > 0", ahead)
	}
	prev, err := store.Load()
	if err != nil {
		return nil, fmt.Errorf("hlc: loading the persisted wall-time bound: %w", err)
	}
	if prev < 0 {
		return nil, fmt.Errorf("hlc: persisted wall-time bound %d is negative", prev)
	}
	c := NewClock(phys, maxOffset, opts...)
	c.store = store
	c.ahead = int64(ahead)
	// Every timestamp handed out before the restart had WallTime < prev, so
	// a floor at {prev, 0} puts every later Now above all of them.
	c.mu.last = Timestamp{WallTime: prev}
	bound := addSat(max(phys.UnixNano(), prev), c.ahead)
	if err := store.Store(bound); err != nil {
		return nil, fmt.Errorf("hlc: persisting the wall-time bound: %w", err)
	}
	c.mu.bound = bound
	return c, nil
}

// MemWallTimeStore is an in-memory WallTimeStore for tests: a "restart" is a
// new Clock on the same MemWallTimeStore.
type MemWallTimeStore struct {
	mu     sync.Mutex
	bound  int64
	stores int
}

// Load implements WallTimeStore.
func (m *MemWallTimeStore) Load() (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bound, nil
}

// Store implements WallTimeStore.
func (m *MemWallTimeStore) Store(wallTime int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bound = wallTime
	m.stores++
	return nil
}

// Stores returns how many times Store has been called.
func (m *MemWallTimeStore) Stores() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stores
}

// FileWallTimeStore keeps the wall-time bound in one small file. Store writes
// a temporary file next to it, fsyncs it, renames it over the file and fsyncs
// the directory, so after a crash the file holds either the old or the new
// bound, never a torn mix. The file has a magic number and a checksum; Load
// rejects a short, foreign or corrupt file with an error naming it (a missing
// file is a fresh node and loads as 0).
type FileWallTimeStore struct {
	path string
}

// NewFileWallTimeStore returns a store keeping its bound at path. The
// directory must exist.
func NewFileWallTimeStore(path string) *FileWallTimeStore {
	return &FileWallTimeStore{path: path}
}

// Path returns the file the store writes.
func (f *FileWallTimeStore) Path() string { return f.path }

// boundMagic opens every bound file; the trailing digit is the format
// version.
const boundMagic = "MRDNHLC1"

// boundFileLen is magic (8) + big-endian bound (8) + CRC-32C of both (4).
const boundFileLen = len(boundMagic) + 8 + 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeBound(wallTime int64) []byte {
	b := make([]byte, 0, boundFileLen)
	b = append(b, boundMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(wallTime))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeBound parses the contents of a bound file.
func decodeBound(b []byte) (int64, error) {
	if len(b) != boundFileLen {
		return 0, fmt.Errorf("file is %d bytes, want %d (truncated or not a wall-time bound file)", len(b), boundFileLen)
	}
	if string(b[:len(boundMagic)]) != boundMagic {
		return 0, fmt.Errorf("bad magic %q, want %q", b[:len(boundMagic)], boundMagic)
	}
	body, sum := b[:boundFileLen-4], binary.BigEndian.Uint32(b[boundFileLen-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return 0, fmt.Errorf("checksum mismatch (stored %08x, computed %08x): the file is corrupt", sum, got)
	}
	v := int64(binary.BigEndian.Uint64(b[len(boundMagic):]))
	if v < 0 {
		return 0, fmt.Errorf("bound %d is negative", v)
	}
	return v, nil
}

// Load implements WallTimeStore.
func (f *FileWallTimeStore) Load() (int64, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("hlc: reading wall-time bound: %w", err)
	}
	v, err := decodeBound(b)
	if err != nil {
		return 0, fmt.Errorf("hlc: wall-time bound file %s: %w", f.path, err)
	}
	return v, nil
}

// Store implements WallTimeStore.
func (f *FileWallTimeStore) Store(wallTime int64) error {
	if wallTime < 0 {
		return fmt.Errorf("hlc: refusing to store negative wall-time bound %d", wallTime)
	}
	tmp := f.path + ".tmp"
	if err := writeSynced(tmp, encodeBound(wallTime)); err != nil {
		return fmt.Errorf("hlc: writing wall-time bound: %w", err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		return fmt.Errorf("hlc: writing wall-time bound: %w", err)
	}
	if err := syncDir(filepath.Dir(f.path)); err != nil {
		return fmt.Errorf("hlc: writing wall-time bound: %w", err)
	}
	return nil
}

func writeSynced(path string, data []byte) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := fh.Write(data); err != nil {
		_ = fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		_ = fh.Close()
		return err
	}
	return fh.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return err
	}
	return d.Close()
}
