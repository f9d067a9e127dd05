package raftgroup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// InitialIndex and InitialTerm are the log position every initialised
// replica of a new group starts from. All replicas of a group created with
// the same membership start with the same (empty) log truncated at this
// position, so they agree without exchanging a snapshot; raft's own
// Bootstrap would instead write conf-change entries that differ per replica.
const (
	InitialIndex = 10
	InitialTerm  = 5
)

// maxCacheEntries bounds the in-memory tail of a group's log. Followers that
// are caught up are served from it; older entries are read from Pebble.
const maxCacheEntries = 512

// storage is one group's raft.Storage: its log, hard state and truncated
// state live in Pebble under the group's range-local keys; the tail of the log
// is cached in memory.
//
// raft reads it from the worker that owns the group; the worker also writes
// it (stage, then commit the batch, then markDurable). mu guards the
// in-memory fields against the rare reader on another goroutine (status).
type storage struct {
	db    *pebble.DB
	group uint64

	mu struct {
		sync.Mutex
		hardState  *raftpb.HardState
		confState  *raftpb.ConfState
		truncIndex uint64
		truncTerm  uint64
		lastIndex  uint64
		lastTerm   uint64
		// cache holds entries [cache[0].Index, lastIndex], contiguous.
		cache []*raftpb.Entry
	}
}

var _ raft.Storage = (*storage)(nil)

// openStorage loads a group's persisted raft state. confState comes from the
// caller (it belongs to the applied state machine). If the group has no state
// yet and initialise is set, the returned storage starts at
// InitialIndex/InitialTerm and the initial state is staged into b.
func openStorage(db *pebble.DB, group uint64, confState *raftpb.ConfState, initialise bool, b *pebble.Batch) (*storage, error) {
	s := &storage{db: db, group: group}
	s.mu.confState = proto.Clone(confState).(*raftpb.ConfState)

	hs, err := loadHardState(db, group)
	if err != nil {
		return nil, err
	}
	ti, tt, found, err := loadTruncatedState(db, group)
	if err != nil {
		return nil, err
	}
	if !found && initialise {
		// A new initialised replica: its log starts at the initial
		// position. If it already existed uninitialised (it heard from the
		// group before its state arrived, e.g. by a split applying late),
		// its term and vote are kept — forgetting a vote could let it vote
		// twice in one term — and only the log position and commit move.
		ti, tt = InitialIndex, InitialTerm
		if hs == nil {
			hs = &raftpb.HardState{}
		}
		hs = &raftpb.HardState{
			Term:   proto.Uint64(max(hs.GetTerm(), InitialTerm)),
			Vote:   proto.Uint64(hs.GetVote()),
			Commit: proto.Uint64(max(hs.GetCommit(), InitialIndex)),
		}
		if err := stageTruncatedState(b, group, ti, tt); err != nil {
			return nil, err
		}
		if err := stageHardState(b, group, hs); err != nil {
			return nil, err
		}
	}
	s.mu.hardState = hs
	s.mu.truncIndex, s.mu.truncTerm = ti, tt
	s.mu.lastIndex, s.mu.lastTerm = ti, tt

	// The last entry of the log, if any is above the truncation point.
	start, end := logSpan(group)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		return nil, fmt.Errorf("raftgroup: group %d: %w", group, err)
	}
	defer it.Close()
	if it.Last() {
		idx, err := decodeLogIndex(it.Key())
		if err != nil {
			return nil, fmt.Errorf("raftgroup: group %d: corrupt log key: %w", group, err)
		}
		if idx > ti {
			ent, err := decodeEntry(it.Value())
			if err != nil {
				return nil, fmt.Errorf("raftgroup: group %d: %w", group, err)
			}
			s.mu.lastIndex, s.mu.lastTerm = idx, ent.GetTerm()
		}
	}
	return s, it.Error()
}

func loadHardState(db *pebble.DB, group uint64) (*raftpb.HardState, error) {
	v, closer, err := db.Get(hardStateKey(group))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("raftgroup: group %d: reading hard state: %w", group, err)
	}
	defer closer.Close()
	hs := &raftpb.HardState{}
	if err := proto.Unmarshal(v, hs); err != nil {
		return nil, fmt.Errorf("raftgroup: group %d: corrupt hard state: %w", group, err)
	}
	return hs, nil
}

func loadTruncatedState(db *pebble.DB, group uint64) (index, term uint64, found bool, err error) {
	v, closer, err := db.Get(truncatedStateKey(group))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("raftgroup: group %d: reading truncated state: %w", group, err)
	}
	defer closer.Close()
	if len(v) != 16 {
		return 0, 0, false, fmt.Errorf("raftgroup: group %d: corrupt truncated state (%d bytes)", group, len(v))
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), true, nil
}

func stageTruncatedState(b *pebble.Batch, group, index, term uint64) error {
	var v [16]byte
	binary.BigEndian.PutUint64(v[:], index)
	binary.BigEndian.PutUint64(v[8:], term)
	return b.Set(truncatedStateKey(group), v[:], nil)
}

func stageHardState(b *pebble.Batch, group uint64, hs *raftpb.HardState) error {
	v, err := proto.Marshal(hs)
	if err != nil {
		return err
	}
	return b.Set(hardStateKey(group), v, nil)
}

func decodeEntry(v []byte) (*raftpb.Entry, error) {
	e := &raftpb.Entry{}
	if err := proto.Unmarshal(v, e); err != nil {
		return nil, fmt.Errorf("corrupt log entry: %w", err)
	}
	return e, nil
}

// InitialState implements raft.Storage.
func (s *storage) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hs := s.mu.hardState
	if hs == nil {
		hs = &raftpb.HardState{}
	}
	return proto.Clone(hs).(*raftpb.HardState), proto.Clone(s.mu.confState).(*raftpb.ConfState), nil
}

// Entries implements raft.Storage.
func (s *storage) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	s.mu.Lock()
	if lo <= s.mu.truncIndex {
		s.mu.Unlock()
		return nil, raft.ErrCompacted
	}
	if hi > s.mu.lastIndex+1 {
		last := s.mu.lastIndex
		s.mu.Unlock()
		return nil, fmt.Errorf("raftgroup: group %d: entries [%d, %d) beyond last index %d: %w", s.group, lo, hi, last, raft.ErrUnavailable)
	}
	if c := s.mu.cache; len(c) > 0 && lo >= c[0].GetIndex() {
		off := lo - c[0].GetIndex()
		out := limitSize(c[off:hi-c[0].GetIndex()], maxSize)
		out = append([]*raftpb.Entry(nil), out...)
		s.mu.Unlock()
		return out, nil
	}
	s.mu.Unlock()
	return s.readEntries(lo, hi, maxSize)
}

// limitSize returns the longest prefix of ents whose total size is at most
// maxSize, but at least one entry.
func limitSize(ents []*raftpb.Entry, maxSize uint64) []*raftpb.Entry {
	if len(ents) == 0 {
		return ents
	}
	size := uint64(proto.Size(ents[0]))
	for i := 1; i < len(ents); i++ {
		size += uint64(proto.Size(ents[i]))
		if size > maxSize {
			return ents[:i]
		}
	}
	return ents
}

func (s *storage) readEntries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(s.group, lo), UpperBound: logKey(s.group, hi)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []*raftpb.Entry
	var size uint64
	next := lo
	for valid := it.First(); valid; valid = it.Next() {
		e, err := decodeEntry(it.Value())
		if err != nil {
			return nil, fmt.Errorf("raftgroup: group %d: %w", s.group, err)
		}
		if e.GetIndex() != next {
			// A hole: the log was truncated concurrently.
			return nil, raft.ErrCompacted
		}
		size += uint64(proto.Size(e))
		if len(out) > 0 && size > maxSize {
			break
		}
		out = append(out, e)
		next++
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, raft.ErrUnavailable
	}
	return out, nil
}

// Term implements raft.Storage.
func (s *storage) Term(i uint64) (uint64, error) {
	s.mu.Lock()
	switch {
	case i == s.mu.truncIndex:
		t := s.mu.truncTerm
		s.mu.Unlock()
		return t, nil
	case i < s.mu.truncIndex:
		s.mu.Unlock()
		return 0, raft.ErrCompacted
	case i > s.mu.lastIndex:
		s.mu.Unlock()
		return 0, raft.ErrUnavailable
	case i == s.mu.lastIndex:
		t := s.mu.lastTerm
		s.mu.Unlock()
		return t, nil
	}
	if c := s.mu.cache; len(c) > 0 && i >= c[0].GetIndex() {
		t := c[i-c[0].GetIndex()].GetTerm()
		s.mu.Unlock()
		return t, nil
	}
	s.mu.Unlock()
	ents, err := s.readEntries(i, i+1, 0)
	if err != nil {
		return 0, err
	}
	return ents[0].GetTerm(), nil
}

// LastIndex implements raft.Storage.
func (s *storage) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.lastIndex, nil
}

// FirstIndex implements raft.Storage.
func (s *storage) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.truncIndex + 1, nil
}

// Snapshot implements raft.Storage. It returns only metadata — the log
// position the snapshot must at least cover. The data is produced when the
// snapshot is sent, from the state machine as of its applied index (at or
// above this position), and the MsgSnap's metadata is replaced then.
func (s *storage) Snapshot() (*raftpb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.truncIndex == 0 {
		// An uninitialised replica has nothing to send.
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	return &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		Index:     proto.Uint64(s.mu.truncIndex),
		Term:      proto.Uint64(s.mu.truncTerm),
		ConfState: proto.Clone(s.mu.confState).(*raftpb.ConfState),
	}}, nil
}

// stageSnapshot replaces the whole log with the snapshot's position.
func (s *storage) stageSnapshot(b *pebble.Batch, snap *raftpb.Snapshot) error {
	start, end := logSpan(s.group)
	if err := b.DeleteRange(start, end, nil); err != nil {
		return err
	}
	md := snap.GetMetadata()
	return stageTruncatedState(b, s.group, md.GetIndex(), md.GetTerm())
}

// markSnapshot updates the in-memory view once a staged snapshot is durable.
func (s *storage) markSnapshot(snap *raftpb.Snapshot) {
	md := snap.GetMetadata()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.truncIndex, s.mu.truncTerm = md.GetIndex(), md.GetTerm()
	s.mu.lastIndex, s.mu.lastTerm = md.GetIndex(), md.GetTerm()
	s.mu.cache = nil
	s.mu.confState = proto.Clone(md.GetConfState()).(*raftpb.ConfState)
}

// stageTruncation deletes the log up to and including index. It returns the
// term of index, for markTruncated.
func (s *storage) stageTruncation(b *pebble.Batch, index uint64) (uint64, error) {
	term, err := s.Term(index)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	from := s.mu.truncIndex + 1
	s.mu.Unlock()
	if err := b.DeleteRange(logKey(s.group, from), logKey(s.group, index+1), nil); err != nil {
		return 0, err
	}
	return term, stageTruncatedState(b, s.group, index, term)
}

// markTruncated updates the in-memory view once a staged truncation is
// durable.
func (s *storage) markTruncated(index, term uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index <= s.mu.truncIndex {
		return
	}
	s.mu.truncIndex, s.mu.truncTerm = index, term
	if c := s.mu.cache; len(c) > 0 && c[0].GetIndex() <= index {
		if index >= c[len(c)-1].GetIndex() {
			s.mu.cache = nil
		} else {
			s.mu.cache = dropHead(c, int(index+1-c[0].GetIndex()))
		}
	}
}

// stageDestroy deletes every piece of raft state of the group.
func (s *storage) stageDestroy(b *pebble.Batch) error {
	start, end := logSpan(s.group)
	if err := b.DeleteRange(start, end, nil); err != nil {
		return err
	}
	if err := b.Delete(hardStateKey(s.group), nil); err != nil {
		return err
	}
	return b.Delete(truncatedStateKey(s.group), nil)
}

// stage writes a Ready's entries and hard state into b. The in-memory view
// changes only in markDurable, after b is committed.
//
// The hard state is written only when its term or vote changed (or force
// is set): raft's commit index is volatile state, and writing it on every
// change would cost a write per group per cycle. A restart raises the
// persisted commit index to what the log and the state machine prove
// committed (raiseCommit).
func (s *storage) stage(b *pebble.Batch, hs *raftpb.HardState, ents []*raftpb.Entry, force bool) error {
	if len(ents) > 0 {
		s.mu.Lock()
		oldLast := s.mu.lastIndex
		s.mu.Unlock()
		for _, e := range ents {
			v, err := proto.Marshal(e)
			if err != nil {
				return err
			}
			if err := b.Set(logKey(s.group, e.GetIndex()), v, nil); err != nil {
				return err
			}
		}
		// A leader overwrote our uncommitted suffix: drop what lies past the
		// new last entry.
		if newLast := ents[len(ents)-1].GetIndex(); newLast < oldLast {
			if err := b.DeleteRange(logKey(s.group, newLast+1), logKey(s.group, oldLast+1), nil); err != nil {
				return err
			}
		}
	}
	if hs == nil || raft.IsEmptyHardState(hs) {
		return nil
	}
	s.mu.Lock()
	prev := s.mu.hardState
	s.mu.Unlock()
	if force || prev == nil || prev.GetTerm() != hs.GetTerm() || prev.GetVote() != hs.GetVote() {
		return stageHardState(b, s.group, hs)
	}
	return nil
}

// raiseCommit raises the commit index of the hard state raft starts from to
// applied, the state machine's applied index (capped at the last index of
// the durable log): entries were applied only once committed and durable,
// but the commit index is persisted only with a term or vote change (see
// stage), so it may lag. raft requires applied <= commit <= last index.
func (s *storage) raiseCommit(applied uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := min(max(applied, s.mu.truncIndex), s.mu.lastIndex)
	if s.mu.hardState == nil {
		if c == 0 {
			return
		}
		s.mu.hardState = &raftpb.HardState{}
	}
	if c > s.mu.hardState.GetCommit() {
		hs := copyHardState(s.mu.hardState)
		hs.Commit = proto.Uint64(c)
		s.mu.hardState = hs
	}
}

// markDurable updates the in-memory view once staged writes are committed.
func (s *storage) markDurable(hs *raftpb.HardState, ents []*raftpb.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if hs != nil && !raft.IsEmptyHardState(hs) {
		// Raft makes a new HardState for every Ready and never changes
		// one it handed out; raiseCommit copies before changing it.
		s.mu.hardState = hs
	}
	if len(ents) == 0 {
		return
	}
	first := ents[0].GetIndex()
	c := s.mu.cache
	if len(c) > 0 && first > c[0].GetIndex() && first <= c[len(c)-1].GetIndex()+1 {
		c = c[:first-c[0].GetIndex()]
	} else {
		c = nil
	}
	c = append(c, ents...)
	if len(c) > maxCacheEntries {
		// Drop the oldest entries in place: append copies the tail to a
		// new array only when this one is full, a few hundred entries
		// later, rather than for every entry once the cache is full
		// (which cost 6% of the CPU of BenchmarkPropose's 100-group case).
		c = dropHead(c, len(c)-maxCacheEntries)
	}
	s.mu.cache = c
	last := ents[len(ents)-1]
	s.mu.lastIndex, s.mu.lastTerm = last.GetIndex(), last.GetTerm()
}

// dropHead returns the cache c without its first n entries, in the same
// array. Readers copy what they take from the cache, so nobody else sees the
// slots dropped; they are cleared so that the entries can be collected
// before append next moves the cache to a new array.
func dropHead(c []*raftpb.Entry, n int) []*raftpb.Entry {
	clear(c[:n])
	return c[n:]
}

// copyHardState copies a hard state without proto.Clone's reflection (it
// runs for every Ready that carries one).
func copyHardState(hs *raftpb.HardState) *raftpb.HardState {
	return &raftpb.HardState{Term: proto.Uint64(hs.GetTerm()), Vote: proto.Uint64(hs.GetVote()), Commit: proto.Uint64(hs.GetCommit())}
}

// currentConfState returns the membership of the last applied configuration
// (the caller must not modify it).
func (s *storage) currentConfState() *raftpb.ConfState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.confState
}

// setConfState records the membership after a conf change applied.
func (s *storage) setConfState(cs *raftpb.ConfState) {
	s.mu.Lock()
	s.mu.confState = proto.Clone(cs).(*raftpb.ConfState)
	s.mu.Unlock()
}

// firstAndLast reports the log's first and last index (for status).
func (s *storage) firstAndLast() (first, last uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.truncIndex + 1, s.mu.lastIndex
}

// hardState returns the last durable hard state (nil if none).
func (s *storage) hardState() *raftpb.HardState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.hardState
}
