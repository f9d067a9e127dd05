package raftgroup

import (
	"sync"
)

// scheduler hands groups with work to a fixed pool of workers. A group is in
// at most one of three states — queued, processing, or processing-and-dirty
// (new work arrived while a worker held it) — so no two workers ever process
// the same group (Singular Update Queue). A worker takes up to maxBatch
// queued groups at once, so their writes share one Pebble batch and one
// fsync.
type scheduler struct {
	maxBatch int

	mu struct {
		sync.Mutex
		cond    *sync.Cond
		queue   []uint64
		state   map[uint64]schedState
		stopped bool
	}
}

type schedState uint8

const (
	schedQueued schedState = iota + 1
	schedProcessing
	schedDirty
)

func newScheduler(maxBatch int) *scheduler {
	s := &scheduler{maxBatch: maxBatch}
	s.mu.cond = sync.NewCond(&s.mu.Mutex)
	s.mu.state = make(map[uint64]schedState)
	return s
}

// enqueue marks a group as having work.
func (s *scheduler) enqueue(id uint64) {
	s.mu.Lock()
	if s.enqueueLocked(id) {
		s.mu.cond.Signal()
	}
	s.mu.Unlock()
}

// enqueueLocked marks a group as having work; it returns true if the group
// joined the queue (the caller then wakes a worker).
func (s *scheduler) enqueueLocked(id uint64) bool {
	switch s.mu.state[id] {
	case schedQueued, schedDirty:
	case schedProcessing:
		s.mu.state[id] = schedDirty
	default:
		s.mu.state[id] = schedQueued
		s.mu.queue = append(s.mu.queue, id)
		return true
	}
	return false
}

// enqueueAll marks many groups at once (a tick, a transport batch).
func (s *scheduler) enqueueAll(ids []uint64) {
	if len(ids) == 0 {
		return
	}
	s.mu.Lock()
	queued := false
	for _, id := range ids {
		queued = s.enqueueLocked(id) || queued
	}
	// One worker takes the whole queue (next wakes another if it leaves
	// some).
	if queued {
		s.mu.cond.Signal()
	}
	s.mu.Unlock()
}

// next blocks until groups are queued and returns up to maxBatch of them,
// now owned by the caller; ok is false once the scheduler stopped.
func (s *scheduler) next(buf []uint64) (ids []uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.mu.queue) == 0 && !s.mu.stopped {
		s.mu.cond.Wait()
	}
	if s.mu.stopped {
		return nil, false
	}
	return s.takeLocked(buf), true
}

// takeLocked takes up to maxBatch queued groups for the caller.
func (s *scheduler) takeLocked(buf []uint64) (ids []uint64) {
	n := min(len(s.mu.queue), s.maxBatch)
	ids = append(buf[:0], s.mu.queue[:n]...)
	s.mu.queue = s.mu.queue[n:]
	if len(s.mu.queue) == 0 {
		s.mu.queue = nil
	} else {
		// More work remains: let another worker take it.
		s.mu.cond.Signal()
	}
	for _, id := range ids {
		s.mu.state[id] = schedProcessing
	}
	return ids
}

// poll is next without waiting: it returns no groups when none are queued.
func (s *scheduler) poll(buf []uint64) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.stopped {
		return buf[:0]
	}
	return s.takeLocked(buf)
}

// done releases groups a worker processed, re-queueing those that got work
// meanwhile (or that ask for another cycle).
func (s *scheduler) done(ids []uint64, again func(uint64) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if s.mu.state[id] == schedDirty || again(id) {
			// No wake-up: the calling worker takes the queue next.
			s.mu.state[id] = schedQueued
			s.mu.queue = append(s.mu.queue, id)
		} else {
			delete(s.mu.state, id)
		}
	}
}

func (s *scheduler) stop() {
	s.mu.Lock()
	s.mu.stopped = true
	s.mu.cond.Broadcast()
	s.mu.Unlock()
}
