package hlc

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestFileWallTimeStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := NewFileWallTimeStore(filepath.Join(dir, "hlc-bound"))
	if v, err := s.Load(); err != nil || v != 0 {
		t.Fatalf("Load of a missing file = %d, %v; want 0, nil (a fresh node)", v, err)
	}
	for _, v := range []int64{1, t0, t0 + int64(time.Second), 1<<63 - 1} {
		if err := s.Store(v); err != nil {
			t.Fatalf("Store(%d): %v", v, err)
		}
		if got, err := s.Load(); err != nil || got != v {
			t.Fatalf("Load after Store(%d) = %d, %v", v, got, err)
		}
	}
	if err := s.Store(-1); err == nil {
		t.Fatal("Store(-1) succeeded")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "hlc-bound" {
		t.Fatalf("directory holds %v, want only the bound file (no temp file left behind)", entries)
	}
}

func TestFileWallTimeStoreCorrupt(t *testing.T) {
	good := encodeBound(t0)
	flipped := bytes.Clone(good)
	flipped[10] ^= 0x40
	negative := encodeBound(-5) // a valid checksum over a negative bound
	for _, tc := range []struct {
		name     string
		contents []byte
		want     string
	}{
		{"empty", nil, "file is 0 bytes, want 20"},
		{"short", good[:11], "file is 11 bytes, want 20"},
		{"long", append(bytes.Clone(good), 0), "file is 21 bytes, want 20"},
		{"foreign", []byte("this is no bound!!!!"), "bad magic"},
		{"bit flip", flipped, "checksum mismatch"},
		{"negative", negative, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hlc-bound")
			if err := os.WriteFile(path, tc.contents, 0o644); err != nil {
				t.Fatal(err)
			}
			v, err := NewFileWallTimeStore(path).Load()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Load = %d, %v; want an error naming %s and saying %q", v, err, path, tc.want)
			}
			// A clock must refuse to start on it rather than start from 0.
			if _, err := NewPersistentClock(NewManualClock(t0), testMaxOffset, NewFileWallTimeStore(path), time.Second); err == nil {
				t.Fatal("NewPersistentClock started on a corrupt bound file")
			}
		})
	}
}

func TestFileWallTimeStoreMissingDir(t *testing.T) {
	s := NewFileWallTimeStore(filepath.Join(t.TempDir(), "no-such-dir", "hlc-bound"))
	if err := s.Store(t0); err == nil {
		t.Fatal("Store into a missing directory succeeded")
	}
}

// TestRestartWithClockBackwards is the restart promise end to end on a real
// file: a node hands out timestamps (some pushed ahead by a peer), "crashes",
// and restarts with a physical clock an hour behind. Its first timestamp is
// still above everything it handed out before.
func TestRestartWithClockBackwards(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hlc-bound")
	phys := NewManualClock(t0)
	ahead := 100 * time.Millisecond

	c1, err := NewPersistentClock(phys, testMaxOffset, NewFileWallTimeStore(path), ahead)
	if err != nil {
		t.Fatal(err)
	}
	var handedOut Timestamp
	for i := range 50 {
		phys.Advance(7 * time.Millisecond)
		if i == 30 {
			// A peer 400ms ahead pushes the clock well past the bound.
			if err := c1.Update(ts(phys.UnixNano()+int64(400*time.Millisecond), 3)); err != nil {
				t.Fatal(err)
			}
		}
		handedOut = c1.Now()
		bound, err := NewFileWallTimeStore(path).Load()
		if err != nil {
			t.Fatal(err)
		}
		if handedOut.WallTime >= bound {
			t.Fatalf("handed out %s at or beyond the persisted bound %s", handedOut, Timestamp{WallTime: bound})
		}
	}

	for _, back := range []time.Duration{0, time.Millisecond, time.Hour, 30 * 24 * time.Hour} {
		phys.Set(handedOut.WallTime - int64(back))
		c2, err := NewPersistentClock(phys, testMaxOffset, NewFileWallTimeStore(path), ahead)
		if err != nil {
			t.Fatal(err)
		}
		first := c2.Now()
		if !handedOut.Less(first) {
			t.Fatalf("restart with the clock %s back: first Now() = %s, not above %s handed out before", back, first, handedOut)
		}
		handedOut = first
	}
}

// TestPersistentClockWritesAhead checks the chunking: while time moves, the
// store is written about once per ahead/2 of wall time; while it stands
// still, not at all.
func TestPersistentClockWritesAhead(t *testing.T) {
	phys := NewManualClock(t0)
	store := &MemWallTimeStore{}
	ahead := time.Second
	c, err := NewPersistentClock(phys, testMaxOffset, store, ahead)
	if err != nil {
		t.Fatal(err)
	}
	if store.Stores() != 1 {
		t.Fatalf("NewPersistentClock wrote %d times, want 1", store.Stores())
	}
	for range 10_000 {
		c.Now()
	}
	if store.Stores() != 1 {
		t.Fatalf("with the physical clock still, Now wrote the store %d more times", store.Stores()-1)
	}
	const span = 10 * time.Second
	for elapsed := time.Duration(0); elapsed < span; elapsed += time.Millisecond {
		phys.Advance(time.Millisecond)
		now := c.Now()
		if bound, _ := store.Load(); now.WallTime >= bound {
			t.Fatalf("handed out %s at or beyond the persisted bound %d", now, bound)
		}
	}
	writes := store.Stores() - 1
	if want := int(span / (ahead / 2)); writes < want-1 || writes > want+1 {
		t.Fatalf("%s of clock time took %d writes, want about %d", span, writes, want)
	}
}

type faultyStore struct {
	MemWallTimeStore
	loadErr  error
	storeErr error
}

func (f *faultyStore) Load() (int64, error) {
	if f.loadErr != nil {
		return 0, f.loadErr
	}
	return f.MemWallTimeStore.Load()
}

func (f *faultyStore) Store(v int64) error {
	if f.storeErr != nil {
		return f.storeErr
	}
	return f.MemWallTimeStore.Store(v)
}

func TestPersistentClockStoreErrors(t *testing.T) {
	errDisk := errors.New("injected disk failure")
	phys := NewManualClock(t0)

	if _, err := NewPersistentClock(phys, testMaxOffset, &faultyStore{loadErr: errDisk}, time.Second); !errors.Is(err, errDisk) {
		t.Fatalf("NewPersistentClock with a failing Load = %v, want it wrapped", err)
	}
	if _, err := NewPersistentClock(phys, testMaxOffset, &faultyStore{storeErr: errDisk}, time.Second); !errors.Is(err, errDisk) {
		t.Fatalf("NewPersistentClock with a failing Store = %v, want it wrapped", err)
	}
	if _, err := NewPersistentClock(phys, testMaxOffset, &MemWallTimeStore{}, 0); err == nil {
		t.Fatal("NewPersistentClock accepted a zero interval")
	}

	// A store that fails later: Now reports through the fatal handler.
	store := &faultyStore{}
	var fatal []error
	c, err := NewPersistentClock(phys, testMaxOffset, store, time.Second,
		WithFatalHandler(func(err error) { fatal = append(fatal, err) }))
	if err != nil {
		t.Fatal(err)
	}
	store.storeErr = errDisk
	phys.Advance(2 * time.Second)
	before := c.Now()
	if len(fatal) == 0 || !errors.Is(fatal[0], errDisk) {
		t.Fatalf("fatal handler got %v, want the store error", fatal)
	}
	if after := c.Now(); !before.Less(after) {
		t.Fatalf("Now after a returning fatal handler = %s, not above %s", after, before)
	}

	// The handler may call back into the clock (to stamp a log line, say)
	// without deadlocking.
	store3 := &faultyStore{}
	var c3 *Clock
	var nested []Timestamp
	c3, err = NewPersistentClock(phys, testMaxOffset, store3, 100*time.Millisecond,
		WithFatalHandler(func(error) {
			if len(nested) > 0 {
				return
			}
			// Push the clock past the bound so that this Now must persist.
			if err := c3.Update(ts(phys.UnixNano()+int64(testMaxOffset), 0)); err != nil {
				t.Error(err)
			}
			nested = append(nested, c3.Now())
		}))
	if err != nil {
		t.Fatal(err)
	}
	store3.storeErr = errDisk
	phys.Advance(2 * time.Second)
	done := make(chan Timestamp)
	go func() { done <- c3.Now() }()
	select {
	case got := <-done:
		if len(nested) == 0 || !nested[0].Less(got) {
			t.Fatalf("nested Now() = %v, outer Now() = %s: want the nested call first and lower", nested, got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Now deadlocked when the fatal handler called back into the clock")
	}

	// The default handler panics.
	store2 := &faultyStore{}
	c2, err := NewPersistentClock(phys, testMaxOffset, store2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	store2.storeErr = errDisk
	phys.Advance(2 * time.Second)
	func() {
		defer func() {
			r := recover()
			if err, ok := r.(error); !ok || !errors.Is(err, errDisk) {
				t.Fatalf("default fatal handler: recovered %v, want a panic with the store error", r)
			}
		}()
		c2.Now()
	}()
}

// TestRestartProperty runs random histories of Now, Update, physical clock
// moves (backwards too) and restarts on one store, and checks that no Now
// ever returns a timestamp at or below one returned before, in this life of
// the clock or an earlier one.
func TestRestartProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		ahead := time.Duration(rapid.Int64Range(1, int64(time.Second)).Draw(rt, "ahead"))
		phys := NewManualClock(t0)
		store := &MemWallTimeStore{}
		open := func() *Clock {
			c, err := NewPersistentClock(phys, testMaxOffset, store, ahead)
			if err != nil {
				rt.Fatal(err)
			}
			return c
		}
		c := open()
		var last Timestamp
		rt.Repeat(map[string]func(*rapid.T){
			"advance": func(rt *rapid.T) {
				phys.Advance(time.Duration(rapid.Int64Range(-int64(time.Second), 2*int64(time.Second)).Draw(rt, "d")))
			},
			"now": func(rt *rapid.T) {
				now := c.Now()
				if !last.Less(now) {
					rt.Fatalf("Now() = %s, not above %s handed out before", now, last)
				}
				last = now
			},
			"update": func(rt *rapid.T) {
				_ = c.Update(ts(phys.UnixNano()+rapid.Int64Range(0, int64(testMaxOffset)).Draw(rt, "ahead"), 0))
			},
			"restart": func(rt *rapid.T) {
				phys.Advance(-time.Duration(rapid.Int64Range(0, int64(time.Hour)).Draw(rt, "back")))
				c = open()
			},
		})
	})
}

// TestPersistentClockConcurrent has goroutines race through bound
// extensions; run with -race.
func TestPersistentClockConcurrent(t *testing.T) {
	phys := NewManualClock(t0)
	store := &MemWallTimeStore{}
	c, err := NewPersistentClock(phys, testMaxOffset, store, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	const readers, calls = 4, 2000
	results := make([][]Timestamp, readers)
	var wg sync.WaitGroup
	for i := range readers {
		wg.Go(func() {
			for range calls {
				phys.Advance(10 * time.Microsecond)
				results[i] = append(results[i], c.Now())
			}
		})
	}
	wg.Wait()
	bound, _ := store.Load()
	for i, out := range results {
		for j, ts := range out {
			if j > 0 && !out[j-1].Less(ts) {
				t.Fatalf("reader %d: %s after %s", i, ts, out[j-1])
			}
			if ts.WallTime >= bound {
				t.Fatalf("reader %d got %s, at or beyond the final persisted bound %d", i, ts, bound)
			}
		}
	}
	if store.Stores() < 10 {
		t.Fatalf("only %d stores for %s of clock time with a 1ms interval", store.Stores(), time.Duration(readers*calls)*10*time.Microsecond)
	}
}

// FuzzDecodeBound: the bound-file decoder never panics, and accepts exactly
// the bytes encodeBound produces for some non-negative bound.
func FuzzDecodeBound(f *testing.F) {
	f.Add(encodeBound(0))
	f.Add(encodeBound(t0))
	f.Add(encodeBound(-1))
	f.Add([]byte(boundMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeBound(b)
		if err != nil {
			return
		}
		if v < 0 || !bytes.Equal(encodeBound(v), b) {
			t.Fatalf("decodeBound(%x) = %d, which does not re-encode to the input", b, v)
		}
	})
}
