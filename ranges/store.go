package ranges

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/mvcc"
	"github.com/meridiandb/meridian/raftgroup"
)

// StoreConfig configures a Store.
type StoreConfig struct {
	NodeID, StoreID uint64
	// Engine is the store's Pebble (through mvcc); the caller opens and
	// closes it.
	Engine *mvcc.Engine
	// Clock is the node's hybrid logical clock; its PhysicalClock is the
	// node's one physical clock.
	Clock *hlc.Clock
	// Transport carries Raft messages (raftgroup.GRPCTransport, or a
	// MemNetwork's in tests).
	Transport raftgroup.Transport
	// TickInterval drives Raft (0: the caller ticks, in tests).
	TickInterval time.Duration
	// LeaseDuration is how long a lease lasts (default 6 s). A leaseholder
	// extends it while the range is in use.
	LeaseDuration time.Duration
	// TimestampCacheBytes bounds each replica's timestamp cache (0: default).
	TimestampCacheBytes int
	// Truncation is the Raft log truncation policy (nil: raftgroup default
	// policy).
	Truncation *raftgroup.TruncationPolicy
	// Sender reaches any range (for meta updates and range IDs); splits
	// need it.
	Sender Sender
	// RangeMaxBytes: a range whose data exceeds it splits (default 64 MiB;
	// negative disables the split queue).
	RangeMaxBytes int64
	// QueueInterval paces the store's queues (default 1 s).
	QueueInterval time.Duration
	// GCTTL: versions older than this that a newer version shadows are
	// garbage-collected (default 4 h; negative disables the GC queue).
	GCTTL time.Duration
	// LiveStores lists the stores of live nodes, candidates for new
	// replicas (the replicate queue is off when nil).
	LiveStores func() []NodeStore
	// TracerProvider traces requests through the store (Send, then the
	// Raft proposal); nil: no tracing.
	TracerProvider trace.TracerProvider
	// RaftObserver, if set, receives the raft host's fsync and proposal
	// timings (metrics).
	RaftObserver raftgroup.Observer
	// TestingKnobs change behaviour in tests only.
	TestingKnobs TestingKnobs
	Logger       *slog.Logger
}

// TestingKnobs are hooks for tests; production leaves them zero.
type TestingKnobs struct {
	// SkipMetaUpdateAfterSplit leaves meta stale after a split, as a crash
	// between the split applying and the meta write would.
	SkipMetaUpdateAfterSplit bool
	// MaxCommandBytes, if set, is the raft host's bound on a proposed
	// command (raftgroup.Config.MaxCommandBytes), so a test can exceed it
	// without writing megabytes.
	MaxCommandBytes int
}

// Store owns a node's engine and the replicas on it. It serves
// api.InternalServer (Batch) for the node.
type Store struct {
	api.UnimplementedInternalServer

	cfg    StoreConfig
	engine *mvcc.Engine
	tracer trace.Tracer
	host   *raftgroup.Host
	log    *slog.Logger

	stop chan struct{}
	wg   sync.WaitGroup
	// stopCtx is cancelled by Stop; it bounds background lease extensions.
	stopCtx    context.Context
	stopCancel context.CancelFunc

	mu struct {
		sync.RWMutex
		replicas map[keys.RangeID]*Replica
		stopped  bool
	}
	// inflight counts Send calls; Stop waits for them, so none reads the
	// engine after the caller closes it. Added to only under mu while not
	// stopped.
	inflight sync.WaitGroup

	qmu      sync.Mutex
	qmetrics QueueMetrics

	// draining is set by Drain: the store acquires no lease and gives Raft
	// leadership away.
	draining atomic.Bool
}

// NewStore opens the replicas whose state is in the engine and starts their
// Raft groups. Stop releases them.
func NewStore(cfg StoreConfig) (*Store, error) {
	if cfg.NodeID == 0 || cfg.StoreID == 0 || cfg.Engine == nil || cfg.Clock == nil || cfg.Transport == nil {
		return nil, errors.New("ranges: StoreConfig needs NodeID, StoreID, Engine, Clock and Transport")
	}
	if cfg.LeaseDuration <= 0 {
		cfg.LeaseDuration = 6 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = noop.NewTracerProvider()
	}
	if cfg.Truncation == nil {
		cfg.Truncation = &raftgroup.TruncationPolicy{}
	}
	if cfg.RangeMaxBytes == 0 {
		cfg.RangeMaxBytes = 64 << 20
	}
	if cfg.QueueInterval <= 0 {
		cfg.QueueInterval = time.Second
	}
	if cfg.GCTTL == 0 {
		cfg.GCTTL = 4 * time.Hour
	}
	s := &Store{cfg: cfg, engine: cfg.Engine, log: cfg.Logger.With("node", cfg.NodeID, "store", cfg.StoreID), stop: make(chan struct{})}
	s.tracer = cfg.TracerProvider.Tracer("github.com/meridiandb/meridian/ranges")
	s.mu.replicas = make(map[keys.RangeID]*Replica)
	s.stopCtx, s.stopCancel = context.WithCancel(context.Background())
	host, err := raftgroup.NewHost(raftgroup.Config{
		NodeID: cfg.NodeID, DB: cfg.Engine.DB(), Transport: cfg.Transport, Clock: cfg.Clock,
		TickInterval: cfg.TickInterval, Logger: cfg.Logger, Truncation: cfg.Truncation, Observer: cfg.RaftObserver,
		MaxCommandBytes: cfg.TestingKnobs.MaxCommandBytes,
		UnknownGroup:    func(g, to, from, fromNode uint64) { s.createUninitialized(g, to, from, fromNode) },
	})
	if err != nil {
		return nil, err
	}
	s.host = host
	descs, err := loadDescriptors(cfg.Engine.DB())
	if err != nil {
		host.Stop()
		return nil, err
	}
	for _, d := range descs {
		if err := s.openReplica(keys.RangeID(d.GetRangeId())); err != nil {
			host.Stop()
			return nil, err
		}
	}
	s.wg.Add(2)
	go s.leaseLoop()
	go s.queueLoop()
	return s, nil
}

func (s *Store) openReplica(id keys.RangeID) error {
	st, err := loadRangeState(s.engine.DB(), id)
	if err != nil {
		return err
	}
	self := st.desc.ReplicaByStore(s.cfg.StoreID)
	if self == nil {
		return fmt.Errorf("ranges: range %d has no replica on store %d", id, s.cfg.StoreID)
	}
	return s.registerReplica(newReplica(s, st, self.GetReplicaId()), st)
}

// registerReplica starts a replica's Raft group and makes it reachable.
func (s *Store) registerReplica(r *Replica, st *rangeState) error {
	id := r.rangeID
	if err := s.host.CreateGroup(raftgroup.GroupConfig{
		ID: uint64(id), ReplicaID: r.replicaID, Peers: peersOf(st.desc),
		ConfState: st.confState, Applied: st.applied, StateMachine: r,
	}); err != nil {
		return err
	}
	s.mu.Lock()
	s.mu.replicas[id] = r
	s.mu.Unlock()
	return nil
}

// Host returns the store's raft host (the transport delivers to it).
func (s *Store) Host() *raftgroup.Host { return s.host }

// Replica returns the store's replica of a range.
func (s *Store) Replica(id keys.RangeID) (*Replica, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mu.stopped {
		return nil, ErrStoreStopped
	}
	r, ok := s.mu.replicas[id]
	if !ok {
		return nil, &api.RangeNotFoundError{RangeId: uint64(id)}
	}
	return r, nil
}

// descriptorsFor returns the descriptors a RangeKeyMismatch carries: the
// addressed range's first, then the store's range holding key, if any (after
// a split, the right-hand side).
func (s *Store) descriptorsFor(addressed *api.RangeDescriptor, key []byte) []*api.RangeDescriptor {
	out := []*api.RangeDescriptor{addressed}
	for _, r := range s.Replicas() {
		if d := r.Desc(); d.GetRangeId() != addressed.GetRangeId() && d.ContainsKey(key) {
			out = append(out, d)
		}
	}
	return out
}

// Replicas returns every replica on the store.
func (s *Store) Replicas() []*Replica {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Replica, 0, len(s.mu.replicas))
	for _, r := range s.mu.replicas {
		out = append(out, r)
	}
	return out
}

// goBackground runs f on a goroutine Stop waits for, unless the store is
// stopping (then f does not run). The check and the WaitGroup's Add happen
// under s.mu, which Stop takes to set stopped before it waits, so an Add
// never races with the Wait.
func (s *Store) goBackground(f func()) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mu.stopped {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Stop stops the store's background work and Raft groups. The engine stays
// open (the caller closes it).
func (s *Store) Stop() {
	s.mu.Lock()
	if s.mu.stopped {
		s.mu.Unlock()
		return
	}
	s.mu.stopped = true
	s.mu.Unlock()
	close(s.stop)
	s.stopCancel()
	s.wg.Wait()
	s.host.Stop() // ends pending proposals, so in-flight Sends return
	s.inflight.Wait()
}

// Batch implements api.InternalServer: it evaluates a batch on this store's
// replica of the addressed range. Errors travel in the response header.
func (s *Store) Batch(ctx context.Context, ba *api.BatchRequest) (*api.BatchResponse, error) {
	br, err := s.Send(ctx, ba)
	if err != nil {
		br = &api.BatchResponse{Header: &api.BatchResponseHeader{Error: api.ErrorFromGo(err), Now: api.NewTimestamp(s.cfg.Clock.Now())}}
	}
	return br, nil
}

// Send evaluates a batch on this store and returns typed Go errors.
func (s *Store) Send(ctx context.Context, ba *api.BatchRequest) (*api.BatchResponse, error) {
	if err := ba.Validate(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	if s.mu.stopped {
		s.mu.RUnlock()
		return nil, ErrStoreStopped
	}
	s.inflight.Add(1)
	s.mu.RUnlock()
	defer s.inflight.Done()
	if ts := ba.GetHeader().GetTimestamp(); ts != nil {
		if err := s.cfg.Clock.Update(ts.ToHLC()); err != nil {
			return nil, &api.InvalidRequestError{Index: -1, Message: err.Error()}
		}
	}
	r, err := s.Replica(keys.RangeID(ba.GetHeader().GetRangeId()))
	if err != nil {
		return nil, err
	}
	return r.Send(ctx, ba)
}

// leaseLoop keeps Raft leadership with the lease: a Raft leader that does
// not hold a valid lease held by another replica hands leadership to that
// holder (proposals are accepted only on the leader, so the holder must
// lead to write).
func (s *Store) leaseLoop() {
	defer s.wg.Done()
	t := time.NewTicker(max(s.cfg.LeaseDuration/20, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		now := s.cfg.Clock.Now()
		for _, r := range s.Replicas() {
			r.maybeTransferLeadership(now, s.draining.Load())
		}
	}
}
