package tscache

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/meridiandb/meridian/hlc"
)

// The timestamp cache benchmarks. Run with
//
//	go test -run '^$' -bench . -benchmem ./ranges/tscache
//
// Each starts from a cache holding `entries` point reads of random keys
// (the budget is large enough that nothing is evicted), then adds or looks
// up random point keys and short ranges.

func benchKey(rng *rand.Rand) []byte {
	return fmt.Appendf(nil, "user/%08d", rng.IntN(100_000_000))
}

func filled(entries int) (*Cache, *rand.Rand) {
	rng := rand.New(rand.NewPCG(1, 2))
	c := New(1<<30, hlc.Timestamp{})
	for i := range entries {
		c.Add(benchKey(rng), nil, hlc.Timestamp{WallTime: int64(i + 1)}, NoTxn)
	}
	return c, rng
}

func BenchmarkAdd(b *testing.B) {
	for _, entries := range []int{10_000, 100_000} {
		for _, kind := range []string{"point", "range"} {
			b.Run(fmt.Sprintf("entries=%d/%s", entries, kind), func(b *testing.B) {
				c, rng := filled(entries)
				keys := make([][]byte, 4096)
				for i := range keys {
					keys[i] = benchKey(rng)
				}
				ts := hlc.Timestamp{WallTime: int64(entries)}
				i := 0
				b.ReportAllocs()
				for b.Loop() {
					k := keys[i%len(keys)]
					i++
					ts = ts.Next()
					if kind == "point" {
						c.Add(k, nil, ts, NoTxn)
					} else {
						// A range over 1e4 of the 1e8 key numbers: about one
						// existing entry at 10k entries, ten at 100k.
						end := append([]byte(nil), k...)
						end[len(end)-5]++
						c.Add(k, end, ts, NoTxn)
					}
				}
			})
		}
	}
}

func BenchmarkGetMax(b *testing.B) {
	for _, entries := range []int{10_000, 100_000} {
		for _, kind := range []string{"point", "range"} {
			b.Run(fmt.Sprintf("entries=%d/%s", entries, kind), func(b *testing.B) {
				c, rng := filled(entries)
				type span struct{ k, e []byte }
				spans := make([]span, 4096)
				for i := range spans {
					k := benchKey(rng)
					var e []byte
					if kind == "range" {
						e = append([]byte(nil), k...)
						e[len(e)-5]++
					}
					spans[i] = span{k, e}
				}
				i := 0
				b.ReportAllocs()
				for b.Loop() {
					s := spans[i%len(spans)]
					i++
					c.GetMax(s.k, s.e)
				}
			})
		}
	}
}
