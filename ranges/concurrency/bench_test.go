package concurrency

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/meridiandb/meridian/hlc"
)

// The latch benchmarks. Run with
//
//	go test -run '^$' -bench . -benchmem ./ranges/concurrency

var benchTS = hlc.Timestamp{WallTime: 10}

// BenchmarkAcquireRelease is the uncontended path: one request at a time,
// over a manager that already holds `held` unrelated latches.
func BenchmarkAcquireRelease(b *testing.B) {
	for _, held := range []int{0, 1000} {
		for _, spans := range []int{1, 8} {
			b.Run(fmt.Sprintf("held=%d/spans=%d", held, spans), func(b *testing.B) {
				m := NewLatchManager()
				for i := range held {
					var ss SpanSet
					ss.AddRead(fmt.Appendf(nil, "held%06d", i), nil, benchTS)
					if _, err := m.Acquire(context.Background(), &ss); err != nil {
						b.Fatal(err)
					}
				}
				var ss SpanSet
				for i := range spans {
					ss.AddWrite(fmt.Appendf(nil, "key%03d", i), nil, benchTS)
				}
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					g, err := m.Acquire(ctx, &ss)
					if err != nil {
						b.Fatal(err)
					}
					m.Release(g)
				}
			})
		}
	}
}

// BenchmarkContended runs Acquire/Release from N goroutines at once, all on
// one key (every request serialised) or each on its own key (no waiting,
// only the shared mutex).
func BenchmarkContended(b *testing.B) {
	for _, shared := range []bool{true, false} {
		for _, n := range []int{4, 16, 64} {
			name := fmt.Sprintf("one-key/goroutines=%d", n)
			if !shared {
				name = fmt.Sprintf("own-key/goroutines=%d", n)
			}
			b.Run(name, func(b *testing.B) {
				m := NewLatchManager()
				ctx := context.Background()
				work := make(chan struct{}, 1024)
				var wg sync.WaitGroup
				for g := range n {
					var ss SpanSet
					k := []byte("k")
					if !shared {
						k = fmt.Appendf(nil, "k%03d", g)
					}
					ss.AddWrite(k, nil, benchTS)
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range work {
							lg, err := m.Acquire(ctx, &ss)
							if err != nil {
								panic(err)
							}
							m.Release(lg)
						}
					}()
				}
				b.ReportAllocs()
				for b.Loop() {
					work <- struct{}{}
				}
				close(work)
				wg.Wait()
			})
		}
	}
}
