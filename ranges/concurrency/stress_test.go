package concurrency

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/meridiandb/meridian/hlc"
)

// TestConcurrentIncrements has many goroutines run read-modify-write
// increments over overlapping key ranges of plain (non-atomic) counters,
// each under a write latch. Without mutual exclusion increments would be
// lost and the race detector would report the unsynchronised accesses; with
// it the counters add up exactly. Readers at a timestamp above every write
// check that what they read does not change under their read latch. Some
// acquisitions are given a context that is cancelled while they may be
// waiting; those increments are skipped and counted as such, and they must
// not leave anyone stuck.
func TestConcurrentIncrements(t *testing.T) {
	const (
		nkeys      = 16
		goroutines = 16
		ops        = 400
	)
	var counters [nkeys]int
	key := func(i int) []byte { return fmt.Appendf(nil, "k%02d", i) }
	m := NewLatchManager()

	var wg sync.WaitGroup
	expected := make([]int, goroutines)
	errc := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			for range ops {
				i := rng.IntN(nkeys)
				j := i + 1 + rng.IntN(min(4, nkeys-i))
				var ss SpanSet
				reader := rng.IntN(4) == 0
				if reader {
					ss.AddRead(key(i), key(j), hlc.Timestamp{WallTime: 100})
				} else if j == i+1 && rng.IntN(2) == 0 {
					ss.AddWrite(key(i), nil, hlc.Timestamp{WallTime: int64(1 + rng.IntN(5))})
				} else {
					ss.AddWrite(key(i), key(j), hlc.Timestamp{WallTime: int64(1 + rng.IntN(5))})
				}
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if rng.IntN(8) == 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(rng.IntN(50))*time.Microsecond)
				}
				lg, err := m.Acquire(ctx, &ss)
				cancel()
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) {
						errc <- err
						return
					}
					continue
				}
				if reader {
					var before [nkeys]int
					copy(before[i:j], counters[i:j])
					runtime.Gosched()
					for k := i; k < j; k++ {
						if counters[k] != before[k] {
							errc <- fmt.Errorf("counter %d changed under a read latch", k)
							return
						}
					}
				} else {
					for k := i; k < j; k++ {
						v := counters[k]
						runtime.Gosched()
						counters[k] = v + 1
						expected[g]++
					}
				}
				m.Release(lg)
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	sum, want := 0, 0
	for _, c := range counters {
		sum += c
	}
	for _, e := range expected {
		want += e
	}
	if sum != want {
		t.Fatalf("counters add up to %d, want %d (lost updates)", sum, want)
	}
	if n := m.Len(); n != 0 {
		t.Fatalf("%d latches left behind", n)
	}
}

// TestAcquireCancel covers Acquire's ctx handling through the public API.
func TestAcquireCancel(t *testing.T) {
	ts := hlc.Timestamp{WallTime: 1}
	write := func(k, e string) *SpanSet {
		var ss SpanSet
		var end []byte
		if e != "" {
			end = []byte(e)
		}
		ss.AddWrite([]byte(k), end, ts)
		return &ss
	}
	acquireAsync := func(m *LatchManager, ctx context.Context, ss *SpanSet) chan error {
		ch := make(chan error, 1)
		go func() {
			g, err := m.Acquire(ctx, ss)
			if err == nil {
				m.Release(g)
			}
			ch <- err
		}()
		return ch
	}
	waitLen := func(m *LatchManager, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for m.Len() != n {
			if time.Now().After(deadline) {
				t.Fatalf("manager has %d latches, want %d", m.Len(), n)
			}
			runtime.Gosched()
		}
	}

	t.Run("waiter-cancelled", func(t *testing.T) {
		m := NewLatchManager()
		h, err := m.Acquire(context.Background(), write("a", ""))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ch := acquireAsync(m, ctx, write("a", ""))
		waitLen(m, 2) // the waiter is sequenced behind h
		select {
		case err := <-ch:
			t.Fatalf("waiter returned %v while the key was held", err)
		default:
		}
		cancel()
		if err := <-ch; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled waiter returned %v, want context.Canceled", err)
		}
		if n := m.Len(); n != 1 {
			t.Fatalf("cancelled waiter left latches: %d, want 1", n)
		}
		m.Release(h)
		m.Release(h) // a second release is a no-op
		if n := m.Len(); n != 0 {
			t.Fatalf("%d latches after release", n)
		}
	})

	t.Run("later-waiter-not-stuck", func(t *testing.T) {
		// h holds a; w1 waits for h on [a,c); w2 waits for w1 only, on b.
		// Cancelling w1 must let w2 go while h still holds a.
		m := NewLatchManager()
		h, err := m.Acquire(context.Background(), write("a", ""))
		if err != nil {
			t.Fatal(err)
		}
		ctx1, cancel1 := context.WithCancel(context.Background())
		ch1 := acquireAsync(m, ctx1, write("a", "c"))
		waitLen(m, 2)
		ch2 := acquireAsync(m, context.Background(), write("b", ""))
		waitLen(m, 3)
		cancel1()
		if err := <-ch1; !errors.Is(err, context.Canceled) {
			t.Fatalf("w1 returned %v, want context.Canceled", err)
		}
		if err := <-ch2; err != nil {
			t.Fatalf("w2: %v", err)
		}
		m.Release(h)
		waitLen(m, 0)
	})

	t.Run("done-ctx-no-wait", func(t *testing.T) {
		// A request that need not wait succeeds even with a done ctx.
		m := NewLatchManager()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		g, err := m.Acquire(ctx, write("a", ""))
		if err != nil {
			t.Fatalf("uncontended Acquire with a done ctx: %v", err)
		}
		m.Release(g)
	})

	t.Run("deadline", func(t *testing.T) {
		m := NewLatchManager()
		h, err := m.Acquire(context.Background(), write("a", "z"))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		if _, err := m.Acquire(ctx, write("m", "")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Acquire past its deadline returned %v", err)
		}
		m.Release(h)
		if n := m.Len(); n != 0 {
			t.Fatalf("%d latches left behind", n)
		}
	})

	t.Run("invalid-span", func(t *testing.T) {
		m := NewLatchManager()
		if _, err := m.Acquire(context.Background(), write("b", "a")); err == nil {
			t.Fatal("Acquire of [b,a) succeeded")
		}
		if _, err := m.Acquire(context.Background(), write("b", "b")); err == nil {
			t.Fatal("Acquire of [b,b) succeeded")
		}
		var empty SpanSet
		g, err := m.Acquire(context.Background(), &empty)
		if err != nil {
			t.Fatal(err)
		}
		m.Release(g)
		g, err = m.Acquire(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		m.Release(g)
		if n := m.Len(); n != 0 {
			t.Fatalf("%d latches left behind", n)
		}
	})
}
