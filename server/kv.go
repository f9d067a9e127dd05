package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meridiandb/meridian/api"
	meridianv1 "github.com/meridiandb/meridian/api/meridian/v1"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
)

// Sender sends a batch over arbitrary keys to the ranges that hold them.
// client.Router implements it; tests wrap it or fake it.
type Sender interface {
	Send(ctx context.Context, ba *api.BatchRequest) (*api.BatchResponse, error)
}

const (
	// DefaultScanPageSize is how many rows a Scan page holds when the
	// request leaves page_size at 0.
	DefaultScanPageSize = 1000
	// scanPageBytes is the soft byte limit of a Scan page (keys plus
	// values): the row that reaches it is still returned, so a page stays
	// under 4 MiB + one row (≤ 4 MiB + 16 KiB), well within MaxMessageBytes.
	scanPageBytes = 4 << 20
	// deleteRangeChunk bounds the keys one DeleteRange batch deletes, so a
	// DeleteRange over a large span is many bounded Raft commands rather
	// than one huge one.
	deleteRangeChunk = 1000
	// maxScanRestarts bounds how often a Scan whose first page met a value
	// inside its uncertainty window moves its timestamp up and starts over.
	maxScanRestarts = 5
	// DefaultRequestTimeout bounds each batch the KV service sends: a
	// request that no replica serves by then fails with UNAVAILABLE (safe
	// to retry), unless the caller's own deadline comes first. It exceeds
	// the default lease duration (6 s), so a lease expiring after a node
	// died does not by itself fail requests.
	DefaultRequestTimeout = 10 * time.Second
)

// KVOption configures NewKVServer.
type KVOption func(*kvServer)

// WithRequestTimeout sets how long each batch may take before the request
// fails with UNAVAILABLE (default DefaultRequestTimeout; <= 0 keeps it).
func WithRequestTimeout(d time.Duration) KVOption {
	return func(s *kvServer) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// kvServer serves meridian.v1.KV over a Sender. See doc comments on
// NewKVServer.
type kvServer struct {
	meridianv1.UnimplementedKVServer
	s       Sender
	timeout time.Duration
}

// NewKVServer returns the public KV service over s (the node's router).
//
// Client keys live in the user keyspace (keys.UserKey): no request can
// name a system, meta or local key. Get, Put, Delete and DeleteRange are
// one batch each (DeleteRange in chunks of deleteRangeChunk keys, not
// atomic across chunks or ranges); Scan streams pages all read at one
// timestamp. Txn and Session return UNIMPLEMENTED until transactions land.
// Every error goes through StatusError.
func NewKVServer(s Sender, opts ...KVOption) meridianv1.KVServer {
	k := &kvServer{s: s, timeout: DefaultRequestTimeout}
	for _, o := range opts {
		o(k)
	}
	return k
}

// send sends one batch, bounded by the request timeout. When the timeout
// (not the caller's ctx) ends it, the error is marked unavailable: the
// router retries only what is known not to have applied (an ambiguous
// write comes back as *api.AmbiguousResultError instead), so it is safe
// to retry.
func (k *kvServer) send(ctx context.Context, ba *api.BatchRequest) (*api.BatchResponse, error) {
	sctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	br, err := k.s.Send(sctx, ba)
	if err != nil {
		if ctx.Err() == nil && sctx.Err() != nil {
			return nil, &unavailableError{err: err}
		}
		return nil, err
	}
	if e := br.GetHeader().GetError(); e != nil {
		return nil, e.GoError()
	}
	if len(br.GetResponses()) != len(ba.GetRequests()) {
		return nil, fmt.Errorf("server: %d responses to a batch of %d requests", len(br.GetResponses()), len(ba.GetRequests()))
	}
	return br, nil
}

// invalid returns an INVALID_ARGUMENT status.
func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// checkBatch validates reqs (over the client's own keys, so the messages
// speak of the keys the client sent) with api's rules and limits.
func checkBatch(reqs ...api.Request) error {
	for _, r := range reqs {
		k, ek := r.KeySpan()
		if len(k) > api.MaxKeySize {
			return invalid("%s: key of %d bytes is over the %d-byte limit", r.Method(), len(k), api.MaxKeySize)
		}
		if len(ek) > api.MaxKeySize {
			return invalid("%s: end key of %d bytes is over the %d-byte limit", r.Method(), len(ek), api.MaxKeySize)
		}
	}
	ba := &api.BatchRequest{}
	ba.Add(reqs...)
	if err := ba.Validate(); err != nil {
		return StatusError(err)
	}
	return nil
}

// userSpan maps a client span into the user keyspace: an empty start is
// the first user key and an empty end the end of the user keyspace
// (unless endRequired). end must lie after start.
func userSpan(method string, start, end []byte, endRequired bool) ([]byte, []byte, error) {
	if len(end) == 0 && endRequired {
		return nil, nil, invalid("%s: end_key is required", method)
	}
	if len(end) > 0 && bytes.Compare(end, start) <= 0 {
		return nil, nil, invalid("%s: end_key %q is not after start_key %q", method, trunc(end), trunc(start))
	}
	s, e := keys.UserSpan(start, end)
	// Key size limits: api's, applied to the keys as they are sent.
	if err := checkBatch(&api.ScanRequest{Key: s, EndKey: e}); err != nil {
		return nil, nil, err
	}
	return s, e, nil
}

func trunc(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// readTimestamp converts a request's read timestamp (nil: the latest).
func readTimestamp(method string, ts *meridianv1.Timestamp) (hlc.Timestamp, error) {
	if ts == nil {
		return hlc.Timestamp{}, nil
	}
	if ts.GetWallTime() < 0 || ts.GetLogical() < 0 || (ts.GetWallTime() == 0 && ts.GetLogical() == 0) {
		return hlc.Timestamp{}, invalid("%s: invalid read_timestamp %d.%d", method, ts.GetWallTime(), ts.GetLogical())
	}
	return hlc.Timestamp{WallTime: ts.GetWallTime(), Logical: ts.GetLogical()}, nil
}

func publicTS(t *api.Timestamp) *meridianv1.Timestamp {
	if t == nil {
		return nil
	}
	return &meridianv1.Timestamp{WallTime: t.GetWallTime(), Logical: t.GetLogical()}
}

func fromHLC(t hlc.Timestamp) *meridianv1.Timestamp { return publicTS(api.NewTimestamp(t)) }

// writeTS is where a write landed: the response's own timestamp, else the
// batch's write timestamp.
func writeTS(own *api.Timestamp, br *api.BatchResponse) *meridianv1.Timestamp {
	if own != nil {
		return publicTS(own)
	}
	return publicTS(br.GetHeader().GetWriteTimestamp())
}

func (k *kvServer) Get(ctx context.Context, req *meridianv1.GetRequest) (*meridianv1.GetResponse, error) {
	if err := checkBatch(&api.GetRequest{Key: req.GetKey()}); err != nil {
		return nil, err
	}
	ts, err := readTimestamp("Get", req.GetReadTimestamp())
	if err != nil {
		return nil, err
	}
	// A read as of a client's timestamp is historical: no uncertainty.
	ba := &api.BatchRequest{Header: &api.BatchHeader{Timestamp: api.NewTimestamp(ts), Historical: !ts.IsEmpty()}}
	ba.Add(&api.GetRequest{Key: keys.UserKey(req.GetKey())})
	br, err := k.send(ctx, ba)
	if err != nil {
		return nil, StatusError(err)
	}
	resp := &meridianv1.GetResponse{ReadTimestamp: publicTS(br.GetHeader().GetTimestamp())}
	if v := br.GetResponses()[0].GetGet().GetValue(); v != nil {
		resp.Found = true
		resp.Value = v.GetRawBytes()
		resp.ValueTimestamp = publicTS(v.GetTimestamp())
	}
	return resp, nil
}

func (k *kvServer) Put(ctx context.Context, req *meridianv1.PutRequest) (*meridianv1.PutResponse, error) {
	if err := checkBatch(&api.PutRequest{Key: req.GetKey(), Value: req.GetValue()}); err != nil {
		return nil, err
	}
	ba := &api.BatchRequest{Header: &api.BatchHeader{}}
	ba.Add(&api.PutRequest{Key: keys.UserKey(req.GetKey()), Value: req.GetValue()})
	br, err := k.send(ctx, ba)
	if err != nil {
		return nil, StatusError(err)
	}
	return &meridianv1.PutResponse{WriteTimestamp: writeTS(br.GetResponses()[0].GetPut().GetTimestamp(), br)}, nil
}

func (k *kvServer) Delete(ctx context.Context, req *meridianv1.DeleteRequest) (*meridianv1.DeleteResponse, error) {
	if err := checkBatch(&api.DeleteRequest{Key: req.GetKey()}); err != nil {
		return nil, err
	}
	ba := &api.BatchRequest{Header: &api.BatchHeader{}}
	ba.Add(&api.DeleteRequest{Key: keys.UserKey(req.GetKey())})
	br, err := k.send(ctx, ba)
	if err != nil {
		return nil, StatusError(err)
	}
	return &meridianv1.DeleteResponse{WriteTimestamp: writeTS(br.GetResponses()[0].GetDelete().GetTimestamp(), br)}, nil
}

// DeleteRange deletes the span in chunks of deleteRangeChunk keys, each its
// own batch (the router sends a limited batch range by range); the
// response counts every key deleted and carries the highest write
// timestamp. On error, the chunks before it stay deleted (kv.proto says
// so).
func (k *kvServer) DeleteRange(ctx context.Context, req *meridianv1.DeleteRangeRequest) (*meridianv1.DeleteRangeResponse, error) {
	start, end, err := userSpan("DeleteRange", req.GetStartKey(), req.GetEndKey(), true)
	if err != nil {
		return nil, err
	}
	var deleted int64
	var wts hlc.Timestamp
	span := &api.Span{Key: start, EndKey: end}
	for span != nil {
		ba := &api.BatchRequest{Header: &api.BatchHeader{MaxSpanRequestKeys: deleteRangeChunk}}
		ba.Add(&api.DeleteRangeRequest{Key: span.GetKey(), EndKey: span.GetEndKey()})
		br, err := k.send(ctx, ba)
		if err != nil {
			return nil, StatusError(err)
		}
		dr := br.GetResponses()[0].GetDeleteRange()
		deleted += dr.GetNumKeys()
		t := dr.GetTimestamp()
		if t == nil {
			t = br.GetHeader().GetWriteTimestamp()
		}
		wts = wts.Forward(t.ToHLC())
		next := dr.GetResumeSpan()
		if next != nil && dr.GetNumKeys() == 0 && bytes.Equal(next.GetKey(), span.GetKey()) {
			return nil, StatusError(fmt.Errorf("server: DeleteRange made no progress at %s", keys.Pretty(span.GetKey())))
		}
		span = next
	}
	return &meridianv1.DeleteRangeResponse{Deleted: deleted, WriteTimestamp: fromHLC(wts)}, nil
}

// Scan streams the span's rows in pages of at most page_size rows (and
// about scanPageBytes bytes), every page read at one timestamp: the
// request's read_timestamp, or else a timestamp taken from the clock of
// the leaseholder of the span's first key (a one-key read) before the
// first page. The router then reads every range at that timestamp, with
// the uncertainty window (ts, ts+ε] the leaseholders apply: a value found
// in it during the first page (nothing sent yet) moves the scan's
// timestamp up to that value's and starts over, at most maxScanRestarts
// times; later, the error goes to the client (ABORTED: retry the scan).
// At least one message is sent, so an empty scan still reports its read
// timestamp.
func (k *kvServer) Scan(req *meridianv1.ScanRequest, stream meridianv1.KV_ScanServer) error {
	ctx := stream.Context()
	start, end, err := userSpan("Scan", req.GetStartKey(), req.GetEndKey(), false)
	if err != nil {
		return err
	}
	if req.GetLimit() < 0 {
		return invalid("Scan: negative limit %d", req.GetLimit())
	}
	if req.GetPageSize() < 0 {
		return invalid("Scan: negative page_size %d", req.GetPageSize())
	}
	ts, err := readTimestamp("Scan", req.GetReadTimestamp())
	if err != nil {
		return err
	}
	pinned := !ts.IsEmpty()
	if !pinned {
		if ts, err = k.now(ctx, start); err != nil {
			return StatusError(err)
		}
	}
	pageSize := int64(req.GetPageSize())
	if pageSize == 0 {
		pageSize = DefaultScanPageSize
	}
	limit, reverse := req.GetLimit(), req.GetReverse()
	var sent, pages int64
	restarts := 0
	span := &api.Span{Key: start, EndKey: end}
	for {
		n := pageSize
		if limit > 0 {
			n = min(n, limit-sent)
		}
		ba := &api.BatchRequest{Header: &api.BatchHeader{
			Timestamp: api.NewTimestamp(ts), MaxSpanRequestKeys: n, TargetBytes: scanPageBytes,
			Historical: pinned,
		}}
		if reverse {
			ba.Add(&api.ReverseScanRequest{Key: span.GetKey(), EndKey: span.GetEndKey()})
		} else {
			ba.Add(&api.ScanRequest{Key: span.GetKey(), EndKey: span.GetEndKey()})
		}
		br, err := k.send(ctx, ba)
		if err != nil {
			var unc *api.ReadWithinUncertaintyError
			if !pinned && pages == 0 && restarts < maxScanRestarts && errors.As(err, &unc) {
				restarts++
				ts = ts.Forward(unc.GetValueTimestamp().ToHLC())
				continue // nothing sent yet: start over above the value
			}
			return StatusError(err)
		}
		var rows []*api.KeyValue
		var resume *api.Span
		if reverse {
			r := br.GetResponses()[0].GetReverseScan()
			rows, resume = r.GetRows(), r.GetResumeSpan()
		} else {
			r := br.GetResponses()[0].GetScan()
			rows, resume = r.GetRows(), r.GetResumeSpan()
		}
		page := &meridianv1.ScanResponse{ReadTimestamp: fromHLC(ts), Rows: make([]*meridianv1.KeyValue, 0, len(rows))}
		for _, kv := range rows {
			uk, err := keys.DecodeUserKey(kv.GetKey())
			if err != nil {
				return StatusError(fmt.Errorf("server: scan of the user keyspace returned %w", err))
			}
			page.Rows = append(page.Rows, &meridianv1.KeyValue{
				Key: uk, Value: kv.GetValue().GetRawBytes(), Timestamp: publicTS(kv.GetValue().GetTimestamp()),
			})
		}
		sent += int64(len(rows))
		done := resume == nil || (limit > 0 && sent >= limit)
		if len(rows) > 0 || (done && pages == 0) {
			if err := stream.Send(page); err != nil {
				return err
			}
			pages++
		}
		if done {
			return nil
		}
		if len(rows) == 0 && bytes.Equal(resume.GetKey(), span.GetKey()) && bytes.Equal(resume.GetEndKey(), span.GetEndKey()) {
			return StatusError(fmt.Errorf("server: scan made no progress at [%s, %s)", keys.Pretty(span.GetKey()), keys.Pretty(span.GetEndKey())))
		}
		span = resume
	}
}

// now returns a timestamp from the clock of the leaseholder of key's range:
// the timestamp of a one-key read without one.
func (k *kvServer) now(ctx context.Context, key []byte) (hlc.Timestamp, error) {
	ba := &api.BatchRequest{Header: &api.BatchHeader{}}
	ba.Add(&api.GetRequest{Key: key})
	br, err := k.send(ctx, ba)
	if err != nil {
		return hlc.Timestamp{}, err
	}
	ts := br.GetHeader().GetTimestamp().ToHLC()
	if ts.IsEmpty() {
		return hlc.Timestamp{}, errors.New("server: a read without a timestamp came back without one")
	}
	return ts, nil
}

// errNoTxn is the answer of Txn and Session until transactions land.
var errNoTxn = status.Error(codes.Unimplemented, "transactions are not available yet: Txn and Session arrive with the transactions work")

func (k *kvServer) Txn(context.Context, *meridianv1.TxnRequest) (*meridianv1.TxnResponse, error) {
	return nil, errNoTxn
}

func (k *kvServer) Session(meridianv1.KV_SessionServer) error { return errNoTxn }
