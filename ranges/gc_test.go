package ranges_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/ranges/rangetest"
)

func versions(t *testing.T, n *rangetest.Node, key []byte) int {
	t.Helper()
	it, err := n.Engine.DB().NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	count := 0
	for ok := it.SeekGE(keys.EncodeEngineKey(key, hlc.Timestamp{})); ok; ok = it.Next() {
		k, _, err := keys.DecodeEngineKey(it.Key())
		if err != nil || !bytes.Equal(k, key) {
			break
		}
		count++
	}
	return count
}

// GC removes versions no reader at or above now − TTL can see, keeps the
// newest version at or below that point (what such a reader needs), and
// refuses reads below the new threshold.
func TestGCKeepsWhatReadersAboveTheThresholdNeed(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3, ManualClock: true, GCTTL: 1500 * time.Millisecond, QueueInterval: time.Hour, LeaseDuration: 10 * time.Second})
	k := uk("gc")
	var ts []hlc.Timestamp
	for i, v := range []string{"v1", "v2", "v3"} {
		if i > 0 {
			c.Advance(time.Second)
		}
		br := send(t, c, &api.PutRequest{Key: k, Value: []byte(v)})
		ts = append(ts, br.GetHeader().GetWriteTimestamp().ToHLC())
	}
	c.Advance(1200 * time.Millisecond) // threshold = now − 1.5 s lies between v2 and v3
	for _, n := range c.Nodes() {
		n.Store.RunQueuesOnce(context.Background())
	}
	var removed int64
	for _, n := range c.Nodes() {
		removed += n.Store.Metrics().GCVersionsRemoved
	}
	if removed != 1 {
		t.Fatalf("GC removed %d versions, want 1 (v1)", removed)
	}
	for _, n := range c.Nodes() {
		n := n
		c.WaitFor(waitTimeout, "every replica to apply the GC", func() bool { return versions(t, n, k) == 2 })
	}
	// A reader just above the threshold still sees v2.
	at := ts[1].AddNanos(int64(720 * time.Millisecond)) // threshold ≈ ts[1]+700ms; +ε stays below v3
	rb := batch(&api.GetRequest{Key: k})
	rb.Header.Timestamp = api.NewTimestamp(at)
	br, err := c.Send(context.Background(), rb)
	if err != nil || string(br.GetResponses()[0].GetGet().GetValue().GetRawBytes()) != "v2" {
		t.Fatalf("read at %s (above the threshold): %v", at, err)
	}
	// A reader below it is refused, not given a wrong answer.
	rb = batch(&api.GetRequest{Key: k})
	rb.Header.Timestamp = api.NewTimestamp(ts[0])
	_, err = c.Send(context.Background(), rb)
	var inv *api.InvalidRequestError
	if !errors.As(err, &inv) {
		t.Fatalf("read at %s (below the GC threshold): want a refusal, got %v", ts[0], err)
	}
	c.WaitConsistent(waitTimeout)
}
