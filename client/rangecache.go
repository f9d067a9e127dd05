package client

import (
	"bytes"
	"context"
	"errors"
	"sync"

	"github.com/RaduBerinde/btreemap"

	"github.com/meridiandb/meridian/api"
)

// CacheEntry is what the range cache knows about one range: its descriptor
// and, when known, the replica believed to hold its lease. Both are shared,
// read-only protos: never modify them.
type CacheEntry struct {
	// Desc is the range's descriptor as last learned (from meta or from a
	// RangeKeyMismatchError).
	Desc *api.RangeDescriptor
	// Leaseholder is the replica that last served the range or that a
	// NotLeaseholderError named; nil when unknown.
	Leaseholder *api.ReplicaDescriptor
	// LeaseSeq is the sequence of the lease Leaseholder came from (0 when
	// learned from a successful request rather than a lease).
	LeaseSeq int64
}

// LookupFunc reads meta for the range holding key (reverse: the range
// holding the keys just below key, i.e. with start < key <= end). It
// returns that range's descriptor first, then any further descriptors it
// prefetched.
type LookupFunc func(ctx context.Context, key []byte, reverse bool) ([]*api.RangeDescriptor, error)

// RangeCache caches range descriptors ordered by end key, with a
// leaseholder per range. It is safe for concurrent use. Concurrent misses
// on the same key share one call of the LookupFunc.
//
// Invariant: cached descriptors never overlap. Inserting a descriptor
// removes every overlapping one of a lower or equal generation; a
// descriptor older than an overlapping cached one is dropped.
type RangeCache struct {
	lookup LookupFunc

	mu struct {
		sync.RWMutex
		byEnd *btreemap.BTreeMap[[]byte, *cacheEntry]
	}
	flights struct {
		sync.Mutex
		m map[flightKey]*flight
	}
}

// cacheEntry is the mutable form of CacheEntry, guarded by RangeCache.mu.
type cacheEntry struct {
	desc     *api.RangeDescriptor
	lease    *api.ReplicaDescriptor
	leaseSeq int64
}

type flightKey struct {
	key     string
	reverse bool
}

// flight is one meta lookup in progress; waiters block on done.
type flight struct {
	done    chan struct{}
	waiters int // followers, guarded by flights' mutex (for tests)
	descs   []*api.RangeDescriptor
	err     error
}

// NewRangeCache returns an empty cache that fills misses with lookup.
func NewRangeCache(lookup LookupFunc) *RangeCache {
	c := &RangeCache{lookup: lookup}
	c.mu.byEnd = btreemap.New[[]byte, *cacheEntry](16, bytes.Compare)
	c.flights.m = make(map[flightKey]*flight)
	return c
}

// Len returns the number of cached ranges.
func (c *RangeCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.mu.byEnd.Len()
}

// Get returns the cached range holding key (reverse: the range with start
// < key <= end), without a lookup.
func (c *RangeCache) Get(key []byte, reverse bool) (CacheEntry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.getLocked(key, reverse)
	if e == nil {
		return CacheEntry{}, false
	}
	return CacheEntry{Desc: e.desc, Leaseholder: e.lease, LeaseSeq: e.leaseSeq}, true
}

func (c *RangeCache) getLocked(key []byte, reverse bool) *cacheEntry {
	lb := btreemap.GT(key)
	if reverse {
		lb = btreemap.GE(key)
	}
	var found *cacheEntry
	c.mu.byEnd.AscendFunc(lb, btreemap.Max[[]byte](), func(_ []byte, e *cacheEntry) bool {
		found = e
		return false
	})
	if found == nil {
		return nil
	}
	cmp := bytes.Compare(found.desc.GetStartKey(), key)
	if cmp > 0 || (reverse && cmp == 0) {
		return nil
	}
	return found
}

// Lookup returns the range holding key (reverse: the range with start <
// key <= end), reading meta on a miss. Concurrent misses on the same key
// (and direction) share one meta read.
func (c *RangeCache) Lookup(ctx context.Context, key []byte, reverse bool) (CacheEntry, error) {
	if e, ok := c.Get(key, reverse); ok {
		return e, nil
	}
	fk := flightKey{key: string(key), reverse: reverse}
	c.flights.Lock()
	f, ok := c.flights.m[fk]
	if ok {
		f.waiters++
	} else {
		f = &flight{done: make(chan struct{})}
		c.flights.m[fk] = f
	}
	c.flights.Unlock()

	if ok {
		// Follow the leader's lookup.
		select {
		case <-f.done:
		case <-ctx.Done():
			return CacheEntry{}, ctx.Err()
		}
		if f.err != nil {
			if ctx.Err() == nil && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) {
				// The leader gave up because of its own ctx; ours is alive.
				return CacheEntry{}, &retryableError{err: f.err}
			}
			return CacheEntry{}, f.err
		}
	} else {
		// Lead the lookup; a re-check of the cache first closes the race with
		// a flight that finished between Get and registering ours.
		if e, ok := c.Get(key, reverse); ok {
			c.finish(fk, f, nil, nil)
			return e, nil
		}
		descs, err := c.lookup(ctx, key, reverse)
		if err == nil {
			c.Insert(descs...)
		}
		c.finish(fk, f, descs, err)
		if err != nil {
			return CacheEntry{}, err
		}
	}
	for _, d := range f.descs {
		if containsFor(d, key, reverse) {
			if e, ok := c.Get(key, reverse); ok && e.Desc.GetRangeId() == d.GetRangeId() {
				return e, nil
			}
			return CacheEntry{Desc: d}, nil
		}
	}
	return CacheEntry{}, &retryableError{err: errors.New("client: meta lookup returned no range for the key")}
}

func (c *RangeCache) finish(fk flightKey, f *flight, descs []*api.RangeDescriptor, err error) {
	f.descs, f.err = descs, err
	c.flights.Lock()
	delete(c.flights.m, fk)
	c.flights.Unlock()
	close(f.done)
}

// containsFor reports whether d holds key (reverse: start < key <= end).
func containsFor(d *api.RangeDescriptor, key []byte, reverse bool) bool {
	if !reverse {
		return d.ContainsKey(key)
	}
	return bytes.Compare(d.GetStartKey(), key) < 0 && bytes.Compare(key, d.GetEndKey()) <= 0
}

// Insert adds descriptors to the cache. Each replaces the cached
// descriptors it overlaps if none of them has a higher generation;
// otherwise it is stale and dropped. A replaced entry of the same range
// keeps its leaseholder if the replica is still in the new descriptor.
func (c *RangeCache) Insert(descs ...*api.RangeDescriptor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range descs {
		c.insertLocked(d)
	}
}

func (c *RangeCache) insertLocked(d *api.RangeDescriptor) {
	if d == nil || bytes.Compare(d.GetStartKey(), d.GetEndKey()) >= 0 {
		return
	}
	var overlaps []*cacheEntry
	stale := false
	c.mu.byEnd.AscendFunc(btreemap.GT(d.GetStartKey()), btreemap.Max[[]byte](), func(_ []byte, e *cacheEntry) bool {
		if bytes.Compare(e.desc.GetStartKey(), d.GetEndKey()) >= 0 {
			return false
		}
		if e.desc.GetGeneration() > d.GetGeneration() {
			stale = true
			return false
		}
		overlaps = append(overlaps, e)
		return true
	})
	if stale {
		return
	}
	ne := &cacheEntry{desc: d}
	for _, e := range overlaps {
		c.mu.byEnd.Delete(e.desc.GetEndKey())
		if e.desc.GetRangeId() == d.GetRangeId() && e.lease != nil && d.ReplicaByID(e.lease.GetReplicaId()) != nil {
			ne.lease, ne.leaseSeq = e.lease, e.leaseSeq
		}
	}
	c.mu.byEnd.ReplaceOrInsert(d.GetEndKey(), ne)
}

// Evict removes desc from the cache if the cached entry at its end key is
// the same range at the same or an older generation (so a newer entry
// inserted concurrently survives).
func (c *RangeCache) Evict(desc *api.RangeDescriptor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, e, ok := c.mu.byEnd.Get(desc.GetEndKey())
	if ok && e.desc.GetRangeId() == desc.GetRangeId() && e.desc.GetGeneration() <= desc.GetGeneration() {
		c.mu.byEnd.Delete(desc.GetEndKey())
	}
}

// UpdateLeaseholder records that replica holds (or just served) range
// rangeID's lease, with the lease's sequence (0 if unknown). A hint with a
// lower sequence than the cached one is ignored.
func (c *RangeCache) UpdateLeaseholder(desc *api.RangeDescriptor, replica *api.ReplicaDescriptor, seq int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, e, ok := c.mu.byEnd.Get(desc.GetEndKey())
	if !ok || e.desc.GetRangeId() != desc.GetRangeId() {
		return
	}
	if seq != 0 && seq < e.leaseSeq {
		return
	}
	if e.lease != nil && e.lease.SameReplica(replica) && seq <= e.leaseSeq {
		return
	}
	e.lease = replica
	if seq > e.leaseSeq {
		e.leaseSeq = seq
	}
}

// All returns every cached entry in key order (for tests and status).
func (c *RangeCache) All() []CacheEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []CacheEntry
	c.mu.byEnd.AscendFunc(btreemap.Min[[]byte](), btreemap.Max[[]byte](), func(_ []byte, e *cacheEntry) bool {
		out = append(out, CacheEntry{Desc: e.desc, Leaseholder: e.lease, LeaseSeq: e.leaseSeq})
		return true
	})
	return out
}
