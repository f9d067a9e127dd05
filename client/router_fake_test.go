package client

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/keys"
)

// fakeCluster is an in-memory cluster for router tests: one map of
// logical keys shared by all ranges (ranges only decide who may serve
// which keys), meta entries stored in it like any other value, a
// leaseholder per range, and knobs to split, move leases, stop nodes and
// inject errors.
type fakeCluster struct {
	t fataler

	mu       sync.Mutex
	data     map[string][]byte
	ranges   []*fakeRange // ordered by start key
	down     map[uint64]bool
	nextID   uint64
	clock    int64
	noHint   bool // NotLeaseholderError without a lease
	rkmNoRHS bool // RangeKeyMismatchError carries only the addressed range

	// hook, if set, runs before a node serves a batch; handled=true makes
	// its result the node's answer. It runs without the cluster's mutex.
	hook func(ctx context.Context, node uint64, ba *api.BatchRequest) (resp *api.BatchResponse, err error, handled bool)

	rpcs      atomic.Int64 // Batch calls, all nodes
	metaScans atomic.Int64 // Batch calls scanning meta that were served
}

// fataler is what the fake needs of a *testing.T or *rapid.T.
type fataler interface {
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

type fakeRange struct {
	desc     *api.RangeDescriptor
	lease    uint64 // the leaseholder's node ID
	leaseSeq int64
}

// newFakeCluster returns a cluster of nodes 1..nodes with range 1 (meta
// and system keys) and user ranges split at the given user keys, every
// range on nodes 1..3 with its lease on node 1.
func newFakeCluster(t fataler, nodes int, splits ...string) *fakeCluster {
	c := &fakeCluster{t: t, data: map[string][]byte{}, down: map[uint64]bool{}, nextID: 1}
	_ = nodes
	c.addRange(keys.MetaMin, keys.UserSpanStart)
	c.addRange(keys.UserSpanStart, keys.KeyMax)
	for _, s := range splits {
		c.split(keys.UserKey([]byte(s)))
	}
	return c
}

func replicas(nodes ...uint64) []*api.ReplicaDescriptor {
	var out []*api.ReplicaDescriptor
	for i, n := range nodes {
		out = append(out, &api.ReplicaDescriptor{NodeId: n, StoreId: n, ReplicaId: uint64(i + 1)})
	}
	return out
}

func (c *fakeCluster) addRange(start, end []byte) {
	d := &api.RangeDescriptor{RangeId: c.nextID, StartKey: start, EndKey: end, Replicas: replicas(1, 2, 3), Generation: 1, NextReplicaId: 4}
	c.nextID++
	c.ranges = append(c.ranges, &fakeRange{desc: d, lease: 1, leaseSeq: 1})
	c.writeMetaLocked(d)
}

func (c *fakeCluster) writeMetaLocked(d *api.RangeDescriptor) {
	b, err := proto.Marshal(d)
	if err != nil {
		c.t.Fatal(err)
	}
	c.data[string(keys.MetaKey(d.GetEndKey()))] = b
}

// split splits the range holding key at key; both sides get the next
// generation, and meta is updated unless staleMeta.
func (c *fakeCluster) split(key []byte) (left, right *api.RangeDescriptor) {
	return c.splitMeta(key, true)
}

func (c *fakeCluster) splitMeta(key []byte, updateMeta bool) (left, right *api.RangeDescriptor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.rangeIndexLocked(key)
	old := c.ranges[i]
	if bytes.Equal(old.desc.GetStartKey(), key) {
		c.t.Fatalf("split at a range start %q", key)
	}
	left = proto.Clone(old.desc).(*api.RangeDescriptor)
	left.EndKey = key
	left.Generation++
	right = proto.Clone(old.desc).(*api.RangeDescriptor)
	right.RangeId = c.nextID
	c.nextID++
	right.StartKey = key
	right.Generation = left.Generation
	old.desc = left
	c.ranges = slices.Insert(c.ranges, i+1, &fakeRange{desc: right, lease: old.lease, leaseSeq: 1})
	if updateMeta {
		c.writeMetaLocked(left)
		c.writeMetaLocked(right)
	}
	return left, right
}

func (c *fakeCluster) rangeIndexLocked(key []byte) int {
	for i, r := range c.ranges {
		if r.desc.ContainsKey(key) {
			return i
		}
	}
	c.t.Fatalf("no range holds %q", key)
	return -1
}

func (c *fakeCluster) rangeFor(key []byte) *api.RangeDescriptor {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ranges[c.rangeIndexLocked(key)].desc
}

// moveLease gives the lease of the range holding key to node.
func (c *fakeCluster) moveLease(key []byte, node uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.ranges[c.rangeIndexLocked(key)]
	r.lease = node
	r.leaseSeq++
}

// moveReplicas replaces the replicas of the range holding key with ones on
// nodes, lease on the first (meta updated).
func (c *fakeCluster) moveReplicas(key []byte, nodes ...uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.ranges[c.rangeIndexLocked(key)]
	d := proto.Clone(r.desc).(*api.RangeDescriptor)
	d.Replicas = nil
	for _, n := range nodes {
		d.Replicas = append(d.Replicas, &api.ReplicaDescriptor{NodeId: n, StoreId: n, ReplicaId: d.NextReplicaId})
		d.NextReplicaId++
	}
	d.Generation++
	r.desc = d
	r.lease = nodes[0]
	r.leaseSeq++
	c.writeMetaLocked(d)
}

func (c *fakeCluster) setDown(node uint64, down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down[node] = down
}

func (c *fakeCluster) setHook(h func(ctx context.Context, node uint64, ba *api.BatchRequest) (*api.BatchResponse, error, bool)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hook = h
}

// get reads a value directly (for checking writes).
func (c *fakeCluster) get(key []byte) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.data[string(key)]
	return v, ok
}

// Dial implements Dialer.
func (c *fakeCluster) Dial(_ context.Context, node uint64) (api.InternalClient, error) {
	return fakeNode{c: c, id: node}, nil
}

type fakeNode struct {
	c  *fakeCluster
	id uint64
}

func (n fakeNode) Batch(ctx context.Context, ba *api.BatchRequest, _ ...grpc.CallOption) (*api.BatchResponse, error) {
	c := n.c
	c.rpcs.Add(1)
	c.mu.Lock()
	hook := c.hook
	c.mu.Unlock()
	if hook != nil {
		if resp, err, ok := hook(ctx, n.id, ba); ok {
			return resp, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.serveLocked(n.id, ba)
}

func errResp(err error) *api.BatchResponse {
	return &api.BatchResponse{Header: &api.BatchResponseHeader{Error: api.ErrorFromGo(err)}}
}

func (c *fakeCluster) serveLocked(node uint64, ba *api.BatchRequest) (*api.BatchResponse, error) {
	if c.down[node] {
		return nil, status.Errorf(codes.Unavailable, "n%d is down", node)
	}
	h := ba.GetHeader()
	var rng *fakeRange
	idx := -1
	for i, r := range c.ranges {
		if r.desc.GetRangeId() == h.GetRangeId() {
			rng, idx = r, i
		}
	}
	if rng == nil || rng.desc.ReplicaByNode(node) == nil {
		return errResp(&api.RangeNotFoundError{RangeId: h.GetRangeId()}), nil
	}
	if h.GetReadConsistency() == api.ReadConsistency_CONSISTENT && rng.lease != node {
		e := &api.NotLeaseholderError{Replica: rng.desc.ReplicaByNode(node), RangeId: h.GetRangeId()}
		if !c.noHint {
			e.Lease = &api.Lease{Replica: rng.desc.ReplicaByNode(rng.lease), Sequence: rng.leaseSeq}
		}
		return errResp(e), nil
	}
	for _, u := range ba.GetRequests() {
		k, end := u.Inner().KeySpan()
		if !rng.desc.ContainsSpan(k, end) {
			e := &api.RangeKeyMismatchError{RequestedStartKey: k, RequestedEndKey: end, Ranges: []*api.RangeDescriptor{rng.desc}}
			if !c.rkmNoRHS && idx+1 < len(c.ranges) {
				e.Ranges = append(e.Ranges, c.ranges[idx+1].desc)
			}
			return errResp(e), nil
		}
		if s, ok := u.Inner().(*api.ScanRequest); ok && bytes.HasPrefix(s.GetKey(), keys.MetaMin) {
			c.metaScans.Add(1)
		}
	}
	c.clock++
	ts := &api.Timestamp{WallTime: c.clock}
	if h.GetTimestamp() != nil {
		ts = h.GetTimestamp()
	}
	resp := &api.BatchResponse{Header: &api.BatchResponseHeader{Now: &api.Timestamp{WallTime: c.clock}, Timestamp: ts}}
	if !ba.IsReadOnly() {
		resp.Header.WriteTimestamp = ts
	}
	// Limits, shared by the batch's span requests.
	remKeys, remBytes := h.GetMaxSpanRequestKeys(), h.GetTargetBytes()
	exhausted := func() bool {
		return (h.GetMaxSpanRequestKeys() > 0 && remKeys <= 0) || (h.GetTargetBytes() > 0 && remBytes <= 0)
	}
	take := func(k, v []byte) {
		remKeys--
		remBytes -= int64(len(k) + len(v))
	}
	// Undo log so that a failed batch applies nothing.
	undo := map[string][]byte{}
	write := func(k []byte, v []byte) {
		if _, ok := undo[string(k)]; !ok {
			undo[string(k)] = c.data[string(k)]
		}
		if v == nil {
			delete(c.data, string(k))
		} else {
			c.data[string(k)] = v
		}
	}
	fail := func(err error) (*api.BatchResponse, error) {
		for k, v := range undo {
			if v == nil {
				delete(c.data, k)
			} else {
				c.data[k] = v
			}
		}
		return errResp(err), nil
	}
	for _, u := range ba.GetRequests() {
		var out api.Response
		switch r := u.Inner().(type) {
		case *api.GetRequest:
			gr := &api.GetResponse{}
			if v, ok := c.data[string(r.GetKey())]; ok {
				gr.Value = &api.Value{RawBytes: v, Timestamp: ts}
			}
			out = gr
		case *api.PutRequest:
			write(r.GetKey(), append([]byte{}, r.GetValue()...))
			out = &api.PutResponse{Timestamp: ts}
		case *api.ConditionalPutRequest:
			v, ok := c.data[string(r.GetKey())]
			if (r.GetExpectAbsent() && ok) || (!r.GetExpectAbsent() && (!ok || !bytes.Equal(v, r.GetExpectedValue()))) {
				e := &api.ConditionFailedError{Key: r.GetKey()}
				if ok {
					e.ActualValue = &api.Value{RawBytes: v}
				}
				return fail(e)
			}
			write(r.GetKey(), append([]byte{}, r.GetValue()...))
			out = &api.ConditionalPutResponse{Timestamp: ts}
		case *api.IncrementRequest:
			n, err := api.DecodeCounter(c.data[string(r.GetKey())])
			if err != nil {
				return fail(err)
			}
			n += r.GetIncrement()
			write(r.GetKey(), api.EncodeCounter(n))
			out = &api.IncrementResponse{NewValue: n, Timestamp: ts}
		case *api.DeleteRequest:
			write(r.GetKey(), nil)
			out = &api.DeleteResponse{Timestamp: ts}
		case *api.DeleteRangeRequest:
			dr := &api.DeleteRangeResponse{Timestamp: ts}
			for _, k := range c.keysLocked(r.GetKey(), r.GetEndKey()) {
				if exhausted() {
					dr.ResumeSpan = &api.Span{Key: []byte(k), EndKey: r.GetEndKey()}
					break
				}
				take([]byte(k), nil)
				write([]byte(k), nil)
				dr.NumKeys++
			}
			out = dr
		case *api.ScanRequest:
			sr := &api.ScanResponse{}
			if exhausted() {
				sr.ResumeSpan = &api.Span{Key: r.GetKey(), EndKey: r.GetEndKey()}
			}
			for _, k := range c.keysLocked(r.GetKey(), r.GetEndKey()) {
				if sr.ResumeSpan != nil {
					break
				}
				if exhausted() {
					sr.ResumeSpan = &api.Span{Key: []byte(k), EndKey: r.GetEndKey()}
					break
				}
				v := c.data[k]
				take([]byte(k), v)
				sr.Rows = append(sr.Rows, &api.KeyValue{Key: []byte(k), Value: &api.Value{RawBytes: v, Timestamp: ts}})
			}
			out = sr
		case *api.ReverseScanRequest:
			sr := &api.ReverseScanResponse{}
			if exhausted() {
				sr.ResumeSpan = &api.Span{Key: r.GetKey(), EndKey: r.GetEndKey()}
			}
			ks := c.keysLocked(r.GetKey(), r.GetEndKey())
			slices.Reverse(ks)
			for _, k := range ks {
				if sr.ResumeSpan != nil {
					break
				}
				if exhausted() {
					end := r.GetEndKey()
					if len(sr.Rows) > 0 {
						end = sr.Rows[len(sr.Rows)-1].GetKey()
					}
					sr.ResumeSpan = &api.Span{Key: r.GetKey(), EndKey: end}
					break
				}
				v := c.data[k]
				take([]byte(k), v)
				sr.Rows = append(sr.Rows, &api.KeyValue{Key: []byte(k), Value: &api.Value{RawBytes: v, Timestamp: ts}})
			}
			out = sr
		default:
			return fail(fmt.Errorf("fake: unknown request %T", r))
		}
		resp.Responses = append(resp.Responses, api.WrapResponse(out))
	}
	return resp, nil
}

// keysLocked returns the stored keys in [start, end), sorted.
func (c *fakeCluster) keysLocked(start, end []byte) []string {
	var out []string
	for k := range c.data {
		if k >= string(start) && k < string(end) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
