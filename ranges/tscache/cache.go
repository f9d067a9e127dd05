package tscache

import (
	"bytes"
	"fmt"
	"slices"
	"sync"

	"github.com/RaduBerinde/btreemap"
	"github.com/meridiandb/meridian/hlc"
)

// TxnID identifies the transaction that read at a cached timestamp. The
// zero TxnID means none: a non-transactional read, or several transactions
// that read at the same timestamp.
type TxnID [16]byte

// NoTxn is the zero TxnID.
var NoTxn TxnID

// Value is what the cache knows about a key span: the highest timestamp at
// which it was read, and the one transaction that read it at that
// timestamp, if there is exactly one.
type Value struct {
	Timestamp hlc.Timestamp
	Txn       TxnID
}

// max combines two values: the later timestamp wins; on a tie the
// transaction survives only if both name the same one.
func (v Value) max(o Value) Value {
	switch {
	case v.Timestamp.Less(o.Timestamp):
		return o
	case o.Timestamp.Less(v.Timestamp):
		return v
	case v.Txn != o.Txn:
		return Value{Timestamp: v.Timestamp}
	default:
		return v
	}
}

// segmentOverhead approximates the bytes a segment costs besides its keys:
// the btree item (key slice header and value) and a share of its node.
const segmentOverhead = 96

// DefaultBudget is the memory budget New uses when given 0: 64 MiB.
const DefaultBudget = 64 << 20

// Cache is a timestamp cache. It is safe for concurrent use.
type Cache struct {
	budget int // bytes
	mu     struct {
		sync.Mutex
		// segs maps an end key to the segment [start, end) that ends there.
		// (Keyed by end rather than start, the segments overlapping a span
		// are one forward scan from the span's start key.) Segments are disjoint and never empty; every key outside
		// them has the low-water mark as its value. Every segment's
		// timestamp is above the low-water mark. Keys are owned by the
		// cache and never modified.
		segs     *btreemap.BTreeMap[[]byte, segment]
		lowWater hlc.Timestamp
		bytes    int
		evicted  int // segments dropped by eviction, for tests and metrics
		// Scratch space for addLocked, reused to save allocations.
		old, out []piece
	}
}

type segment struct {
	start []byte
	val   Value
}

func segmentSize(start, end []byte) int { return segmentOverhead + len(start) + len(end) }

// New returns an empty cache holding at most about budget bytes of entries
// (DefaultBudget if budget <= 0), with lowWater as its low-water mark.
func New(budget int, lowWater hlc.Timestamp) *Cache {
	if budget <= 0 {
		budget = DefaultBudget
	}
	c := &Cache{budget: budget}
	c.mu.segs = btreemap.New[[]byte, segment](16, bytes.Compare)
	c.mu.lowWater = lowWater
	return c
}

// Add records that [start, end) (the key start alone if end is empty) was
// read at ts, by txn (NoTxn if none). An empty or inverted span, and a
// timestamp at or below the low-water mark, change nothing. The cache
// copies the keys.
func (c *Cache) Add(start, end []byte, ts hlc.Timestamp, txn TxnID) {
	if len(end) != 0 && bytes.Compare(start, end) >= 0 {
		return
	}
	// One allocation, made before taking the lock, holds both keys; the
	// cache's keys are immutable, so segments may share them. A point span
	// ends at start+"\x00".
	buf := make([]byte, 0, len(start)+max(len(end), len(start)+1))
	buf = append(buf, start...)
	if len(end) == 0 {
		buf = append(buf, start...)
		buf = append(buf, 0)
	} else {
		buf = append(buf, end...)
	}
	s, e := buf[:len(start):len(start)], buf[len(start):]
	c.mu.Lock()
	defer c.mu.Unlock()
	if ts.LessEq(c.mu.lowWater) {
		return
	}
	c.addLocked(s, e, Value{Timestamp: ts, Txn: txn})
	if c.mu.bytes > c.budget {
		c.evictLocked()
	}
}

type piece struct {
	start, end []byte
	val        Value
}

func (c *Cache) addLocked(start, end []byte, v Value) {
	old, out := c.mu.old[:0], c.mu.out[:0]
	c.overlappingLocked(start, end, func(e []byte, seg segment) {
		old = append(old, piece{start: seg.start, end: e, val: seg.val})
	})
	emit := func(p piece) {
		if n := len(out); n > 0 && out[n-1].val == p.val && bytes.Equal(out[n-1].end, p.start) {
			out[n-1].end = p.end
			return
		}
		out = append(out, p)
	}
	cur := start // [start, cur) is done
	for _, o := range old {
		if bytes.Compare(o.start, start) < 0 {
			emit(piece{start: o.start, end: start, val: o.val}) // left of the span
		}
		s := o.start
		if bytes.Compare(s, start) < 0 {
			s = start
		}
		if bytes.Compare(cur, s) < 0 {
			emit(piece{start: cur, end: s, val: v}) // a gap
		}
		e := o.end
		if bytes.Compare(end, e) < 0 {
			e = end
		}
		emit(piece{start: s, end: e, val: o.val.max(v)})
		cur = e
		if bytes.Compare(end, o.end) < 0 {
			emit(piece{start: end, end: o.end, val: o.val}) // right of the span
		}
	}
	if bytes.Compare(cur, end) < 0 {
		emit(piece{start: cur, end: end, val: v})
	}
	// Old segments whose end key a new piece reuses are replaced in place
	// by ReplaceOrInsert; delete only the others. Both lists are sorted.
	j := 0
	for _, o := range old {
		c.mu.bytes -= segmentSize(o.start, o.end)
		for j < len(out) && bytes.Compare(out[j].end, o.end) < 0 {
			j++
		}
		if j == len(out) || !bytes.Equal(out[j].end, o.end) {
			c.mu.segs.Delete(o.end)
		}
	}
	for _, p := range out {
		c.mu.segs.ReplaceOrInsert(p.end, segment{start: p.start, val: p.val})
		c.mu.bytes += segmentSize(p.start, p.end)
	}
	clear(old) // drop references to keys that may have been deleted
	clear(out)
	c.mu.old, c.mu.out = old[:0], out[:0]
}

// overlappingLocked calls fn, in key order, for every segment that overlaps
// [start, end) (end exclusive, never empty).
//
// The segments that end after start, in order, are those that overlap the
// span up to the first that starts at or after end.
func (c *Cache) overlappingLocked(start, end []byte, fn func(end []byte, seg segment)) {
	c.mu.segs.AscendFunc(btreemap.GT(start), btreemap.Max[[]byte](), func(e []byte, seg segment) bool {
		if bytes.Compare(seg.start, end) >= 0 {
			return false
		}
		fn(e, seg)
		return true
	})
}

// GetMax returns the highest timestamp at which any key of [start, end)
// (the key start alone if end is empty) may have been read: never below
// the truth, and at least the low-water mark.
func (c *Cache) GetMax(start, end []byte) hlc.Timestamp {
	return c.GetMaxValue(start, end).Timestamp
}

// GetMaxValue is GetMax with the transaction that read at that timestamp,
// if exactly one did (and none if the answer is the low-water mark).
func (c *Cache) GetMaxValue(start, end []byte) Value {
	if len(end) != 0 && bytes.Compare(start, end) >= 0 {
		c.mu.Lock()
		defer c.mu.Unlock()
		return Value{Timestamp: c.mu.lowWater}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Segments lie strictly above the low-water mark, which answers for
	// every key they do not cover.
	v := Value{Timestamp: c.mu.lowWater}
	// Scan the segments ending after start until one starts at or after
	// the span's end (after start itself, for a point span).
	point := len(end) == 0
	c.mu.segs.AscendFunc(btreemap.GT(start), btreemap.Max[[]byte](), func(_ []byte, seg segment) bool {
		if point {
			if bytes.Compare(seg.start, start) > 0 {
				return false
			}
		} else if bytes.Compare(seg.start, end) >= 0 {
			return false
		}
		v = v.max(seg.val)
		return !point
	})
	return v
}

// LowWater returns the low-water mark: the timestamp every key not
// otherwise recorded may have been read at.
func (c *Cache) LowWater() hlc.Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.lowWater
}

// SetLowWater raises the low-water mark to ts, as a new leaseholder does to
// its lease start: every key counts as read up to ts. A lower ts changes
// nothing. Segments at or below the new mark are dropped.
func (c *Cache) SetLowWater(ts hlc.Timestamp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ts.LessEq(c.mu.lowWater) {
		return
	}
	c.mu.lowWater = ts
	c.dropAtOrBelowLocked(ts)
}

func (c *Cache) dropAtOrBelowLocked(ts hlc.Timestamp) int {
	var drop [][]byte
	c.mu.segs.AscendFunc(btreemap.Min[[]byte](), btreemap.Max[[]byte](), func(e []byte, seg segment) bool {
		if seg.val.Timestamp.LessEq(ts) {
			drop = append(drop, e)
			c.mu.bytes -= segmentSize(seg.start, e)
		}
		return true
	})
	for _, e := range drop {
		c.mu.segs.Delete(e)
	}
	return len(drop)
}

// evictLocked drops the segments with the lowest timestamps until the cache
// is down to three quarters of its budget, and raises the low-water mark
// to the highest timestamp dropped, so that every answer stays at or above
// the truth. Evicting a quarter at a time keeps the O(n log n) cost of
// choosing the victims amortised to O(log n) per Add.
func (c *Cache) evictLocked() {
	type entry struct {
		ts   hlc.Timestamp
		size int
	}
	entries := make([]entry, 0, c.mu.segs.Len())
	c.mu.segs.AscendFunc(btreemap.Min[[]byte](), btreemap.Max[[]byte](), func(e []byte, seg segment) bool {
		entries = append(entries, entry{seg.val.Timestamp, segmentSize(seg.start, e)})
		return true
	})
	slices.SortFunc(entries, func(a, b entry) int { return a.ts.Compare(b.ts) })
	target := c.budget / 4 * 3
	freed := 0
	var mark hlc.Timestamp
	for _, e := range entries {
		if c.mu.bytes-freed <= target {
			break
		}
		freed += e.size
		mark = e.ts
	}
	if mark.LessEq(c.mu.lowWater) {
		return
	}
	c.mu.lowWater = mark
	c.mu.evicted += c.dropAtOrBelowLocked(mark)
}

// Len returns the number of segments the cache holds.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.segs.Len()
}

// Bytes returns the cache's estimate of the memory its entries take.
func (c *Cache) Bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.bytes
}

// String renders the low-water mark and every segment, for transcripts and
// debugging.
func (c *Cache) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b bytes.Buffer
	fmt.Fprintf(&b, "low-water %s", c.mu.lowWater)
	c.mu.segs.AscendFunc(btreemap.Min[[]byte](), btreemap.Max[[]byte](), func(e []byte, seg segment) bool {
		fmt.Fprintf(&b, "\n[%q,%q) %s", seg.start, e, seg.val.Timestamp)
		if seg.val.Txn != NoTxn {
			fmt.Fprintf(&b, " txn=%x", seg.val.Txn[:4])
		}
		return true
	})
	return b.String()
}
