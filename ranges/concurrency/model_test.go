package concurrency

import (
	"context"
	"testing"

	"github.com/meridiandb/meridian/hlc"
	"pgregory.net/rapid"
)

// The model of a LatchManager: the requests in arrival order, each with its
// spans over single-letter keys. A request holds its latches iff every
// earlier live request it conflicts with is gone. Conflicts are computed
// here from sets of letters and an independent statement of the timestamp
// rule, not with Span.Overlaps or Conflicts.

type modelSpan struct {
	write bool
	ts    int64 // 0: non-MVCC
	keys  map[byte]bool
}

type modelReq struct {
	spans []modelSpan
	g     *Guard
}

func modelConflict(a, b modelSpan) bool {
	shared := false
	for k := range a.keys {
		if b.keys[k] {
			shared = true
		}
	}
	if !shared || (!a.write && !b.write) {
		return false
	}
	if a.write && b.write {
		return true
	}
	r, w := a, b
	if a.write {
		r, w = b, a
	}
	if r.ts == 0 || w.ts == 0 {
		return true
	}
	return w.ts <= r.ts
}

func reqConflict(a, b *modelReq) bool {
	for _, x := range a.spans {
		for _, y := range b.spans {
			if modelConflict(x, y) {
				return true
			}
		}
	}
	return false
}

const letters = "abcdef"

func genSpans(t *rapid.T) (*SpanSet, []modelSpan) {
	n := rapid.IntRange(0, 3).Draw(t, "nspans")
	var ss SpanSet
	var ms []modelSpan
	for range n {
		write := rapid.Bool().Draw(t, "write")
		ts := rapid.Int64Range(0, 3).Draw(t, "ts")
		i := rapid.IntRange(0, len(letters)-1).Draw(t, "start")
		point := rapid.Bool().Draw(t, "point")
		m := modelSpan{write: write, ts: ts, keys: map[byte]bool{}}
		key := []byte{letters[i]}
		var end []byte
		if point {
			m.keys[letters[i]] = true
		} else {
			j := rapid.IntRange(i+1, len(letters)).Draw(t, "end")
			for k := i; k < j; k++ {
				m.keys[letters[k]] = true
			}
			// The end key may lie past the last letter.
			end = []byte{letters[0] + byte(j)}
		}
		var hts hlc.Timestamp
		if ts > 0 {
			hts = hlc.Timestamp{WallTime: ts}
		}
		if write {
			ss.AddWrite(key, end, hts)
		} else {
			ss.AddRead(key, end, hts)
		}
		ms = append(ms, m)
	}
	return &ss, ms
}

func TestLatchModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := NewLatchManager()
		var live []*modelReq
		held := func(i int) bool {
			for j := range i {
				if reqConflict(live[j], live[i]) {
					return false
				}
			}
			return true
		}
		check := func() {
			nlatches := 0
			for i, r := range live {
				nlatches += len(r.spans)
				want := held(i)
				if got := r.g.ready(); got != want {
					t.Fatalf("request %d of %d: holds latches = %v, model says %v", i, len(live), got, want)
				}
				// The safety property, stated directly.
				for j := range i {
					if want && held(j) && reqConflict(live[i], live[j]) {
						t.Fatalf("conflicting requests %d and %d hold latches at once", j, i)
					}
				}
			}
			if got := m.Len(); got != nlatches {
				t.Fatalf("manager has %d latches, model %d", got, nlatches)
			}
		}
		pick := func(pred func(int) bool, label string) int {
			var idx []int
			for i := range live {
				if pred(i) {
					idx = append(idx, i)
				}
			}
			if len(idx) == 0 {
				return -1
			}
			return idx[rapid.IntRange(0, len(idx)-1).Draw(t, label)]
		}
		for range rapid.IntRange(1, 60).Draw(t, "steps") {
			switch rapid.IntRange(0, 2).Draw(t, "op") {
			case 0: // acquire
				ss, ms := genSpans(t)
				live = append(live, &modelReq{spans: ms, g: m.sequence(ss)})
			case 1: // release a holder
				i := pick(held, "release")
				if i < 0 {
					continue
				}
				m.Release(live[i].g)
				live = append(live[:i], live[i+1:]...)
			case 2: // cancel a waiter
				i := pick(func(i int) bool { return !held(i) }, "cancel")
				if i < 0 {
					continue
				}
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				if err := m.wait(ctx, live[i].g); err == nil {
					t.Fatalf("wait on a cancelled ctx of a waiting request returned nil")
				}
				live = append(live[:i], live[i+1:]...)
			}
			check()
		}
		for _, r := range live {
			if r.g.ready() {
				m.Release(r.g)
			}
		}
	})
}

// TestIntervalTree checks the treap's overlap query against a scan, with
// inserts and removals in random order.
func TestIntervalTree(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var tree intervalTree
		var all []*latch
		genSpan := func(label string) Span {
			a := rapid.SliceOfN(rapid.ByteRange('a', 'e'), 0, 3).Draw(t, label+"-key")
			if rapid.Bool().Draw(t, label+"-point") {
				return Span{Key: a}
			}
			b := rapid.SliceOfN(rapid.ByteRange('a', 'e'), 1, 3).Draw(t, label+"-end")
			if string(b) <= string(a) {
				a, b = b, a
			}
			if string(a) == string(b) {
				return Span{Key: a}
			}
			return Span{Key: a, EndKey: b}
		}
		var seq uint64
		for range rapid.IntRange(1, 100).Draw(t, "steps") {
			if len(all) > 0 && rapid.IntRange(0, 2).Draw(t, "remove") == 0 {
				i := rapid.IntRange(0, len(all)-1).Draw(t, "victim")
				tree.remove(all[i])
				all = append(all[:i], all[i+1:]...)
			} else {
				seq++
				l := &latch{span: LatchSpan{Span: genSpan("ins")}, seq: seq}
				tree.insert(l)
				all = append(all, l)
			}
			if tree.n != len(all) {
				t.Fatalf("tree has %d latches, want %d", tree.n, len(all))
			}
			q := genSpan("q")
			want := map[*latch]bool{}
			for _, l := range all {
				if q.Overlaps(l.span.Span) {
					want[l] = true
				}
			}
			var prev *latch
			got := 0
			tree.overlapping(q, func(l *latch) {
				if !want[l] {
					t.Fatalf("query %s: %s reported but does not overlap", q, l.span.Span)
				}
				if prev != nil && !keyLess(prev, l) {
					t.Fatalf("query %s: results out of order", q)
				}
				prev = l
				got++
			})
			if got != len(want) {
				t.Fatalf("query %s: %d results, want %d", q, got, len(want))
			}
		}
	})
}

// TestSpanOverlaps pins the point/range edge cases of Span.Overlaps.
func TestSpanOverlaps(t *testing.T) {
	s := func(k, e string) Span {
		if e == "" {
			return Span{Key: []byte(k)}
		}
		return Span{Key: []byte(k), EndKey: []byte(e)}
	}
	for _, c := range []struct {
		a, b Span
		want bool
	}{
		{s("a", ""), s("a", ""), true},
		{s("a", ""), s("b", ""), false},
		{s("a", ""), s("a", "b"), true},
		{s("b", ""), s("a", "b"), false},
		{s("a\x00", ""), s("a", "b"), true},
		{s("a", "b"), s("b", "c"), false},
		{s("a", "c"), s("b", "d"), true},
		{s("", ""), s("", "a"), true},
		{s("a", ""), s("a\x00", "b"), false},
	} {
		if got := c.a.Overlaps(c.b); got != c.want {
			t.Errorf("%s overlaps %s = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := c.b.Overlaps(c.a); got != c.want {
			t.Errorf("%s overlaps %s = %v, want %v", c.b, c.a, got, c.want)
		}
	}
}
