package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/keys"
)

// Dialer connects to a node's Internal service. The server maps node IDs
// to addresses and pools connections; tests use in-memory fakes. Dial must
// be cheap when a connection already exists: the router calls it for
// every attempt.
type Dialer interface {
	Dial(ctx context.Context, nodeID uint64) (api.InternalClient, error)
}

// RouterConfig configures a Router.
type RouterConfig struct {
	// Dialer reaches nodes; required.
	Dialer Dialer
	// SeedNodes are tried, in turn, for range 1 (meta) until its
	// descriptor is cached.
	SeedNodes []uint64
	// SeedNodesFunc, if set, replaces SeedNodes with a list read at each
	// use (a server learns its peers as it runs).
	SeedNodesFunc func() []uint64
	// Logger receives routing events at debug level; nil discards them.
	Logger *slog.Logger
	// GatewayNodeID is stamped on batches whose header has none; 0 for a
	// client outside the cluster.
	GatewayNodeID uint64
	// InitialBackoff is the first wait between retries (default 2ms);
	// each further wait doubles, up to MaxBackoff (default 1s).
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// MetaPrefetch is how many descriptors one meta lookup reads (the
	// wanted one and the ones after it); default 8.
	MetaPrefetch int
}

// Router sends batches to the ranges that hold their keys. See doc.go.
type Router struct {
	cfg     RouterConfig
	log     *slog.Logger
	cache   *RangeCache
	seedDsc *api.RangeDescriptor

	metaLookups atomic.Int64
}

// NewRouter returns a router with an empty range cache.
func NewRouter(cfg RouterConfig) *Router {
	if cfg.InitialBackoff <= 0 {
		cfg.InitialBackoff = 2 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.InitialBackoff {
		cfg.MaxBackoff = cfg.InitialBackoff
	}
	if cfg.MetaPrefetch <= 0 {
		cfg.MetaPrefetch = 8
	}
	r := &Router{cfg: cfg, log: cfg.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	// Until range 1's descriptor is known, its "replicas" are the seeds:
	// node IDs only.
	r.seedDsc = &api.RangeDescriptor{RangeId: 1, StartKey: keys.MetaMin, EndKey: keys.UserSpanStart}
	for _, n := range cfg.SeedNodes {
		r.seedDsc.Replicas = append(r.seedDsc.Replicas, &api.ReplicaDescriptor{NodeId: n})
	}
	r.cache = NewRangeCache(r.metaLookup)
	return r
}

// seedDesc is range 1's stand-in descriptor until the real one is cached:
// its "replicas" are the seed nodes (node IDs only).
func (r *Router) seedDesc() *api.RangeDescriptor {
	if r.cfg.SeedNodesFunc == nil {
		return r.seedDsc
	}
	d := &api.RangeDescriptor{RangeId: 1, StartKey: keys.MetaMin, EndKey: keys.UserSpanStart}
	for _, n := range r.cfg.SeedNodesFunc() {
		d.Replicas = append(d.Replicas, &api.ReplicaDescriptor{NodeId: n})
	}
	return d
}

// Cache returns the router's range cache.
func (r *Router) Cache() *RangeCache { return r.cache }

// MetaLookups returns how many meta reads the router has sent.
func (r *Router) MetaLookups() int64 { return r.metaLookups.Load() }

// retryableError marks a failure after which the router re-resolves the
// range and tries again (after a backoff).
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// sendError says no replica of a range served a batch (all unreachable,
// not the leaseholder without a usable hint, or without the range).
type sendError struct {
	rangeID uint64
	last    error
}

func (e *sendError) Error() string {
	return fmt.Sprintf("client: no replica of range %d served the batch: %v", e.rangeID, e.last)
}
func (e *sendError) Unwrap() error { return e.last }

// isRetryable reports whether err is a routing failure: re-resolve and try
// again.
func isRetryable(err error) bool {
	var (
		re  *retryableError
		se  *sendError
		rnf *api.RangeNotFoundError
		rkm *api.RangeKeyMismatchError
		nlh *api.NotLeaseholderError
	)
	return errors.As(err, &re) || errors.As(err, &se) || errors.As(err, &rnf) ||
		errors.As(err, &rkm) || errors.As(err, &nlh)
}

// maxImmediateRetries bounds the retries without a backoff after errors
// that corrected the cache (RangeKeyMismatch with descriptors), so a
// replica and meta that keep disagreeing cannot make the router spin.
const maxImmediateRetries = 3

// backoff is an exponential, jittered retry delay.
type backoff struct {
	cur, max time.Duration
}

func (r *Router) newBackoff() backoff {
	return backoff{cur: r.cfg.InitialBackoff, max: r.cfg.MaxBackoff}
}

// wait sleeps for the next delay, or returns ctx's error (joined with the
// last failure) when ctx ends first.
func (b *backoff) wait(ctx context.Context, last error) error {
	d := b.cur/2 + rand.N(b.cur/2+1)
	b.cur = min(2*b.cur, b.max)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return giveUp(ctx, last)
	}
}

func giveUp(ctx context.Context, last error) error {
	if errors.Is(last, ctx.Err()) {
		return last
	}
	if last == nil {
		return fmt.Errorf("client: %w", ctx.Err())
	}
	return fmt.Errorf("client: %w (last error: %w)", ctx.Err(), last)
}

// lookup resolves the range holding key (reverse: start < key <= end),
// retrying meta reads with backoff within ctx.
func (r *Router) lookup(ctx context.Context, key []byte, reverse bool) (CacheEntry, error) {
	b := r.newBackoff()
	for {
		e, err := r.cache.Lookup(ctx, key, reverse)
		if err == nil {
			return e, nil
		}
		if ctx.Err() != nil {
			return CacheEntry{}, giveUp(ctx, err)
		}
		if !isRetryable(err) {
			return CacheEntry{}, err
		}
		r.log.Debug("client: meta lookup failed; retrying", "key", keys.Pretty(key), "err", err)
		if werr := b.wait(ctx, err); werr != nil {
			return CacheEntry{}, werr
		}
	}
}

// metaLookup is the cache's LookupFunc: one scan of meta on range 1.
func (r *Router) metaLookup(ctx context.Context, key []byte, reverse bool) ([]*api.RangeDescriptor, error) {
	start := keys.MetaKey(key)
	if !reverse {
		start = keys.MetaKey(keys.Next(key))
	}
	ba := &api.BatchRequest{Header: &api.BatchHeader{
		RangeId:            1,
		MaxSpanRequestKeys: int64(r.cfg.MetaPrefetch),
		GatewayNodeId:      r.cfg.GatewayNodeID,
	}}
	ba.Add(&api.ScanRequest{Key: start, EndKey: keys.MetaMax})

	e, ok := r.cache.Get(keys.MetaMin, false)
	if ok && e.Desc.GetRangeId() != 1 {
		return nil, fmt.Errorf("client: the range holding meta is r%d, not r1", e.Desc.GetRangeId())
	}
	if !ok && bytes.Compare(key, keys.UserSpanStart) >= 0 {
		// Learn range 1 (where meta lives) first, so that later lookups go
		// to its replicas rather than the seeds.
		var err error
		if e, err = r.cache.Lookup(ctx, keys.MetaMin, false); err != nil {
			return nil, err
		}
		if got, hit := r.cache.Get(key, reverse); hit {
			return []*api.RangeDescriptor{got.Desc}, nil // prefetched with range 1
		}
		ok = true
	}
	seed := false
	if !ok {
		d := r.seedDesc()
		if len(d.GetReplicas()) == 0 {
			return nil, errors.New("client: range 1 is not cached and there are no seed nodes")
		}
		e, seed = CacheEntry{Desc: d}, true
	}
	r.metaLookups.Add(1)
	resp, err := r.sendToReplicas(ctx, ba, e)
	if err != nil {
		var se *sendError
		if errors.As(err, &se) && !seed {
			r.cache.Evict(e.Desc)
		}
		return nil, err
	}
	if len(resp.GetResponses()) != 1 {
		return nil, &retryableError{err: fmt.Errorf("client: meta scan returned %d responses", len(resp.GetResponses()))}
	}
	scan, _ := resp.GetResponses()[0].Inner().(*api.ScanResponse)
	descs := make([]*api.RangeDescriptor, 0, len(scan.GetRows()))
	for _, kv := range scan.GetRows() {
		d := &api.RangeDescriptor{}
		if err := proto.Unmarshal(kv.GetValue().GetRawBytes(), d); err != nil {
			return nil, &retryableError{err: fmt.Errorf("client: meta entry %s: %w", keys.Pretty(kv.GetKey()), err)}
		}
		descs = append(descs, d)
	}
	if len(descs) == 0 || !containsFor(descs[0], key, reverse) {
		// Meta is being updated (a split in progress) or torn; retry.
		return nil, &retryableError{err: fmt.Errorf("client: meta has no range for key %s", keys.Pretty(key))}
	}
	return descs, nil
}

// item is one request of the caller's batch, possibly truncated to a
// range.
type item struct {
	idx int
	req *api.RequestUnion
}

// part is the items of a batch that go to one range.
type part struct {
	entry CacheEntry
	items []item
	// whole is set when the part is the caller's entire batch, unmodified.
	whole bool
}

// Send routes the batch to the ranges holding its keys and returns the
// merged response, or a typed error (errors.As finds the api error types;
// *api.AmbiguousResultError when a write's outcome is unknown). A batch
// that spans several ranges is not atomic: on error, parts on other ranges
// may have applied.
func (r *Router) Send(ctx context.Context, ba *api.BatchRequest) (*api.BatchResponse, error) {
	if err := ba.Validate(); err != nil {
		return nil, err
	}
	for i, u := range ba.GetRequests() {
		k, end := u.Inner().KeySpan()
		if bytes.Compare(k, keys.MetaMin) < 0 || bytes.Compare(k, keys.KeyMax) >= 0 ||
			(end != nil && bytes.Compare(end, keys.KeyMax) > 0) {
			return nil, &api.InvalidRequestError{Index: int32(i), Message: fmt.Sprintf(
				"%s: span [%s, %s) is outside the addressable keyspace", u.Inner().Method(), keys.Pretty(k), keys.Pretty(end))}
		}
	}
	h := ba.GetHeader()
	if h.GetMaxSpanRequestKeys() > 0 || h.GetTargetBytes() > 0 {
		return r.sendLimited(ctx, ba)
	}
	return r.sendUnlimited(ctx, ba)
}

// subHeader is h addressed to one range.
func (r *Router) subHeader(h *api.BatchHeader, rangeID uint64, maxKeys, targetBytes int64) *api.BatchHeader {
	gw := h.GetGatewayNodeId()
	if gw == 0 {
		gw = r.cfg.GatewayNodeID
	}
	// Every other field of the caller's header travels as is.
	out := &api.BatchHeader{}
	if h != nil {
		out = proto.Clone(h).(*api.BatchHeader)
	}
	out.RangeId, out.GatewayNodeId, out.Replica = rangeID, gw, nil
	out.MaxSpanRequestKeys, out.TargetBytes = maxKeys, targetBytes
	return out
}

// sendPart sends one range's part once (following NotLeaseholder across
// replicas) and classifies the failure: learned reports that the cache
// was corrected from the error, so an immediate retry is worthwhile.
func (r *Router) sendPart(ctx context.Context, orig *api.BatchRequest, p part, maxKeys, targetBytes int64) (resp *api.BatchResponse, learned bool, err error) {
	ba := &api.BatchRequest{Header: r.subHeader(orig.GetHeader(), p.entry.Desc.GetRangeId(), maxKeys, targetBytes)}
	if p.whole {
		ba.Requests = orig.GetRequests()
	} else {
		ba.Requests = make([]*api.RequestUnion, len(p.items))
		for i, it := range p.items {
			ba.Requests[i] = it.req
		}
	}
	resp, err = r.sendToReplicas(ctx, ba, p.entry)
	if err == nil {
		if len(resp.GetResponses()) != len(ba.Requests) {
			return nil, false, &api.InternalError{Message: fmt.Sprintf(
				"client: range %d returned %d responses to %d requests", p.entry.Desc.GetRangeId(), len(resp.GetResponses()), len(ba.Requests))}
		}
		return resp, false, nil
	}
	var rkm *api.RangeKeyMismatchError
	switch {
	case errors.As(err, &rkm):
		r.log.Debug("client: stale descriptor", "range", p.entry.Desc.GetRangeId(), "err", err)
		r.cache.Insert(rkm.GetRanges()...)
		r.cache.Evict(p.entry.Desc)
		return nil, len(rkm.GetRanges()) > 0, err
	case isRetryable(err):
		r.log.Debug("client: range unreachable; evicting", "range", p.entry.Desc.GetRangeId(), "err", err)
		r.cache.Evict(p.entry.Desc)
		return nil, false, err
	}
	return nil, false, err
}

// divide resolves the ranges of items and groups them into parts, one per
// range, in key order. It walks the keys the items touch from the lowest
// up: each step looks up the range holding the cursor and takes every
// item's share of [cursor, range end), so each key is assigned to exactly
// one part even if the cache changes during the walk (requests that share
// a key therefore share a part, in request order).
func (r *Router) divide(ctx context.Context, ba *api.BatchRequest, items []item) ([]part, error) {
	cur := lowestKey(items)
	var parts []part
	truncated := false
	for cur != nil {
		e, err := r.lookup(ctx, cur, false)
		if err != nil {
			return nil, err
		}
		end := e.Desc.GetEndKey()
		p := part{entry: e}
		for _, it := range items {
			if sub, ok := restrict(it.req, cur, end); ok {
				truncated = truncated || sub != it.req
				p.items = append(p.items, item{idx: it.idx, req: sub})
			}
		}
		if len(p.items) > 0 {
			parts = append(parts, p)
		}
		cur = nextKeyAtOrAbove(items, end)
	}
	if len(parts) == 1 && !truncated && len(items) == len(ba.GetRequests()) {
		// The part is the caller's batch only if every item is the
		// caller's request itself (after a retry, items may be pieces
		// truncated earlier).
		whole := true
		for _, it := range parts[0].items {
			whole = whole && it.req == ba.GetRequests()[it.idx]
		}
		parts[0].whole = whole
	}
	return parts, nil
}

// lowestKey returns the lowest key any item touches, or nil for none.
func lowestKey(items []item) []byte {
	var lo []byte
	for _, it := range items {
		k, _ := it.req.Inner().KeySpan()
		if lo == nil || bytes.Compare(k, lo) < 0 {
			lo = k
		}
	}
	return lo
}

// nextKeyAtOrAbove returns the lowest key at or above bound that an item
// touches, or nil if none does.
func nextKeyAtOrAbove(items []item, bound []byte) []byte {
	var next []byte
	for _, it := range items {
		k, end := it.req.Inner().KeySpan()
		var cand []byte
		switch {
		case end == nil:
			if bytes.Compare(k, bound) >= 0 {
				cand = k
			}
		case bytes.Compare(end, bound) > 0:
			cand = k
			if bytes.Compare(cand, bound) < 0 {
				cand = bound
			}
		}
		if cand != nil && (next == nil || bytes.Compare(cand, next) < 0) {
			next = cand
		}
	}
	return next
}

// restrict returns u's share of [lo, hi): a point request whose key is
// inside, or a span request cut to its intersection with [lo, hi) (u
// itself when the span lies inside). ok is false when u has no share.
func restrict(u *api.RequestUnion, lo, hi []byte) (_ *api.RequestUnion, ok bool) {
	req := u.Inner()
	k, end := req.KeySpan()
	if end == nil {
		return u, bytes.Compare(lo, k) <= 0 && bytes.Compare(k, hi) < 0
	}
	if bytes.Compare(k, hi) >= 0 || bytes.Compare(end, lo) <= 0 {
		return nil, false
	}
	if bytes.Compare(lo, k) <= 0 && bytes.Compare(end, hi) <= 0 {
		return u, true
	}
	if bytes.Compare(k, lo) < 0 {
		k = lo
	}
	if bytes.Compare(end, hi) > 0 {
		end = hi
	}
	return api.WrapRequest(withSpan(req, k, end)), true
}

// sendUnlimited sends a batch without key or byte limits: every range's
// part in parallel, retrying the parts that failed to route.
func (r *Router) sendUnlimited(ctx context.Context, ba *api.BatchRequest) (*api.BatchResponse, error) {
	items := make([]item, len(ba.GetRequests()))
	for i, u := range ba.GetRequests() {
		items[i] = item{idx: i, req: u}
	}
	m := newMerger(len(items))
	b := r.newBackoff()
	immediate := 0
	for {
		parts, err := r.divide(ctx, ba, items)
		if err != nil {
			return nil, err
		}
		type result struct {
			resp    *api.BatchResponse
			learned bool
			err     error
		}
		results := make([]result, len(parts))
		if len(parts) == 1 {
			results[0].resp, results[0].learned, results[0].err = r.sendPart(ctx, ba, parts[0], 0, 0)
			if results[0].err == nil && parts[0].whole {
				return results[0].resp, nil
			}
		} else {
			var wg sync.WaitGroup
			for i := range parts {
				wg.Go(func() {
					results[i].resp, results[i].learned, results[i].err = r.sendPart(ctx, ba, parts[i], 0, 0)
				})
			}
			wg.Wait()
		}
		items = items[:0:0]
		var fatal, last error
		allLearned := true
		for i, res := range results {
			switch {
			case res.err == nil:
				m.addPart(parts[i], res.resp)
			case isRetryable(res.err):
				items = append(items, parts[i].items...)
				allLearned = allLearned && res.learned
				last = res.err
			default:
				var amb *api.AmbiguousResultError
				if fatal == nil || (errors.As(res.err, &amb) && !errors.As(fatal, &amb)) {
					fatal = res.err
				}
			}
		}
		if fatal != nil {
			return nil, fatal
		}
		if len(items) == 0 {
			return m.build(ba), nil
		}
		if ctx.Err() != nil {
			return nil, giveUp(ctx, last)
		}
		// Re-divide in request order, so that requests on the same range
		// keep their order within a part (pieces of one span request stay
		// in key order).
		sort.SliceStable(items, func(a, b int) bool { return items[a].idx < items[b].idx })
		if allLearned && immediate < maxImmediateRetries {
			immediate++
			continue
		}
		if err := b.wait(ctx, last); err != nil {
			return nil, err
		}
	}
}

// withSpan returns a span request like req over [k, end).
func withSpan(req api.Request, k, end []byte) api.Request {
	switch req.(type) {
	case *api.ScanRequest:
		return &api.ScanRequest{Key: k, EndKey: end}
	case *api.ReverseScanRequest:
		return &api.ReverseScanRequest{Key: k, EndKey: end}
	case *api.DeleteRangeRequest:
		return &api.DeleteRangeRequest{Key: k, EndKey: end}
	}
	return req
}
