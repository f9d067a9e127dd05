package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/meridiandb/meridian/api"
	meridianv1 "github.com/meridiandb/meridian/api/meridian/v1"
	"github.com/meridiandb/meridian/client"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/internal/leakcheck"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/ranges/rangetest"
)

const kvWait = 30 * time.Second

// testMaxOffset is the clusters' ε. The in-process nodes share one physical
// clock, so a small ε is honest; it keeps the uncertainty window of a read
// at a given timestamp short, and the tests wait past it (waitPast) where
// a write must land outside it.
const testMaxOffset = time.Millisecond

type kvDialer struct{ c *rangetest.Cluster }

func (d kvDialer) Dial(_ context.Context, node uint64) (api.InternalClient, error) {
	if node == 0 || int(node) > len(d.c.Nodes()) || !d.c.Running(node) {
		return nil, fmt.Errorf("node %d is down", node)
	}
	return api.NewInternalClient(d.c.Node(node).Conn()), nil
}

// hookSender calls hook (if set) before each batch it passes on.
type hookSender struct {
	s    Sender
	hook atomic.Pointer[func(*api.BatchRequest)]
}

func (h *hookSender) Send(ctx context.Context, ba *api.BatchRequest) (*api.BatchResponse, error) {
	if f := h.hook.Load(); f != nil {
		(*f)(ba)
	}
	return h.s.Send(ctx, ba)
}

type kvEnv struct {
	c      *rangetest.Cluster
	router *client.Router
	sender *hookSender
	kv     meridianv1.KVClient
}

// newKVEnv starts a 3-node cluster over gRPC, a router over it, and the KV
// service on a loopback gRPC server, reached through a real KVClient.
func newKVEnv(t *testing.T, opts rangetest.Options) *kvEnv {
	t.Helper()
	t.Cleanup(func() { leakcheck.VerifyNone(t) }) // registered first: runs last
	opts.Nodes, opts.GRPC = 3, true
	if opts.MaxOffset == 0 {
		opts.MaxOffset = testMaxOffset
	}
	c := rangetest.NewCluster(t, opts)
	r := client.NewRouter(client.RouterConfig{Dialer: kvDialer{c}, SeedNodes: []uint64{1, 2, 3}})
	hs := &hookSender{s: r}
	return &kvEnv{c: c, router: r, sender: hs, kv: serveKV(t, NewKVServer(hs))}
}

// serveKV serves srv on 127.0.0.1 and returns a client of it.
func serveKV(t *testing.T, srv meridianv1.KVServer) meridianv1.KVClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20))
	meridianv1.RegisterKVServer(gs, srv)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20), grpc.MaxCallSendMsgSize(16<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
		wg.Wait()
	})
	return meridianv1.NewKVClient(conn)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), kvWait)
	t.Cleanup(cancel)
	return ctx
}

func toHLC(ts *meridianv1.Timestamp) hlc.Timestamp {
	return hlc.Timestamp{WallTime: ts.GetWallTime(), Logical: ts.GetLogical()}
}

func pubTS(ts hlc.Timestamp) *meridianv1.Timestamp {
	return &meridianv1.Timestamp{WallTime: ts.WallTime, Logical: ts.Logical}
}

// waitPast waits until every node's clock reads above ts+ε, so a write
// from now on lands outside the uncertainty window of a read at ts.
func waitPast(t *testing.T, c *rangetest.Cluster, ts hlc.Timestamp) {
	t.Helper()
	limit := ts.AddNanos(int64(testMaxOffset))
	c.WaitFor(kvWait, "clocks past "+limit.String(), func() bool {
		for _, n := range c.Nodes() {
			if n.Clock.Now().LessEq(limit) {
				return false
			}
		}
		return true
	})
}

func put(t *testing.T, kv meridianv1.KVClient, k, v string) hlc.Timestamp {
	t.Helper()
	resp, err := kv.Put(ctxT(t), &meridianv1.PutRequest{Key: []byte(k), Value: []byte(v)})
	if err != nil {
		t.Fatalf("Put(%q): %v", k, err)
	}
	if resp.GetWriteTimestamp() == nil {
		t.Fatalf("Put(%q): no write timestamp", k)
	}
	return toHLC(resp.GetWriteTimestamp())
}

func codeOf(err error) codes.Code { return status.Code(err) }

// putRetryingUnknown puts, and puts again while the outcome is unknown
// (codes.Unknown): on a loaded machine a raft leader can lose its term
// mid-proposal, which a client sees as an ambiguous write. Writing the same
// value again is harmless in a test with one writer.
func putRetryingUnknown(ctx context.Context, kv meridianv1.KVClient, req *meridianv1.PutRequest) error {
	var err error
	for range 5 {
		if _, err = kv.Put(ctx, req); codeOf(err) != codes.Unknown {
			return err
		}
	}
	return err
}

func TestKVPutGetDelete(t *testing.T) {
	e := newKVEnv(t, rangetest.Options{})
	ctx := ctxT(t)
	wts := put(t, e.kv, "apple", "red")
	got, err := e.kv.Get(ctx, &meridianv1.GetRequest{Key: []byte("apple")})
	if err != nil {
		t.Fatal(err)
	}
	if !got.GetFound() || string(got.GetValue()) != "red" {
		t.Fatalf("Get(apple) = %v", got)
	}
	if toHLC(got.GetValueTimestamp()) != wts {
		t.Fatalf("value timestamp %v, put wrote at %s", got.GetValueTimestamp(), wts)
	}
	if toHLC(got.GetReadTimestamp()).Less(wts) {
		t.Fatalf("read at %v, below the write at %s", got.GetReadTimestamp(), wts)
	}
	// The client's key is a user key: nothing landed outside the user
	// keyspace, and a key that looks like a system key stays a user key.
	br, err := e.router.Send(ctx, batchOf(&api.GetRequest{Key: keys.UserKey([]byte("apple"))}))
	if err != nil || string(br.GetResponses()[0].GetGet().GetValue().GetRawBytes()) != "red" {
		t.Fatalf("the router does not find apple under the user prefix: %v", err)
	}
	put(t, e.kv, string(keys.MetaMin)+"x", "not meta")
	got, err = e.kv.Get(ctx, &meridianv1.GetRequest{Key: append(append([]byte(nil), keys.MetaMin...), 'x')})
	if err != nil || string(got.GetValue()) != "not meta" {
		t.Fatalf("a key starting with the meta prefix: %v %v", got, err)
	}
	// An empty value is a value.
	put(t, e.kv, "empty", "")
	if got, err := e.kv.Get(ctx, &meridianv1.GetRequest{Key: []byte("empty")}); err != nil || !got.GetFound() || len(got.GetValue()) != 0 {
		t.Fatalf("Get(empty) = %v, %v; want found with an empty value", got, err)
	}
	// Delete, then the key is gone; deleting an absent key succeeds.
	del, err := e.kv.Delete(ctx, &meridianv1.DeleteRequest{Key: []byte("apple")})
	if err != nil {
		t.Fatal(err)
	}
	if !wts.Less(toHLC(del.GetWriteTimestamp())) {
		t.Fatalf("delete at %v, not above the put at %s", del.GetWriteTimestamp(), wts)
	}
	got, err = e.kv.Get(ctx, &meridianv1.GetRequest{Key: []byte("apple")})
	if err != nil || got.GetFound() || got.GetValueTimestamp() != nil || got.GetReadTimestamp() == nil {
		t.Fatalf("Get after Delete = %v, %v; want not found with a read timestamp", got, err)
	}
	if _, err := e.kv.Delete(ctx, &meridianv1.DeleteRequest{Key: []byte("never-written")}); err != nil {
		t.Fatalf("deleting an absent key: %v", err)
	}
}

func batchOf(reqs ...api.Request) *api.BatchRequest {
	ba := &api.BatchRequest{Header: &api.BatchHeader{}}
	ba.Add(reqs...)
	return ba
}

func TestKVHistoricalReads(t *testing.T) {
	e := newKVEnv(t, rangetest.Options{SplitKeys: [][]byte{keys.UserKey([]byte("m"))}})
	ctx := ctxT(t)
	t1 := put(t, e.kv, "h", "v1")
	tz1 := put(t, e.kv, "z", "z1") // another range
	waitPast(t, e.c, tz1)
	t2 := put(t, e.kv, "h", "v2")
	put(t, e.kv, "z", "z2")
	for _, tc := range []struct {
		at   hlc.Timestamp
		want string
	}{{t1, "v1"}, {t2, "v2"}} {
		got, err := e.kv.Get(ctx, &meridianv1.GetRequest{Key: []byte("h"), ReadTimestamp: pubTS(tc.at)})
		if err != nil {
			t.Fatalf("Get at %s: %v", tc.at, err)
		}
		if string(got.GetValue()) != tc.want || toHLC(got.GetReadTimestamp()) != tc.at {
			t.Fatalf("Get at %s = %q read at %v; want %q at %s", tc.at, got.GetValue(), got.GetReadTimestamp(), tc.want, tc.at)
		}
	}
	// A scan across both ranges at tz1 sees the old values.
	rows, pages := scanAll(t, e.kv, &meridianv1.ScanRequest{ReadTimestamp: pubTS(tz1), PageSize: 1})
	if len(rows) != 2 || string(rows[0].GetValue()) != "v1" || string(rows[1].GetValue()) != "z1" {
		t.Fatalf("scan at tz1 = %v", rows)
	}
	for _, p := range pages {
		if toHLC(p.GetReadTimestamp()) != tz1 {
			t.Fatalf("scan page read at %v, asked for %s", p.GetReadTimestamp(), tz1)
		}
	}
	// A malformed timestamp is the caller's mistake.
	_, err := e.kv.Get(ctx, &meridianv1.GetRequest{Key: []byte("h"), ReadTimestamp: &meridianv1.Timestamp{WallTime: -1}})
	if codeOf(err) != codes.InvalidArgument {
		t.Fatalf("negative read timestamp: %v, want InvalidArgument", err)
	}
}

// scanAll runs a Scan to its end and returns its rows and pages.
func scanAll(t *testing.T, kv meridianv1.KVClient, req *meridianv1.ScanRequest) ([]*meridianv1.KeyValue, []*meridianv1.ScanResponse) {
	t.Helper()
	st, err := kv.Scan(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	var rows []*meridianv1.KeyValue
	var pages []*meridianv1.ScanResponse
	for {
		p, err := st.Recv()
		if err == io.EOF {
			return rows, pages
		}
		if err != nil {
			t.Fatalf("scan %v: %v", req, err)
		}
		pages = append(pages, p)
		rows = append(rows, p.GetRows()...)
	}
}

func kk(i int) string { return fmt.Sprintf("k%04d", i) }

// fill writes k0000..k(n-1) = "v<i>" in one batch through the router.
func fill(t *testing.T, r *client.Router, n int) {
	t.Helper()
	ba := &api.BatchRequest{Header: &api.BatchHeader{}}
	for i := 0; i < n; i++ {
		ba.Add(&api.PutRequest{Key: keys.UserKey([]byte(kk(i))), Value: []byte(fmt.Sprint("v", i))})
	}
	if _, err := r.Send(ctxT(t), ba); err != nil {
		t.Fatal(err)
	}
}

func TestKVScan(t *testing.T) {
	var splits [][]byte
	for i := 20; i < 100; i += 20 {
		splits = append(splits, keys.UserKey([]byte(kk(i))))
	}
	e := newKVEnv(t, rangetest.Options{SplitKeys: splits}) // 6 ranges over the user keys
	fill(t, e.router, 100)
	put(t, e.kv, "a-before", "x")
	put(t, e.kv, "z-after", "y")

	for _, tc := range []struct {
		name       string
		start, end string
		limit      int64
		reverse    bool
		pageSize   int32
		want       []int // indexes of kk; -1 a-before, 100 z-after
	}{
		{name: "all", pageSize: 7, want: seq(-1, 100)},
		{name: "all reverse", pageSize: 7, reverse: true, want: rev(seq(-1, 100))},
		{name: "default page size", start: "k", end: "l", want: seq(0, 99)},
		{name: "span", start: kk(10), end: kk(55), pageSize: 4, want: seq(10, 54)},
		{name: "span reverse", start: kk(10), end: kk(55), pageSize: 4, reverse: true, want: rev(seq(10, 54))},
		{name: "limit", start: "k", end: "l", limit: 23, pageSize: 5, want: seq(0, 22)},
		{name: "limit reverse", start: "k", end: "l", limit: 23, pageSize: 5, reverse: true, want: rev(seq(77, 99))},
		{name: "limit above rows", start: kk(95), limit: 100, pageSize: 2, want: seq(95, 100)},
		{name: "empty end is the end of the keyspace", start: kk(98), pageSize: 1, want: seq(98, 100)},
		{name: "empty span", start: "q", end: "r", want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, pages := scanAll(t, e.kv, &meridianv1.ScanRequest{
				StartKey: []byte(tc.start), EndKey: []byte(tc.end), Limit: tc.limit, Reverse: tc.reverse, PageSize: tc.pageSize,
			})
			var got []string
			for _, r := range rows {
				got = append(got, string(r.GetKey()))
				if r.GetTimestamp() == nil {
					t.Fatalf("row %q without a timestamp", r.GetKey())
				}
			}
			var want []string
			for _, i := range tc.want {
				want = append(want, name(i))
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("rows\n got %v\nwant %v", got, want)
			}
			if len(pages) == 0 {
				t.Fatal("no page: an empty scan still sends one with its read timestamp")
			}
			ps := int(tc.pageSize)
			if ps == 0 {
				ps = DefaultScanPageSize
			}
			for _, p := range pages {
				if len(p.GetRows()) > ps {
					t.Fatalf("a page of %d rows, page size %d", len(p.GetRows()), ps)
				}
				if p.GetReadTimestamp() == nil || toHLC(p.GetReadTimestamp()) != toHLC(pages[0].GetReadTimestamp()) {
					t.Fatalf("pages read at %v and %v", pages[0].GetReadTimestamp(), p.GetReadTimestamp())
				}
			}
			if wantPages := (len(want) + ps - 1) / ps; len(want) > 0 && len(pages) != wantPages {
				t.Fatalf("%d pages for %d rows of page size %d, want %d", len(pages), len(want), ps, wantPages)
			}
		})
	}
}

func seq(lo, hi int) []int {
	var out []int
	for i := lo; i <= hi; i++ {
		out = append(out, i)
	}
	return out
}

func rev(s []int) []int {
	out := make([]int, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

func name(i int) string {
	switch i {
	case -1:
		return "a-before"
	case 100:
		return "z-after"
	}
	return kk(i)
}

// A scan reads one snapshot: a write that lands after its first page was
// read (an update and an insert ahead of the scan, in another range) is not
// seen by its later pages, which share the first page's timestamp.
func TestKVScanIsOneSnapshot(t *testing.T) {
	for _, reverse := range []bool{false, true} {
		t.Run(fmt.Sprint("reverse=", reverse), func(t *testing.T) {
			e := newKVEnv(t, rangetest.Options{SplitKeys: [][]byte{keys.UserKey([]byte(kk(10))), keys.UserKey([]byte(kk(20)))}})
			fill(t, e.router, 30)
			ahead, insert := kk(25), kk(25)+"-new" // ahead of a forward scan
			if reverse {
				ahead, insert = kk(2), kk(2)+"-new"
			}
			var scanBatches atomic.Int32
			var wrote atomic.Bool
			hook := func(ba *api.BatchRequest) {
				if ba.GetHeader().GetMaxSpanRequestKeys() == 0 || scanBatches.Add(1) != 2 {
					return // not a page, or not the second page
				}
				// Between the first and the second page: write past the
				// scan's uncertainty window, as a later client would.
				waitPast(t, e.c, ba.GetHeader().GetTimestamp().ToHLC())
				if _, err := e.router.Send(context.Background(), batchOf(
					&api.PutRequest{Key: keys.UserKey([]byte(ahead)), Value: []byte("changed")},
					&api.PutRequest{Key: keys.UserKey([]byte(insert)), Value: []byte("new")})); err != nil {
					t.Errorf("write during the scan: %v", err)
				}
				wrote.Store(true)
			}
			e.sender.hook.Store(&hook)
			rows, pages := scanAll(t, e.kv, &meridianv1.ScanRequest{StartKey: []byte("k"), EndKey: []byte("l"), PageSize: 4, Reverse: reverse})
			e.sender.hook.Store(nil)
			if !wrote.Load() {
				t.Fatal("the hook never wrote: the scan had one page")
			}
			if len(rows) != 30 {
				t.Fatalf("%d rows, want the 30 present when the scan started", len(rows))
			}
			for _, r := range rows {
				if string(r.GetKey()) == insert || string(r.GetValue()) == "changed" {
					t.Fatalf("the scan saw a write made after it started: %q=%q", r.GetKey(), r.GetValue())
				}
			}
			for _, p := range pages {
				if toHLC(p.GetReadTimestamp()) != toHLC(pages[0].GetReadTimestamp()) {
					t.Fatalf("pages read at %v and %v", pages[0].GetReadTimestamp(), p.GetReadTimestamp())
				}
			}
			// The writes did happen: a new scan sees them.
			rows, _ = scanAll(t, e.kv, &meridianv1.ScanRequest{StartKey: []byte("k"), EndKey: []byte("l")})
			if len(rows) != 31 {
				t.Fatalf("a scan after the writes sees %d rows, want 31", len(rows))
			}
		})
	}
}

func TestKVDeleteRange(t *testing.T) {
	var splits [][]byte
	for i := 500; i < 1500; i += 500 {
		splits = append(splits, keys.UserKey([]byte(kk(i))))
	}
	e := newKVEnv(t, rangetest.Options{SplitKeys: splits})
	const n = 1200 // more than one deleteRangeChunk, over three ranges
	fill(t, e.router, n)
	put(t, e.kv, "other", "kept")
	ctx := ctxT(t)
	// Delete a few first, so the count is of live keys only.
	if _, err := e.kv.Delete(ctx, &meridianv1.DeleteRequest{Key: []byte(kk(3))}); err != nil {
		t.Fatal(err)
	}
	resp, err := e.kv.DeleteRange(ctx, &meridianv1.DeleteRangeRequest{StartKey: []byte(kk(1)), EndKey: []byte(kk(n - 1))})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetDeleted() != n-3 || resp.GetWriteTimestamp() == nil {
		t.Fatalf("DeleteRange = %v, want %d deleted and a write timestamp", resp, n-3)
	}
	rows, _ := scanAll(t, e.kv, &meridianv1.ScanRequest{})
	var got []string
	for _, r := range rows {
		got = append(got, string(r.GetKey()))
	}
	if want := kk(0) + "," + kk(n-1) + ",other"; strings.Join(got, ",") != want {
		t.Fatalf("after DeleteRange: %v, want %s", got, want)
	}
	// Empty start: from the first user key.
	if resp, err := e.kv.DeleteRange(ctx, &meridianv1.DeleteRangeRequest{EndKey: []byte("p")}); err != nil || resp.GetDeleted() != 3 {
		t.Fatalf("DeleteRange up to p = %v, %v; want 3", resp, err)
	}
}

func TestKVInvalidArguments(t *testing.T) {
	e := newKVEnv(t, rangetest.Options{})
	ctx := ctxT(t)
	big := bytes.Repeat([]byte("k"), api.MaxKeySize+1)
	huge := bytes.Repeat([]byte("v"), api.MaxValueSize+1)
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Get empty key", func() error { _, err := e.kv.Get(ctx, &meridianv1.GetRequest{}); return err }},
		{"Put empty key", func() error { _, err := e.kv.Put(ctx, &meridianv1.PutRequest{Value: []byte("v")}); return err }},
		{"Delete empty key", func() error { _, err := e.kv.Delete(ctx, &meridianv1.DeleteRequest{}); return err }},
		{"Get key over 16 KiB", func() error { _, err := e.kv.Get(ctx, &meridianv1.GetRequest{Key: big}); return err }},
		{"Put key over 16 KiB", func() error {
			_, err := e.kv.Put(ctx, &meridianv1.PutRequest{Key: big, Value: []byte("v")})
			return err
		}},
		{"Delete key over 16 KiB", func() error { _, err := e.kv.Delete(ctx, &meridianv1.DeleteRequest{Key: big}); return err }},
		{"Put value over 4 MiB", func() error {
			_, err := e.kv.Put(ctx, &meridianv1.PutRequest{Key: []byte("k"), Value: huge})
			return err
		}},
		{"Scan end before start", func() error {
			return scanErr(ctx, e.kv, &meridianv1.ScanRequest{StartKey: []byte("b"), EndKey: []byte("a")})
		}},
		{"Scan end equals start", func() error {
			return scanErr(ctx, e.kv, &meridianv1.ScanRequest{StartKey: []byte("b"), EndKey: []byte("b")})
		}},
		{"Scan start over 16 KiB", func() error { return scanErr(ctx, e.kv, &meridianv1.ScanRequest{StartKey: big}) }},
		{"Scan negative limit", func() error { return scanErr(ctx, e.kv, &meridianv1.ScanRequest{Limit: -1}) }},
		{"Scan negative page size", func() error { return scanErr(ctx, e.kv, &meridianv1.ScanRequest{PageSize: -1}) }},
		{"DeleteRange without end", func() error {
			_, err := e.kv.DeleteRange(ctx, &meridianv1.DeleteRangeRequest{StartKey: []byte("a")})
			return err
		}},
		{"DeleteRange end before start", func() error {
			_, err := e.kv.DeleteRange(ctx, &meridianv1.DeleteRangeRequest{StartKey: []byte("b"), EndKey: []byte("a")})
			return err
		}},
	} {
		if err := tc.call(); codeOf(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", tc.name, err)
		}
	}
	// A long key and a large value through the cluster. (rangetest's own
	// gRPC servers, Raft's included, keep gRPC's default 4 MiB message
	// limit, so a value at the limit is tested over a fake sender below.)
	if err := putRetryingUnknown(ctx, e.kv, &meridianv1.PutRequest{Key: []byte("warm"), Value: []byte("up")}); err != nil {
		t.Fatalf("Put(warm): %v", err)
	}
	k := bytes.Repeat([]byte("k"), api.MaxKeySize)
	v := bytes.Repeat([]byte("v"), 256<<10)
	if err := putRetryingUnknown(ctx, e.kv, &meridianv1.PutRequest{Key: k, Value: v}); err != nil {
		t.Fatalf("Put near the limits: %v", err)
	}
	got, err := e.kv.Get(ctx, &meridianv1.GetRequest{Key: k})
	if err != nil || !bytes.Equal(got.GetValue(), v) {
		t.Fatalf("Get near the limits: %v", err)
	}
}

// At the limits: a 4 MiB value crosses the public gRPC service both ways
// (its message limit is raised to fit), over an in-memory sender.
func TestKVValueAtTheLimit(t *testing.T) {
	var mu sync.Mutex
	stored := map[string][]byte{}
	mem := fakeSender(func(_ context.Context, ba *api.BatchRequest) (*api.BatchResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		var resp api.Response
		switch r := ba.GetRequests()[0].Inner().(type) {
		case *api.PutRequest:
			stored[string(r.GetKey())] = r.GetValue()
			resp = &api.PutResponse{Timestamp: &api.Timestamp{WallTime: 1}}
		case *api.GetRequest:
			resp = &api.GetResponse{Value: &api.Value{RawBytes: stored[string(r.GetKey())], Timestamp: &api.Timestamp{WallTime: 1}}}
		}
		return &api.BatchResponse{Header: &api.BatchResponseHeader{Timestamp: &api.Timestamp{WallTime: 2}},
			Responses: []*api.ResponseUnion{api.WrapResponse(resp)}}, nil
	})
	kv := serveKV(t, NewKVServer(mem))
	ctx := ctxT(t)
	k := bytes.Repeat([]byte("k"), api.MaxKeySize)
	v := bytes.Repeat([]byte("v"), api.MaxValueSize)
	if _, err := kv.Put(ctx, &meridianv1.PutRequest{Key: k, Value: v}); err != nil {
		t.Fatalf("Put at the limits: %v", err)
	}
	got, err := kv.Get(ctx, &meridianv1.GetRequest{Key: k})
	if err != nil || !bytes.Equal(got.GetValue(), v) {
		t.Fatalf("Get at the limits: %v", err)
	}
}

func scanErr(ctx context.Context, kv meridianv1.KVClient, req *meridianv1.ScanRequest) error {
	st, err := kv.Scan(ctx, req)
	if err != nil {
		return err
	}
	for {
		if _, err := st.Recv(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

func TestKVTxnAndSessionUnimplemented(t *testing.T) {
	e := newKVEnv(t, rangetest.Options{})
	ctx := ctxT(t)
	_, err := e.kv.Txn(ctx, &meridianv1.TxnRequest{})
	if codeOf(err) != codes.Unimplemented || !strings.Contains(err.Error(), "transactions are not available yet") {
		t.Fatalf("Txn: %v", err)
	}
	st, err := e.kv.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send(&meridianv1.SessionRequest{Request: &meridianv1.SessionRequest_Begin_{Begin: &meridianv1.SessionRequest_Begin{}}})
	if _, err := st.Recv(); codeOf(err) != codes.Unimplemented || !strings.Contains(err.Error(), "transactions are not available yet") {
		t.Fatalf("Session: %v", err)
	}
}

// A historical read below a range's GC threshold is refused with
// FailedPrecondition (the real ranges error, through StatusError).
func TestStatusFromRealGCThreshold(t *testing.T) {
	e := newKVEnv(t, rangetest.Options{GCTTL: 200 * time.Millisecond})
	t1 := put(t, e.kv, "g", "v1")
	waitPast(t, e.c, t1)
	put(t, e.kv, "g", "v2") // v1 is now garbage once older than the TTL
	var last error
	e.c.WaitFor(kvWait, "a read at v1's timestamp to be refused after GC", func() bool {
		_, last = e.kv.Get(ctxT(t), &meridianv1.GetRequest{Key: []byte("g"), ReadTimestamp: pubTS(t1)})
		if last != nil && codeOf(last) != codes.FailedPrecondition {
			t.Fatalf("read at %s: %v; want success before GC, FailedPrecondition after", t1, last)
		}
		return last != nil
	})
	if !strings.Contains(last.Error(), "GC threshold") {
		t.Fatalf("FailedPrecondition without saying why: %v", last)
	}
}

// fakeSender answers every batch with fn.
type fakeSender func(ctx context.Context, ba *api.BatchRequest) (*api.BatchResponse, error)

func (f fakeSender) Send(ctx context.Context, ba *api.BatchRequest) (*api.BatchResponse, error) {
	return f(ctx, ba)
}

// The server's own request timeout gives Unavailable (no replica served;
// retry), the caller's deadline DeadlineExceeded.
func TestKVRequestTimeout(t *testing.T) {
	stuck := fakeSender(func(ctx context.Context, _ *api.BatchRequest) (*api.BatchResponse, error) {
		<-ctx.Done()
		return nil, fmt.Errorf("client: %w (last error: no replica)", ctx.Err())
	})
	kv := NewKVServer(stuck, WithRequestTimeout(20*time.Millisecond))
	_, err := kv.Get(context.Background(), &meridianv1.GetRequest{Key: []byte("k")})
	if codeOf(err) != codes.Unavailable {
		t.Fatalf("server timeout: %v, want Unavailable", err)
	}
	kv = NewKVServer(stuck)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := kv.Put(ctx, &meridianv1.PutRequest{Key: []byte("k")}); codeOf(err) != codes.DeadlineExceeded {
		t.Fatalf("caller deadline: %v, want DeadlineExceeded", err)
	}
}

// A scan's first page that meets a value in its uncertainty window starts
// over above it (nothing was sent yet); a later page cannot, and the scan
// fails with Aborted.
func TestKVScanUncertaintyRestart(t *testing.T) {
	const clock = 1000
	var mu sync.Mutex // the server's goroutines and the test share these
	var calls []hlc.Timestamp
	failAt := map[int]bool{}
	f := fakeSender(func(_ context.Context, ba *api.BatchRequest) (*api.BatchResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		ts := ba.GetHeader().GetTimestamp().ToHLC()
		if ts.IsEmpty() { // the clock read
			return &api.BatchResponse{Header: &api.BatchResponseHeader{Timestamp: api.NewTimestamp(hlc.Timestamp{WallTime: clock})},
				Responses: []*api.ResponseUnion{api.WrapResponse(&api.GetResponse{})}}, nil
		}
		calls = append(calls, ts)
		if failAt[len(calls)] {
			return nil, &api.ReadWithinUncertaintyError{Key: []byte("uk"), ReadTimestamp: api.NewTimestamp(ts),
				ValueTimestamp: api.NewTimestamp(ts.AddNanos(5))}
		}
		sr := ba.GetRequests()[0].GetScan()
		// One row per page: the span's first key; resume after it.
		next := keys.Next(sr.GetKey())
		resp := &api.ScanResponse{Rows: []*api.KeyValue{{Key: sr.GetKey(), Value: &api.Value{RawBytes: []byte("v")}}}}
		if bytes.Compare(next, sr.GetEndKey()) < 0 {
			resp.ResumeSpan = &api.Span{Key: next, EndKey: sr.GetEndKey()}
		}
		return &api.BatchResponse{Header: &api.BatchResponseHeader{Timestamp: api.NewTimestamp(ts)},
			Responses: []*api.ResponseUnion{api.WrapResponse(resp)}}, nil
	})
	kv := serveKV(t, NewKVServer(f))
	ctx := ctxT(t)

	reset := func(fail int) {
		mu.Lock()
		defer mu.Unlock()
		calls, failAt = nil, map[int]bool{fail: true}
	}
	batches := func() []hlc.Timestamp {
		mu.Lock()
		defer mu.Unlock()
		return append([]hlc.Timestamp(nil), calls...)
	}

	reset(1)
	rows, pages := scanAll(t, kv, &meridianv1.ScanRequest{StartKey: []byte("a"), EndKey: []byte("a\x00\x00")})
	got := batches()
	if len(rows) != 2 || len(got) != 3 || got[1] != got[2] || got[1] != (hlc.Timestamp{WallTime: clock + 5}) {
		t.Fatalf("rows %d, batches at %v; want a restart at %d then two pages there", len(rows), got, clock+5)
	}
	if toHLC(pages[0].GetReadTimestamp()) != got[1] {
		t.Fatalf("pages report %v, read at %s", pages[0].GetReadTimestamp(), got[1])
	}

	reset(2)
	err := scanErr(ctx, kv, &meridianv1.ScanRequest{StartKey: []byte("a"), EndKey: []byte("a\x00\x00")})
	if codeOf(err) != codes.Aborted {
		t.Fatalf("uncertainty on the second page: %v, want Aborted", err)
	}
	// With the caller's read timestamp there is nothing to move.
	reset(1)
	err = scanErr(ctx, kv, &meridianv1.ScanRequest{StartKey: []byte("a"), ReadTimestamp: &meridianv1.Timestamp{WallTime: 7}})
	if n := len(batches()); codeOf(err) != codes.Aborted || n != 1 {
		t.Fatalf("uncertainty at a fixed timestamp: %v after %d batches, want Aborted after 1", err, n)
	}
	var d *api.ReadWithinUncertaintyError
	if st, _ := status.FromError(err); st == nil || !detailAs(st, &d) {
		t.Fatalf("the Aborted status lacks the api error detail: %v", err)
	}
}
