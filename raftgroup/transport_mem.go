package raftgroup

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/meridiandb/meridian/api"
)

// MemNetwork is an in-memory network of hosts for deterministic tests, with
// fault injection: per-direction partitions (cut a→b and b→a separately),
// message loss with a seeded random source, and delivery delay. Each ordered
// node pair has one queue and one delivery goroutine, so messages of one
// sender arrive at one receiver in order, like the gRPC stream.
type MemNetwork struct {
	mu struct {
		sync.Mutex
		handlers  map[uint64]BatchHandler
		clocks    map[uint64]Clock
		links     map[[2]uint64]*memLink
		cut       map[[2]uint64]bool
		dropProb  float64
		snapFail  bool
		delay     time.Duration
		snapDelay time.Duration
		rng       *rand.Rand
		closed    bool
	}
	wg sync.WaitGroup
}

type memLink struct {
	out  *outbox
	stop chan struct{}
}

// NewMemNetwork returns an empty network; seed drives message loss.
func NewMemNetwork(seed uint64) *MemNetwork {
	n := &MemNetwork{}
	n.mu.handlers = make(map[uint64]BatchHandler)
	n.mu.clocks = make(map[uint64]Clock)
	n.mu.links = make(map[[2]uint64]*memLink)
	n.mu.cut = make(map[[2]uint64]bool)
	n.mu.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return n
}

// Transport returns node's transport on this network. Its clock stamps the
// batches it sends.
func (n *MemNetwork) Transport(node uint64, clock Clock) *MemTransport {
	n.mu.Lock()
	n.mu.clocks[node] = clock
	n.mu.Unlock()
	return &MemTransport{net: n, node: node}
}

// Register makes h the receiver of batches addressed to node (or removes it
// when h is nil, as when the node is stopped).
func (n *MemNetwork) Register(node uint64, h BatchHandler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h == nil {
		delete(n.mu.handlers, node)
		return
	}
	n.mu.handlers[node] = h
}

// Partition cuts both directions between a and b.
func (n *MemNetwork) Partition(a, b uint64) { n.Cut(a, b); n.Cut(b, a) }

// Cut drops every message from `from` to `to` (one way).
func (n *MemNetwork) Cut(from, to uint64) {
	n.mu.Lock()
	n.mu.cut[[2]uint64{from, to}] = true
	n.mu.Unlock()
}

// Mend undoes Cut(from, to).
func (n *MemNetwork) Mend(from, to uint64) {
	n.mu.Lock()
	delete(n.mu.cut, [2]uint64{from, to})
	n.mu.Unlock()
}

// Isolate cuts node off from every other node in nodes.
func (n *MemNetwork) Isolate(node uint64, nodes []uint64) {
	for _, o := range nodes {
		if o != node {
			n.Partition(node, o)
		}
	}
}

// Heal removes every cut.
func (n *MemNetwork) Heal() {
	n.mu.Lock()
	clear(n.mu.cut)
	n.mu.Unlock()
}

// SetDropProbability makes each message be lost with probability p.
func (n *MemNetwork) SetDropProbability(p float64) {
	n.mu.Lock()
	n.mu.dropProb = p
	n.mu.Unlock()
}

// FailSnapshots makes every snapshot transfer fail (as a broken stream
// would) until called with false.
func (n *MemNetwork) FailSnapshots(fail bool) {
	n.mu.Lock()
	n.mu.snapFail = fail
	n.mu.Unlock()
}

// SetSnapshotDelay makes every snapshot transfer take at least d (a large
// snapshot on a slow link).
func (n *MemNetwork) SetSnapshotDelay(d time.Duration) {
	n.mu.Lock()
	n.mu.snapDelay = d
	n.mu.Unlock()
}

// SetDelay delays the delivery of every batch by d.
func (n *MemNetwork) SetDelay(d time.Duration) {
	n.mu.Lock()
	n.mu.delay = d
	n.mu.Unlock()
}

// Close stops every delivery goroutine and waits for them.
func (n *MemNetwork) Close() {
	n.mu.Lock()
	if n.mu.closed {
		n.mu.Unlock()
		return
	}
	n.mu.closed = true
	for _, l := range n.mu.links {
		close(l.stop)
	}
	n.mu.Unlock()
	n.wg.Wait()
}

func (n *MemNetwork) send(from, to uint64, msg *api.RaftMessage) bool {
	n.mu.Lock()
	if n.mu.closed || n.mu.cut[[2]uint64{from, to}] {
		n.mu.Unlock()
		return true // lost on the wire: the sender cannot tell
	}
	if n.mu.dropProb > 0 && n.mu.rng.Float64() < n.mu.dropProb {
		n.mu.Unlock()
		return true
	}
	key := [2]uint64{from, to}
	l, ok := n.mu.links[key]
	if !ok {
		l = &memLink{out: newOutbox(), stop: make(chan struct{})}
		n.mu.links[key] = l
		n.wg.Add(1)
		go n.deliver(from, to, l)
	}
	n.mu.Unlock()
	return l.out.put(msg)
}

func (n *MemNetwork) deliver(from, to uint64, l *memLink) {
	defer n.wg.Done()
	for {
		first, ok := l.out.pending()
		if !ok {
			select {
			case <-l.stop:
				return
			case first = <-l.out.ch:
			}
		}
		msgs := l.out.batch(nil, first)
		n.mu.Lock()
		delay, cut := n.mu.delay, n.mu.cut[[2]uint64{from, to}]
		h, clock := n.mu.handlers[to], n.mu.clocks[from]
		n.mu.Unlock()
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-l.stop:
				t.Stop()
				return
			case <-t.C:
			}
		}
		if cut || h == nil || clock == nil {
			continue
		}
		now := clock.Now()
		h.HandleRaftBatch(&api.RaftMessageBatch{FromNode: from, ToNode: to, SenderWallTime: now.WallTime, SenderLogical: now.Logical, Messages: msgs})
	}
}

func (n *MemNetwork) sendSnapshot(ctx context.Context, from, to uint64, hdr *api.SnapshotHeader, data io.Reader) (bool, error) {
	buf, err := io.ReadAll(data)
	if err != nil {
		return false, err
	}
	n.mu.Lock()
	cut := n.mu.closed || n.mu.cut[[2]uint64{from, to}] || n.mu.cut[[2]uint64{to, from}]
	h, fail, delay := n.mu.handlers[to], n.mu.snapFail, n.mu.snapDelay
	n.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-t.C:
		}
	}
	if fail {
		return false, fmt.Errorf("raftgroup: memory network: snapshot stream from node %d to node %d broke", from, to)
	}
	if cut || h == nil {
		return false, fmt.Errorf("raftgroup: memory network: node %d unreachable from node %d", to, from)
	}
	return h.HandleSnapshot(ctx, hdr, buf)
}

// MemTransport is one node's Transport on a MemNetwork.
type MemTransport struct {
	net  *MemNetwork
	node uint64
}

// Send implements Transport.
func (t *MemTransport) Send(toNode uint64, msg *api.RaftMessage) bool {
	return t.net.send(t.node, toNode, msg)
}

// SendSnapshot implements Transport.
func (t *MemTransport) SendSnapshot(ctx context.Context, toNode uint64, hdr *api.SnapshotHeader, data io.Reader) (bool, error) {
	return t.net.sendSnapshot(ctx, t.node, toNode, hdr, data)
}
