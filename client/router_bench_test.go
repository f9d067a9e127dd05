package client

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/keys"
)

// staticNode answers every batch with a canned response of the right
// length, so the benchmarks measure the router, not a store.
type staticNode struct{}

var (
	cannedGet  = api.WrapResponse(&api.GetResponse{Value: &api.Value{RawBytes: []byte("v")}})
	cannedScan = api.WrapResponse(&api.ScanResponse{})
)

func (staticNode) Batch(_ context.Context, ba *api.BatchRequest, _ ...grpc.CallOption) (*api.BatchResponse, error) {
	resp := &api.BatchResponse{Header: &api.BatchResponseHeader{}, Responses: make([]*api.ResponseUnion, len(ba.GetRequests()))}
	for i, u := range ba.GetRequests() {
		if u.Inner().Method() == api.MethodScan {
			resp.Responses[i] = cannedScan
		} else {
			resp.Responses[i] = cannedGet
		}
	}
	return resp, nil
}

type staticDialer struct{}

func (staticDialer) Dial(context.Context, uint64) (api.InternalClient, error) {
	return staticNode{}, nil
}

// warmRouter returns a router whose cache holds n user ranges, each
// with a known leaseholder.
func warmRouter(n int) *Router {
	r := NewRouter(RouterConfig{Dialer: staticDialer{}, SeedNodes: []uint64{1}})
	start := keys.UserSpanStart
	for i := range n {
		end := keys.KeyMax
		if i < n-1 {
			end = keys.UserKey(fmt.Appendf(nil, "k%04d", i+1))
		}
		d := &api.RangeDescriptor{RangeId: uint64(i + 2), StartKey: start, EndKey: end, Replicas: replicas(1, 2, 3), Generation: 1}
		r.Cache().Insert(d)
		r.Cache().UpdateLeaseholder(d, d.GetReplicas()[0], 1)
		start = end
	}
	return r
}

// BenchmarkSend measures the router's own cost with a warm cache: a point
// Get, a four-key batch across four ranges (parallel parts), and a scan
// over ten ranges.
func BenchmarkSend(b *testing.B) {
	ctx := context.Background()
	b.Run("get", func(b *testing.B) {
		r := warmRouter(100)
		ba := &api.BatchRequest{}
		ba.Add(&api.GetRequest{Key: keys.UserKey([]byte("k0042x"))})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Send(ctx, ba); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("get-4-ranges", func(b *testing.B) {
		r := warmRouter(100)
		ba := &api.BatchRequest{}
		for _, k := range []string{"k0010", "k0020", "k0030", "k0040"} {
			ba.Add(&api.GetRequest{Key: keys.UserKey([]byte(k))})
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Send(ctx, ba); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scan-10-ranges", func(b *testing.B) {
		r := warmRouter(100)
		ba := &api.BatchRequest{}
		ba.Add(&api.ScanRequest{Key: keys.UserKey([]byte("k0010")), EndKey: keys.UserKey([]byte("k0020"))})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Send(ctx, ba); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scan-10-ranges-limit", func(b *testing.B) {
		r := warmRouter(100)
		ba := &api.BatchRequest{Header: &api.BatchHeader{MaxSpanRequestKeys: 1000}}
		ba.Add(&api.ScanRequest{Key: keys.UserKey([]byte("k0010")), EndKey: keys.UserKey([]byte("k0020"))})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Send(ctx, ba); err != nil {
				b.Fatal(err)
			}
		}
	})
}
