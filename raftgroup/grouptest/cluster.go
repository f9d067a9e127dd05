package grouptest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/raftgroup"
)

// TB is the part of testing.TB the cluster uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
}

// memTableSize matches a node's engine (mvcc.DefaultMemTableSize, which
// raftgroup, below mvcc, cannot import).
const memTableSize = 64 << 20

// Options configures a Cluster.
type Options struct {
	Nodes int
	// Groups are created on every node with every node as a voter (replica
	// ID = node ID). Group IDs are 1..Groups.
	Groups int
	// GRPC selects real gRPC on loopback; otherwise the in-memory network
	// (with fault injection through Cluster.Net).
	GRPC bool
	// Dir, if set, puts each node's Pebble on disk under Dir (real fsync);
	// otherwise on Pebble's in-memory filesystem (which survives Restart).
	Dir string
	// TickInterval, if set, ticks every host on a timer; otherwise tests tick
	// by hand (Cluster.Tick), deterministically.
	TickInterval time.Duration
	// Workers per host (raftgroup's default if zero).
	Workers int
	// Seed drives the in-memory network's message loss.
	Seed uint64
	// Truncation is every host's log truncation policy (nil: none).
	Truncation *raftgroup.TruncationPolicy
	// NoApplyCounts makes every node's KV skip persisting per-command apply
	// counts (Count then reports nothing): benchmarks use it so that
	// applying a command costs what a real state machine's would, one
	// write for the command's effect plus the applied state.
	NoApplyCounts bool
	// CommitNoticeDelay is every host's Config.CommitNoticeDelay (zero:
	// raftgroup's default).
	CommitNoticeDelay time.Duration
	// Observer, if set, returns the observer of a node's host (called each
	// time the node starts).
	Observer func(nodeID uint64) raftgroup.Observer
}

// Node is one node of a Cluster.
type Node struct {
	ID    uint64
	Host  *raftgroup.Host
	KV    *KV
	DB    *pebble.DB
	Clock *hlc.Clock

	fs       vfs.FS
	dir      string
	grpcSrv  *grpc.Server
	grpcTr   *raftgroup.GRPCTransport
	listener net.Listener
	addr     string
	running  atomic.Bool
	// joined nodes were added after the cluster started: their replicas
	// start uninitialised and wait for a snapshot.
	joined bool
}

// Cluster is N nodes, each a raftgroup.Host over its own Pebble, sharing
// groups 1..Groups. It is the raft test harness later packages reuse.
type Cluster struct {
	t    TB
	opts Options
	Net  *raftgroup.MemNetwork

	mu struct {
		sync.Mutex
		addrs map[uint64]string
		nodes []*Node
	}
}

// NewCluster starts a cluster and registers its shutdown with t.Cleanup.
func NewCluster(t TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes <= 0 {
		opts.Nodes = 3
	}
	c := &Cluster{t: t, opts: opts}
	c.mu.addrs = map[uint64]string{}
	if !opts.GRPC {
		c.Net = raftgroup.NewMemNetwork(opts.Seed)
	}
	for i := 1; i <= opts.Nodes; i++ {
		c.mu.nodes = append(c.mu.nodes, c.newNode(uint64(i)))
	}
	for _, n := range c.Nodes() {
		if err := c.start(n); err != nil {
			c.Close()
			t.Fatalf("grouptest: starting node %d: %v", n.ID, err)
		}
	}
	t.Cleanup(c.Close)
	return c
}

// Nodes returns every node (started or stopped), in ID order.
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Node(nil), c.mu.nodes...)
}

// Node returns the node with the given ID.
func (c *Cluster) Node(id uint64) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.nodes[id-1]
}

func (c *Cluster) newNode(id uint64) *Node {
	n := &Node{ID: id}
	if c.opts.Dir != "" {
		n.fs, n.dir = vfs.Default, fmt.Sprintf("%s/n%d", c.opts.Dir, n.ID)
	} else {
		n.fs, n.dir = vfs.NewCrashableMem(), "data"
	}
	return n
}

// AddNode starts a new node whose replicas of every group are uninitialised
// (they join through a membership change and a snapshot), and tells every
// running node how to reach it. It returns the new node's ID.
func (c *Cluster) AddNode() uint64 {
	c.t.Helper()
	c.mu.Lock()
	n := c.newNode(uint64(len(c.mu.nodes) + 1))
	n.joined = true
	c.mu.nodes = append(c.mu.nodes, n)
	c.mu.Unlock()
	if err := c.start(n); err != nil {
		c.t.Fatalf("grouptest: starting node %d: %v", n.ID, err)
	}
	for _, o := range c.Nodes() {
		if !o.running.Load() {
			continue
		}
		for g := uint64(1); g <= uint64(c.opts.Groups); g++ {
			if err := o.Host.SetPeers(g, c.peers()); err != nil && o.ID != n.ID {
				c.t.Logf("grouptest: node %d group %d: %v", o.ID, g, err)
			}
		}
	}
	return n.ID
}

// Isolate cuts a node off from every other node (in-memory network only)
// and, as node liveness would, reports it down to the others, so quiesced
// groups it led wake up and elect.
func (c *Cluster) Isolate(id uint64) {
	c.Net.Isolate(id, c.NodeIDs())
	c.ReportNodeDown(id)
}

// ReportNodeDown tells every running node that node id stopped heartbeating.
func (c *Cluster) ReportNodeDown(id uint64) {
	for _, n := range c.Nodes() {
		if n.running.Load() && n.ID != id {
			n.Host.ReportNodeDown(id)
		}
	}
}

// NodeIDs returns every node's ID.
func (c *Cluster) NodeIDs() []uint64 {
	nodes := c.Nodes()
	ids := make([]uint64, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID
	}
	return ids
}

func (c *Cluster) peers() []raftgroup.Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := make([]raftgroup.Peer, len(c.mu.nodes))
	for i, n := range c.mu.nodes {
		ps[i] = raftgroup.Peer{ReplicaID: n.ID, NodeID: n.ID}
	}
	return ps
}

func (c *Cluster) start(n *Node) error {
	db, err := pebble.Open(n.dir, &pebble.Options{FS: n.fs, Comparer: keys.Comparer, Logger: quietLogger{}, MemTableSize: memTableSize})
	if err != nil {
		return err
	}
	n.DB = db
	n.Clock = hlc.NewClock(hlc.SystemClock{}, 500*time.Millisecond)
	var tr raftgroup.Transport
	if c.opts.GRPC {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		n.listener, n.addr = lis, lis.Addr().String()
		c.mu.Lock()
		c.mu.addrs[n.ID] = n.addr
		c.mu.Unlock()
		n.grpcTr = raftgroup.NewGRPCTransport(raftgroup.GRPCTransportConfig{NodeID: n.ID, Clock: n.Clock, Resolver: c.resolve})
		tr = n.grpcTr
	} else {
		tr = c.Net.Transport(n.ID, n.Clock)
	}
	var logger *slog.Logger
	if os.Getenv("MERIDIAN_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var obs raftgroup.Observer
	if c.opts.Observer != nil {
		obs = c.opts.Observer(n.ID)
	}
	h, err := raftgroup.NewHost(raftgroup.Config{NodeID: n.ID, DB: db, Transport: tr, Clock: n.Clock, TickInterval: c.opts.TickInterval, Workers: c.opts.Workers, Truncation: c.opts.Truncation, Logger: logger, Observer: obs, CommitNoticeDelay: c.opts.CommitNoticeDelay})
	if err != nil {
		return err
	}
	n.Host, n.KV = h, NewKV(db)
	n.KV.noCounts = c.opts.NoApplyCounts
	for g := uint64(1); g <= uint64(c.opts.Groups); g++ {
		applied, cs, err := n.KV.Load(g)
		if err != nil {
			return err
		}
		if cs == nil && n.joined {
			cs = &raftpb.ConfState{} // uninitialised: waits for a snapshot
		} else if cs == nil {
			cs = &raftpb.ConfState{}
			for _, p := range c.peers() {
				cs.Voters = append(cs.Voters, p.ReplicaID)
			}
			n.KV.Init(g, cs)
		}
		if err := h.CreateGroup(raftgroup.GroupConfig{ID: g, ReplicaID: n.ID, Peers: c.peers(), ConfState: cs, Applied: applied, StateMachine: n.KV}); err != nil {
			return err
		}
	}
	if c.opts.GRPC {
		n.grpcTr.SetHandler(h)
		n.grpcSrv = grpc.NewServer(raftgroup.ServerOptions()...)
		api.RegisterRaftTransportServer(n.grpcSrv, n.grpcTr)
		go func() { _ = n.grpcSrv.Serve(n.listener) }()
	} else {
		c.Net.Register(n.ID, h)
	}
	n.running.Store(true)
	return nil
}

func (c *Cluster) resolve(id uint64) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.mu.addrs[id]
	if !ok {
		return "", fmt.Errorf("grouptest: node %d has no address", id)
	}
	return a, nil
}

// Addr is the node's gRPC address (GRPC clusters only).
func (n *Node) Addr() string { return n.addr }

// Stop stops a node: its host, transport and Pebble (an orderly stop; with
// the in-memory filesystem the data stays for Restart).
func (c *Cluster) Stop(id uint64) {
	n := c.Node(id)
	if !n.running.CompareAndSwap(true, false) {
		return
	}
	if c.Net != nil {
		c.Net.Register(n.ID, nil)
	}
	if n.grpcSrv != nil {
		n.grpcSrv.Stop()
	}
	n.Host.Stop()
	if n.grpcTr != nil {
		n.grpcTr.Close()
	}
	if err := n.DB.Close(); err != nil {
		c.t.Logf("grouptest: closing node %d's pebble: %v", id, err)
	}
}

// Crash stops a node as a power failure would: whatever its Pebble wrote
// but did not sync is lost, and nothing it sends from then on arrives
// (in-memory filesystem and network only). Restart brings it back from what
// survived.
func (c *Cluster) Crash(id uint64) {
	c.t.Helper()
	n := c.Node(id)
	mem, ok := n.fs.(*vfs.MemFS)
	if !ok || c.Net == nil {
		c.t.Fatalf("grouptest: Crash needs the in-memory filesystem and network")
		return
	}
	if !n.running.Load() {
		return
	}
	// Nothing the node sends after the clone may reach its peers: an
	// acknowledgement sent after a sync the clone missed would promise
	// data the restarted node does not have.
	c.Net.Register(n.ID, nil)
	var cut []uint64
	for _, o := range c.NodeIDs() {
		if o != id {
			c.Net.Cut(id, o)
			cut = append(cut, o)
		}
	}
	survivor := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	c.Stop(id) // writes after the clone land in the discarded filesystem
	n.fs = survivor
	for _, o := range cut {
		c.Net.Mend(id, o)
	}
}

// Restart starts a stopped node again from its persisted state.
func (c *Cluster) Restart(id uint64) {
	c.t.Helper()
	n := c.Node(id)
	if n.running.Load() {
		c.t.Fatalf("grouptest: node %d is running", id)
	}
	if err := c.start(n); err != nil {
		c.t.Fatalf("grouptest: restarting node %d: %v", id, err)
	}
}

// Close stops every node and the network.
func (c *Cluster) Close() {
	for _, n := range c.Nodes() {
		c.Stop(n.ID)
	}
	if c.Net != nil {
		c.Net.Close()
	}
}

// Tick ticks every running host once.
func (c *Cluster) Tick() {
	for _, n := range c.Nodes() {
		if n.running.Load() {
			n.Host.Tick()
		}
	}
}

// WaitFor ticks (when ticks are manual) and polls cond until it holds or
// timeout passes.
func (c *Cluster) WaitFor(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("grouptest: timed out after %v waiting for %s", timeout, what)
		}
		if c.opts.TickInterval == 0 {
			c.Tick()
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Leader returns the node whose replica of group is leader (and agreed on by
// every running node that knows a leader), or 0.
func (c *Cluster) Leader(group uint64) uint64 {
	var leader uint64
	for _, n := range c.Nodes() {
		if !n.running.Load() {
			continue
		}
		st, err := n.Host.Status(group)
		if err != nil {
			continue
		}
		if st.IsLeader() {
			if leader != 0 && leader != n.ID {
				return 0
			}
			leader = n.ID
		}
	}
	return leader
}

// WaitLeader waits until group has a leader among the running nodes and
// returns it.
func (c *Cluster) WaitLeader(group uint64, timeout time.Duration) uint64 {
	c.t.Helper()
	var l uint64
	c.WaitFor(timeout, fmt.Sprintf("a leader of group %d", group), func() bool {
		l = c.Leader(group)
		return l != 0
	})
	return l
}

// MoveLeader makes node to (whose replica ID is its node ID) the leader of
// group: it asks whichever replica leads to transfer leadership, again every
// 20ms, until to leads or timeout passes.
func (c *Cluster) MoveLeader(group, to uint64, timeout time.Duration) {
	c.t.Helper()
	var asked time.Time
	c.WaitFor(timeout, fmt.Sprintf("node %d to lead group %d", to, group), func() bool {
		l := c.Leader(group)
		if l == to {
			return true
		}
		if l != 0 && time.Since(asked) >= 20*time.Millisecond {
			asked = time.Now()
			if err := c.Node(l).Host.TransferLeadership(group, to); err != nil {
				c.t.Fatalf("grouptest: transferring leadership of group %d: %v", group, err)
			}
		}
		return false
	})
}

// Propose proposes cmd on the group's current leader, following leadership
// changes, until it applies or ctx ends. It returns the node it applied
// through. An ambiguous outcome is returned as an error.
func (c *Cluster) Propose(ctx context.Context, group uint64, cmd string) (uint64, any, error) {
	for {
		l := c.Leader(group)
		if l != 0 {
			res, err := c.Node(l).Host.Propose(ctx, group, []byte(cmd))
			if err == nil {
				return l, res, nil
			}
			if !raftgroup.IsNotProposed(err) || ctx.Err() != nil {
				return l, nil, err
			}
		}
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		if c.opts.TickInterval == 0 {
			c.Tick()
		}
		select {
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Running reports whether a node is running.
func (c *Cluster) Running(id uint64) bool { return c.Node(id).running.Load() }

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
