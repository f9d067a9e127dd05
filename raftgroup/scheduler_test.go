package raftgroup

import (
	"slices"
	"testing"
)

// TestSchedulerOwnership: a group is handed to one taker at a time, by next
// or by poll; work that arrives while it is taken marks it dirty, and done
// queues it again; poll never waits.
func TestSchedulerOwnership(t *testing.T) {
	s := newScheduler(2)
	if got := s.poll(nil); len(got) != 0 {
		t.Fatalf("poll on an empty queue took %v", got)
	}
	s.enqueueAll([]uint64{1, 2, 3})
	first, ok := s.next(nil)
	if !ok || !slices.Equal(first, []uint64{1, 2}) {
		t.Fatalf("next took %v, %t; want [1 2] (maxBatch 2)", first, ok)
	}
	s.enqueue(1) // work for a group being processed: it must not be handed out again
	if got := s.poll(nil); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("poll took %v, want [3]", got)
	}
	if got := s.poll(nil); len(got) != 0 {
		t.Fatalf("poll took %v with every queued group already taken", got)
	}
	s.done(append(first, 3), func(uint64) bool { return false })
	if got := s.poll(nil); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("after done, poll took %v; want [1], the group that got work while taken", got)
	}
	s.stop()
	s.enqueue(2)
	if got := s.poll(nil); len(got) != 0 {
		t.Fatalf("poll after stop took %v", got)
	}
	if _, ok := s.next(nil); ok {
		t.Fatal("next after stop returned ok")
	}
}
