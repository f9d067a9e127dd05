package client

import (
	"bytes"
	"sort"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
)

// merger assembles the caller's response from the parts' responses.
type merger struct {
	now, ts, wts hlc.Timestamp
	pushed       bool
	// partials[i] holds request i's responses, one per range it touched.
	partials [][]partial
	// resume[i] is request i's resume span (limited sends only).
	resume []*api.Span
}

type partial struct {
	start []byte // the start key of the piece of the request answered
	resp  *api.ResponseUnion
}

func newMerger(n int) *merger {
	return &merger{partials: make([][]partial, n), resume: make([]*api.Span, n)}
}

// addPart records a part's response (its responses are in the part's item
// order).
func (m *merger) addPart(p part, resp *api.BatchResponse) {
	h := resp.GetHeader()
	m.now = m.now.Forward(h.GetNow().ToHLC())
	m.ts = m.ts.Forward(h.GetTimestamp().ToHLC())
	m.wts = m.wts.Forward(h.GetWriteTimestamp().ToHLC())
	m.pushed = m.pushed || h.GetTimestampPushed()
	for i, it := range p.items {
		// Pieces of one span request are ordered by their own start key:
		// after a merge, two pieces may come back from one range.
		start, _ := it.req.Inner().KeySpan()
		m.partials[it.idx] = append(m.partials[it.idx], partial{start: start, resp: resp.GetResponses()[i]})
	}
}

// build returns the merged response: point requests' responses as they
// came; scans' rows concatenated in key order (descending for
// ReverseScan); DeleteRange counts summed; the header's timestamps are the
// maxima over the parts.
func (m *merger) build(ba *api.BatchRequest) *api.BatchResponse {
	out := &api.BatchResponse{
		Header: &api.BatchResponseHeader{
			Now:             api.NewTimestamp(m.now),
			Timestamp:       api.NewTimestamp(m.ts),
			WriteTimestamp:  api.NewTimestamp(m.wts),
			TimestampPushed: m.pushed,
		},
		Responses: make([]*api.ResponseUnion, len(ba.GetRequests())),
	}
	for i, u := range ba.GetRequests() {
		ps := m.partials[i]
		switch u.Inner().Method() {
		case api.MethodScan:
			sort.Slice(ps, func(a, b int) bool { return bytes.Compare(ps[a].start, ps[b].start) < 0 })
			sr := &api.ScanResponse{ResumeSpan: m.resume[i]}
			for _, p := range ps {
				sr.Rows = append(sr.Rows, p.resp.GetScan().GetRows()...)
			}
			out.Responses[i] = api.WrapResponse(sr)
		case api.MethodReverseScan:
			sort.Slice(ps, func(a, b int) bool { return bytes.Compare(ps[a].start, ps[b].start) > 0 })
			sr := &api.ReverseScanResponse{ResumeSpan: m.resume[i]}
			for _, p := range ps {
				sr.Rows = append(sr.Rows, p.resp.GetReverseScan().GetRows()...)
			}
			out.Responses[i] = api.WrapResponse(sr)
		case api.MethodDeleteRange:
			dr := &api.DeleteRangeResponse{ResumeSpan: m.resume[i]}
			var ts hlc.Timestamp
			for _, p := range ps {
				d := p.resp.GetDeleteRange()
				dr.NumKeys += d.GetNumKeys()
				ts = ts.Forward(d.GetTimestamp().ToHLC())
			}
			dr.Timestamp = api.NewTimestamp(ts)
			out.Responses[i] = api.WrapResponse(dr)
		default:
			if len(ps) > 0 {
				out.Responses[i] = ps[0].resp
			} else {
				out.Responses[i] = &api.ResponseUnion{}
			}
		}
	}
	return out
}
