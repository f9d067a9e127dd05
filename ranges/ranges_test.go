package ranges_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/ranges"
	"github.com/meridiandb/meridian/ranges/rangetest"
)

const waitTimeout = 30 * time.Second

func uk(s string) []byte { return keys.UserKey([]byte(s)) }

func batch(reqs ...api.Request) *api.BatchRequest {
	ba := &api.BatchRequest{Header: &api.BatchHeader{}}
	ba.Add(reqs...)
	return ba
}

func send(t *testing.T, c *rangetest.Cluster, reqs ...api.Request) *api.BatchResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	br, err := c.Send(ctx, batch(reqs...))
	if err != nil {
		t.Fatalf("send %v: %v", reqs[0].Method(), err)
	}
	return br
}

func get(t *testing.T, c *rangetest.Cluster, k string) (string, bool) {
	t.Helper()
	br := send(t, c, &api.GetRequest{Key: uk(k)})
	v := br.GetResponses()[0].GetGet().GetValue()
	if v == nil {
		return "", false
	}
	return string(v.GetRawBytes()), true
}

func put(t *testing.T, c *rangetest.Cluster, k, v string) {
	t.Helper()
	send(t, c, &api.PutRequest{Key: uk(k), Value: []byte(v)})
}

// checkConsistent waits until the cluster passes the consistency checker.
func checkConsistent(t *testing.T, c *rangetest.Cluster) {
	t.Helper()
	c.WaitConsistent(waitTimeout)
}

func TestReadsAndWritesAcrossRanges(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3, SplitKeys: [][]byte{uk("g"), uk("p")}})
	for _, k := range []string{"a", "f", "g", "k", "p", "z"} {
		put(t, c, k, "v-"+k)
	}
	for _, k := range []string{"a", "f", "g", "k", "p", "z"} {
		if v, ok := get(t, c, k); !ok || v != "v-"+k {
			t.Fatalf("get %s = %q, %v", k, v, ok)
		}
	}
	if _, ok := get(t, c, "missing"); ok {
		t.Fatal("a missing key was found")
	}
	// Scan within the middle range.
	br := send(t, c, &api.ScanRequest{Key: uk("g"), EndKey: uk("p")})
	rows := br.GetResponses()[0].GetScan().GetRows()
	if len(rows) != 2 || string(rows[0].GetKey()) != string(uk("g")) || string(rows[1].GetKey()) != string(uk("k")) {
		t.Fatalf("scan [g, p): %v", rows)
	}
	// Conditional put, increment, delete, delete range.
	ctx := context.Background()
	_, err := c.Send(ctx, batch(&api.ConditionalPutRequest{Key: uk("a"), Value: []byte("x"), ExpectedValue: []byte("wrong")}))
	var cf *api.ConditionFailedError
	if !errors.As(err, &cf) || string(cf.GetActualValue().GetRawBytes()) != "v-a" {
		t.Fatalf("cput with a wrong expectation: %v", err)
	}
	send(t, c, &api.ConditionalPutRequest{Key: uk("a"), Value: []byte("x"), ExpectedValue: []byte("v-a")})
	if v, _ := get(t, c, "a"); v != "x" {
		t.Fatalf("after cput a = %q", v)
	}
	inc := send(t, c, &api.IncrementRequest{Key: uk("n"), Increment: 5})
	if inc.GetResponses()[0].GetIncrement().GetNewValue() != 5 {
		t.Fatalf("increment: %v", inc)
	}
	send(t, c, &api.DeleteRequest{Key: uk("z")})
	if _, ok := get(t, c, "z"); ok {
		t.Fatal("deleted key still readable")
	}
	dr := send(t, c, &api.DeleteRangeRequest{Key: uk("a"), EndKey: uk("g")})
	if n := dr.GetResponses()[0].GetDeleteRange().GetNumKeys(); n != 2 {
		t.Fatalf("delete range [a, g) deleted %d keys, want 2 (a, f)", n)
	}
	// A batch that spans two ranges is refused with the current descriptor.
	d, _ := c.RangeFor(uk("a"))
	_, err = c.SendTo(ctx, 1, &api.BatchRequest{Header: &api.BatchHeader{RangeId: d.GetRangeId()}, Requests: []*api.RequestUnion{api.WrapRequest(&api.ScanRequest{Key: uk("a"), EndKey: uk("z")})}})
	var rkm *api.RangeKeyMismatchError
	if !errors.As(err, &rkm) || len(rkm.GetRanges()) == 0 || rkm.GetRanges()[0].GetRangeId() != d.GetRangeId() {
		t.Fatalf("cross-range scan: %v", err)
	}
	checkConsistent(t, c)
}

func TestConcurrentIncrementsAddUp(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3})
	const clients, each = 16, 20
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				_, err := c.Send(ctx, batch(&api.IncrementRequest{Key: uk("counter"), Increment: 1}))
				cancel()
				if err != nil {
					failed.Add(1)
					t.Errorf("increment: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if v, _ := get(t, c, "counter"); v != fmt.Sprint(clients*each) {
		t.Fatalf("counter = %s after %d increments (%d failed)", v, clients*each, failed.Load())
	}
	checkConsistent(t, c)
}

// moveLease transfers the lease of key's range to node target (replica IDs
// are node IDs in the test cluster). Only traffic extends a lease, so the
// one the holder had may have lapsed on a slow machine by the time the
// test asks: then a read acquires a new one and the transfer is tried
// again. The last transfer error is reported on a timeout.
func moveLease(t *testing.T, c *rangetest.Cluster, key string, target uint64) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var lastErr error
	for {
		get(t, c, key)
		lh := leaseholder(t, c, uk(key))
		if lh == target {
			return
		}
		if lh != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			lastErr = replicaOn(t, c, lh, uk(key)).TransferLease(ctx, target)
			cancel()
			if lastErr == nil {
				c.WaitFor(waitTimeout, "the transferred lease to apply everywhere", func() bool { return leaseholder(t, c, uk(key)) == target })
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("could not move the lease of %q to node %d: %v", key, target, lastErr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leaseholder returns the node every running replica of key's range
// agrees holds the lease, or 0 if they do not agree (yet).
func leaseholder(t *testing.T, c *rangetest.Cluster, key []byte) uint64 {
	t.Helper()
	d, err := c.RangeFor(key)
	if err != nil {
		t.Fatal(err)
	}
	var holder uint64
	for _, n := range c.Nodes() {
		if !c.Running(n.ID) {
			continue
		}
		r, err := n.Store.Replica(keys.RangeID(d.GetRangeId()))
		if err != nil {
			return 0
		}
		h := r.Lease().GetReplica().GetNodeId()
		if h == 0 || (holder != 0 && h != holder) {
			return 0
		}
		holder = h
	}
	return holder
}

func TestAcknowledgedWriteSurvivesLeaseholderKill(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3, GRPC: true, LeaseDuration: time.Second})
	put(t, c, "durable", "yes")
	var lh uint64
	c.WaitFor(waitTimeout, "every replica to agree on the leaseholder", func() bool {
		lh = leaseholder(t, c, uk("durable"))
		return lh != 0
	})
	c.Stop(lh)
	// Another replica takes a new lease once the old one expires, and the
	// acknowledged write is there.
	if v, ok := get(t, c, "durable"); !ok || v != "yes" {
		t.Fatalf("after killing leaseholder %d: %q, %v", lh, v, ok)
	}
	c.WaitFor(waitTimeout, "every running replica to see the new lease", func() bool {
		nl := leaseholder(t, c, uk("durable"))
		return nl != lh && nl != 0
	})
	put(t, c, "durable", "still")
	c.Restart(lh)
	c.WaitFor(waitTimeout, "the restarted node to catch up", func() bool {
		sum := map[uint64]bool{}
		d, _ := c.RangeFor(uk("durable"))
		for _, n := range c.Nodes() {
			s, _, err := rangetest.Checksum(n, d)
			if err != nil {
				return false
			}
			sum[s] = true
		}
		return len(sum) == 1
	})
}

// A replica cut off while its range moved on (and truncated its log)
// catches up through a snapshot of the range and ends identical.
func TestReplicaCatchesUpBySnapshot(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3})
	put(t, c, "seed", "1")
	var lh uint64
	c.WaitFor(waitTimeout, "a leaseholder", func() bool {
		lh = leaseholder(t, c, uk("seed"))
		return lh != 0
	})
	lag := lh%3 + 1
	c.Isolate(lag)
	for i := 0; i < 150; i++ {
		put(t, c, fmt.Sprintf("k%03d", i), fmt.Sprint(i))
	}
	// Wait until the leaseholder's log no longer has what the lagging
	// replica needs (it truncates once that replica stops responding).
	d, _ := c.RangeFor(uk("k000"))
	c.WaitFor(waitTimeout, "the log to be truncated past the lagging replica", func() bool {
		ls, _ := c.Node(lh).Store.Host().Status(d.GetRangeId())
		fs, _ := c.Node(lag).Store.Host().Status(d.GetRangeId())
		return ls.FirstIndex > fs.Applied+1
	})
	c.Net.Heal()
	c.WaitFor(waitTimeout, "the lagging replica to apply a snapshot", func() bool {
		return c.Node(lag).Store.Host().Metrics().SnapshotsApplied > 0
	})
	checkConsistent(t, c)
	// The caught-up replica serves once it holds the lease.
	moveLease(t, c, "k000", lag)
	for _, i := range []int{0, 77, 149} {
		if v, _ := get(t, c, fmt.Sprintf("k%03d", i)); v != fmt.Sprint(i) {
			t.Fatalf("k%03d = %q on the caught-up leaseholder", i, v)
		}
	}
}

// TestWriteTooLargeToReplicate: a write whose raft command exceeds the
// host's bound is refused as an invalid request (not retried as if the
// lease had moved, which would loop), nothing of it applies, and the range
// takes the next write.
func TestWriteTooLargeToReplicate(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3, Knobs: ranges.TestingKnobs{MaxCommandBytes: 64 << 10}})
	put(t, c, "small", "first")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := c.Send(ctx, batch(&api.PutRequest{Key: uk("big"), Value: make([]byte, 100<<10)}))
	var inv *api.InvalidRequestError
	if !errors.As(err, &inv) {
		t.Fatalf("a 100 KiB put over a 64 KiB command bound: got %v, want an invalid request", err)
	}
	if _, ok := get(t, c, "big"); ok {
		t.Fatal("the refused write is visible")
	}
	put(t, c, "small", "second")
	if v, _ := get(t, c, "small"); v != "second" {
		t.Fatalf("small = %q after the refusal, want second", v)
	}
	checkConsistent(t, c)
}
