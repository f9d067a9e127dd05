package tscache

import (
	"fmt"
	"sync"
	"testing"

	"github.com/RaduBerinde/btreemap"
	"github.com/meridiandb/meridian/hlc"
	"pgregory.net/rapid"
)

// The model: every Add ever made, and every low-water mark ever set. Its
// answer for a span is the max over the marks and the adds that overlap
// the span, with a transaction named only if every contributor at that
// timestamp names it (a mark names none). Overlap is computed on strings,
// independently of the cache.
type modelAdd struct {
	start, end string // end exclusive, "" never (points are start+"\x00")
	val        Value
}

type model struct {
	adds     []modelAdd
	lowWater hlc.Timestamp
}

func modelEnd(start, end []byte) string {
	if len(end) == 0 {
		return string(start) + "\x00"
	}
	return string(end)
}

func (m *model) get(start, end []byte) Value {
	s, e := string(start), modelEnd(start, end)
	best := m.lowWater
	for _, a := range m.adds {
		if a.start < e && s < a.end && best.Less(a.val.Timestamp) {
			best = a.val.Timestamp
		}
	}
	txn, named := NoTxn, false
	if best == m.lowWater {
		return Value{Timestamp: best} // the mark names no transaction
	}
	for _, a := range m.adds {
		if a.start < e && s < a.end && a.val.Timestamp == best {
			switch {
			case !named:
				txn, named = a.val.Txn, true
			case txn != a.val.Txn:
				txn = NoTxn
			}
		}
	}
	return Value{Timestamp: best, Txn: txn}
}

func genSpan(t *rapid.T, label string) ([]byte, []byte) {
	key := rapid.SliceOfN(rapid.ByteRange('a', 'd'), 0, 2)
	s := key.Draw(t, label+"-start")
	if rapid.Bool().Draw(t, label+"-point") {
		return s, nil
	}
	e := key.Draw(t, label+"-end")
	return s, e // possibly empty (a point) or inverted (ignored)
}

func TestCacheModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		budget := rapid.SampledFrom([]int{300, 1000, 1 << 20}).Draw(t, "budget")
		c := New(budget, hlc.Timestamp{})
		var m model
		for range rapid.IntRange(1, 80).Draw(t, "steps") {
			switch rapid.IntRange(0, 9).Draw(t, "op") {
			case 0:
				ts := hlc.Timestamp{WallTime: rapid.Int64Range(0, 4).Draw(t, "lw")}
				c.SetLowWater(ts)
				m.lowWater = m.lowWater.Forward(ts)
			case 1, 2, 3, 4, 5:
				s, e := genSpan(t, "add")
				ts := hlc.Timestamp{
					WallTime: rapid.Int64Range(0, 6).Draw(t, "wall"),
					Logical:  rapid.Int32Range(0, 1).Draw(t, "logical"),
				}
				txn := txnID(rapid.IntRange(0, 2).Draw(t, "txn"))
				c.Add(s, e, ts, txn)
				if len(e) == 0 || string(s) < string(e) {
					m.adds = append(m.adds, modelAdd{string(s), modelEnd(s, e), Value{ts, txn}})
				}
			default:
				s, e := genSpan(t, "get")
				got := c.GetMaxValue(s, e)
				if len(e) != 0 && string(s) >= string(e) {
					if got.Timestamp != c.LowWater() {
						t.Fatalf("GetMax of an inverted span = %s, want the low-water mark", got.Timestamp)
					}
					continue
				}
				want := m.get(s, e)
				if got.Timestamp.Less(want.Timestamp) {
					t.Fatalf("GetMax(%q, %q) = %s, below the truth %s\n%s", s, e, got.Timestamp, want.Timestamp, c)
				}
				if c.mu.evicted == 0 && got != want {
					t.Fatalf("GetMax(%q, %q) = %+v, want %+v (nothing evicted)\n%s", s, e, got, want, c)
				}
			}
			checkInvariants(t, c)
		}
	})
}

// checkInvariants checks the cache's internal invariants: segments sorted,
// disjoint, non-empty, strictly above the low-water mark, and the byte
// count matches.
func checkInvariants(t *rapid.T, c *Cache) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var prevEnd []byte
	bytes := 0
	for e, seg := range c.mu.segs.Ascend(btreemapMin(), btreemapMax()) {
		s := seg.start
		if string(s) >= string(e) {
			t.Fatalf("empty segment [%q,%q)", s, e)
		}
		if prevEnd != nil && string(s) < string(prevEnd) {
			t.Fatalf("segment [%q,%q) overlaps the previous one", s, e)
		}
		if seg.val.Timestamp.LessEq(c.mu.lowWater) {
			t.Fatalf("segment [%q,%q) at %s not above the low-water mark %s", s, e, seg.val.Timestamp, c.mu.lowWater)
		}
		prevEnd = e
		bytes += segmentSize(s, e)
	}
	if bytes != c.mu.bytes {
		t.Fatalf("byte count %d, segments add up to %d", c.mu.bytes, bytes)
	}
	if c.mu.bytes > c.budget {
		t.Fatalf("cache holds %d bytes, over its budget of %d", c.mu.bytes, c.budget)
	}
}

// TestEvictionRaisesLowWater fills a small cache with increasing
// timestamps: it stays within budget, its low-water mark rises, and every
// key still answers at least the timestamp it was read at.
func TestEvictionRaisesLowWater(t *testing.T) {
	const budget = 10 << 10
	c := New(budget, hlc.Timestamp{})
	const n = 2000
	for i := range n {
		c.Add(fmt.Appendf(nil, "key%05d", i), nil, hlc.Timestamp{WallTime: int64(i + 1)}, NoTxn)
		if c.Bytes() > budget {
			t.Fatalf("after %d adds the cache holds %d bytes, over its budget", i+1, c.Bytes())
		}
	}
	lw := c.LowWater()
	if lw.IsEmpty() || c.mu.evicted == 0 {
		t.Fatalf("no eviction after %d adds into a %d-byte cache (low-water %s)", n, budget, lw)
	}
	if c.Len() >= n {
		t.Fatalf("cache holds %d segments, expected eviction", c.Len())
	}
	for i := range n {
		k := fmt.Appendf(nil, "key%05d", i)
		if got, want := c.GetMax(k, nil), (hlc.Timestamp{WallTime: int64(i + 1)}); got.Less(want) {
			t.Fatalf("GetMax(%s) = %s, below the read at %s", k, got, want)
		}
	}
	// The most recent reads are still exact: eviction took the oldest.
	last := fmt.Appendf(nil, "key%05d", n-1)
	if got := c.GetMax(last, nil); got.WallTime != n {
		t.Fatalf("GetMax(%s) = %s, want %d (the newest entry evicted)", last, got, n)
	}
	// A key never read answers the low-water mark, which covers what was
	// evicted.
	if got := c.GetMax([]byte("zzz"), nil); got != lw {
		t.Fatalf("GetMax of an unread key = %s, want the low-water mark %s", got, lw)
	}
}

// TestConcurrentAddGet has goroutines add reads and immediately check they
// are visible, while others raise the low-water mark, with eviction on.
// Run under -race.
func TestConcurrentAddGet(t *testing.T) {
	c := New(8<<10, hlc.Timestamp{})
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				k := fmt.Appendf(nil, "k%d-%03d", g, i%50)
				e := fmt.Appendf(nil, "k%d-%03d", g, i%50+3)
				ts := hlc.Timestamp{WallTime: int64(i + 1), Logical: int32(g)}
				if g == 0 && i%100 == 0 {
					c.SetLowWater(hlc.Timestamp{WallTime: int64(i / 2)})
				}
				if i%2 == 0 {
					c.Add(k, nil, ts, NoTxn)
				} else {
					c.Add(k, e, ts, NoTxn)
				}
				if got := c.GetMax(k, nil); got.Less(ts) {
					errc <- fmt.Errorf("GetMax(%s) = %s right after a read at %s", k, got, ts)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

func btreemapMin() btreemap.LowerBound[[]byte] { return btreemap.Min[[]byte]() }
func btreemapMax() btreemap.UpperBound[[]byte] { return btreemap.Max[[]byte]() }
