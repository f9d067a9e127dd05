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

// TestRouterBatchMatchesModel sends random batches (Get, Put, Increment,
// Delete, DeleteRange, Scan, ReverseScan over a small keyspace) through a
// cluster that splits and moves leases between batches, and checks every
// response against a sequential map model: requests that share a key land
// in the same range's part, in request order, so the outcome equals
// applying the batch in order.
func TestRouterBatchMatchesModel(t *testing.T) {
	pool := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	rapid.Check(t, func(rt *rapid.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c := newFakeCluster(rt, 3, rapid.SliceOfNDistinct(rapid.SampledFrom(pool[1:]), 0, 4, rapid.ID[string]).Draw(rt, "splits")...)
		r := NewRouter(RouterConfig{Dialer: c, SeedNodes: []uint64{2}, InitialBackoff: 100 * time.Microsecond})
		model := map[string]int64{}
		key := rapid.SampledFrom(pool)
		for b := range rapid.IntRange(1, 6).Draw(rt, "batches") {
			switch rapid.IntRange(0, 2).Draw(rt, "change") {
			case 1:
				k := uk(key.Draw(rt, "splitAt"))
				if string(c.rangeFor(k).GetStartKey()) != string(k) {
					c.split(k)
				}
			case 2:
				c.moveLease(uk(key.Draw(rt, "leaseKey")), uint64(rapid.IntRange(1, 3).Draw(rt, "holder")))
			}
			ba := &api.BatchRequest{}
			var check []func(u *api.ResponseUnion)
			for range rapid.IntRange(1, 8).Draw(rt, "requests") {
				k := key.Draw(rt, "key")
				switch op := rapid.IntRange(0, 6).Draw(rt, "op"); op {
				case 0:
					ba.Add(&api.GetRequest{Key: uk(k)})
					v, ok := model[k]
					check = append(check, func(u *api.ResponseUnion) {
						got := u.GetGet().GetValue()
						if (got != nil) != ok || (ok && string(got.GetRawBytes()) != string(api.EncodeCounter(v))) {
							rt.Fatalf("batch %d: Get(%s) = %v, want %d (%v)", b, k, got, v, ok)
						}
					})
				case 1:
					v := int64(rapid.IntRange(-5, 5).Draw(rt, "v"))
					ba.Add(&api.PutRequest{Key: uk(k), Value: api.EncodeCounter(v)})
					model[k] = v
					check = append(check, func(*api.ResponseUnion) {})
				case 2:
					d := int64(rapid.IntRange(-3, 3).Draw(rt, "inc"))
					ba.Add(&api.IncrementRequest{Key: uk(k), Increment: d})
					model[k] += d
					want := model[k]
					check = append(check, func(u *api.ResponseUnion) {
						if got := u.GetIncrement().GetNewValue(); got != want {
							rt.Fatalf("batch %d: Increment(%s) = %d, want %d", b, k, got, want)
						}
					})
				case 3:
					ba.Add(&api.DeleteRequest{Key: uk(k)})
					delete(model, k)
					check = append(check, func(*api.ResponseUnion) {})
				case 4, 5, 6:
					// [s, e), or [s, end of the user keyspace) when e <= s.
					s, e := k, key.Draw(rt, "end")
					start, end := uk(s), uk(e)
					if e <= s {
						e, end = "∞", keys.UserSpanEnd
					}
					var rows []string
					for mk := range model {
						if mk >= s && (e == "∞" || mk < e) {
							rows = append(rows, mk)
						}
					}
					slices.Sort(rows)
					switch op {
					case 4:
						ba.Add(&api.DeleteRangeRequest{Key: start, EndKey: end})
						for _, mk := range rows {
							delete(model, mk)
						}
						check = append(check, func(u *api.ResponseUnion) {
							if got := u.GetDeleteRange().GetNumKeys(); got != int64(len(rows)) {
								rt.Fatalf("batch %d: DeleteRange [%s, %s) deleted %d, want %d", b, s, e, got, len(rows))
							}
						})
					case 5:
						ba.Add(&api.ScanRequest{Key: start, EndKey: end})
						check = append(check, func(u *api.ResponseUnion) {
							if got := rowKeys(u.GetScan().GetRows()); !slices.Equal(got, rows) {
								rt.Fatalf("batch %d: Scan [%s, %s) = %v, want %v", b, s, e, got, rows)
							}
						})
					case 6:
						rev := slices.Clone(rows)
						slices.Reverse(rev)
						ba.Add(&api.ReverseScanRequest{Key: start, EndKey: end})
						check = append(check, func(u *api.ResponseUnion) {
							if got := rowKeys(u.GetReverseScan().GetRows()); !slices.Equal(got, rev) {
								rt.Fatalf("batch %d: ReverseScan [%s, %s) = %v, want %v", b, s, e, got, rev)
							}
						})
					}
				}
			}
			resp, err := r.Send(ctx, ba)
			if err != nil {
				rt.Fatalf("batch %d: %v", b, err)
			}
			for i, f := range check {
				f(resp.GetResponses()[i])
			}
		}
	})
}
