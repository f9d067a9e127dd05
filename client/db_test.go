package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meridiandb/meridian/api"
	meridianv1 "github.com/meridiandb/meridian/api/meridian/v1"
	"github.com/meridiandb/meridian/hlc"
)

// fakeStore is an in-memory multi-version map shared by fake KV servers.
type fakeStore struct {
	mu       sync.Mutex
	clock    int64
	versions map[string][]fakeVersion // newest last
	// inject, if set, may fail a call before it runs (method name).
	inject func(method string) error
	// breakScan, if set, fails a Scan stream after that many pages.
	breakScan func() (pages int, err error)
	scans     []*meridianv1.ScanRequest // every Scan request received
	open      int                       // Scan streams running
}

type fakeVersion struct {
	ts      int64
	value   []byte
	deleted bool
}

func (s *fakeStore) now() int64 { s.clock += 10; return s.clock }

func (s *fakeStore) read(key string, at int64) (fakeVersion, bool) {
	vs := s.versions[key]
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].ts <= at {
			return vs[i], !vs[i].deleted
		}
	}
	return fakeVersion{}, false
}

func (s *fakeStore) injected(method string) error {
	if s.inject == nil {
		return nil
	}
	return s.inject(method)
}

func pts(ts int64) *meridianv1.Timestamp { return &meridianv1.Timestamp{WallTime: ts} }

// fakeKV serves meridian.v1.KV over a fakeStore.
type fakeKV struct {
	meridianv1.UnimplementedKVServer
	s *fakeStore
}

func (f fakeKV) Get(_ context.Context, req *meridianv1.GetRequest) (*meridianv1.GetResponse, error) {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	if err := f.s.injected("Get"); err != nil {
		return nil, err
	}
	at := req.GetReadTimestamp().GetWallTime()
	if at == 0 {
		at = f.s.now()
	}
	resp := &meridianv1.GetResponse{ReadTimestamp: pts(at)}
	if v, ok := f.s.read(string(req.GetKey()), at); ok {
		resp.Found, resp.Value, resp.ValueTimestamp = true, v.value, pts(v.ts)
	}
	return resp, nil
}

func (f fakeKV) write(method string, key []byte, v fakeVersion) (*meridianv1.Timestamp, error) {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	if err := f.s.injected(method); err != nil {
		return nil, err
	}
	v.ts = f.s.now()
	f.s.versions[string(key)] = append(f.s.versions[string(key)], v)
	return pts(v.ts), nil
}

func (f fakeKV) Put(_ context.Context, req *meridianv1.PutRequest) (*meridianv1.PutResponse, error) {
	ts, err := f.write("Put", req.GetKey(), fakeVersion{value: req.GetValue()})
	return &meridianv1.PutResponse{WriteTimestamp: ts}, err
}

func (f fakeKV) Delete(_ context.Context, req *meridianv1.DeleteRequest) (*meridianv1.DeleteResponse, error) {
	ts, err := f.write("Delete", req.GetKey(), fakeVersion{deleted: true})
	return &meridianv1.DeleteResponse{WriteTimestamp: ts}, err
}

func (f fakeKV) DeleteRange(_ context.Context, req *meridianv1.DeleteRangeRequest) (*meridianv1.DeleteRangeResponse, error) {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	if err := f.s.injected("DeleteRange"); err != nil {
		return nil, err
	}
	ts := f.s.now()
	var n int64
	for _, k := range f.s.keysIn(req.GetStartKey(), req.GetEndKey(), ts) {
		f.s.versions[k] = append(f.s.versions[k], fakeVersion{ts: ts, deleted: true})
		n++
	}
	return &meridianv1.DeleteRangeResponse{Deleted: n, WriteTimestamp: pts(ts)}, nil
}

// keysIn returns the live keys of [start, end) at ts, ascending.
func (s *fakeStore) keysIn(start, end []byte, ts int64) []string {
	var out []string
	for k := range s.versions {
		if k < string(start) || (len(end) > 0 && k >= string(end)) {
			continue
		}
		if _, ok := s.read(k, ts); ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func (f fakeKV) Scan(req *meridianv1.ScanRequest, stream meridianv1.KV_ScanServer) error {
	f.s.mu.Lock()
	f.s.scans = append(f.s.scans, req)
	if err := f.s.injected("Scan"); err != nil {
		f.s.mu.Unlock()
		return err
	}
	at := req.GetReadTimestamp().GetWallTime()
	if at == 0 {
		at = f.s.now()
	}
	ks := f.s.keysIn(req.GetStartKey(), req.GetEndKey(), at)
	if req.GetReverse() {
		for i, j := 0, len(ks)-1; i < j; i, j = i+1, j-1 {
			ks[i], ks[j] = ks[j], ks[i]
		}
	}
	if l := int(req.GetLimit()); l > 0 && len(ks) > l {
		ks = ks[:l]
	}
	var rows []*meridianv1.KeyValue
	for _, k := range ks {
		v, _ := f.s.read(k, at)
		rows = append(rows, &meridianv1.KeyValue{Key: []byte(k), Value: v.value, Timestamp: pts(v.ts)})
	}
	breakAt, breakErr := -1, error(nil)
	if f.s.breakScan != nil {
		breakAt, breakErr = f.s.breakScan()
	}
	f.s.open++
	f.s.mu.Unlock()
	defer func() {
		f.s.mu.Lock()
		f.s.open--
		f.s.mu.Unlock()
	}()
	ps := int(req.GetPageSize())
	if ps == 0 {
		ps = 1000
	}
	for page := 0; page == 0 || len(rows) > 0; page++ {
		if page == breakAt {
			return breakErr
		}
		n := min(ps, len(rows))
		if err := stream.Send(&meridianv1.ScanResponse{Rows: rows[:n], ReadTimestamp: pts(at)}); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// serve starts a fake KV server over s on 127.0.0.1; stop ends it (the
// test's cleanup also does).
func serve(t *testing.T, s *fakeStore) (addr string, stop func()) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	meridianv1.RegisterKVServer(gs, fakeKV{s: s})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = gs.Serve(lis) }()
	var once sync.Once
	stop = func() { once.Do(func() { gs.Stop(); wg.Wait() }) }
	t.Cleanup(stop)
	return lis.Addr().String(), stop
}

func newFakeStore() *fakeStore { return &fakeStore{versions: map[string][]fakeVersion{}} }

func openDB(t *testing.T, addrs ...string) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := Open(ctx, addrs...)
	if err != nil {
		t.Fatal(err)
	}
	db.backoff = time.Millisecond
	t.Cleanup(func() { db.Close() })
	return db
}

func TestDBRoundTrip(t *testing.T) {
	s := newFakeStore()
	addr, _ := serve(t, s)
	db := openDB(t, addr)
	ctx := context.Background()

	t1, err := db.Put(ctx, []byte("a"), []byte("1"))
	if err != nil || t1.IsEmpty() {
		t.Fatalf("Put = %s, %v", t1, err)
	}
	if _, err := db.Put(ctx, []byte("a"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	got, err := db.Get(ctx, []byte("a"))
	if err != nil || !got.Found || string(got.Value) != "2" || got.ReadTimestamp.Less(got.ValueTimestamp) {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	old, err := db.Get(ctx, []byte("a"), AsOf(t1))
	if err != nil || string(old.Value) != "1" || old.ValueTimestamp != t1 || old.ReadTimestamp != t1 {
		t.Fatalf("Get AsOf(%s) = %+v, %v", t1, old, err)
	}
	dts, err := db.Delete(ctx, []byte("a"))
	if err != nil || !t1.Less(dts) {
		t.Fatalf("Delete = %s, %v", dts, err)
	}
	if got, err := db.Get(ctx, []byte("a")); err != nil || got.Found || got.Value != nil {
		t.Fatalf("Get after Delete = %+v, %v", got, err)
	}
	for _, k := range []string{"b", "c", "d"} {
		if _, err := db.Put(ctx, []byte(k), []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	n, ts, err := db.DeleteRange(ctx, []byte("b"), []byte("d"))
	if err != nil || n != 2 || ts.IsEmpty() {
		t.Fatalf("DeleteRange = %d, %s, %v", n, ts, err)
	}
}

func TestDBScan(t *testing.T) {
	s := newFakeStore()
	addr, _ := serve(t, s)
	db := openDB(t, addr)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		if _, err := db.Put(ctx, []byte(fmt.Sprint("k", i)), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	keysOf := func(rows []KeyValue) string {
		var ks []string
		for _, r := range rows {
			ks = append(ks, string(r.Key))
		}
		return strings.Join(ks, ",")
	}
	for _, tc := range []struct {
		name       string
		start, end string
		opts       []ScanOption
		want       string
	}{
		{"all", "", "", nil, "k0,k1,k2,k3,k4,k5,k6,k7,k8,k9"},
		{"span", "k2", "k5", nil, "k2,k3,k4"},
		{"limit", "", "", []ScanOption{Limit(3)}, "k0,k1,k2"},
		{"reverse limit", "", "", []ScanOption{Reverse(), Limit(3)}, "k9,k8,k7"},
		{"small pages", "k1", "", []ScanOption{PageSize(2), Limit(5)}, "k1,k2,k3,k4,k5"},
		{"empty", "x", "y", nil, ""},
	} {
		res, err := db.Scan(ctx, []byte(tc.start), []byte(tc.end), tc.opts...)
		if err != nil || keysOf(res.Rows) != tc.want || res.ReadTimestamp.IsEmpty() {
			t.Errorf("%s: Scan = %q at %s, %v; want %q", tc.name, keysOf(res.Rows), res.ReadTimestamp, err, tc.want)
		}
		for _, r := range res.Rows {
			if r.Timestamp.IsEmpty() || string(r.Value) != strings.TrimPrefix(string(r.Key), "k") {
				t.Errorf("%s: row %+v", tc.name, r)
			}
		}
	}
	// A historical scan.
	at := hlc.Timestamp{WallTime: s.clock}
	if _, err := db.Put(ctx, []byte("k0"), []byte("new")); err != nil {
		t.Fatal(err)
	}
	res, err := db.Scan(ctx, nil, nil, AsOf(at), Limit(1))
	if err != nil || len(res.Rows) != 1 || string(res.Rows[0].Value) != "0" || res.ReadTimestamp != at {
		t.Fatalf("Scan AsOf = %+v, %v", res, err)
	}
	// Breaking out of ScanIter ends the stream on the server.
	n := 0
	for kv, err := range db.ScanIter(ctx, nil, nil, PageSize(1)) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 2 || kv.Key == nil {
			break
		}
	}
	waitFor(t, "the abandoned scan stream to end", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.open == 0
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// nodeStatus builds a status as server.StatusError does: with the api
// error as a detail.
func nodeStatus(code codes.Code, err error) error {
	st, e := status.New(code, err.Error()).WithDetails(api.ErrorFromGo(err))
	if e != nil {
		panic(e)
	}
	return st.Err()
}

// A scan whose stream breaks (UNAVAILABLE) resumes after its last row, at
// the same read timestamp, within its limit; no row is lost or repeated.
func TestDBScanResumes(t *testing.T) {
	for _, reverse := range []bool{false, true} {
		s := newFakeStore()
		addr, _ := serve(t, s)
		db := openDB(t, addr)
		ctx := context.Background()
		for i := 0; i < 10; i++ {
			if _, err := db.Put(ctx, []byte(fmt.Sprint("k", i)), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		breaks := 2
		s.mu.Lock()
		s.breakScan = func() (int, error) {
			if breaks == 0 {
				return -1, nil
			}
			breaks--
			return 1, status.Error(codes.Unavailable, "connection reset") // after one page
		}
		s.mu.Unlock()
		opts := []ScanOption{PageSize(2), Limit(7)}
		want := "k0,k1,k2,k3,k4,k5,k6"
		if reverse {
			opts, want = append(opts, Reverse()), "k9,k8,k7,k6,k5,k4,k3"
		}
		res, err := db.Scan(ctx, nil, nil, opts...)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range res.Rows {
			got = append(got, string(r.Key))
		}
		if strings.Join(got, ",") != want {
			t.Fatalf("reverse=%v: rows %v, want %s", reverse, got, want)
		}
		s.mu.Lock()
		scans := s.scans[len(s.scans)-3:]
		s.mu.Unlock()
		first := scans[0].GetReadTimestamp()
		for i, r := range scans[1:] {
			if r.GetReadTimestamp().GetWallTime() != res.ReadTimestamp.WallTime || (i == 0 && first != nil) {
				t.Fatalf("resumed scan %d at %v, the scan read at %s", i+1, r.GetReadTimestamp(), res.ReadTimestamp)
			}
		}
		if l := scans[2].GetLimit(); l != 3 {
			t.Fatalf("second resume asks for %d rows, want 3 (7 minus 2 pages of 2)", l)
		}
	}
}

func TestDBErrors(t *testing.T) {
	s := newFakeStore()
	addr, _ := serve(t, s)
	db := openDB(t, addr)
	ctx := context.Background()
	put := func() error { _, err := db.Put(ctx, []byte("k"), []byte("v")); return err }
	get := func() error { _, err := db.Get(ctx, []byte("k")); return err }
	scan := func() error { _, err := db.Scan(ctx, nil, nil); return err }
	for _, tc := range []struct {
		name     string
		call     func() error
		fail     error
		failures int     // how many calls fail (-1: all)
		is       []error // the error matches these
		isNot    []error
		calls    int // how many calls the server saw
		as       any
	}{
		{name: "invalid argument", call: put, fail: nodeStatus(codes.InvalidArgument, &api.InvalidRequestError{Message: "Put: empty key"}), failures: -1,
			is: []error{ErrInvalidArgument}, isNot: []error{ErrAmbiguousResult, ErrUnavailable}, calls: 1, as: new(*api.InvalidRequestError)},
		{name: "ambiguous write", call: put, fail: nodeStatus(codes.Unknown, &api.AmbiguousResultError{Message: "leadership changed"}), failures: -1,
			is: []error{ErrAmbiguousResult}, isNot: []error{ErrUnavailable}, calls: 1, as: new(*api.AmbiguousResultError)},
		{name: "node unavailable: a write is retried", call: put, fail: nodeStatus(codes.Unavailable, errors.New("no replica")), failures: 1, calls: 2},
		{name: "node unavailable until the retries run out", call: put, fail: nodeStatus(codes.Unavailable, errors.New("no replica")), failures: -1,
			is: []error{ErrUnavailable}, isNot: []error{ErrAmbiguousResult}, calls: 5},
		{name: "connection broke during a write", call: put, fail: status.Error(codes.Unavailable, "transport is closing"), failures: -1,
			is: []error{ErrAmbiguousResult}, isNot: []error{ErrUnavailable}, calls: 1},
		{name: "connection broke during a read: retried", call: get, fail: status.Error(codes.Unavailable, "transport is closing"), failures: 2, calls: 3},
		{name: "scan retried", call: scan, fail: status.Error(codes.Unavailable, "transport is closing"), failures: 1, calls: 2},
		{name: "read unavailable", call: get, fail: status.Error(codes.Unavailable, "down"), failures: -1,
			is: []error{ErrUnavailable}, isNot: []error{ErrAmbiguousResult}, calls: 5},
		{name: "below GC threshold", call: get, fail: nodeStatus(codes.FailedPrecondition, &api.InvalidRequestError{Message: "GC threshold"}), failures: -1,
			is: []error{ErrBelowGCThreshold}, calls: 1},
		{name: "aborted", call: scan, fail: nodeStatus(codes.Aborted, &api.ReadWithinUncertaintyError{}), failures: -1,
			is: []error{ErrAborted}, calls: 1, as: new(*api.ReadWithinUncertaintyError)},
		{name: "read deadline", call: get, fail: nodeStatus(codes.DeadlineExceeded, context.DeadlineExceeded), failures: -1,
			is: []error{context.DeadlineExceeded}, isNot: []error{ErrAmbiguousResult}, calls: 1},
		{name: "write deadline", call: put, fail: nodeStatus(codes.DeadlineExceeded, context.DeadlineExceeded), failures: -1,
			is: []error{context.DeadlineExceeded, ErrAmbiguousResult}, calls: 1},
		{name: "unimplemented", call: get, fail: status.Error(codes.Unimplemented, "no"), failures: -1, is: []error{ErrUnimplemented}, calls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, failures := 0, tc.failures
			s.mu.Lock()
			s.inject = func(string) error {
				calls++
				if failures == 0 {
					return nil
				}
				failures--
				return tc.fail
			}
			s.mu.Unlock()
			err := tc.call()
			s.mu.Lock()
			s.inject = nil
			n := calls
			s.mu.Unlock()
			if n != tc.calls {
				t.Errorf("the server saw %d calls, want %d (err %v)", n, tc.calls, err)
			}
			if len(tc.is) == 0 && err != nil {
				t.Fatalf("want success after retries, got %v", err)
			}
			for _, target := range tc.is {
				if !errors.Is(err, target) {
					t.Errorf("%v does not match %v", err, target)
				}
			}
			for _, target := range tc.isNot {
				if errors.Is(err, target) {
					t.Errorf("%v matches %v", err, target)
				}
			}
			if tc.as != nil && !errors.As(err, tc.as) {
				t.Errorf("errors.As(%v, %T) fails", err, tc.as)
			}
			if err != nil {
				if _, ok := status.FromError(err); !ok {
					t.Errorf("%v carries no gRPC status", err)
				}
			}
		})
	}
}

// Calls go to whichever node is up: with one of two nodes stopped, reads
// keep working; Open works as long as one address answers.
func TestDBFailover(t *testing.T) {
	s := newFakeStore()
	a, stopA := serve(t, s)
	b, _ := serve(t, s)
	dead := deadAddr(t)
	db := openDB(t, dead, a, b)
	ctx := context.Background()
	if _, err := db.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := db.Get(ctx, []byte("k")); err != nil {
			t.Fatal(err)
		}
	}
	stopA()
	for i := 0; i < 50; i++ {
		got, err := db.Get(ctx, []byte("k"))
		if err != nil || string(got.Value) != "v" {
			t.Fatalf("Get %d after a node stopped: %+v, %v", i, got, err)
		}
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Open(ctx); err == nil {
		t.Fatal("Open without addresses succeeded")
	}
	if _, err := Open(ctx, ""); err == nil {
		t.Fatal("Open with an empty address succeeded")
	}
	if _, err := Open(ctx, deadAddr(t), deadAddr(t)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open with no node listening: %v, want ErrUnavailable", err)
	}
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if _, err := Open(done, "127.0.0.1:1"); err == nil {
		t.Fatal("Open with an ended ctx succeeded")
	}
}
