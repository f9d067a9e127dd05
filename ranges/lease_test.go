package ranges_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/ranges/rangetest"
)

func replicaOn(t *testing.T, c *rangetest.Cluster, node uint64, key []byte) interface {
	Lease() *api.Lease
	TransferLease(context.Context, uint64) error
} {
	t.Helper()
	d, err := c.RangeFor(key)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Node(node).Store.Replica(keys.RangeID(d.GetRangeId()))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func getFrom(ctx context.Context, c *rangetest.Cluster, node uint64, key []byte) (*api.BatchResponse, error) {
	d, err := c.RangeFor(key)
	if err != nil {
		return nil, err
	}
	ba := batch(&api.GetRequest{Key: key})
	ba.Header.RangeId = d.GetRangeId()
	return c.SendTo(ctx, node, ba)
}

// An old leaseholder cut off from the others serves reads only while its
// lease is valid at now + ε: not inside the stasis window before expiry,
// and never after, when another replica may hold a new lease and have
// accepted newer writes.
func TestPartitionedLeaseholderStopsServing(t *testing.T) {
	const maxOffset = 250 * time.Millisecond
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3, ManualClock: true, MaxOffset: maxOffset, LeaseDuration: 2 * time.Second})
	k := uk("k")
	put(t, c, "k", "v1")
	var lh uint64
	c.WaitFor(waitTimeout, "agreement on the leaseholder", func() bool {
		lh = leaseholder(t, c, k)
		return lh != 0
	})
	lease := replicaOn(t, c, lh, k).Lease()
	exp := lease.GetExpiration().ToHLC()
	c.Isolate(lh)
	ctx := context.Background()

	// Well before expiry (now + ε < expiration) the old holder still serves.
	now := c.Node(lh).Clock.Now()
	c.Advance(time.Duration(exp.WallTime-now.WallTime) - 2*maxOffset)
	if br, err := getFrom(ctx, c, lh, k); err != nil || string(br.GetResponses()[0].GetGet().GetValue().GetRawBytes()) != "v1" {
		t.Fatalf("valid leaseholder before the stasis window: %v", err)
	}
	// Inside the stasis window it refuses, though its lease has not expired.
	c.Advance(maxOffset + maxOffset/2)
	if !c.Node(lh).Clock.Now().Less(exp) {
		t.Fatal("test setup: the lease already expired")
	}
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	_, err := getFrom(sctx, c, lh, k)
	cancel()
	var nlh *api.NotLeaseholderError
	if !errors.As(err, &nlh) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("old holder inside the stasis window: want NotLeaseholder, got %v", err)
	}
	if err == nil {
		t.Fatal("old holder served inside the stasis window")
	}

	// After expiry the majority elects, takes a new lease and writes.
	c.Advance(2 * maxOffset)
	wctx, wcancel := context.WithTimeout(ctx, waitTimeout)
	defer wcancel()
	for {
		br, err := c.Send(wctx, batch(&api.PutRequest{Key: k, Value: []byte("v2")}))
		if err == nil {
			_ = br
			break
		}
		if wctx.Err() != nil {
			t.Fatalf("majority could not write after the old lease expired: %v", err)
		}
	}
	if nl := leaseholder(t, c, k); nl == lh {
		t.Fatal("the cut-off node still holds the lease")
	}
	// The old holder must not return the stale value.
	octx, ocancel := context.WithTimeout(ctx, time.Second)
	defer ocancel()
	if br, err := getFrom(octx, c, lh, k); err == nil {
		t.Fatalf("old holder served after its lease expired: %q", br.GetResponses()[0].GetGet().GetValue().GetRawBytes())
	}
}

// Lease transfers while clients increment a counter lose nothing: every
// acknowledged increment is counted exactly once.
func TestLeaseTransferUnderLoad(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3})
	k := uk("counter")
	put(t, c, "counter", "0")
	var acked, ambiguous atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := c.Send(rctx, batch(&api.IncrementRequest{Key: k, Increment: 1}))
				rcancel()
				var amb *api.AmbiguousResultError
				switch {
				case err == nil:
					acked.Add(1)
				case errors.As(err, &amb):
					ambiguous.Add(1)
				}
			}
		}()
	}
	transfers := 0
	for transfers < 6 {
		lh := leaseholder(t, c, k)
		if lh == 0 {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		target := lh%3 + 1
		r := replicaOn(t, c, lh, k)
		if err := r.TransferLease(context.Background(), r.Lease().GetReplica().GetReplicaId()%3+1); err != nil {
			continue // the lease moved meanwhile; look again
		}
		c.WaitFor(waitTimeout, "the transfer to take effect", func() bool { return leaseholder(t, c, k) == target })
		transfers++
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	v, _ := get(t, c, "counter")
	var got int64
	for _, ch := range v {
		got = got*10 + int64(ch-'0')
	}
	if got < acked.Load() || got > acked.Load()+ambiguous.Load() {
		t.Fatalf("counter %d after %d acknowledged and %d ambiguous increments", got, acked.Load(), ambiguous.Load())
	}
	if acked.Load() == 0 {
		t.Fatal("no increment succeeded during the transfers")
	}
	t.Logf("%d transfers, %d increments acknowledged, %d ambiguous, counter %d", transfers, acked.Load(), ambiguous.Load(), got)
	checkConsistent(t, c)
}

// A write below a timestamp the key was read at moves above it, and the
// response says so.
func TestWriteBelowReadIsPushed(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3})
	k := uk("tsc")
	put(t, c, "tsc", "old")
	now := c.Node(1).Clock.Now()
	readTS := now.AddNanos(int64(50 * time.Millisecond))
	ctx := context.Background()
	rb := batch(&api.GetRequest{Key: k})
	rb.Header.Timestamp = api.NewTimestamp(readTS)
	if _, err := c.Send(ctx, rb); err != nil {
		t.Fatal(err)
	}
	wb := batch(&api.PutRequest{Key: k, Value: []byte("new")})
	wb.Header.Timestamp = api.NewTimestamp(readTS.AddNanos(-int64(10 * time.Millisecond)))
	br, err := c.Send(ctx, wb)
	if err != nil {
		t.Fatal(err)
	}
	wts := br.GetHeader().GetWriteTimestamp().ToHLC()
	if !readTS.Less(wts) || !br.GetHeader().GetTimestampPushed() {
		t.Fatalf("write at %s after a read at %s landed at %s (pushed=%v)", wb.Header.Timestamp.ToHLC(), readTS, wts, br.GetHeader().GetTimestampPushed())
	}
	// A read at readTS from another clock cannot tell whether the new value
	// (within ε above it) happened before it: it must restart, not return
	// either value silently.
	rb = batch(&api.GetRequest{Key: k})
	rb.Header.Timestamp = api.NewTimestamp(readTS)
	_, err = c.Send(ctx, rb)
	var rwu *api.ReadWithinUncertaintyError
	if !errors.As(err, &rwu) || rwu.GetValueTimestamp().ToHLC() != wts {
		t.Fatalf("read at %s after a write at %s: want ReadWithinUncertainty at %s, got %v", readTS, wts, wts, err)
	}
	// A read above the write sees it.
	rb = batch(&api.GetRequest{Key: k})
	rb.Header.Timestamp = api.NewTimestamp(wts)
	br, err = c.Send(ctx, rb)
	if err != nil || string(br.GetResponses()[0].GetGet().GetValue().GetRawBytes()) != "new" {
		t.Fatalf("read at the write's timestamp: %v", err)
	}
}
