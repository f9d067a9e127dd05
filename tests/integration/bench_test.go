package integration_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/client"
	"github.com/meridiandb/meridian/ranges/rangetest"
)

// BenchmarkRouter measures point reads and writes through the router on a
// 3-node in-process cluster (gRPC on loopback, Pebble on disk with fsync),
// with 1 and 64 clients, over 1 user range and over 100.
func BenchmarkRouter(b *testing.B) {
	for _, ranges := range []int{1, 100} {
		b.Run(fmt.Sprintf("ranges=%d", ranges), func(b *testing.B) {
			c := rangetest.NewCluster(b, rangetest.Options{Nodes: 3, GRPC: true, Dir: b.TempDir(), SplitKeys: splits(ranges)})
			r := newRouter(c)
			// Warm: a lease and a cached descriptor for every range.
			for i := 0; i < 10000; i += 10000 / ranges {
				send(b, r, &api.PutRequest{Key: uk(fmt.Sprintf("k%04d", i)), Value: []byte("v")})
			}
			for _, op := range []string{"get", "put"} {
				for _, clients := range []int{1, 64} {
					b.Run(fmt.Sprintf("op=%s/clients=%d", op, clients), func(b *testing.B) {
						benchRouter(b, r, op, clients)
					})
				}
			}
		})
	}
}

func benchRouter(b *testing.B, r *client.Router, op string, clients int) {
	var i atomic.Int64
	one := func() {
		k := uk(fmt.Sprintf("k%04d", i.Add(7919)%10000))
		ba := &api.BatchRequest{Header: &api.BatchHeader{}}
		if op == "get" {
			ba.Add(&api.GetRequest{Key: k})
		} else {
			ba.Add(&api.PutRequest{Key: k, Value: []byte("value-0123456789")})
		}
		if _, err := r.Send(context.Background(), ba); err != nil {
			b.Error(err)
		}
	}
	b.ReportAllocs()
	start := time.Now()
	if clients == 1 {
		for b.Loop() {
			one()
		}
	} else {
		b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				one()
			}
		})
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}
