package client

import (
	"context"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/keys"
)

// TestRouterPagedScanMatchesModel writes random keys into a cluster split
// at random points, then pages through a random span with random key and
// byte limits, forward or reverse, while ranges split and leases move
// between pages. The pages, concatenated, must be exactly the model's rows
// in order, and no page may exceed the key limit.
func TestRouterPagedScanMatchesModel(t *testing.T) {
	pool := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p"}
	rapid.Check(t, func(rt *rapid.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		splits := rapid.SliceOfNDistinct(rapid.SampledFrom(pool[1:]), 0, 6, rapid.ID[string]).Draw(rt, "splits")
		c := newFakeCluster(rt, 3, splits...)
		r := NewRouter(RouterConfig{Dialer: c, SeedNodes: []uint64{1, 2, 3}, InitialBackoff: 100 * time.Microsecond,
			MetaPrefetch: rapid.IntRange(1, 4).Draw(rt, "prefetch")})

		data := rapid.SliceOfNDistinct(rapid.SampledFrom(pool), 0, len(pool), rapid.ID[string]).Draw(rt, "data")
		if len(data) > 0 {
			ba := &api.BatchRequest{}
			for _, k := range data {
				ba.Add(&api.PutRequest{Key: uk(k), Value: []byte("v" + k)})
			}
			if _, err := r.Send(ctx, ba); err != nil {
				rt.Fatalf("puts: %v", err)
			}
		}
		i := rapid.IntRange(0, len(pool)-1).Draw(rt, "start")
		j := rapid.IntRange(i+1, len(pool)).Draw(rt, "end")
		start, end := uk(pool[i]), keys.UserSpanEnd
		if j < len(pool) {
			end = uk(pool[j])
		}
		var want []string
		for _, k := range data {
			if k >= pool[i] && (j == len(pool) || k < pool[j]) {
				want = append(want, k)
			}
		}
		slices.Sort(want)
		rev := rapid.Bool().Draw(rt, "reverse")
		if rev {
			slices.Reverse(want)
		}
		maxKeys := int64(rapid.IntRange(0, 4).Draw(rt, "maxKeys"))
		targetBytes := int64(rapid.IntRange(0, 6).Draw(rt, "targetBytes"))

		var got []string
		span := &api.Span{Key: start, EndKey: end}
		for page := 0; span != nil; page++ {
			if page > 3*len(pool)+3 {
				rt.Fatalf("no progress after %d pages; got %v", page, got)
			}
			// Change the cluster under the router's cache.
			switch rapid.IntRange(0, 3).Draw(rt, "change") {
			case 1:
				k := uk(rapid.SampledFrom(pool[1:]).Draw(rt, "splitAt"))
				if string(c.rangeFor(k).GetStartKey()) != string(k) {
					c.split(k)
				}
			case 2:
				c.moveLease(uk(rapid.SampledFrom(pool).Draw(rt, "leaseKey")), uint64(rapid.IntRange(1, 3).Draw(rt, "holder")))
			}
			var req api.Request = &api.ScanRequest{Key: span.Key, EndKey: span.EndKey}
			if rev {
				req = &api.ReverseScanRequest{Key: span.Key, EndKey: span.EndKey}
			}
			ba := &api.BatchRequest{Header: &api.BatchHeader{MaxSpanRequestKeys: maxKeys, TargetBytes: targetBytes}}
			ba.Add(req)
			resp, err := r.Send(ctx, ba)
			if err != nil {
				rt.Fatalf("page %d: %v", page, err)
			}
			var rows []*api.KeyValue
			if rev {
				rows, span = resp.GetResponses()[0].GetReverseScan().GetRows(), resp.GetResponses()[0].GetReverseScan().GetResumeSpan()
			} else {
				rows, span = resp.GetResponses()[0].GetScan().GetRows(), resp.GetResponses()[0].GetScan().GetResumeSpan()
			}
			if maxKeys > 0 && int64(len(rows)) > maxKeys {
				rt.Fatalf("page %d: %d rows over the limit %d", page, len(rows), maxKeys)
			}
			if maxKeys == 0 && targetBytes == 0 && span != nil {
				rt.Fatalf("unlimited scan returned resume span %v", span)
			}
			for _, kv := range rows {
				k, _ := keys.DecodeUserKey(kv.GetKey())
				if string(kv.GetValue().GetRawBytes()) != "v"+string(k) {
					rt.Fatalf("row %s has value %q", k, kv.GetValue().GetRawBytes())
				}
				got = append(got, string(k))
			}
		}
		if !slices.Equal(got, want) {
			rt.Fatalf("paged scan got %v, want %v", got, want)
		}
	})
}
