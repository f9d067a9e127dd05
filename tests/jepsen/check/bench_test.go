package check

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridiandb/meridian/tests/jepsen/history"
)

// keyPool hands out list-append keys like the real workload: a few active
// keys, skewed towards the first, each retired after maxAppends appends.
type keyPool struct {
	mu      sync.Mutex
	active  []int
	appends map[int]int
	next    int
}

const (
	activeKeys = 10
	maxAppends = 32
)

func newKeyPool() *keyPool {
	p := &keyPool{appends: map[int]int{}}
	for ; p.next < activeKeys; p.next++ {
		p.active = append(p.active, p.next)
	}
	return p
}

func (p *keyPool) pick(r *rand.Rand, appending bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := 0
	for i < activeKeys-1 && r.IntN(2) == 0 { // exponential, base 2
		i++
	}
	k := p.active[i]
	if appending {
		if p.appends[k]++; p.appends[k] >= maxAppends {
			p.active[i] = p.next
			p.next++
		}
	}
	return k
}

// genListAppend runs n list-append transactions from `clients` concurrent
// clients against the serial reference store; a fraction fail or end in
// info.
func genListAppend(n, clients int, seed uint64) []history.Event {
	return genListAppendStore(newRefStore(), n, clients, seed)
}

func genListAppendStore(s *refStore, n, clients int, seed uint64) []history.Event {
	rec := &recorder{}
	pool := newKeyPool()
	var counter atomic.Int64
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(c)))
			proc := c
			for left.Add(-1) >= 0 {
				p := planned{workload: history.ListAppend, f: "txn"}
				if x := r.IntN(50); x == 0 {
					p.outcome = 1
				} else if x == 1 {
					p.outcome = 2 + r.IntN(2)
				}
				for m := 1 + r.IntN(4); m > 0; m-- {
					app := r.IntN(2) == 0
					p.appendOp = append(p.appendOp, app)
					p.keys = append(p.keys, pool.pick(r, app))
				}
				if s.run(rec, proc, p, &counter, nil) {
					proc += clients
				}
			}
		}()
	}
	wg.Wait()
	return rec.evs
}

// BenchmarkListAppend checks a 10,000-transaction list-append history
// (10 concurrent clients, ~2.5 micro-ops per txn, 2% failed, 2% info).
func BenchmarkListAppend(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		evs := genListAppend(n, 10, 1)
		ops, err := history.Pair(evs, history.ListAppend)
		if err != nil {
			b.Fatal(err)
		}
		for _, model := range []string{StrictSerializable, Serializable} {
			b.Run(fmt.Sprintf("txns=%d/%s", n, model), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					r, err := CheckListAppend(ops, ListAppendOptions{Model: model})
					if err != nil {
						b.Fatal(err)
					}
					if r.Valid != ValidTrue {
						b.Fatalf("reference history judged %s:\n%s", r.Valid, Worst(r))
					}
				}
			})
		}
	}
}

// TestLargeReferenceHistory: one 10,000-transaction reference history with
// real concurrency checks valid, list-append and ts-order both.
func TestLargeReferenceHistory(t *testing.T) {
	n := 10_000
	if testing.Short() {
		n = 2_000
	}
	evs := genListAppend(n, 10, 7)
	s, err := CheckRun(&history.Run{Test: history.Test{Workloads: []string{history.ListAppend}}, Events: evs}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Valid != ValidTrue || len(s.Results) != 2 {
		t.Fatalf("verdict %s over %d checkers:\n%s", s.Valid, len(s.Results), s)
	}
}

// staleStore returns a reference store whose list-append reads are stale
// with probability p.
func staleStore(p float64, seed uint64) *refStore {
	s := newRefStore()
	r := rand.New(rand.NewPCG(seed, 99))
	s.staleReads = func() bool { return r.Float64() < p }
	return s
}

// TestLargeBuggyHistory: a 10,000-transaction history from a store with
// stale reads is judged invalid, with realtime anomalies, in bounded time.
func TestLargeBuggyHistory(t *testing.T) {
	n := 10_000
	if testing.Short() {
		n = 2_000
	}
	evs := genListAppendStore(staleStore(0.05, 3), n, 10, 3)
	ops, err := history.Pair(evs, history.ListAppend)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, err := CheckListAppend(ops, ListAppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checked in %s: %s %v", time.Since(start), r.Valid, r.Counts)
	if r.Valid != ValidFalse || r.Counts["G-single-realtime"]+r.Counts["G-single-process"]+r.Counts["G-single"] == 0 {
		t.Fatalf("stale reads should show as G-single(-realtime):\n%s", Worst(r))
	}
	// Serializable allows stale reads that fit some serial order, but a
	// read missing the txn's own earlier append never does.
	rs, err := CheckListAppend(ops, ListAppendOptions{Model: Serializable})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("serializable: %s %v", rs.Valid, rs.Counts)
}

// BenchmarkListAppendBuggy: the same size with anomalies everywhere, so the
// cycle search runs.
func BenchmarkListAppendBuggy(b *testing.B) {
	evs := genListAppendStore(staleStore(0.05, 3), 10_000, 10, 3)
	ops, err := history.Pair(evs, history.ListAppend)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if r, err := CheckListAppend(ops, ListAppendOptions{}); err != nil || r.Valid != ValidFalse {
			b.Fatalf("%v %v", r.Valid, err)
		}
	}
}
