package client

import (
	"bytes"
	"context"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/keys"
)

// sendLimited sends a batch with max_span_request_keys or target_bytes:
// range by range in key order (descending when the batch has a
// ReverseScan), each part carrying what is left of the limits. Once a
// limit is reached, every span request gets a resume span covering what
// it has not yet read or deleted, and later ranges receive only the
// batch's point requests (which have no resume spans and always run).
func (r *Router) sendLimited(ctx context.Context, ba *api.BatchRequest) (*api.BatchResponse, error) {
	h := ba.GetHeader()
	reqs := ba.GetRequests()
	reverse, forwardSpans := false, false
	var lo, hi []byte
	for i, u := range reqs {
		req := u.Inner()
		switch req.Method() {
		case api.MethodReverseScan:
			reverse = true
		case api.MethodScan, api.MethodDeleteRange:
			forwardSpans = true
		}
		k, end := req.KeySpan()
		if end == nil {
			end = keys.Next(k)
		}
		if i == 0 || bytes.Compare(k, lo) < 0 {
			lo = k
		}
		if i == 0 || bytes.Compare(end, hi) > 0 {
			hi = end
		}
	}
	if reverse && forwardSpans {
		return nil, &api.InvalidRequestError{Index: -1, Message: "a batch with limits cannot mix ReverseScan with Scan or DeleteRange"}
	}

	maxKeys, targetBytes := h.GetMaxSpanRequestKeys(), h.GetTargetBytes()
	remKeys, remBytes := maxKeys, targetBytes
	limitHit, resumeSet := false, false
	m := newMerger(len(reqs))
	b := r.newBackoff()
	immediate := 0
	cursor := lo
	if reverse {
		cursor = hi
	}
	for {
		if (!reverse && bytes.Compare(cursor, hi) >= 0) || (reverse && bytes.Compare(cursor, lo) <= 0) {
			break
		}
		if limitHit && !pointsBeyond(reqs, cursor, reverse) {
			break
		}
		e, err := r.lookup(ctx, cursor, reverse)
		if err != nil {
			return nil, err
		}
		d := e.Desc
		// This step covers [cursor, end) going forward and [start, cursor)
		// in reverse: the cursor bounds it, not the descriptor, so no key
		// is visited twice even if the cache changed since the last step.
		lo, hi := cursor, d.GetEndKey()
		if reverse {
			lo, hi = d.GetStartKey(), cursor
		}
		p := part{entry: e}
		for i, u := range reqs {
			if _, end := u.Inner().KeySpan(); end != nil && limitHit {
				continue
			}
			if sub, ok := restrict(u, lo, hi); ok {
				p.items = append(p.items, item{idx: i, req: sub})
			}
		}
		if len(p.items) > 0 {
			var partKeys, partBytes int64
			if !limitHit {
				partKeys, partBytes = remKeys, remBytes
			}
			resp, learned, err := r.sendPart(ctx, ba, p, partKeys, partBytes)
			if err != nil {
				if !isRetryable(err) {
					return nil, err
				}
				if ctx.Err() != nil {
					return nil, giveUp(ctx, err)
				}
				if learned && immediate < maxImmediateRetries {
					immediate++
				} else if werr := b.wait(ctx, err); werr != nil {
					return nil, werr
				}
				continue // re-resolve the same cursor
			}
			b, immediate = r.newBackoff(), 0
			m.addPart(p, resp)
			for j, it := range p.items {
				n, nb, rs := spanProgress(resp.GetResponses()[j])
				if maxKeys > 0 {
					remKeys -= n
				}
				if targetBytes > 0 {
					remBytes -= nb
				}
				if rs != nil {
					limitHit = true
					k, end := reqs[it.idx].Inner().KeySpan()
					if reverse {
						m.resume[it.idx] = &api.Span{Key: k, EndKey: rs.GetEndKey()}
					} else {
						m.resume[it.idx] = &api.Span{Key: rs.GetKey(), EndKey: end}
					}
				}
			}
			if (maxKeys > 0 && remKeys <= 0) || (targetBytes > 0 && remBytes <= 0) {
				limitHit = true
			}
		}
		boundary := hi
		if reverse {
			boundary = lo
		}
		if limitHit && !resumeSet {
			resumeSet = true
			setResumeBeyond(m, reqs, boundary, reverse)
		}
		cursor = boundary
	}
	return m.build(ba), nil
}

// spanProgress returns how many keys and bytes a span response consumed of
// the batch's limits, and its resume span.
func spanProgress(u *api.ResponseUnion) (n, nbytes int64, resume *api.Span) {
	switch v := u.Inner().(type) {
	case *api.ScanResponse:
		for _, kv := range v.GetRows() {
			nbytes += int64(len(kv.GetKey()) + len(kv.GetValue().GetRawBytes()))
		}
		return int64(len(v.GetRows())), nbytes, v.GetResumeSpan()
	case *api.ReverseScanResponse:
		for _, kv := range v.GetRows() {
			nbytes += int64(len(kv.GetKey()) + len(kv.GetValue().GetRawBytes()))
		}
		return int64(len(v.GetRows())), nbytes, v.GetResumeSpan()
	case *api.DeleteRangeResponse:
		return v.GetNumKeys(), 0, v.GetResumeSpan()
	}
	return 0, 0, nil
}

// setResumeBeyond gives every span request without a resume span the part
// of its span beyond boundary (above it going forward, below it in
// reverse), if any.
func setResumeBeyond(m *merger, reqs []*api.RequestUnion, boundary []byte, reverse bool) {
	for i, u := range reqs {
		k, end := u.Inner().KeySpan()
		if end == nil || m.resume[i] != nil {
			continue
		}
		if !reverse && bytes.Compare(end, boundary) > 0 {
			if bytes.Compare(k, boundary) < 0 {
				k = boundary
			}
			m.resume[i] = &api.Span{Key: k, EndKey: end}
		}
		if reverse && bytes.Compare(k, boundary) < 0 {
			if bytes.Compare(end, boundary) > 0 {
				end = boundary
			}
			m.resume[i] = &api.Span{Key: k, EndKey: end}
		}
	}
}

// pointsBeyond reports whether a point request's key is still ahead of the
// cursor.
func pointsBeyond(reqs []*api.RequestUnion, cursor []byte, reverse bool) bool {
	for _, u := range reqs {
		k, end := u.Inner().KeySpan()
		if end != nil {
			continue
		}
		if (!reverse && bytes.Compare(k, cursor) >= 0) || (reverse && bytes.Compare(k, cursor) < 0) {
			return true
		}
	}
	return false
}
