package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/meridiandb/meridian/api"
	meridianv1 "github.com/meridiandb/meridian/api/meridian/v1"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
)

// MaxMessageBytes is the largest gRPC message the DB sends or accepts: room
// for a value of api.MaxValueSize (4 MiB) under a key of api.MaxKeySize
// (16 KiB), and for Scan pages (the server keeps them near 4 MiB).
const MaxMessageBytes = 16 << 20

// Errors a DB call may match with errors.Is. Every failed call returns an
// *Error (the gRPC status the node sent, or the transport's), which also
// matches context.DeadlineExceeded or context.Canceled when the call's
// ctx ended, and unwraps to the node's typed api error when the status
// carries one (errors.As(err, new(*api.AmbiguousResultError)), ...).
var (
	// ErrInvalidArgument: the request was malformed (empty key, a key over
	// 16 KiB or a value over 4 MiB, an end key not after the start key).
	// Retrying it unchanged fails the same way.
	ErrInvalidArgument = errors.New("client: invalid argument")
	// ErrUnavailable: no node served the request, and nothing was written;
	// safe to retry. The DB has already retried before returning it.
	ErrUnavailable = errors.New("client: unavailable")
	// ErrAmbiguousResult: a write whose outcome is unknown: it may or may
	// not have applied. Never retry such a write blindly; read the key to
	// find out. A write that failed because its ctx ended, or because the
	// connection broke while it was in flight, matches it too.
	ErrAmbiguousResult = errors.New("client: ambiguous result")
	// ErrBelowGCThreshold: a read at a timestamp older than the cluster
	// keeps history for (its garbage-collection threshold).
	ErrBelowGCThreshold = errors.New("client: read below the garbage-collection threshold")
	// ErrAborted: the operation met a concurrent write it could not order
	// itself against (e.g. a value inside the clock uncertainty window of
	// a read at a fixed timestamp); retrying it is safe.
	ErrAborted = errors.New("client: aborted; retry")
	// ErrUnimplemented: the cluster does not serve this call yet.
	ErrUnimplemented = errors.New("client: not implemented by the server")
)

// Error is a failed DB call: the operation and the gRPC status it ended
// with. Match it with errors.Is against the Err... sentinels and the ctx
// errors; errors.As finds the api error the node attached, if any.
type Error struct {
	// Op is the DB method: "Get", "Put", "Delete", "DeleteRange", "Scan".
	Op string
	// Code and Message are the gRPC status.
	Code    codes.Code
	Message string
	// Ambiguous is set when a write's outcome is unknown.
	Ambiguous bool

	st    *status.Status
	cause error // the node's api error, from the status details
}

func (e *Error) Error() string {
	s := fmt.Sprintf("client: %s: %s (%s)", e.Op, e.Message, e.Code)
	if e.Ambiguous && e.Code != codes.Unknown {
		s += "; the write may or may not have applied"
	}
	return s
}

// Unwrap returns the typed api error the node sent with the status, or nil.
func (e *Error) Unwrap() error { return e.cause }

// GRPCStatus returns the status, so status.FromError works on an *Error.
func (e *Error) GRPCStatus() *status.Status { return e.st }

// Is reports whether e matches one of the sentinels above, or a ctx error.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrInvalidArgument:
		return e.Code == codes.InvalidArgument
	case ErrUnavailable:
		return e.Code == codes.Unavailable && !e.Ambiguous
	case ErrAmbiguousResult:
		return e.Ambiguous
	case ErrBelowGCThreshold:
		return e.Code == codes.FailedPrecondition
	case ErrAborted:
		return e.Code == codes.Aborted
	case ErrUnimplemented:
		return e.Code == codes.Unimplemented
	case context.DeadlineExceeded:
		return e.Code == codes.DeadlineExceeded
	case context.Canceled:
		return e.Code == codes.Canceled
	}
	return false
}

// newError classifies a failed call's error. write says whether the call
// wrote: then a broken connection or an ended ctx leave its outcome
// unknown. The server attaches an *api.Error to every status it builds
// from a failure (server.StatusError); an UNAVAILABLE without one came
// from the transport, not from a node that knows nothing was written.
func newError(op string, write bool, err error) *Error {
	st, _ := status.FromError(err) // a non-status error becomes Unknown
	e := &Error{Op: op, Code: st.Code(), Message: st.Message(), st: st}
	fromNode := false
	for _, d := range st.Details() {
		if ae, ok := d.(*api.Error); ok {
			e.cause, fromNode = ae.GoError(), true
			break
		}
	}
	var amb *api.AmbiguousResultError
	switch {
	case errors.As(e.cause, &amb):
		e.Ambiguous = true
	case !write:
	case e.Code == codes.Unknown, e.Code == codes.DeadlineExceeded, e.Code == codes.Canceled:
		e.Ambiguous = true
	case e.Code == codes.Unavailable && !fromNode:
		e.Ambiguous = true
	}
	return e
}

// retryable reports whether a call that failed with e may be sent again:
// a node said nothing was written, or (for reads) the connection failed.
func (e *Error) retryable(write bool) bool {
	return e.Code == codes.Unavailable && (!write || !e.Ambiguous)
}

// DB is a handle on a Meridian cluster through its public gRPC API
// (meridian.v1.KV). It is safe for concurrent use; Close releases it.
type DB struct {
	conn *grpc.ClientConn
	kv   meridianv1.KVClient
	// retries bound how often a call is re-sent after UNAVAILABLE; the
	// wait between attempts starts at backoff and doubles.
	retries int
	backoff time.Duration
}

// resolverScheme names the DB's address list inside its own gRPC
// connection (the resolver is private to that connection).
const resolverScheme = "meridian"

// Open connects to the cluster through the given node addresses
// (host:port, any subset of the nodes: each serves every key). Calls go
// round-robin over the nodes that are up, so a node going down only fails
// the calls in flight on it (reads are retried on another node; writes are
// retried only when the node said nothing was written). Open returns once
// one node accepts a connection; it fails with ErrUnavailable when every
// address refuses it, or with ctx's error when ctx ends first.
//
// The connection is insecure (plaintext): TLS comes with a later release.
func Open(ctx context.Context, addrs ...string) (*DB, error) {
	if len(addrs) == 0 {
		return nil, errors.New("client: Open needs at least one node address")
	}
	state := resolver.State{}
	for _, a := range addrs {
		if strings.TrimSpace(a) == "" {
			return nil, errors.New("client: Open: empty node address")
		}
		state.Addresses = append(state.Addresses, resolver.Address{Addr: a})
	}
	r := manual.NewBuilderWithScheme(resolverScheme)
	r.InitialState(state)
	conn, err := grpc.NewClient(resolverScheme+":///cluster",
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"round_robin": {}}]}`),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
	)
	if err != nil {
		return nil, fmt.Errorf("client: Open %s: %w", strings.Join(addrs, ","), err)
	}
	conn.Connect()
	for {
		s := conn.GetState()
		if s == connectivity.Ready {
			break
		}
		if s == connectivity.TransientFailure {
			conn.Close()
			return nil, fmt.Errorf("client: Open: no node accepted a connection at %s: %w", strings.Join(addrs, ","), ErrUnavailable)
		}
		if !conn.WaitForStateChange(ctx, s) {
			conn.Close()
			return nil, fmt.Errorf("client: Open %s: %w", strings.Join(addrs, ","), ctx.Err())
		}
	}
	return &DB{conn: conn, kv: meridianv1.NewKVClient(conn), retries: 4, backoff: 20 * time.Millisecond}, nil
}

// Close closes the connection; calls in flight fail with Canceled.
func (db *DB) Close() error { return db.conn.Close() }

// do runs call, re-sending it after a retryable failure (see retryable)
// with exponential backoff, within ctx.
func (db *DB) do(ctx context.Context, op string, write bool, call func() error) error {
	wait := db.backoff
	for attempt := 0; ; attempt++ {
		err := call()
		if err == nil {
			return nil
		}
		e := newError(op, write, err)
		if !e.retryable(write) || attempt >= db.retries {
			return e
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return e
		}
		wait *= 2
	}
}

// KeyValue is one row.
type KeyValue struct {
	Key   []byte
	Value []byte
	// Timestamp is when the value was written.
	Timestamp hlc.Timestamp
}

// GetResult is what Get read.
type GetResult struct {
	// Found is false when the key has no value at the read timestamp;
	// then Value is nil.
	Found bool
	Value []byte
	// ValueTimestamp is when the value was written (empty if not Found).
	ValueTimestamp hlc.Timestamp
	// ReadTimestamp is the timestamp the read was served at.
	ReadTimestamp hlc.Timestamp
}

// GetOption configures Get.
type GetOption interface{ applyGet(*getOptions) }

// ScanOption configures Scan and ScanIter.
type ScanOption interface{ applyScan(*scanOptions) }

// ReadOption configures Get and Scan alike.
type ReadOption interface {
	GetOption
	ScanOption
}

type getOptions struct{ asOf hlc.Timestamp }

type scanOptions struct {
	asOf     hlc.Timestamp
	limit    int64
	reverse  bool
	pageSize int32
}

type asOfOption hlc.Timestamp

func (o asOfOption) applyGet(g *getOptions)   { g.asOf = hlc.Timestamp(o) }
func (o asOfOption) applyScan(s *scanOptions) { s.asOf = hlc.Timestamp(o) }

// AsOf reads as of ts (a historical read) instead of the latest values.
// Reads older than the cluster's GC TTL fail with ErrBelowGCThreshold.
func AsOf(ts hlc.Timestamp) ReadOption { return asOfOption(ts) }

type scanOptionFunc func(*scanOptions)

func (f scanOptionFunc) applyScan(s *scanOptions) { f(s) }

// Limit returns at most n rows (n <= 0: no limit).
func Limit(n int64) ScanOption {
	return scanOptionFunc(func(s *scanOptions) { s.limit = max(n, 0) })
}

// Reverse returns rows in descending key order (the last rows of the span
// first, when combined with Limit).
func Reverse() ScanOption { return scanOptionFunc(func(s *scanOptions) { s.reverse = true }) }

// PageSize sets how many rows each streamed page holds (default: the
// server's, 1,000). It changes nothing but the round trips.
func PageSize(n int32) ScanOption {
	return scanOptionFunc(func(s *scanOptions) { s.pageSize = max(n, 0) })
}

func toPublic(ts hlc.Timestamp) *meridianv1.Timestamp {
	if ts.IsEmpty() {
		return nil
	}
	return &meridianv1.Timestamp{WallTime: ts.WallTime, Logical: ts.Logical}
}

func fromPublic(ts *meridianv1.Timestamp) hlc.Timestamp {
	if ts == nil {
		return hlc.Timestamp{}
	}
	return hlc.Timestamp{WallTime: ts.GetWallTime(), Logical: ts.GetLogical()}
}

// Get reads key's value: the latest, or as of AsOf's timestamp. A key
// without a value is not an error: GetResult.Found is false.
func (db *DB) Get(ctx context.Context, key []byte, opts ...GetOption) (GetResult, error) {
	var o getOptions
	for _, opt := range opts {
		opt.applyGet(&o)
	}
	var resp *meridianv1.GetResponse
	err := db.do(ctx, "Get", false, func() (err error) {
		resp, err = db.kv.Get(ctx, &meridianv1.GetRequest{Key: key, ReadTimestamp: toPublic(o.asOf)})
		return err
	})
	if err != nil {
		return GetResult{}, err
	}
	return GetResult{
		Found: resp.GetFound(), Value: resp.GetValue(),
		ValueTimestamp: fromPublic(resp.GetValueTimestamp()), ReadTimestamp: fromPublic(resp.GetReadTimestamp()),
	}, nil
}

// Put writes value at key and returns the timestamp it was written at.
func (db *DB) Put(ctx context.Context, key, value []byte) (hlc.Timestamp, error) {
	var resp *meridianv1.PutResponse
	err := db.do(ctx, "Put", true, func() (err error) {
		resp, err = db.kv.Put(ctx, &meridianv1.PutRequest{Key: key, Value: value})
		return err
	})
	if err != nil {
		return hlc.Timestamp{}, err
	}
	return fromPublic(resp.GetWriteTimestamp()), nil
}

// Delete removes key (deleting a key without a value succeeds) and
// returns the timestamp of the deletion.
func (db *DB) Delete(ctx context.Context, key []byte) (hlc.Timestamp, error) {
	var resp *meridianv1.DeleteResponse
	err := db.do(ctx, "Delete", true, func() (err error) {
		resp, err = db.kv.Delete(ctx, &meridianv1.DeleteRequest{Key: key})
		return err
	})
	if err != nil {
		return hlc.Timestamp{}, err
	}
	return fromPublic(resp.GetWriteTimestamp()), nil
}

// DeleteRange removes every key of [start, end) (an empty start is the
// first key; end is required) and returns how many keys it deleted and
// the latest timestamp it wrote at. It is not atomic: on error, part of
// the span may be deleted already.
func (db *DB) DeleteRange(ctx context.Context, start, end []byte) (deleted int64, ts hlc.Timestamp, err error) {
	var resp *meridianv1.DeleteRangeResponse
	err = db.do(ctx, "DeleteRange", true, func() (err error) {
		resp, err = db.kv.DeleteRange(ctx, &meridianv1.DeleteRangeRequest{StartKey: start, EndKey: end})
		return err
	})
	if err != nil {
		return 0, hlc.Timestamp{}, err
	}
	return resp.GetDeleted(), fromPublic(resp.GetWriteTimestamp()), nil
}

// ScanResult is what Scan read.
type ScanResult struct {
	// Rows in ascending key order (descending with Reverse).
	Rows []KeyValue
	// ReadTimestamp is the one timestamp every row was read at.
	ReadTimestamp hlc.Timestamp
}

// Scan reads the rows of [start, end) into memory, all at one timestamp
// (one consistent snapshot). An empty start is the first key and an empty
// end the end of the keyspace. Use Limit for large spans, or ScanIter to
// stream them.
func (db *DB) Scan(ctx context.Context, start, end []byte, opts ...ScanOption) (ScanResult, error) {
	var res ScanResult
	for kv, err := range db.scan(ctx, start, end, &res.ReadTimestamp, opts) {
		if err != nil {
			return ScanResult{}, err
		}
		res.Rows = append(res.Rows, kv)
	}
	return res, nil
}

// ScanIter streams the rows of [start, end) as Scan reads them, page by
// page, all at one timestamp; it holds one page in memory. An error ends
// the iteration (it is the last pair yielded); breaking out of the loop
// ends the scan on the server.
//
//	for kv, err := range db.ScanIter(ctx, start, end) {
//		if err != nil {
//			return err
//		}
//		...
//	}
func (db *DB) ScanIter(ctx context.Context, start, end []byte, opts ...ScanOption) iter.Seq2[KeyValue, error] {
	return db.scan(ctx, start, end, nil, opts)
}

// scan is Scan and ScanIter. When the stream breaks with a retryable
// error it resumes, at the scan's read timestamp, after the last row it
// yielded. readTS, if not nil, receives the read timestamp.
func (db *DB) scan(ctx context.Context, start, end []byte, readTS *hlc.Timestamp, opts []ScanOption) iter.Seq2[KeyValue, error] {
	var o scanOptions
	for _, opt := range opts {
		opt.applyScan(&o)
	}
	return func(yield func(KeyValue, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // ends the stream when the caller stops early
		req := &meridianv1.ScanRequest{
			StartKey: start, EndKey: end, Limit: o.limit, Reverse: o.reverse,
			ReadTimestamp: toPublic(o.asOf), PageSize: o.pageSize,
		}
		wait := db.backoff
		for attempt := 0; ; attempt++ {
			err := db.scanOnce(ctx, req, readTS, yield)
			if err == errStop || err == nil {
				return
			}
			e := newError("Scan", false, err)
			if !e.retryable(false) || attempt >= db.retries {
				yield(KeyValue{}, e)
				return
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				yield(KeyValue{}, e)
				return
			}
			wait *= 2
		}
	}
}

// errStop says the caller stopped the iteration.
var errStop = errors.New("client: scan stopped by the caller")

// scanOnce runs one Scan stream, yielding its rows. Once the first page
// arrived, req is pinned to the scan's read timestamp and, row by row,
// narrowed to what is left (after the last row, within the limit), so a
// retry resumes the same snapshot where this stream broke.
func (db *DB) scanOnce(ctx context.Context, req *meridianv1.ScanRequest, readTS *hlc.Timestamp, yield func(KeyValue, error) bool) error {
	stream, err := db.kv.Scan(ctx, req)
	if err != nil {
		return err
	}
	limit, n := req.GetLimit(), int64(0)
	for {
		page, err := stream.Recv()
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if req.ReadTimestamp == nil {
			req.ReadTimestamp = page.GetReadTimestamp()
		}
		if readTS != nil && readTS.IsEmpty() {
			*readTS = fromPublic(page.GetReadTimestamp())
		}
		for _, r := range page.GetRows() {
			n++
			if req.Reverse {
				req.EndKey = r.GetKey()
			} else {
				req.StartKey = keys.Next(r.GetKey())
			}
			if limit > 0 {
				req.Limit = limit - n
			}
			if !yield(KeyValue{Key: r.GetKey(), Value: r.GetValue(), Timestamp: fromPublic(r.GetTimestamp())}, nil) {
				return errStop
			}
			if limit > 0 && req.Limit <= 0 {
				return nil
			}
		}
	}
}
