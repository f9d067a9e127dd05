package integration_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/ranges/rangetest"
)

// Loading 10,000 keys with range-max-bytes = 64 KiB splits the keyspace into
// at least 20 ranges by itself; every key stays readable through the router
// and the cluster passes the consistency checker.
func TestSizeBasedSplits(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3, GRPC: true, RangeMaxBytes: 64 << 10})
	r := newRouter(c)
	value := []byte(strings.Repeat("v", 150))
	const total, writers = 10000, 8
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += writers {
				send(t, r, &api.PutRequest{Key: uk(fmt.Sprintf("key%05d", i)), Value: value})
			}
		}()
	}
	wg.Wait()
	count := func() int {
		n := 0
		for _, rep := range c.Node(1).Store.Replicas() {
			if d := rep.Desc(); string(d.GetStartKey()) >= string(keys.UserSpanStart) {
				n++
			}
		}
		return n
	}
	c.WaitFor(waitTimeout, "the split queue to settle at 20+ user ranges", func() bool { return count() >= 20 })
	// Every key, by a paged scan across all ranges.
	seen := 0
	span := &api.Span{Key: uk("key"), EndKey: uk("kez")}
	for span != nil {
		ba := &api.BatchRequest{Header: &api.BatchHeader{MaxSpanRequestKeys: 1000}}
		ba.Add(&api.ScanRequest{Key: span.GetKey(), EndKey: span.GetEndKey()})
		br, err := r.Send(context.Background(), ba)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range br.GetResponses()[0].GetScan().GetRows() {
			if want := uk(fmt.Sprintf("key%05d", seen)); string(kv.GetKey()) != string(want) {
				t.Fatalf("row %d is %s, want %s", seen, keys.Pretty(kv.GetKey()), keys.Pretty(want))
			}
			seen++
		}
		span = br.GetResponses()[0].GetScan().GetResumeSpan()
	}
	if seen != total {
		t.Fatalf("scanned %d keys, want %d", seen, total)
	}
	c.WaitConsistent(waitTimeout)
	t.Logf("%d user ranges after loading %d keys", count(), total)
}
