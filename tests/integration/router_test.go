package integration_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/client"
	"github.com/meridiandb/meridian/internal/leakcheck"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/ranges/rangetest"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

const waitTimeout = 30 * time.Second

func uk(s string) []byte { return keys.UserKey([]byte(s)) }

type dialer struct{ c *rangetest.Cluster }

func (d dialer) Dial(_ context.Context, node uint64) (api.InternalClient, error) {
	if node == 0 || int(node) > len(d.c.Nodes()) || !d.c.Running(node) {
		return nil, fmt.Errorf("node %d is down", node)
	}
	return api.NewInternalClient(d.c.Node(node).Conn()), nil
}

func newRouter(c *rangetest.Cluster) *client.Router {
	return client.NewRouter(client.RouterConfig{Dialer: dialer{c}, SeedNodes: []uint64{1, 2, 3}})
}

func send(t testing.TB, r *client.Router, reqs ...api.Request) *api.BatchResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ba := &api.BatchRequest{Header: &api.BatchHeader{}}
	ba.Add(reqs...)
	br, err := r.Send(ctx, ba)
	if err != nil {
		t.Fatalf("send %v: %v", reqs[0].Method(), err)
	}
	return br
}

func splits(n int) [][]byte {
	var out [][]byte
	for i := 1; i < n; i++ {
		out = append(out, uk(fmt.Sprintf("k%04d", i*10000/n)))
	}
	return out
}

func TestRouterAcrossRanges(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3, GRPC: true, SplitKeys: splits(5)})
	r := newRouter(c)
	for i := 0; i < 10000; i += 250 {
		send(t, r, &api.PutRequest{Key: uk(fmt.Sprintf("k%04d", i)), Value: []byte(fmt.Sprint(i))})
	}
	// One batch touching several ranges.
	br := send(t, r, &api.GetRequest{Key: uk("k0000")}, &api.GetRequest{Key: uk("k5000")}, &api.GetRequest{Key: uk("k9750")})
	for i, want := range []string{"0", "5000", "9750"} {
		if got := string(br.GetResponses()[i].GetGet().GetValue().GetRawBytes()); got != want {
			t.Fatalf("get %d = %q, want %q", i, got, want)
		}
	}
	// A scan over every range, in pages of 7 keys, forward and reverse.
	for _, reverse := range []bool{false, true} {
		var seen []string
		span := &api.Span{Key: uk("k"), EndKey: uk("l")}
		for span != nil {
			ba := &api.BatchRequest{Header: &api.BatchHeader{MaxSpanRequestKeys: 7}}
			if reverse {
				ba.Add(&api.ReverseScanRequest{Key: span.GetKey(), EndKey: span.GetEndKey()})
			} else {
				ba.Add(&api.ScanRequest{Key: span.GetKey(), EndKey: span.GetEndKey()})
			}
			br, err := r.Send(context.Background(), ba)
			if err != nil {
				t.Fatal(err)
			}
			var rows []*api.KeyValue
			if reverse {
				rows, span = br.GetResponses()[0].GetReverseScan().GetRows(), br.GetResponses()[0].GetReverseScan().GetResumeSpan()
			} else {
				rows, span = br.GetResponses()[0].GetScan().GetRows(), br.GetResponses()[0].GetScan().GetResumeSpan()
			}
			if len(rows) > 7 {
				t.Fatalf("a page of %d rows, limit 7", len(rows))
			}
			for _, kv := range rows {
				seen = append(seen, string(kv.GetValue().GetRawBytes()))
			}
		}
		if len(seen) != 40 {
			t.Fatalf("reverse=%v: paged scan saw %d keys, want 40", reverse, len(seen))
		}
		first, last := "0", "9750"
		if reverse {
			first, last = last, first
		}
		if seen[0] != first || seen[39] != last {
			t.Fatalf("reverse=%v: scan order %s ... %s", reverse, seen[0], seen[39])
		}
	}
	c.WaitConsistent(waitTimeout)
}

// Leases move while clients write through the router: every acknowledged
// write is there afterwards, and the router found each new leaseholder.
func TestRouterSurvivesLeaseMoves(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3, GRPC: true, SplitKeys: splits(3)})
	r := newRouter(c)
	ctx, cancel := context.WithCancel(context.Background())
	var acked sync.Map
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				k := fmt.Sprintf("k%04d", n.Add(1)%10000)
				ba := &api.BatchRequest{Header: &api.BatchHeader{}}
				ba.Add(&api.PutRequest{Key: uk(k), Value: []byte(k)})
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				if _, err := r.Send(rctx, ba); err == nil {
					acked.Store(k, true)
				}
				rcancel()
			}
		}()
	}
	adminMoves := 0
	deadline := time.Now().Add(waitTimeout)
	for adminMoves < 6 && time.Now().Before(deadline) {
		for _, node := range c.Nodes() {
			st, err := api.NewAdminClient(node.Conn()).RangeStatus(context.Background(), &api.RangeStatusRequest{})
			if err != nil {
				continue
			}
			for _, rs := range st.GetRanges() {
				if !rs.GetLeaseholder() || rs.GetRangeDescriptor().GetRangeId() == 1 {
					continue
				}
				target := node.ID%3 + 1
				if _, err := api.NewAdminClient(node.Conn()).TransferLease(context.Background(), &api.TransferLeaseRequest{RangeId: rs.GetRangeDescriptor().GetRangeId(), TargetNodeId: target}); err == nil {
					adminMoves++
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if adminMoves < 6 {
		t.Fatalf("only %d lease moves", adminMoves)
	}
	count := 0
	acked.Range(func(k, _ any) bool {
		count++
		br := send(t, r, &api.GetRequest{Key: uk(k.(string))})
		if got := string(br.GetResponses()[0].GetGet().GetValue().GetRawBytes()); got != k.(string) {
			t.Fatalf("acknowledged write %s reads %q", k, got)
		}
		return true
	})
	if count == 0 {
		t.Fatal("no write succeeded while leases moved")
	}
	t.Logf("%d lease moves, %d acknowledged writes all readable", adminMoves, count)
	c.WaitConsistent(waitTimeout)
}

// Killing a node that holds leases: the router finds the new holders.
func TestRouterSurvivesNodeKill(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3, GRPC: true, SplitKeys: splits(3), LeaseDuration: time.Second})
	r := newRouter(c)
	for i := 0; i < 10000; i += 1000 {
		send(t, r, &api.PutRequest{Key: uk(fmt.Sprintf("k%04d", i)), Value: []byte("v")})
	}
	c.Stop(1)
	for i := 0; i < 10000; i += 1000 {
		br := send(t, r, &api.GetRequest{Key: uk(fmt.Sprintf("k%04d", i))})
		if br.GetResponses()[0].GetGet().GetValue() == nil {
			t.Fatalf("k%04d lost after node 1 died", i)
		}
	}
	send(t, r, &api.PutRequest{Key: uk("after"), Value: []byte("kill")})
}

// The router's cached descriptors go stale when a range splits: requests
// routed by them get RangeKeyMismatch and are re-routed.
func TestRouterSurvivesSplits(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3, GRPC: true})
	r := newRouter(c)
	for i := 0; i < 100; i++ {
		send(t, r, &api.PutRequest{Key: uk(fmt.Sprintf("s%03d", i)), Value: []byte(fmt.Sprint(i))})
	}
	before := r.MetaLookups()
	for _, at := range []string{"s025", "s050", "s075"} {
		// Only the leaseholder can split, and a range just split off needs
		// a moment to elect its Raft leader: retry until one node does it.
		deadline := time.Now().Add(waitTimeout)
		var err error
		for done := false; !done; {
			for _, node := range c.Nodes() {
				if _, err = api.NewAdminClient(node.Conn()).AdminSplit(context.Background(), &api.AdminSplitRequest{SplitKey: uk(at)}); err == nil {
					done = true
					break
				}
			}
			if !done && time.Now().After(deadline) {
				t.Fatalf("no node could split at %s: %v", at, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for i := 0; i < 100; i++ {
		br := send(t, r, &api.GetRequest{Key: uk(fmt.Sprintf("s%03d", i))})
		if got := string(br.GetResponses()[0].GetGet().GetValue().GetRawBytes()); got != fmt.Sprint(i) {
			t.Fatalf("s%03d = %q after the splits", i, got)
		}
	}
	if n := len(r.Cache().All()); n < 5 {
		t.Fatalf("router caches %d ranges after 3 splits of the user range, want at least 5 (system + 4)", n)
	}
	t.Logf("meta lookups after the splits: %d", r.MetaLookups()-before)
	c.WaitConsistent(waitTimeout)
}
