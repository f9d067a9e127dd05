package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/internal/leakcheck"
	"github.com/meridiandb/meridian/keys"
)

func TestMain(m *testing.M) {
	leakcheck.VerifyTestMain(m)
}

func uk(s string) []byte { return keys.UserKey([]byte(s)) }

func newTestRouter(c *fakeCluster) *Router {
	return NewRouter(RouterConfig{
		Dialer:         c,
		SeedNodes:      []uint64{3, 2, 1},
		InitialBackoff: time.Millisecond,
		MaxBackoff:     10 * time.Millisecond,
	})
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func send(t *testing.T, r *Router, h *api.BatchHeader, reqs ...api.Request) *api.BatchResponse {
	t.Helper()
	ba := &api.BatchRequest{Header: h}
	ba.Add(reqs...)
	resp, err := r.Send(testCtx(t), ba)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if len(resp.GetResponses()) != len(reqs) {
		t.Fatalf("got %d responses to %d requests", len(resp.GetResponses()), len(reqs))
	}
	return resp
}

func rowKeys(rows []*api.KeyValue) []string {
	var out []string
	for _, kv := range rows {
		k, _ := keys.DecodeUserKey(kv.GetKey())
		out = append(out, string(k))
	}
	return out
}

func letters(from, to byte) []string {
	var out []string
	for c := from; c <= to; c++ {
		out = append(out, string([]byte{c}))
	}
	return out
}

func TestRouterReadsAndWritesAcrossRanges(t *testing.T) {
	c := newFakeCluster(t, 3, "d", "h", "p")
	r := newTestRouter(c)
	all := letters('a', 'z')

	var puts []api.Request
	for _, k := range all {
		puts = append(puts, &api.PutRequest{Key: uk(k), Value: []byte("v" + k)})
	}
	resp := send(t, r, nil, puts...)
	if resp.GetHeader().GetWriteTimestamp() == nil {
		t.Errorf("no write timestamp in the merged header")
	}
	for _, k := range all {
		if v, ok := c.get(uk(k)); !ok || string(v) != "v"+k {
			t.Fatalf("key %s: stored %q, %v", k, v, ok)
		}
	}

	// Gets across ranges come back in request order.
	var gets []api.Request
	for i := len(all) - 1; i >= 0; i-- {
		gets = append(gets, &api.GetRequest{Key: uk(all[i])})
	}
	resp = send(t, r, nil, gets...)
	for i, u := range resp.GetResponses() {
		want := "v" + all[len(all)-1-i]
		if got := string(u.GetGet().GetValue().GetRawBytes()); got != want {
			t.Errorf("get %d: %q, want %q", i, got, want)
		}
	}

	// A scan over four ranges returns every row in key order; a reverse
	// scan in reverse order.
	resp = send(t, r, nil,
		&api.ScanRequest{Key: uk("b"), EndKey: uk("y")},
		&api.ReverseScanRequest{Key: uk("b"), EndKey: uk("y")},
		&api.GetRequest{Key: uk("q")})
	if got, want := rowKeys(resp.GetResponses()[0].GetScan().GetRows()), letters('b', 'x'); !equal(got, want) {
		t.Errorf("scan: %v, want %v", got, want)
	}
	rev := letters('b', 'x')
	reverse(rev)
	if got := rowKeys(resp.GetResponses()[1].GetReverseScan().GetRows()); !equal(got, rev) {
		t.Errorf("reverse scan: %v, want %v", got, rev)
	}
	if resp.GetResponses()[0].GetScan().GetResumeSpan() != nil {
		t.Errorf("unlimited scan has a resume span")
	}

	// Increments and a DeleteRange across ranges: counts add up.
	resp = send(t, r, nil, &api.IncrementRequest{Key: uk("n1"), Increment: 5}, &api.IncrementRequest{Key: uk("zz"), Increment: -2})
	if a, b := resp.GetResponses()[0].GetIncrement().GetNewValue(), resp.GetResponses()[1].GetIncrement().GetNewValue(); a != 5 || b != -2 {
		t.Errorf("increments: %d %d", a, b)
	}
	resp = send(t, r, nil, &api.DeleteRangeRequest{Key: uk("c"), EndKey: uk("r")})
	if n := resp.GetResponses()[0].GetDeleteRange().GetNumKeys(); n != 16 { // c..q and n1
		t.Errorf("DeleteRange deleted %d keys, want 16", n)
	}
	resp = send(t, r, nil, &api.ScanRequest{Key: uk(""), EndKey: keys.UserSpanEnd})
	if got, want := rowKeys(resp.GetResponses()[0].GetScan().GetRows()), []string{"a", "b", "r", "s", "t", "u", "v", "w", "x", "y", "z", "zz"}; !equal(got, want) {
		t.Errorf("after DeleteRange: %v, want %v", got, want)
	}

	// A failed condition comes back typed.
	ba := &api.BatchRequest{}
	ba.Add(&api.ConditionalPutRequest{Key: uk("a"), Value: []byte("x"), ExpectedValue: []byte("nope")})
	_, err := r.Send(testCtx(t), ba)
	var cf *api.ConditionFailedError
	if !errors.As(err, &cf) || string(cf.GetActualValue().GetRawBytes()) != "va" {
		t.Errorf("ConditionalPut: %v, want ConditionFailedError with the actual value", err)
	}
}

func TestRouterRejectsBadBatches(t *testing.T) {
	c := newFakeCluster(t, 3)
	r := newTestRouter(c)
	for _, tc := range []struct {
		name string
		reqs []api.Request
	}{
		{"empty", nil},
		{"local key", []api.Request{&api.GetRequest{Key: keys.RangeDescriptorKey(1)}}},
		{"past KeyMax", []api.Request{&api.ScanRequest{Key: uk("a"), EndKey: append(keys.KeyMax, 0)}}},
		{"inverted", []api.Request{&api.ScanRequest{Key: uk("b"), EndKey: uk("a")}}},
	} {
		ba := &api.BatchRequest{}
		ba.Add(tc.reqs...)
		_, err := r.Send(testCtx(t), ba)
		var ir *api.InvalidRequestError
		if !errors.As(err, &ir) {
			t.Errorf("%s: %v, want InvalidRequestError", tc.name, err)
		}
	}
	if n := c.rpcs.Load(); n != 0 {
		t.Errorf("%d RPCs for invalid batches", n)
	}
}

func TestRouterStaleCacheAfterSplit(t *testing.T) {
	for _, noRHS := range []bool{false, true} {
		t.Run(fmt.Sprintf("rkm-without-rhs=%v", noRHS), func(t *testing.T) {
			c := newFakeCluster(t, 3)
			c.rkmNoRHS = noRHS
			r := newTestRouter(c)
			send(t, r, nil, &api.PutRequest{Key: uk("a"), Value: []byte("1")}, &api.PutRequest{Key: uk("x"), Value: []byte("2")})
			lookups := r.MetaLookups()

			left, right := c.split(uk("m"))
			resp := send(t, r, nil, &api.GetRequest{Key: uk("x")}, &api.ScanRequest{Key: uk("a"), EndKey: uk("z")})
			if v := resp.GetResponses()[0].GetGet().GetValue().GetRawBytes(); string(v) != "2" {
				t.Errorf("get after split: %q", v)
			}
			if got := rowKeys(resp.GetResponses()[1].GetScan().GetRows()); !equal(got, []string{"a", "x"}) {
				t.Errorf("scan after split: %v", got)
			}
			// The cache now holds both halves.
			for _, want := range []*api.RangeDescriptor{left, right} {
				e, ok := r.Cache().Get(want.GetStartKey(), false)
				if !ok || e.Desc.GetRangeId() != want.GetRangeId() || e.Desc.GetGeneration() != want.GetGeneration() {
					t.Errorf("cache for %q: %v %v, want range %d gen %d", want.GetStartKey(), e.Desc, ok, want.GetRangeId(), want.GetGeneration())
				}
			}
			extra := r.MetaLookups() - lookups
			if !noRHS && extra != 0 {
				t.Errorf("%d meta lookups, want 0: the mismatch error carried both halves", extra)
			}
			if noRHS && extra != 1 {
				t.Errorf("%d meta lookups, want 1 for the right-hand side", extra)
			}
		})
	}
}

func TestRouterLeaseMoved(t *testing.T) {
	for _, noHint := range []bool{false, true} {
		t.Run(fmt.Sprintf("no-hint=%v", noHint), func(t *testing.T) {
			c := newFakeCluster(t, 3)
			c.noHint = noHint
			r := newTestRouter(c)
			send(t, r, nil, &api.PutRequest{Key: uk("a"), Value: []byte("1")})

			c.moveLease(uk("a"), 3)
			before := c.rpcs.Load()
			send(t, r, nil, &api.PutRequest{Key: uk("a"), Value: []byte("2")})
			rpcs := c.rpcs.Load() - before
			// With a hint: n1 refuses, n3 serves. Without: n1, n2 refuse,
			// n3 serves.
			want := int64(2)
			if noHint {
				want = 3
			}
			if rpcs != want {
				t.Errorf("%d RPCs after the lease moved, want %d", rpcs, want)
			}
			e, _ := r.Cache().Get(uk("a"), false)
			if e.Leaseholder.GetNodeId() != 3 {
				t.Errorf("cached leaseholder n%d, want n3", e.Leaseholder.GetNodeId())
			}
			// Now warm: one RPC.
			before = c.rpcs.Load()
			send(t, r, nil, &api.GetRequest{Key: uk("a")})
			if n := c.rpcs.Load() - before; n != 1 {
				t.Errorf("%d RPCs with a warm leaseholder cache, want 1", n)
			}
		})
	}
}

func TestRouterNodeDown(t *testing.T) {
	c := newFakeCluster(t, 3)
	r := newTestRouter(c)
	send(t, r, nil, &api.PutRequest{Key: uk("a"), Value: []byte("1")})
	// n1 (the cached leaseholder of everything) dies; the lease moves to
	// n2. Meta (range 1) also moves.
	c.setDown(1, true)
	c.moveLease(uk("a"), 2)
	c.moveLease(keys.MetaMin, 2)
	resp := send(t, r, nil, &api.PutRequest{Key: uk("b"), Value: []byte("2")}, &api.GetRequest{Key: uk("a")})
	if v := resp.GetResponses()[1].GetGet().GetValue().GetRawBytes(); string(v) != "1" {
		t.Errorf("get: %q", v)
	}
	// A fresh router whose first seed is down finds meta too.
	c.setDown(3, true)
	c.moveLease(keys.MetaMin, 2)
	r2 := newTestRouter(c) // seeds 3, 2, 1
	send(t, r2, nil, &api.GetRequest{Key: uk("b")})
}

func TestRouterRangeMovedAway(t *testing.T) {
	c := newFakeCluster(t, 6, "m")
	r := newTestRouter(c)
	send(t, r, nil, &api.PutRequest{Key: uk("x"), Value: []byte("1")})
	// The range's replicas move to n4..n6: n1..n3 answer RangeNotFound;
	// the router must evict and read meta again.
	c.moveReplicas(uk("x"), 5, 4, 6)
	lookups := r.MetaLookups()
	resp := send(t, r, nil, &api.GetRequest{Key: uk("x")})
	if v := resp.GetResponses()[0].GetGet().GetValue().GetRawBytes(); string(v) != "1" {
		t.Errorf("get: %q", v)
	}
	if r.MetaLookups() == lookups {
		t.Errorf("no meta lookup after RangeNotFound")
	}
}

func TestRouterAmbiguousWriteNotRetried(t *testing.T) {
	c := newFakeCluster(t, 3)
	r := newTestRouter(c)
	send(t, r, nil, &api.GetRequest{Key: uk("a")}) // warm the cache
	var attempts, applied int
	var mu sync.Mutex
	c.setHook(func(_ context.Context, node uint64, ba *api.BatchRequest) (*api.BatchResponse, error, bool) {
		if ba.GetHeader().GetRangeId() == 1 {
			return nil, nil, false
		}
		mu.Lock()
		defer mu.Unlock()
		attempts++
		// The batch applies on the leaseholder, then the connection breaks.
		c.mu.Lock()
		_, _ = c.serveLocked(node, ba)
		c.mu.Unlock()
		applied++
		return nil, status.Error(codes.Internal, "connection reset after the request was sent"), true
	})
	ba := &api.BatchRequest{}
	ba.Add(&api.IncrementRequest{Key: uk("a"), Increment: 1})
	_, err := r.Send(testCtx(t), ba)
	var amb *api.AmbiguousResultError
	if !errors.As(err, &amb) {
		t.Fatalf("write after a broken RPC: %v, want AmbiguousResultError", err)
	}
	if attempts != 1 {
		t.Errorf("the ambiguous write was sent %d times", attempts)
	}
	if v, _ := c.get(uk("a")); string(v) != "1" {
		t.Errorf("counter is %q, want 1", v)
	}

	// The same failure on a read is retried (on another replica, which
	// refuses and points back; the hook lets the second try through).
	attempts = 0
	c.setHook(func(_ context.Context, node uint64, ba *api.BatchRequest) (*api.BatchResponse, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if attempts == 1 {
			return nil, status.Error(codes.Internal, "broken"), true
		}
		return nil, nil, false
	})
	resp := send(t, r, nil, &api.GetRequest{Key: uk("a")})
	if v := resp.GetResponses()[0].GetGet().GetValue().GetRawBytes(); string(v) != "1" {
		t.Errorf("read after a broken RPC: %q", v)
	}

	// An AmbiguousResultError from the replica itself is returned as is.
	attempts = 0
	c.setHook(func(_ context.Context, node uint64, ba *api.BatchRequest) (*api.BatchResponse, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		return errResp(&api.AmbiguousResultError{Message: "leadership lost"}), nil, true
	})
	ba = &api.BatchRequest{}
	ba.Add(&api.PutRequest{Key: uk("a"), Value: []byte("x")})
	_, err = r.Send(testCtx(t), ba)
	if !errors.As(err, &amb) || amb.GetMessage() != "leadership lost" || attempts != 1 {
		t.Errorf("replica's ambiguous result: %v after %d attempts", err, attempts)
	}

	// A write whose RPC was Unavailable (never sent) is retried elsewhere.
	c.setHook(nil)
	c.setDown(1, true)
	c.moveLease(uk("a"), 2)
	send(t, r, nil, &api.PutRequest{Key: uk("a"), Value: []byte("y")})
	if v, _ := c.get(uk("a")); string(v) != "y" {
		t.Errorf("write after Unavailable: %q", v)
	}
}

// scanAll pages through [start, end) with the given limits, resuming until
// done, checking each page's size.
func scanAll(t *testing.T, r *Router, start, end []byte, rev bool, maxKeys, targetBytes int64) []string {
	t.Helper()
	var out []string
	span := &api.Span{Key: start, EndKey: end}
	for pages := 0; span != nil; pages++ {
		if pages > 1000 {
			t.Fatalf("scan does not make progress")
		}
		var req api.Request = &api.ScanRequest{Key: span.Key, EndKey: span.EndKey}
		if rev {
			req = &api.ReverseScanRequest{Key: span.Key, EndKey: span.EndKey}
		}
		resp := send(t, r, &api.BatchHeader{MaxSpanRequestKeys: maxKeys, TargetBytes: targetBytes}, req)
		var rows []*api.KeyValue
		if rev {
			rows, span = resp.GetResponses()[0].GetReverseScan().GetRows(), resp.GetResponses()[0].GetReverseScan().GetResumeSpan()
		} else {
			rows, span = resp.GetResponses()[0].GetScan().GetRows(), resp.GetResponses()[0].GetScan().GetResumeSpan()
		}
		if maxKeys > 0 && int64(len(rows)) > maxKeys {
			t.Fatalf("page of %d rows over the limit %d", len(rows), maxKeys)
		}
		if span != nil && len(rows) == 0 && targetBytes == 0 {
			t.Fatalf("empty page with a resume span %v", span)
		}
		out = append(out, rowKeys(rows)...)
	}
	return out
}

func TestRouterLimitedScan(t *testing.T) {
	c := newFakeCluster(t, 3, "c", "f", "g", "k", "t")
	r := newTestRouter(c)
	all := letters('a', 'z')
	var puts []api.Request
	for _, k := range all {
		puts = append(puts, &api.PutRequest{Key: uk(k), Value: []byte("v")})
	}
	send(t, r, nil, puts...)
	rev := append([]string(nil), all...)
	reverse(rev)
	for _, limit := range []int64{1, 2, 3, 5, 26, 100} {
		if got := scanAll(t, r, uk(""), keys.UserSpanEnd, false, limit, 0); !equal(got, all) {
			t.Errorf("forward, limit %d: %v", limit, got)
		}
		if got := scanAll(t, r, uk(""), keys.UserSpanEnd, true, limit, 0); !equal(got, rev) {
			t.Errorf("reverse, limit %d: %v", limit, got)
		}
	}
	for _, tb := range []int64{1, 5, 12} {
		if got := scanAll(t, r, uk("b"), uk("x"), false, 0, tb); !equal(got, letters('b', 'w')) {
			t.Errorf("forward, target bytes %d: %v", tb, got)
		}
	}

	// The resume span of a limited multi-range scan starts exactly after
	// the last row; a later span request that got nothing resumes whole,
	// and a point request still runs.
	resp := send(t, r, &api.BatchHeader{MaxSpanRequestKeys: 4},
		&api.ScanRequest{Key: uk("b"), EndKey: uk("m")},
		&api.ScanRequest{Key: uk("p"), EndKey: uk("s")},
		&api.GetRequest{Key: uk("y")})
	s0, s1 := resp.GetResponses()[0].GetScan(), resp.GetResponses()[1].GetScan()
	if got := rowKeys(s0.GetRows()); !equal(got, []string{"b", "c", "d", "e"}) {
		t.Errorf("first scan: %v", got)
	}
	if rs := s0.GetResumeSpan(); !bytes.Equal(rs.GetKey(), uk("f")) || !bytes.Equal(rs.GetEndKey(), uk("m")) {
		t.Errorf("first resume span %v", rs)
	}
	if rs := s1.GetResumeSpan(); len(s1.GetRows()) != 0 || !bytes.Equal(rs.GetKey(), uk("p")) || !bytes.Equal(rs.GetEndKey(), uk("s")) {
		t.Errorf("second scan: %v rows, resume %v", rowKeys(s1.GetRows()), rs)
	}
	if v := resp.GetResponses()[2].GetGet().GetValue(); v == nil {
		t.Errorf("the Get after the limit did not run")
	}

	// Reverse, stopping inside a range.
	resp = send(t, r, &api.BatchHeader{MaxSpanRequestKeys: 3}, &api.ReverseScanRequest{Key: uk("b"), EndKey: uk("h")})
	rs := resp.GetResponses()[0].GetReverseScan()
	if got := rowKeys(rs.GetRows()); !equal(got, []string{"g", "f", "e"}) {
		t.Errorf("reverse page: %v", got)
	}
	if sp := rs.GetResumeSpan(); !bytes.Equal(sp.GetKey(), uk("b")) || !bytes.Equal(sp.GetEndKey(), uk("e")) {
		t.Errorf("reverse resume %v", sp)
	}

	// DeleteRange with a limit across ranges.
	resp = send(t, r, &api.BatchHeader{MaxSpanRequestKeys: 5}, &api.DeleteRangeRequest{Key: uk("a"), EndKey: uk("z")})
	dr := resp.GetResponses()[0].GetDeleteRange()
	if dr.GetNumKeys() != 5 || !bytes.Equal(dr.GetResumeSpan().GetKey(), uk("f")) {
		t.Errorf("limited DeleteRange: %d keys, resume %v", dr.GetNumKeys(), dr.GetResumeSpan())
	}

	// Mixing directions under a limit is refused.
	ba := &api.BatchRequest{Header: &api.BatchHeader{MaxSpanRequestKeys: 1}}
	ba.Add(&api.ScanRequest{Key: uk("a"), EndKey: uk("b")}, &api.ReverseScanRequest{Key: uk("a"), EndKey: uk("b")})
	var ir *api.InvalidRequestError
	if _, err := r.Send(testCtx(t), ba); !errors.As(err, &ir) {
		t.Errorf("mixed directions: %v", err)
	}
}

func TestRouterParallelSubBatches(t *testing.T) {
	c := newFakeCluster(t, 3, "h", "p")
	r := newTestRouter(c)
	send(t, r, nil, &api.ScanRequest{Key: uk("a"), EndKey: uk("z")}) // warm the cache

	// Each user-range batch waits until all three are in flight: only a
	// parallel send completes.
	var wg sync.WaitGroup
	wg.Add(3)
	arrived := make(chan struct{})
	go func() { wg.Wait(); close(arrived) }()
	c.setHook(func(ctx context.Context, _ uint64, ba *api.BatchRequest) (*api.BatchResponse, error, bool) {
		wg.Done()
		select {
		case <-arrived:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err(), true
		}
		return nil, nil, false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ba := &api.BatchRequest{}
	ba.Add(&api.PutRequest{Key: uk("a"), Value: []byte("1")}, &api.PutRequest{Key: uk("j"), Value: []byte("2")}, &api.PutRequest{Key: uk("q"), Value: []byte("3")})
	if _, err := r.Send(ctx, ba); err != nil {
		t.Fatalf("parallel send: %v", err)
	}
}

func TestRouterCoalescesConcurrentMisses(t *testing.T) {
	c := newFakeCluster(t, 3, "m")
	r := NewRouter(RouterConfig{Dialer: c, SeedNodes: []uint64{1}, MetaPrefetch: 1, InitialBackoff: time.Millisecond})
	send(t, r, nil, &api.GetRequest{Key: keys.ClusterIDKey}) // learns range 1 only
	if n := r.Cache().Len(); n != 1 {
		t.Fatalf("cache holds %d ranges, want 1", n)
	}
	before, scansBefore := r.MetaLookups(), c.metaScans.Load()

	const clients = 16
	release := make(chan struct{})
	c.setHook(func(ctx context.Context, _ uint64, ba *api.BatchRequest) (*api.BatchResponse, error, bool) {
		if ba.GetHeader().GetRangeId() == 1 {
			<-release
		}
		return nil, nil, false
	})
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			ba := &api.BatchRequest{}
			ba.Add(&api.GetRequest{Key: uk("x")})
			_, err := r.Send(testCtx(t), ba)
			errs <- err
		})
	}
	// Wait until every other client follows the first one's lookup.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.cache.flights.Lock()
		waiters := 0
		for _, f := range r.cache.flights.m {
			waiters += f.waiters
		}
		r.cache.flights.Unlock()
		if waiters == clients-1 {
			break
		}
		if time.Now().After(deadline) {
			close(release)
			wg.Wait()
			t.Fatalf("only %d clients joined the lookup", waiters)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, m := r.MetaLookups()-before, c.metaScans.Load()-scansBefore; n != 1 || m != 1 {
		t.Errorf("%d meta lookups (%d served) for %d concurrent misses, want 1", n, m, clients)
	}
}

func TestRouterHonoursDeadline(t *testing.T) {
	c := newFakeCluster(t, 3)
	r := newTestRouter(c)
	send(t, r, nil, &api.GetRequest{Key: uk("a")})

	// Every node down: the router retries until the deadline.
	for n := uint64(1); n <= 3; n++ {
		c.setDown(n, true)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ba := &api.BatchRequest{}
	ba.Add(&api.GetRequest{Key: uk("a")})
	_, err := r.Send(ctx, ba)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("all nodes down: %v, want DeadlineExceeded", err)
	}

	// A node that hangs: a read returns the deadline, a write is
	// ambiguous.
	for n := uint64(1); n <= 3; n++ {
		c.setDown(n, false)
	}
	send(t, r, nil, &api.GetRequest{Key: uk("a")}) // re-warm the cache
	c.setHook(func(ctx context.Context, _ uint64, _ *api.BatchRequest) (*api.BatchResponse, error, bool) {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err(), true
	})
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if _, err := r.Send(ctx2, ba); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hung read: %v", err)
	}
	ctx3, cancel3 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel3()
	wb := &api.BatchRequest{}
	wb.Add(&api.PutRequest{Key: uk("a"), Value: []byte("1")})
	_, err = r.Send(ctx3, wb)
	var amb *api.AmbiguousResultError
	if !errors.As(err, &amb) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hung write: %v, want ambiguous and DeadlineExceeded", err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func reverse(s []string) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

func TestRouterInconsistentReadKeepsLeaseholder(t *testing.T) {
	c := newFakeCluster(t, 3)
	r := newTestRouter(c)
	send(t, r, nil, &api.PutRequest{Key: uk("a"), Value: []byte("1")})
	c.setDown(1, true)
	// n2 serves an inconsistent read without the lease; the cache must
	// still name n1 as leaseholder.
	resp := send(t, r, &api.BatchHeader{ReadConsistency: api.ReadConsistency_INCONSISTENT}, &api.GetRequest{Key: uk("a")})
	if v := resp.GetResponses()[0].GetGet().GetValue().GetRawBytes(); string(v) != "1" {
		t.Errorf("inconsistent read: %q", v)
	}
	if e, _ := r.Cache().Get(uk("a"), false); e.Leaseholder.GetNodeId() != 1 {
		t.Errorf("leaseholder after an inconsistent read: n%d, want n1", e.Leaseholder.GetNodeId())
	}
}

func TestRouterMetaLagsSplit(t *testing.T) {
	c := newFakeCluster(t, 3)
	c.rkmNoRHS = true
	r := newTestRouter(c)
	send(t, r, nil, &api.PutRequest{Key: uk("x"), Value: []byte("1")})
	// The split has applied but meta still holds the pre-split descriptor,
	// and the replica's mismatch error names only the left-hand side: the
	// router keeps getting sent to the wrong range until meta catches up.
	left, right := c.splitMeta(uk("m"), false)
	var misroutes atomic.Int64
	c.setHook(func(_ context.Context, _ uint64, ba *api.BatchRequest) (*api.BatchResponse, error, bool) {
		if ba.GetHeader().GetRangeId() == left.GetRangeId() && misroutes.Add(1) == 10 {
			c.mu.Lock()
			c.writeMetaLocked(left)
			c.writeMetaLocked(right)
			c.mu.Unlock()
		}
		return nil, nil, false
	})
	resp := send(t, r, nil, &api.GetRequest{Key: uk("x")})
	if v := resp.GetResponses()[0].GetGet().GetValue().GetRawBytes(); string(v) != "1" {
		t.Errorf("get: %q", v)
	}
	if n := misroutes.Load(); n < 10 {
		t.Errorf("served after %d misroutes, before meta was fixed", n)
	}
}
