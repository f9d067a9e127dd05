package ranges

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/mvcc"
	"github.com/meridiandb/meridian/ranges/concurrency"
)

// maxWriteTooOldRetries bounds how often a non-transactional write batch is
// re-evaluated above a newer version before the error goes to the client.
const maxWriteTooOldRetries = 5

// Send evaluates a batch on this replica, which must hold the lease:
//
//  1. the batch's keys must lie in the range (else RangeKeyMismatch with the
//     current descriptor);
//  2. the lease must be ours and valid at now+ε (acquired if the range has
//     none and we lead Raft), else NotLeaseholder;
//  3. latches over every span, held until the writes applied;
//  4. reads evaluate directly against the engine (never through Raft) and
//     are recorded in the timestamp cache;
//  5. writes move above the timestamp cache (and above any newer version),
//     evaluate into a batch, and are proposed with the lease sequence; the
//     reply waits until the command applied here.
func (r *Replica) Send(ctx context.Context, ba *api.BatchRequest) (br *api.BatchResponse, err error) {
	ctx, span := r.store.tracer.Start(ctx, "ranges.Send", trace.WithAttributes(
		attribute.Int64("meridian.range_id", int64(r.rangeID)),
		attribute.Int("meridian.requests", len(ba.GetRequests())),
		attribute.Bool("meridian.read_only", ba.IsReadOnly()),
	))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	r.mu.RLock()
	removed := r.mu.removed
	r.mu.RUnlock()
	desc := r.Desc()
	if len(desc.GetEndKey()) == 0 || removed {
		// Uninitialised: waiting for its first snapshot.
		return nil, &api.RangeNotFoundError{RangeId: uint64(r.rangeID)}
	}
	for _, ru := range ba.GetRequests() {
		k, ek := ru.Inner().KeySpan()
		if !desc.ContainsSpan(k, ek) {
			return nil, &api.RangeKeyMismatchError{RequestedStartKey: k, RequestedEndKey: ek, Ranges: r.store.descriptorsFor(desc, k)}
		}
	}
	h := ba.GetHeader()
	reqTS := h.GetTimestamp().ToHLC()
	lease, err := r.ensureLease(ctx, reqTS)
	if err != nil {
		return nil, err
	}
	now := r.store.cfg.Clock.Now()
	ts, limit := reqTS, reqTS
	if ts.IsEmpty() {
		// The leaseholder's own clock: nothing on this range was written
		// above it, so there is nothing to be uncertain about.
		ts, limit = now, now
	} else if !h.GetHistorical() {
		// A timestamp from another clock: values up to ε above it may have
		// been written before the request in real time. (A historical read
		// promises only what was committed at its timestamp.)
		limit = ts.AddNanos(int64(r.store.cfg.Clock.MaxOffset()))
	}

	r.mu.RLock()
	gcT := r.mu.state.gcThreshold
	r.mu.RUnlock()
	if !gcT.IsEmpty() && ts.LessEq(gcT) {
		return nil, &api.InvalidRequestError{Index: -1, Message: fmt.Sprintf("batch timestamp %s is at or below the range's GC threshold %s: older versions may be gone", ts, gcT)}
	}

	readOnly := ba.IsReadOnly()
	var spans concurrency.SpanSet
	for _, ru := range ba.GetRequests() {
		req := ru.Inner()
		k, ek := req.KeySpan()
		if req.Method().IsWrite() {
			spans.AddWrite(k, ek, ts)
		} else {
			spans.AddRead(k, ek, limit)
		}
	}
	g, err := r.latches.Acquire(ctx, &spans)
	if err != nil {
		return nil, err
	}
	defer r.latches.Release(g)
	// The lease may have moved, and the range may have split, while we
	// waited: a split holds latches over the whole range until it applied,
	// so after the wait the descriptor is current. Evaluating against the
	// old span would write keys the right-hand range now owns.
	if cur := r.Lease(); cur.GetSequence() != lease.GetSequence() || !r.leaseValid(cur, r.store.cfg.Clock.Now().Forward(ts)) {
		return nil, r.notLeaseholder(cur)
	}
	if cur := r.Desc(); cur.GetGeneration() != desc.GetGeneration() {
		for _, ru := range ba.GetRequests() {
			k, ek := ru.Inner().KeySpan()
			if !cur.ContainsSpan(k, ek) {
				return nil, &api.RangeKeyMismatchError{RequestedStartKey: k, RequestedEndKey: ek, Ranges: r.store.descriptorsFor(cur, k)}
			}
		}
	}
	if readOnly {
		resps, err := r.evaluate(r.store.engine.DB(), nil, ba, ts, limit)
		if err != nil {
			return nil, err
		}
		r.recordReads(ba, ts)
		return &api.BatchResponse{
			Header:    &api.BatchResponseHeader{Now: api.NewTimestamp(r.store.cfg.Clock.Now()), Timestamp: api.NewTimestamp(ts)},
			Responses: resps,
		}, nil
	}

	wts, pushed := ts, false
	for _, ru := range ba.GetRequests() {
		k, ek := ru.Inner().KeySpan()
		if m := r.tsc.GetMax(k, ek); wts.LessEq(m) {
			wts, pushed = m.Next(), true
		}
	}
	var resps []*api.ResponseUnion
	for attempt := 0; ; attempt++ {
		b := r.store.engine.NewBatch()
		var delta mvcc.Stats
		resps, err = r.evaluate(b, &delta, ba, wts, wts)
		var wto *api.WriteTooOldError
		if errors.As(err, &wto) && attempt < maxWriteTooOldRetries {
			b.Close()
			wts, pushed = wts.Forward(wto.GetActualTimestamp().ToHLC()), true
			continue
		}
		if err != nil {
			b.Close()
			return nil, err
		}
		repr := append([]byte(nil), b.Repr()...)
		b.Close()
		if _, err := r.propose(ctx, &api.ReplicatedCommand{LeaseSequence: lease.GetSequence(), WriteBatch: repr, StatsDelta: delta.ToProto()}); err != nil {
			return nil, err
		}
		break
	}
	r.recordReads(ba, wts)
	return &api.BatchResponse{
		Header: &api.BatchResponseHeader{
			Now: api.NewTimestamp(r.store.cfg.Clock.Now()), Timestamp: api.NewTimestamp(wts),
			WriteTimestamp: api.NewTimestamp(wts), TimestampPushed: pushed,
		},
		Responses: resps,
	}, nil
}

// recordReads remembers the batch's reads in the timestamp cache.
func (r *Replica) recordReads(ba *api.BatchRequest, ts hlc.Timestamp) {
	for _, ru := range ba.GetRequests() {
		req := ru.Inner()
		if m := req.Method(); !m.IsWrite() || m == api.MethodConditionalPut || m == api.MethodIncrement {
			k, ek := req.KeySpan()
			r.tsc.Add(k, ek, ts, [16]byte{})
		}
	}
}

// evaluate runs the batch's requests in order against rw (a batch for
// writes, the engine for reads) at ts; writes add their stats to delta.
func (r *Replica) evaluate(rw mvcc.ReadWriter, delta *mvcc.Stats, ba *api.BatchRequest, ts, limit hlc.Timestamp) ([]*api.ResponseUnion, error) {
	h := ba.GetHeader()
	keysLeft := h.GetMaxSpanRequestKeys()
	if keysLeft == 0 {
		keysLeft = -1
	}
	bytesLeft := h.GetTargetBytes()
	ro := mvcc.ReadOptions{UncertaintyLimit: limit}
	out := make([]*api.ResponseUnion, 0, len(ba.GetRequests()))
	for _, ru := range ba.GetRequests() {
		var resp api.Response
		switch req := ru.Inner().(type) {
		case *api.GetRequest:
			v, ok, err := mvcc.Get(rw, req.GetKey(), ts, ro)
			if err != nil {
				return nil, err
			}
			gr := &api.GetResponse{}
			if ok {
				gr.Value = &api.Value{RawBytes: v.RawBytes, Timestamp: api.NewTimestamp(v.Timestamp)}
			}
			resp = gr
		case *api.PutRequest:
			if err := mvcc.Put(rw, delta, req.GetKey(), ts, req.GetValue(), nil); err != nil {
				return nil, err
			}
			resp = &api.PutResponse{Timestamp: api.NewTimestamp(ts)}
		case *api.ConditionalPutRequest:
			v, ok, err := mvcc.Get(rw, req.GetKey(), ts, mvcc.ReadOptions{})
			if err != nil {
				return nil, err
			}
			if ok == req.GetExpectAbsent() || (ok && !bytes.Equal(v.RawBytes, req.GetExpectedValue())) {
				cf := &api.ConditionFailedError{Key: req.GetKey()}
				if ok {
					cf.ActualValue = &api.Value{RawBytes: v.RawBytes, Timestamp: api.NewTimestamp(v.Timestamp)}
				}
				return nil, cf
			}
			if err := mvcc.Put(rw, delta, req.GetKey(), ts, req.GetValue(), nil); err != nil {
				return nil, err
			}
			resp = &api.ConditionalPutResponse{Timestamp: api.NewTimestamp(ts)}
		case *api.IncrementRequest:
			v, ok, err := mvcc.Get(rw, req.GetKey(), ts, mvcc.ReadOptions{})
			if err != nil {
				return nil, err
			}
			var n int64
			if ok {
				if n, err = api.DecodeCounter(v.RawBytes); err != nil {
					return nil, &api.InvalidRequestError{Index: -1, Message: err.Error()}
				}
			}
			if n, err = api.AddCounter(n, req.GetIncrement()); err != nil {
				return nil, &api.InvalidRequestError{Index: -1, Message: err.Error()}
			}
			if err := mvcc.Put(rw, delta, req.GetKey(), ts, api.EncodeCounter(n), nil); err != nil {
				return nil, err
			}
			resp = &api.IncrementResponse{NewValue: n, Timestamp: api.NewTimestamp(ts)}
		case *api.DeleteRequest:
			if err := mvcc.Delete(rw, delta, req.GetKey(), ts, nil); err != nil {
				return nil, err
			}
			resp = &api.DeleteResponse{Timestamp: api.NewTimestamp(ts)}
		case *api.DeleteRangeRequest:
			dr := &api.DeleteRangeResponse{Timestamp: api.NewTimestamp(ts)}
			if keysLeft == 0 {
				dr.ResumeSpan = &api.Span{Key: req.GetKey(), EndKey: req.GetEndKey()}
			} else {
				deleted, resume, err := mvcc.DeleteRange(rw, delta, req.GetKey(), req.GetEndKey(), ts, mvcc.DeleteRangeOptions{MaxKeys: max(keysLeft, 0)})
				if err != nil {
					return nil, err
				}
				dr.NumKeys = int64(len(deleted))
				if keysLeft > 0 {
					keysLeft -= dr.NumKeys
				}
				if resume != nil {
					dr.ResumeSpan = &api.Span{Key: resume, EndKey: req.GetEndKey()}
				}
			}
			resp = dr
		case *api.ScanRequest, *api.ReverseScanRequest:
			k, ek := req.KeySpan()
			reverse := false
			if _, ok := req.(*api.ReverseScanRequest); ok {
				reverse = true
			}
			var rows []*api.KeyValue
			var resumeSpan *api.Span
			if keysLeft == 0 || (h.GetTargetBytes() > 0 && bytesLeft <= 0) {
				resumeSpan = &api.Span{Key: k, EndKey: ek}
			} else {
				o := ro
				o.MaxKeys = max(keysLeft, 0)
				if h.GetTargetBytes() > 0 {
					o.TargetBytes = bytesLeft
				}
				res, err := mvcc.Scan(rw, k, ek, ts, o, reverse)
				if err != nil {
					return nil, err
				}
				for _, kv := range res.KVs {
					rows = append(rows, &api.KeyValue{Key: kv.Key, Value: &api.Value{RawBytes: kv.Value.RawBytes, Timestamp: api.NewTimestamp(kv.Value.Timestamp)}})
				}
				if keysLeft > 0 {
					keysLeft -= int64(len(res.KVs))
				}
				bytesLeft -= res.NumBytes
				if res.ResumeKey != nil {
					if reverse {
						resumeSpan = &api.Span{Key: k, EndKey: res.ResumeKey}
					} else {
						resumeSpan = &api.Span{Key: res.ResumeKey, EndKey: ek}
					}
				}
			}
			if reverse {
				resp = &api.ReverseScanResponse{Rows: rows, ResumeSpan: resumeSpan}
			} else {
				resp = &api.ScanResponse{Rows: rows, ResumeSpan: resumeSpan}
			}
		default:
			return nil, &api.InvalidRequestError{Index: -1, Message: "unsupported request"}
		}
		out = append(out, api.WrapResponse(resp))
	}
	return out, nil
}
