package raftgroup

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/keys"
)

// openTestStorage opens group 1's storage on an in-memory Pebble, initialised
// at InitialIndex.
func openTestStorage(t *testing.T) *storage {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Comparer: keys.Comparer, Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	b := db.NewBatch()
	s, err := openStorage(db, 1, &raftpb.ConfState{Voters: []uint64{1}}, true, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	return s
}

func testEntry(index, term uint64) *raftpb.Entry {
	return &raftpb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term), Data: []byte{byte(index), byte(term)}}
}

// TestLogCacheFollowsLog appends thousands of entries as a worker does
// (stage, commit, markDurable), some overwriting an uncommitted suffix in a
// later term and some truncating the log's head, and checks after every
// step that the log read back, from the cache or from Pebble, is the log
// written, and that the cache stays within its bound.
func TestLogCacheFollowsLog(t *testing.T) {
	s := openTestStorage(t)
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[uint64]uint64{} // index -> term
	last, term := uint64(InitialIndex), uint64(InitialTerm)
	for step := 0; step < 3000; step++ {
		first := last + 1
		if rng.IntN(20) == 0 && last > InitialIndex+3 {
			// A new leader overwrites the last one to three entries.
			first = last - uint64(rng.IntN(3))
			term++
		}
		n := 1 + rng.IntN(3)
		ents := make([]*raftpb.Entry, n)
		for i := range ents {
			ents[i] = testEntry(first+uint64(i), term)
		}
		b := s.db.NewBatch()
		if err := s.stage(b, nil, ents, false); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		s.markDurable(nil, ents)
		for i := last + 1; i < first+uint64(n); i++ {
			delete(want, i) // beyond the new last entry, if it moved back
		}
		for _, e := range ents {
			want[e.GetIndex()] = e.GetTerm()
		}
		for i := first + uint64(n); i <= last; i++ {
			delete(want, i)
		}
		last = first + uint64(n) - 1
		if rng.IntN(50) == 0 {
			if to := last - min(last-InitialIndex, uint64(rng.IntN(600))); to > s.mu.truncIndex {
				s.markTruncated(to, want[to])
			}
		}

		if c := len(s.mu.cache); c > maxCacheEntries {
			t.Fatalf("step %d: %d entries cached, bound %d", step, c, maxCacheEntries)
		}
		lo := last - min(last-s.mu.truncIndex-1, uint64(rng.IntN(800)))
		got, err := s.Entries(lo, last+1, 1<<30)
		if err != nil {
			t.Fatalf("step %d: Entries(%d, %d): %v", step, lo, last+1, err)
		}
		if len(got) != int(last+1-lo) {
			t.Fatalf("step %d: Entries(%d, %d) returned %d entries", step, lo, last+1, len(got))
		}
		for i, e := range got {
			idx := lo + uint64(i)
			if e.GetIndex() != idx || e.GetTerm() != want[idx] {
				t.Fatalf("step %d: entry %d read as index %d term %d, want term %d", step, idx, e.GetIndex(), e.GetTerm(), want[idx])
			}
		}
	}
}

// TestLogCacheAppendAmortised checks that appending to a full cache does not
// copy it: it once allocated a new 512-slot array for every entry appended,
// 6% of the CPU of BenchmarkPropose's 100-group case.
func TestLogCacheAppendAmortised(t *testing.T) {
	s := openTestStorage(t)
	ents := make([]*raftpb.Entry, 4*maxCacheEntries)
	for i := range ents {
		ents[i] = testEntry(InitialIndex+1+uint64(i), InitialTerm)
	}
	next := 0
	for ; next < maxCacheEntries; next++ {
		s.markDurable(nil, ents[next:next+1])
	}
	allocs := testing.AllocsPerRun(2*maxCacheEntries, func() {
		s.markDurable(nil, ents[next:next+1])
		next++
	})
	if allocs != 0 {
		t.Fatalf("appending one entry to a full cache: %v allocations per append, want 0 on average", allocs)
	}
	if c := s.mu.cache; len(c) != maxCacheEntries || c[len(c)-1] != ents[next-1] {
		t.Fatalf("cache holds %d entries ending at %d, want %d ending at %d", len(c), c[len(c)-1].GetIndex(), maxCacheEntries, ents[next-1].GetIndex())
	}
}

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
