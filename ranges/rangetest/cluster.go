// Package rangetest is the ranges test cluster, reused by later packages'
// tests: N in-process nodes, each with its own Pebble engine (on disk, or on
// Pebble's crashable in-memory filesystem), a Store bootstrapped with the
// same initial ranges (every initial node holds a replica of every range;
// AddNode adds empty ones that the replicate queue fills), Raft over real
// gRPC on loopback or over raftgroup's fault-injecting in-memory network, a
// real or manual clock per node, stop/restart and Crash (restart from what
// was synced), a minimal sender that follows NotLeaseholder hints and stale
// descriptors, and a consistency checker.
package rangetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/mvcc"
	"github.com/meridiandb/meridian/raftgroup"
	"github.com/meridiandb/meridian/ranges"
)

// TB is the part of testing.TB the cluster uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
}

// Options configures a Cluster.
type Options struct {
	Nodes int
	// SplitKeys pre-split the user keyspace (logical keys).
	SplitKeys [][]byte
	// GRPC runs Raft and the Internal service over real gRPC on loopback;
	// otherwise Raft uses the in-memory network (Cluster.Net) and requests
	// are handed to stores directly.
	GRPC bool
	// Dir puts each node's Pebble on disk under Dir; otherwise in memory.
	Dir string
	// ManualClock gives every node its own manual physical clock (Clock(i)
	// to move it) and manual Raft ticks (Tick); otherwise real time.
	ManualClock bool
	// MaxOffset of every node's HLC (default 250ms).
	MaxOffset time.Duration
	// LeaseDuration of every store (default 2s).
	LeaseDuration time.Duration
	// RangeMaxBytes of every store (default: -1, no size-based splits).
	RangeMaxBytes int64
	// QueueInterval of every store (default 20ms).
	QueueInterval time.Duration
	// Knobs for every store.
	Knobs ranges.TestingKnobs
	// GCTTL of every store (default: the store's).
	GCTTL time.Duration
}

// Node is one node of the cluster.
type Node struct {
	ID     uint64
	Engine *mvcc.Engine
	Phys   *hlc.ManualClock // nil unless Options.ManualClock
	Clock  *hlc.Clock
	Store  *ranges.Store

	fs      vfs.FS
	memFS   *vfs.MemFS // crashable, for in-memory nodes
	dir     string
	running atomic.Bool
	srv     *grpc.Server
	tr      *raftgroup.GRPCTransport
	lis     net.Listener
	addr    string
	conn    *grpc.ClientConn
}

// Cluster is a set of nodes sharing the bootstrapped ranges.
type Cluster struct {
	t    TB
	opts Options
	Net  *raftgroup.MemNetwork

	mu struct {
		sync.Mutex
		nodes     []*Node
		addrs     map[uint64]string
		leaseHint map[uint64]uint64 // range -> node
	}
}

// NewCluster starts a cluster; t.Cleanup stops it.
func NewCluster(t TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes <= 0 {
		opts.Nodes = 3
	}
	if opts.MaxOffset <= 0 {
		opts.MaxOffset = 250 * time.Millisecond
	}
	if opts.LeaseDuration <= 0 {
		opts.LeaseDuration = 2 * time.Second
	}
	if opts.RangeMaxBytes == 0 {
		opts.RangeMaxBytes = -1
	}
	if opts.QueueInterval <= 0 {
		opts.QueueInterval = 20 * time.Millisecond
	}
	c := &Cluster{t: t, opts: opts}
	c.mu.addrs = map[uint64]string{}
	c.mu.leaseHint = map[uint64]uint64{}
	if !opts.GRPC {
		c.Net = raftgroup.NewMemNetwork(1)
	}
	var initial []ranges.InitialReplica
	for i := 1; i <= opts.Nodes; i++ {
		n := &Node{ID: uint64(i)}
		if opts.Dir != "" {
			n.fs, n.dir = vfs.Default, fmt.Sprintf("%s/n%d", opts.Dir, i)
		} else {
			n.memFS = vfs.NewCrashableMem()
			n.fs, n.dir = n.memFS, "data"
		}
		if opts.ManualClock {
			n.Phys = hlc.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
		}
		c.mu.nodes = append(c.mu.nodes, n)
		initial = append(initial, ranges.InitialReplica{NodeID: n.ID, StoreID: n.ID})
	}
	t.Cleanup(c.Close)
	for _, n := range c.mu.nodes {
		e, err := mvcc.Open(n.dir, mvcc.Options{FS: n.fs, CacheSize: 8 << 20})
		if err != nil {
			t.Fatalf("rangetest: node %d: %v", n.ID, err)
		}
		if _, err := ranges.Bootstrap(e, ranges.BootstrapConfig{Replicas: initial, SplitKeys: opts.SplitKeys}); err != nil {
			t.Fatalf("rangetest: bootstrapping node %d: %v", n.ID, err)
		}
		n.Engine = e
		if err := c.start(n); err != nil {
			t.Fatalf("rangetest: starting node %d: %v", n.ID, err)
		}
	}
	return c
}

func (c *Cluster) start(n *Node) error {
	if n.Engine == nil {
		e, err := mvcc.Open(n.dir, mvcc.Options{FS: n.fs, CacheSize: 8 << 20})
		if err != nil {
			return err
		}
		n.Engine = e
	}
	var phys hlc.PhysicalClock = hlc.SystemClock{}
	if n.Phys != nil {
		phys = n.Phys
	}
	n.Clock = hlc.NewClock(phys, c.opts.MaxOffset)
	var tr raftgroup.Transport
	if c.opts.GRPC {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		n.lis, n.addr = lis, lis.Addr().String()
		c.mu.Lock()
		c.mu.addrs[n.ID] = n.addr
		c.mu.Unlock()
		n.tr = raftgroup.NewGRPCTransport(raftgroup.GRPCTransportConfig{NodeID: n.ID, Clock: n.Clock, Resolver: c.resolve})
		tr = n.tr
	} else {
		tr = c.Net.Transport(n.ID, n.Clock)
	}
	tick := 10 * time.Millisecond
	if c.opts.ManualClock {
		tick = 0
	}
	var logger *slog.Logger
	if os.Getenv("MERIDIAN_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := ranges.NewStore(ranges.StoreConfig{
		NodeID: n.ID, StoreID: n.ID, Engine: n.Engine, Clock: n.Clock, Transport: tr,
		TickInterval: tick, LeaseDuration: c.opts.LeaseDuration, Logger: logger,
		Sender: senderFunc(c.Send), RangeMaxBytes: c.opts.RangeMaxBytes,
		QueueInterval: c.opts.QueueInterval, TestingKnobs: c.opts.Knobs, GCTTL: c.opts.GCTTL,
		LiveStores: c.liveStores,
	})
	if err != nil {
		return err
	}
	n.Store = s
	if c.opts.GRPC {
		n.tr.SetHandler(s.Host())
		// Stop waits for handlers: none may touch the engine after it closes.
		n.srv = grpc.NewServer(grpc.WaitForHandlers(true))
		api.RegisterRaftTransportServer(n.srv, n.tr)
		api.RegisterInternalServer(n.srv, s)
		api.RegisterAdminServer(n.srv, s.Admin())
		go func() { _ = n.srv.Serve(n.lis) }()
		conn, err := grpc.NewClient(n.addr, grpc.WithTransportCredentials(insecureCreds()))
		if err != nil {
			return err
		}
		n.conn = conn
	} else {
		c.Net.Register(n.ID, s.Host())
	}
	n.running.Store(true)
	return nil
}

func (c *Cluster) resolve(id uint64) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.mu.addrs[id]; ok {
		return a, nil
	}
	return "", fmt.Errorf("rangetest: no address for node %d", id)
}

// Nodes returns every node.
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Node(nil), c.mu.nodes...)
}

// Node returns node id.
func (c *Cluster) Node(id uint64) *Node { return c.Nodes()[id-1] }

// Running reports whether a node runs.
func (c *Cluster) Running(id uint64) bool { return c.Node(id).running.Load() }

// Stop stops a node (its store, servers and engine), as a crash would
// from the others' point of view; its data stays for Restart.
func (c *Cluster) Stop(id uint64) {
	n := c.Node(id)
	if !n.running.CompareAndSwap(true, false) {
		return
	}
	if c.Net != nil {
		c.Net.Register(n.ID, nil)
	}
	if n.conn != nil {
		n.conn.Close()
	}
	if n.srv != nil {
		n.srv.Stop()
	}
	n.Store.Stop()
	if n.tr != nil {
		n.tr.Close()
	}
	if err := n.Engine.Close(); err != nil {
		c.t.Logf("rangetest: closing node %d: %v", id, err)
	}
	n.Engine = nil
	for _, o := range c.Nodes() {
		if o.running.Load() {
			o.Store.Host().ReportNodeDown(id)
		}
	}
}

// Crash kills a node as kill -9 and a power loss would: whatever its engine
// had not synced is gone. (In-memory nodes only: their filesystem is
// cloned as of its last sync, and the node restarts from the clone.)
func (c *Cluster) Crash(id uint64) {
	c.t.Helper()
	n := c.Node(id)
	if n.memFS == nil {
		c.t.Fatalf("rangetest: Crash needs an in-memory node")
	}
	if !n.running.Load() {
		return
	}
	if c.Net != nil {
		c.Net.Register(n.ID, nil)
	}
	survivor := n.memFS.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	c.Stop(id) // writes after the clone land in the discarded filesystem
	n.memFS, n.fs = survivor, survivor
}

// Restart starts a stopped node from its data.
func (c *Cluster) Restart(id uint64) {
	c.t.Helper()
	if err := c.start(c.Node(id)); err != nil {
		c.t.Fatalf("rangetest: restarting node %d: %v", id, err)
	}
}

// Close stops every node.
func (c *Cluster) Close() {
	for _, n := range c.Nodes() {
		c.Stop(n.ID)
	}
	if c.Net != nil {
		c.Net.Close()
	}
}

// AddNode starts a new, empty node (not bootstrapped): it gets replicas
// only through the replicate queue or ChangeReplicas. It returns its ID.
func (c *Cluster) AddNode() uint64 {
	c.t.Helper()
	c.mu.Lock()
	n := &Node{ID: uint64(len(c.mu.nodes) + 1)}
	if c.opts.Dir != "" {
		n.fs, n.dir = vfs.Default, fmt.Sprintf("%s/n%d", c.opts.Dir, n.ID)
	} else {
		n.memFS = vfs.NewCrashableMem()
		n.fs, n.dir = n.memFS, "data"
	}
	if c.opts.ManualClock {
		n.Phys = hlc.NewManualClock(c.mu.nodes[0].Phys.UnixNano())
	}
	c.mu.nodes = append(c.mu.nodes, n)
	c.mu.Unlock()
	if err := c.start(n); err != nil {
		c.t.Fatalf("rangetest: starting node %d: %v", n.ID, err)
	}
	return n.ID
}

// liveStores lists the running nodes' stores (store ID = node ID).
func (c *Cluster) liveStores() []ranges.NodeStore {
	var out []ranges.NodeStore
	for _, n := range c.Nodes() {
		if n.running.Load() {
			out = append(out, ranges.NodeStore{NodeID: n.ID, StoreID: n.ID})
		}
	}
	return out
}

// Isolate cuts a node off from the others (in-memory network only) and, as
// liveness would, reports it down to them.
func (c *Cluster) Isolate(id uint64) {
	var ids []uint64
	for _, n := range c.Nodes() {
		ids = append(ids, n.ID)
	}
	c.Net.Isolate(id, ids)
	for _, n := range c.Nodes() {
		if n.ID != id && n.running.Load() {
			n.Store.Host().ReportNodeDown(id)
		}
	}
}

// Tick ticks every running node's Raft groups (manual-clock clusters).
func (c *Cluster) Tick() {
	for _, n := range c.Nodes() {
		if n.running.Load() {
			n.Store.Host().Tick()
		}
	}
}

// Advance moves every node's manual clock by d.
func (c *Cluster) Advance(d time.Duration) {
	for _, n := range c.Nodes() {
		if n.Phys != nil {
			n.Phys.Advance(d)
		}
	}
}

// WaitFor polls cond (ticking manual clusters) until it holds or timeout.
func (c *Cluster) WaitFor(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("rangetest: timed out after %v waiting for %s", timeout, what)
		}
		if c.opts.ManualClock {
			c.Tick()
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// RangeFor returns the descriptor of the range holding key, as some running
// node has it.
func (c *Cluster) RangeFor(key []byte) (*api.RangeDescriptor, error) {
	for _, n := range c.Nodes() {
		if !n.running.Load() {
			continue
		}
		for _, r := range n.Store.Replicas() {
			if d := r.Desc(); len(d.GetEndKey()) > 0 && d.ContainsKey(key) {
				return d, nil
			}
		}
	}
	return nil, fmt.Errorf("rangetest: no range holds %s", keys.Pretty(key))
}

// Conn returns a gRPC connection to the node (GRPC clusters only).
func (n *Node) Conn() *grpc.ClientConn { return n.conn }

// SendTo sends a batch to one node (over gRPC when the cluster uses it).
func (c *Cluster) SendTo(ctx context.Context, node uint64, ba *api.BatchRequest) (*api.BatchResponse, error) {
	n := c.Node(node)
	if !n.running.Load() {
		return nil, errNodeDown
	}
	if n.conn != nil {
		br, err := api.NewInternalClient(n.conn).Batch(ctx, ba)
		if err != nil {
			return nil, err
		}
		if e := br.GetHeader().GetError(); e != nil {
			return nil, e.GoError()
		}
		return br, nil
	}
	return n.Store.Send(ctx, ba)
}

var errNodeDown = errors.New("rangetest: node down")

// senderFunc adapts the cluster's Send to ranges.Sender.
type senderFunc func(context.Context, *api.BatchRequest) (*api.BatchResponse, error)

func (f senderFunc) Send(ctx context.Context, ba *api.BatchRequest) (*api.BatchResponse, error) {
	return f(ctx, ba)
}

// Send routes a single-range batch to the range's leaseholder, following
// NotLeaseholder hints and trying every node, until it succeeds, fails with
// another error, or ctx ends. (The real router lives in client/.)
func (c *Cluster) Send(ctx context.Context, ba *api.BatchRequest) (*api.BatchResponse, error) {
	k, _ := ba.GetRequests()[0].Inner().KeySpan()
	for attempt := 0; ; attempt++ {
		d, err := c.RangeFor(k)
		if err != nil {
			return nil, err
		}
		if ba.Header == nil {
			ba.Header = &api.BatchHeader{}
		}
		ba.Header.RangeId = d.GetRangeId()
		c.mu.Lock()
		target := c.mu.leaseHint[d.GetRangeId()]
		c.mu.Unlock()
		if target == 0 || !c.Running(target) {
			target = uint64(attempt%len(c.Nodes())) + 1
		}
		// Bound each attempt, so a node that cannot make progress (cut off
		// from its quorum) does not hold the request until ctx ends.
		actx, acancel := context.WithTimeout(ctx, 500*time.Millisecond)
		br, err := c.SendTo(actx, target, ba)
		acancel()
		if err == nil {
			c.mu.Lock()
			c.mu.leaseHint[d.GetRangeId()] = target
			c.mu.Unlock()
			return br, nil
		}
		var nlh *api.NotLeaseholderError
		var rnf *api.RangeNotFoundError
		var rkm *api.RangeKeyMismatchError
		switch {
		case errors.As(err, &rkm):
			// Our view of the range was stale (a replica still replaying a
			// split): look the range up again.
		case errors.As(err, &rnf):
			// That node has no replica of the range (yet): try another.
			c.mu.Lock()
			delete(c.mu.leaseHint, d.GetRangeId())
			c.mu.Unlock()
		case errors.As(err, &nlh):
			c.mu.Lock()
			c.mu.leaseHint[d.GetRangeId()] = nlh.GetLease().GetReplica().GetNodeId()
			c.mu.Unlock()
		case errors.Is(err, errNodeDown) || isUnavailable(err) || (ctx.Err() == nil && isAttemptTimeout(err)):
			c.mu.Lock()
			delete(c.mu.leaseHint, d.GetRangeId())
			c.mu.Unlock()
		default:
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("rangetest: %w (last error: %v)", ctx.Err(), err)
		}
		if c.opts.ManualClock {
			c.Tick()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(min(attempt, 10)) * time.Millisecond):
		}
	}
}

// Checksum returns a digest of every engine key and value of a range's span
// on one node (its MVCC data and locks), to compare replicas.
func Checksum(n *Node, d *api.RangeDescriptor) (uint64, int, error) {
	return checksumSpan(n.Engine, keys.EncodeEngineKey(d.GetStartKey(), hlc.Timestamp{}), keys.EncodeEngineKey(d.GetEndKey(), hlc.Timestamp{}))
}

func checksumSpan(e *mvcc.Engine, start, end []byte) (uint64, int, error) {
	it, err := e.DB().NewIter(nil)
	if err != nil {
		return 0, 0, err
	}
	defer it.Close()
	var h uint64 = 14695981039346656037
	n := 0
	for ok := it.SeekGE(start); ok && bytes.Compare(it.Key(), end) < 0; ok = it.Next() {
		for _, b := range it.Key() {
			h = (h ^ uint64(b)) * 1099511628211
		}
		for _, b := range it.Value() {
			h = (h ^ uint64(b)) * 1099511628211
		}
		n++
	}
	return h, n, it.Error()
}

// CheckConsistency verifies what every test cluster must always satisfy:
// the ranges on the running nodes tile the addressable keyspace
// [keys.MetaMin, keys.KeyMax) with no gap or overlap; every replica of a
// range has the same descriptor; meta (read from the node's engine) holds
// each range's current descriptor under its end key; and every replica of a
// range holds identical data once they have applied the same index.
func (c *Cluster) CheckConsistency() error {
	descs := map[uint64]*api.RangeDescriptor{}
	for _, n := range c.Nodes() {
		if !n.running.Load() {
			continue
		}
		for _, r := range n.Store.Replicas() {
			d := r.Desc()
			if len(d.GetEndKey()) == 0 {
				continue // uninitialised, waiting for a snapshot
			}
			if prev, ok := descs[d.GetRangeId()]; ok && !proto.Equal(prev, d) {
				return fmt.Errorf("range %d: replicas disagree on the descriptor: %v vs %v", d.GetRangeId(), prev, d)
			}
			descs[d.GetRangeId()] = d
		}
	}
	sorted := make([]*api.RangeDescriptor, 0, len(descs))
	for _, d := range descs {
		sorted = append(sorted, d)
	}
	slices.SortFunc(sorted, func(a, b *api.RangeDescriptor) int { return bytes.Compare(a.GetStartKey(), b.GetStartKey()) })
	want := keys.MetaMin
	for _, d := range sorted {
		if !bytes.Equal(d.GetStartKey(), want) {
			return fmt.Errorf("ranges do not tile the keyspace: range %d starts at %s, want %s", d.GetRangeId(), keys.Pretty(d.GetStartKey()), keys.Pretty(want))
		}
		want = d.GetEndKey()
	}
	if !bytes.Equal(want, keys.KeyMax) {
		return fmt.Errorf("ranges do not tile the keyspace: the last ends at %s", keys.Pretty(want))
	}
	for _, n := range c.Nodes() {
		if !n.running.Load() || !holds(n, 1) {
			continue
		}
		for _, d := range sorted {
			v, ok, err := mvcc.Get(n.Engine.DB(), keys.MetaKey(d.GetEndKey()), hlc.MaxTimestamp, mvcc.ReadOptions{})
			if err != nil {
				return err
			}
			var md api.RangeDescriptor
			if !ok {
				return fmt.Errorf("node %d: no meta entry for range %d", n.ID, d.GetRangeId())
			}
			if err := proto.Unmarshal(v.RawBytes, &md); err != nil {
				return err
			}
			if !proto.Equal(&md, d) {
				return fmt.Errorf("node %d: meta for range %d is %v, the range says %v", n.ID, d.GetRangeId(), &md, d)
			}
		}
	}
	for _, d := range sorted {
		var first uint64
		var firstNode uint64
		for _, n := range c.Nodes() {
			if !n.running.Load() || !holds(n, d.GetRangeId()) {
				continue
			}
			sum, _, err := Checksum(n, d)
			if err != nil {
				return err
			}
			if firstNode == 0 {
				first, firstNode = sum, n.ID
			} else if sum != first {
				return fmt.Errorf("range %d: node %d and node %d hold different data: %s", d.GetRangeId(), firstNode, n.ID, firstDifference(c.Node(firstNode), n, d))
			}
		}
	}
	return nil
}

// holds reports whether a node has an initialised replica of a range.
func holds(n *Node, rangeID uint64) bool {
	r, err := n.Store.Replica(keys.RangeID(rangeID))
	return err == nil && len(r.Desc().GetEndKey()) > 0
}

// WaitConsistent waits until CheckConsistency passes (replicas may still be
// applying the last commands).
func (c *Cluster) WaitConsistent(timeout time.Duration) {
	c.t.Helper()
	var last error
	deadline := time.Now().Add(timeout)
	for {
		if last = c.CheckConsistency(); last == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("rangetest: cluster not consistent after %v: %v", timeout, last)
		}
		if c.opts.ManualClock {
			c.Tick()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// firstDifference describes the first engine key where two nodes' copies of
// a range differ, for failure messages.
func firstDifference(a, b *Node, d *api.RangeDescriptor) string {
	start, end := keys.EncodeEngineKey(d.GetStartKey(), hlc.Timestamp{}), keys.EncodeEngineKey(d.GetEndKey(), hlc.Timestamp{})
	ia, err := a.Engine.DB().NewIter(nil)
	if err != nil {
		return err.Error()
	}
	defer ia.Close()
	ib, err := b.Engine.DB().NewIter(nil)
	if err != nil {
		return err.Error()
	}
	defer ib.Close()
	oka, okb := ia.SeekGE(start), ib.SeekGE(start)
	for {
		oka = oka && bytes.Compare(ia.Key(), end) < 0
		okb = okb && bytes.Compare(ib.Key(), end) < 0
		switch {
		case !oka && !okb:
			return "no difference found"
		case !oka:
			return fmt.Sprintf("only node %d has %s", b.ID, keys.PrettyEngineKey(ib.Key()))
		case !okb:
			return fmt.Sprintf("only node %d has %s", a.ID, keys.PrettyEngineKey(ia.Key()))
		}
		if c := bytes.Compare(ia.Key(), ib.Key()); c != 0 {
			if c < 0 {
				return fmt.Sprintf("only node %d has %s", a.ID, keys.PrettyEngineKey(ia.Key()))
			}
			return fmt.Sprintf("only node %d has %s", b.ID, keys.PrettyEngineKey(ib.Key()))
		}
		if !bytes.Equal(ia.Value(), ib.Value()) {
			return fmt.Sprintf("values of %s differ", keys.PrettyEngineKey(ia.Key()))
		}
		oka, okb = ia.Next(), ib.Next()
	}
}
