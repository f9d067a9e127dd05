package ranges_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/ranges/rangetest"
)

func benchSplit(b *testing.B, c *rangetest.Cluster, key []byte) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	start := time.Now()
	for ctx.Err() == nil {
		d, err := c.RangeFor(key)
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range c.Nodes() {
			r, err := n.Store.Replica(keys.RangeID(d.GetRangeId()))
			if err != nil {
				continue
			}
			if _, _, err := r.AdminSplit(ctx, key); err == nil {
				return time.Since(start)
			}
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatalf("split at %s did not happen", keys.Pretty(key))
	return 0
}

func writers(c *rangetest.Cluster, n int, stop <-chan struct{}, done *atomic.Int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	var i atomic.Int64
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := uk(fmt.Sprintf("b%06d", i.Add(7919)%1000000))
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if _, err := c.Send(ctx, batch(&api.PutRequest{Key: k, Value: []byte("value-0123456789")})); err == nil {
					done.Add(1)
				}
				cancel()
			}
		}()
	}
	return &wg
}

// BenchmarkSplitLatency: time from proposing a split to both ranges
// serving, while 8 clients write, on 3 nodes with Pebble on disk.
func BenchmarkSplitLatency(b *testing.B) {
	c := rangetest.NewCluster(b, rangetest.Options{Nodes: 3, Dir: b.TempDir()})
	stop := make(chan struct{})
	var done atomic.Int64
	wg := writers(c, 8, stop, &done)
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		lat = append(lat, benchSplit(b, c, uk(fmt.Sprintf("b%06d", i*997%1000000))))
	}
	close(stop)
	wg.Wait()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkWritesWhileSplitting compares write throughput (8 clients, 3
// nodes, Pebble on disk) with and without a split every 50 ms.
func BenchmarkWritesWhileSplitting(b *testing.B) {
	for _, splitting := range []bool{false, true} {
		b.Run(fmt.Sprintf("splitting=%v", splitting), func(b *testing.B) {
			c := rangetest.NewCluster(b, rangetest.Options{Nodes: 3, Dir: b.TempDir()})
			stop := make(chan struct{})
			var done atomic.Int64
			start := time.Now()
			wg := writers(c, 8, stop, &done)
			splits := 0
			for b.Loop() {
				time.Sleep(50 * time.Millisecond)
				if splitting {
					splits++
					benchSplit(b, c, uk(fmt.Sprintf("b%06d", splits*7777%1000000)))
				}
			}
			close(stop)
			wg.Wait()
			b.ReportMetric(float64(done.Load())/time.Since(start).Seconds(), "writes/s")
		})
	}
}
