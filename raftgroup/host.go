package raftgroup

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
)

// Clock is the node's hybrid logical clock as raftgroup uses it: it stamps
// outgoing batches and ratchets on incoming ones.
type Clock interface {
	Now() hlc.Timestamp
	Update(remote hlc.Timestamp) error
}

// Config configures a Host.
type Config struct {
	// NodeID is this node's ID, never 0.
	NodeID uint64
	// DB is the node's Pebble instance, opened with keys.Comparer. raftgroup
	// writes logs and hard states into it; the caller owns and closes it.
	DB *pebble.DB
	// Transport carries messages to other nodes.
	Transport Transport
	// Clock stamps outgoing batches and is updated from incoming ones.
	Clock Clock
	// Workers is the size of the worker pool (default: one per two
	// processors, at least 1 and at most 8; see defaultWorkers).
	Workers int
	// MaxBatchGroups bounds how many groups one worker cycle takes from the
	// queue at a time (default 256); a cycle takes twice at most, so its
	// one batch holds up to twice as many.
	MaxBatchGroups int
	// TickInterval drives every group's raft clock. Zero means ticks happen
	// only when the caller calls Host.Tick (deterministic tests).
	TickInterval time.Duration
	// ElectionTicks and HeartbeatTicks are raft's timeouts in ticks
	// (defaults 10 and 1).
	ElectionTicks  int
	HeartbeatTicks int
	// Logger receives the host's and raft's logs (default: discard).
	Logger *slog.Logger
	// MaxSnapshotBytes bounds a snapshot sent or received (default 512 MiB).
	MaxSnapshotBytes int64
	// MaxCommandBytes bounds a proposed command (default 12 MiB); Propose
	// refuses a larger one (ErrCommandTooLarge). An entry travels alone in a
	// message when it is large, so every node's gRPC server must accept
	// messages of this size plus a little: one it refused would break the
	// raft stream to it, for every group, each time raft resent it.
	MaxCommandBytes int
	// Truncation, if set, is the policy every replica applies to keep its
	// log short; nil leaves truncation to explicit Truncate calls.
	Truncation *TruncationPolicy
	// UnknownGroup, if set, is called (on the transport's goroutine, with
	// no lock held) when a message or snapshot arrives for a group this host
	// does not have, so the caller can create it as an uninitialised replica
	// (CreateGroup with an empty ConfState) before delivery is retried.
	UnknownGroup func(groupID, toReplica, fromReplica, fromNode uint64)
	// CommitNoticeDelay is how long a leader holds an append that only
	// tells a follower a new commit index, for a later message to that
	// follower to carry it instead (default 2ms; negative: never held). A
	// follower learns of a commit at most this much later; see notice.go.
	CommitNoticeDelay time.Duration
	// Observer, if set, is told of fsyncs and proposal latencies (the
	// server feeds them to its metrics). It is called from the host's
	// goroutines and must not block.
	Observer Observer
}

// Observer receives the host's timing events.
type Observer interface {
	// Fsynced reports one synced commit of raft state: how long the commit
	// took and how many log entries it made durable.
	Fsynced(d time.Duration, entries int)
	// ProposalApplied reports a local proposal applied d after Propose
	// handed it to raft. It is called before that Propose returns.
	ProposalApplied(d time.Duration)
}

// DefaultCommitNoticeDelay is Config.CommitNoticeDelay's default: longer
// than a client usually takes to send its next write once the previous one
// is answered, short enough that followers stay current.
const DefaultCommitNoticeDelay = 2 * time.Millisecond

// DefaultMaxCommandBytes is Config.MaxCommandBytes's default: under the
// 16 MiB a node's gRPC server accepts (server.MaxMessageBytes).
const DefaultMaxCommandBytes = 12 << 20

// defaultWorkers is one worker per two processors (GOMAXPROCS), at least 1
// and at most 8. Each worker's cycle ends in an fsync; a worker that finds
// the queue empty starts a cycle of its own, so more workers than the
// processors can keep busy only split the groups into smaller batches: more
// fsyncs and more goroutines queued for the processors. On 2 cores one
// worker did 14.5k-15.5k proposals/s in BenchmarkPropose (100 groups)
// against 9.5k-13.6k with four.
func defaultWorkers() int {
	return min(max(runtime.GOMAXPROCS(0)/2, 1), 8)
}

func (c *Config) setDefaults() error {
	if c.NodeID == 0 {
		return errors.New("raftgroup: Config.NodeID must be set")
	}
	if c.DB == nil || c.Transport == nil || c.Clock == nil {
		return errors.New("raftgroup: Config.DB, Transport and Clock must be set")
	}
	if c.Workers <= 0 {
		c.Workers = defaultWorkers()
	}
	if c.MaxBatchGroups <= 0 {
		c.MaxBatchGroups = 256
	}
	if c.ElectionTicks <= 0 {
		c.ElectionTicks = 10
	}
	if c.HeartbeatTicks <= 0 {
		c.HeartbeatTicks = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxSnapshotBytes <= 0 {
		c.MaxSnapshotBytes = 512 << 20
	}
	if c.MaxCommandBytes <= 0 {
		c.MaxCommandBytes = DefaultMaxCommandBytes
	}
	if c.CommitNoticeDelay == 0 {
		c.CommitNoticeDelay = DefaultCommitNoticeDelay
	}
	if c.Truncation != nil {
		p := *c.Truncation
		p.setDefaults()
		c.Truncation = &p
	}
	return nil
}

// Metrics are cumulative counters of a Host.
type Metrics struct {
	Cycles           uint64 // worker cycles that persisted something
	Fsyncs           uint64 // synced batch commits
	EntriesAppended  uint64 // log entries persisted
	Proposals        uint64 // commands handed to raft
	Applied          uint64 // entries applied
	MessagesSent     uint64
	MessagesDropped  uint64 // refused by the transport (queue full, no route)
	MessagesRecv     uint64
	SnapshotsSent    uint64 // snapshots a follower applied
	SnapshotsApplied uint64 // snapshots this host applied
	SnapshotsFailed  uint64 // snapshot sends that failed (retried with backoff)
	Truncations      uint64
	Quiesced         uint64 // times a leader quiesced a group
	// StreamBreaks counts message streams to peers that broke (a failed
	// dial too), each dropping what was queued for that peer; from a
	// transport that counts them (GRPCTransport).
	StreamBreaks uint64
	// HeartbeatsElided counts heartbeats not sent because an append since
	// the previous one told the follower as much.
	HeartbeatsElided uint64
	// CommitNoticesElided counts appends that only carried a commit index
	// and were not sent, because a later message to the same follower
	// carried it (see Config.CommitNoticeDelay); CommitNoticesDelayed,
	// those sent when their delay ran out.
	CommitNoticesElided, CommitNoticesDelayed uint64
}

// Host runs many raft groups on one node: it owns their RawNodes, a worker
// pool that processes them, and the ticker.
type Host struct {
	cfg   Config
	log   *slog.Logger
	sched *scheduler
	// notices holds leaders' commit-only appends back (notice.go).
	notices *notices
	wg      sync.WaitGroup
	stop    chan struct{}
	// stopping is closed as Stop begins: a snapshot delivery waiting for a
	// worker gives up then, since the workers no longer take up groups.
	stopping chan struct{}

	mu struct {
		sync.RWMutex
		groups   map[uint64]*group
		creating map[uint64]bool
		// down records, per node, the time (this node's clock) liveness
		// reported it down; a batch it sent after that clears it.
		down    map[uint64]hlc.Timestamp
		stopped bool
	}

	metrics struct {
		cycles, fsyncs, appended, proposals, applied, sent, dropped, recv       atomic.Uint64
		snapshotsSent, snapshotsApplied, snapshotsFailed, truncations, quiesced atomic.Uint64
		heartbeatsElided                                                        atomic.Uint64
	}

	// stopCtx is cancelled by Stop; it bounds snapshot streams, which run on
	// their own goroutines (tracked by snapWG).
	stopCtx    context.Context
	stopCancel context.CancelFunc
	snapWG     sync.WaitGroup
	// inflight counts transport deliveries (HandleRaftBatch,
	// HandleSnapshot) in progress; Stop waits for them, so none touches
	// the DB after Stop returned.
	inflight sync.WaitGroup
}

// NewHost starts a host's workers (and its ticker if TickInterval is set).
// Stop must be called to release them.
func NewHost(cfg Config) (*Host, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	h := &Host{cfg: cfg, log: cfg.Logger.With("node", cfg.NodeID), sched: newScheduler(cfg.MaxBatchGroups), stop: make(chan struct{}), stopping: make(chan struct{})}
	h.mu.groups = make(map[uint64]*group)
	h.mu.creating = make(map[uint64]bool)
	h.mu.down = make(map[uint64]hlc.Timestamp)
	h.stopCtx, h.stopCancel = context.WithCancel(context.Background())
	h.notices = newNotices(cfg.CommitNoticeDelay, func(node uint64, env *api.RaftMessage) bool {
		if !h.cfg.Transport.Send(node, env) {
			h.metrics.dropped.Add(1)
			return false
		}
		h.metrics.sent.Add(1)
		return true
	})
	for i := 0; i < cfg.Workers; i++ {
		h.wg.Add(1)
		go h.worker()
	}
	if cfg.TickInterval > 0 {
		h.wg.Add(1)
		go h.ticker(cfg.TickInterval)
	}
	return h, nil
}

// NodeID returns the host's node ID.
func (h *Host) NodeID() uint64 { return h.cfg.NodeID }

// Stop stops the workers and the ticker and fails every pending proposal
// with an ambiguous outcome. It does not close the DB.
func (h *Host) Stop() {
	h.mu.Lock()
	if h.mu.stopped {
		h.mu.Unlock()
		return
	}
	h.mu.stopped = true
	close(h.stopping)
	groups := h.mu.groups
	h.mu.Unlock()
	h.inflight.Wait()
	close(h.stop)
	h.stopCancel()
	h.sched.stop()
	h.wg.Wait()
	h.notices.stop()
	h.snapWG.Wait()
	for _, g := range groups {
		g.mu.Lock()
		w := g.closeLocked(ErrStopped)
		if w2 := g.mu.work; w2.destroy != nil {
			w.destroy, g.mu.work.destroy = w2.destroy, nil
		}
		g.mu.Unlock()
		g.answer(w, ErrStopped)
		g.failReads(ErrStopped)
	}
}

func (h *Host) ticker(d time.Duration) {
	defer h.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			h.Tick()
		}
	}
}

// Tick advances every group's raft clock by one tick.
func (h *Host) Tick() {
	h.mu.RLock()
	ids := make([]uint64, 0, len(h.mu.groups))
	for id, g := range h.mu.groups {
		if g.quiesced.Load() {
			continue
		}
		g.mu.Lock()
		g.mu.work.ticks++
		g.mu.Unlock()
		ids = append(ids, id)
	}
	h.mu.RUnlock()
	h.sched.enqueueAll(ids)
}

// CreateGroup creates (or, after a restart, reopens) a replica of a group.
func (h *Host) CreateGroup(gc GroupConfig) error {
	if gc.ID == 0 || gc.ReplicaID == 0 || gc.StateMachine == nil {
		return errors.New("raftgroup: GroupConfig needs ID, ReplicaID and StateMachine")
	}
	cs := gc.ConfState
	if cs == nil {
		cs = &raftpb.ConfState{}
		for _, p := range gc.Peers {
			cs.Voters = append(cs.Voters, p.ReplicaID)
		}
	}
	// Reserve the ID, then open the storage (which may fsync) without
	// holding h.mu, which every tick and incoming batch takes.
	h.mu.Lock()
	if h.mu.stopped {
		h.mu.Unlock()
		return ErrStopped
	}
	if _, ok := h.mu.groups[gc.ID]; ok || h.mu.creating[gc.ID] {
		h.mu.Unlock()
		return fmt.Errorf("raftgroup: group %d already exists", gc.ID)
	}
	h.mu.creating[gc.ID] = true
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.mu.creating, gc.ID)
		h.mu.Unlock()
	}()
	b := h.cfg.DB.NewBatch()
	defer b.Close()
	st, err := openStorage(h.cfg.DB, gc.ID, cs, len(cs.Voters) > 0, b)
	if err != nil {
		return err
	}
	if !b.Empty() {
		start := time.Now()
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("raftgroup: group %d: persisting initial state: %w", gc.ID, err)
		}
		h.metrics.fsyncs.Add(1)
		if o := h.cfg.Observer; o != nil {
			o.Fsynced(time.Since(start), 0)
		}
	}
	first, _ := st.firstAndLast()
	applied := max(gc.Applied, first-1)
	st.raiseCommit(applied)
	rn, err := raft.NewRawNode(&raft.Config{
		ID:                        gc.ReplicaID,
		ElectionTick:              h.cfg.ElectionTicks,
		HeartbeatTick:             h.cfg.HeartbeatTicks,
		Storage:                   st,
		Applied:                   applied,
		MaxSizePerMsg:             1 << 20,
		MaxCommittedSizePerReady:  16 << 20,
		MaxUncommittedEntriesSize: 64 << 20,
		MaxInflightMsgs:           256,
		CheckQuorum:               true,
		PreVote:                   true,
		DisableProposalForwarding: true,
		StepDownOnRemoval:         true,
		Logger:                    newRaftLogger(h.log.With("range", gc.ID)),
	})
	if err != nil {
		return fmt.Errorf("raftgroup: group %d: %w", gc.ID, err)
	}
	g := &group{id: gc.ID, replicaID: gc.ReplicaID, sm: gc.StateMachine, storage: st, rn: rn}
	g.mu.peers = make(map[uint64]uint64, len(gc.Peers))
	for _, p := range gc.Peers {
		g.mu.peers[p.ReplicaID] = p.NodeID
	}
	g.mu.pending = make(map[CommandID]*proposal)
	g.mu.snapsOut = make(map[uint64]uint64)
	g.mu.snapsSent = make(map[uint64]uint64)
	g.mu.backoff = make(map[uint64]time.Duration)
	g.applied.Store(applied)
	g.appliedUncommitted = applied
	g.publishStatus()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mu.stopped {
		return ErrStopped
	}
	h.mu.groups[gc.ID] = g
	return nil
}

// SetPeers replaces a group's replica → node map (after a membership change
// the caller learns of through its descriptor).
func (h *Host) SetPeers(groupID uint64, peers []Peer) error {
	g, err := h.group(groupID)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mu.peers = make(map[uint64]uint64, len(peers))
	for _, p := range peers {
		g.mu.peers[p.ReplicaID] = p.NodeID
	}
	return nil
}

func (h *Host) group(id uint64) (*group, error) {
	h.mu.RLock()
	g, ok := h.mu.groups[id]
	stopped := h.mu.stopped
	h.mu.RUnlock()
	if stopped {
		return nil, ErrStopped
	}
	if !ok {
		return nil, ErrGroupNotFound
	}
	return g, nil
}

// Groups returns the IDs of every group on this host.
func (h *Host) Groups() []uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	ids := make([]uint64, 0, len(h.mu.groups))
	for id := range h.mu.groups {
		ids = append(ids, id)
	}
	return ids
}

// Status returns a replica's status.
func (h *Host) Status(groupID uint64) (Status, error) {
	g, err := h.group(groupID)
	if err != nil {
		return Status{}, fmt.Errorf("raftgroup: group %d: %w", groupID, err)
	}
	st := *g.status.Load()
	st.Applied = g.applied.Load()
	if p := g.progress.Load(); p != nil {
		st.Progress = *p
	}
	st.FirstIndex, st.LastIndex = g.storage.firstAndLast()
	return st, nil
}

// Metrics returns the host's counters.
func (h *Host) Metrics() Metrics {
	var breaks uint64
	if t, ok := h.cfg.Transport.(interface{ StreamBreaks() uint64 }); ok {
		breaks = t.StreamBreaks()
	}
	return Metrics{
		StreamBreaks:         breaks,
		Cycles:               h.metrics.cycles.Load(),
		Fsyncs:               h.metrics.fsyncs.Load(),
		EntriesAppended:      h.metrics.appended.Load(),
		Proposals:            h.metrics.proposals.Load(),
		Applied:              h.metrics.applied.Load(),
		MessagesSent:         h.metrics.sent.Load(),
		MessagesDropped:      h.metrics.dropped.Load(),
		MessagesRecv:         h.metrics.recv.Load(),
		SnapshotsSent:        h.metrics.snapshotsSent.Load(),
		SnapshotsApplied:     h.metrics.snapshotsApplied.Load(),
		SnapshotsFailed:      h.metrics.snapshotsFailed.Load(),
		Truncations:          h.metrics.truncations.Load(),
		Quiesced:             h.metrics.quiesced.Load(),
		HeartbeatsElided:     h.metrics.heartbeatsElided.Load(),
		CommitNoticesElided:  h.notices.elided.Load(),
		CommitNoticesDelayed: h.notices.sent.Load(),
	}
}

// Propose replicates cmd through the group's log and returns once it has
// been applied on this replica, with the Result the state machine set. The
// error, if any, is a *NotProposedError (safe to retry) or an
// *OutcomeUnknownError (ambiguous).
func (h *Host) Propose(ctx context.Context, groupID uint64, cmd []byte) (any, error) {
	return h.ProposeWithID(ctx, groupID, NewCommandID(), cmd)
}

// ProposeWithID is Propose with a caller-chosen command ID, for re-submitting
// a command whose earlier outcome was unknown: the state machine sees the
// same ID and can recognise the duplicate.
func (h *Host) ProposeWithID(ctx context.Context, groupID uint64, id CommandID, cmd []byte) (any, error) {
	if len(cmd) > h.cfg.MaxCommandBytes {
		return nil, &NotProposedError{Group: groupID, Reason: fmt.Errorf("%w: %d bytes, the limit is %d", ErrCommandTooLarge, len(cmd), h.cfg.MaxCommandBytes)}
	}
	return h.propose(ctx, groupID, &proposal{id: id, data: encodeCommand(id, cmd), doneCh: make(chan proposalResult, 1)})
}

func (h *Host) propose(ctx context.Context, groupID uint64, p *proposal) (any, error) {
	id := p.id
	g, err := h.group(groupID)
	if err != nil {
		return nil, &NotProposedError{Group: groupID, Reason: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, &NotProposedError{Group: groupID, Reason: err}
	}
	g.mu.Lock()
	if g.mu.closed != nil {
		err := g.mu.closed
		g.mu.Unlock()
		return nil, &NotProposedError{Group: groupID, Reason: err}
	}
	if st := g.status.Load(); st.State != raft.StateLeader {
		g.mu.Unlock()
		return nil, &NotProposedError{Group: groupID, Reason: ErrNotLeader, LeaderReplica: st.Leader, LeaderNode: st.LeaderNode}
	}
	if g.pendingLocked(id) {
		g.mu.Unlock()
		return nil, &NotProposedError{Group: groupID, Reason: fmt.Errorf("command %s is already pending", id)}
	}
	g.mu.work.props = append(g.mu.work.props, p)
	g.mu.Unlock()
	h.sched.enqueue(groupID)

	select {
	case r := <-p.doneCh:
		return r.result, r.err
	case <-ctx.Done():
		g.mu.Lock()
		// Still queued (not yet handed to raft)? Then it never will be.
		for i, q := range g.mu.work.props {
			if q == p {
				g.mu.work.props = append(g.mu.work.props[:i], g.mu.work.props[i+1:]...)
				g.mu.Unlock()
				return nil, &NotProposedError{Group: groupID, Reason: ctx.Err()}
			}
		}
		if g.mu.pending[id] == p { // not another proposal with its ID
			delete(g.mu.pending, id)
		}
		g.mu.Unlock()
		// The worker may have finished it in the meantime.
		select {
		case r := <-p.doneCh:
			return r.result, r.err
		default:
		}
		return nil, &OutcomeUnknownError{Group: groupID, ID: id, Reason: ctx.Err()}
	}
}

// ReadIndex returns once this replica has applied everything the group had
// committed when the call was made, confirmed by a quorum (raft's ReadIndex),
// so a read of the local state machine that follows is linearizable. It
// writes nothing to the log.
func (h *Host) ReadIndex(ctx context.Context, groupID uint64) error {
	g, err := h.group(groupID)
	if err != nil {
		return fmt.Errorf("raftgroup: group %d: %w", groupID, err)
	}
	r := &readRequest{doneCh: make(chan error, 1)}
	if _, err := rand.Read(r.rctx[:]); err != nil {
		return err
	}
	g.mu.Lock()
	if err := g.mu.closed; err != nil {
		g.mu.Unlock()
		return fmt.Errorf("raftgroup: group %d: %w", groupID, err)
	}
	g.mu.work.reads = append(g.mu.work.reads, r)
	g.mu.Unlock()
	h.sched.enqueue(groupID)
	select {
	case err := <-r.doneCh:
		if err != nil {
			return fmt.Errorf("raftgroup: group %d: read index: %w", groupID, err)
		}
		return nil
	case <-ctx.Done():
		r.abandoned.Store(true)
		return fmt.Errorf("raftgroup: group %d: read index: %w", groupID, ctx.Err())
	}
}

// Campaign makes this replica start an election.
func (h *Host) Campaign(groupID uint64) error {
	g, err := h.group(groupID)
	if err != nil {
		return fmt.Errorf("raftgroup: group %d: %w", groupID, err)
	}
	g.mu.Lock()
	g.mu.work.campaign = true
	g.mu.Unlock()
	h.sched.enqueue(groupID)
	return nil
}

// TransferLeadership asks the leader (this replica) to hand leadership to
// another replica. It returns at once; watch Status for the outcome.
func (h *Host) TransferLeadership(groupID, toReplica uint64) error {
	g, err := h.group(groupID)
	if err != nil {
		return fmt.Errorf("raftgroup: group %d: %w", groupID, err)
	}
	g.mu.Lock()
	g.mu.work.transfer = toReplica
	g.mu.Unlock()
	h.sched.enqueue(groupID)
	return nil
}

// HandleRaftBatch is called by the transport with a batch from another node.
func (h *Host) HandleRaftBatch(b *api.RaftMessageBatch) {
	if b.GetToNode() != h.cfg.NodeID {
		h.log.Warn("raft batch addressed to another node dropped", "to", b.GetToNode(), "from", b.GetFromNode())
		return
	}
	if err := h.cfg.Clock.Update(hlc.Timestamp{WallTime: b.GetSenderWallTime(), Logical: b.GetSenderLogical()}); err != nil {
		h.log.Warn("raft batch dropped: sender clock rejected", "from", b.GetFromNode(), "err", err)
		return
	}
	sent := hlc.Timestamp{WallTime: b.GetSenderWallTime(), Logical: b.GetSenderLogical()}
	if !h.enter() {
		return
	}
	defer h.inflight.Done()
	h.mu.RLock()
	downAt, down := h.mu.down[b.GetFromNode()]
	h.mu.RUnlock()
	if down && downAt.Less(sent) {
		// Sent after it was reported down: the node is back.
		h.mu.Lock()
		if at, ok := h.mu.down[b.GetFromNode()]; ok && at.Less(sent) {
			delete(h.mu.down, b.GetFromNode())
		}
		h.mu.Unlock()
	}
	// Queue every message first and wake the scheduler once for the batch:
	// a wake-up per message would send workers after groups another worker
	// already took.
	var idsBuf [64]uint64
	ids := idsBuf[:0]
	for _, m := range b.GetMessages() {
		g, err := h.group(m.GetGroupId())
		if errors.Is(err, ErrGroupNotFound) && h.cfg.UnknownGroup != nil && m.GetMessage() != nil {
			h.cfg.UnknownGroup(m.GetGroupId(), m.GetMessage().GetTo(), m.GetMessage().GetFrom(), b.GetFromNode())
			g, err = h.group(m.GetGroupId())
		}
		if err != nil || m.GetMessage() == nil {
			continue
		}
		h.metrics.recv.Add(1)
		g.mu.Lock()
		if g.mu.closed == nil {
			g.mu.work.msgs = append(g.mu.work.msgs, m)
			// Learn where a sender we had no address for lives (an
			// uninitialised replica knows only the node that created it),
			// or its answers to a new leader would go nowhere.
			if from := m.GetMessage().GetFrom(); from != 0 && g.mu.peers[from] == 0 {
				g.mu.peers[from] = b.GetFromNode()
			}
		}
		g.mu.Unlock()
		if len(ids) == 0 || ids[len(ids)-1] != g.id {
			ids = append(ids, g.id)
		}
	}
	h.sched.enqueueAll(ids)
}

// enter registers a transport delivery; false once the host is stopping.
func (h *Host) enter() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.mu.stopped {
		return false
	}
	h.inflight.Add(1)
	return true
}

func (g *group) publishStatus() {
	bs := g.rn.BasicStatus()
	if old := g.status.Load(); old != nil && old.State == bs.RaftState && old.Term == bs.GetTerm() &&
		old.Leader == bs.Lead && old.Commit == bs.GetCommit() && (bs.Lead == 0 || old.LeaderNode == g.nodeOf(bs.Lead)) {
		return // unchanged: spare the allocation
	}
	st := &Status{
		Group:     g.id,
		ReplicaID: g.replicaID,
		State:     bs.RaftState,
		Term:      bs.GetTerm(),
		Leader:    bs.Lead,
		Commit:    bs.GetCommit(),
	}
	if bs.Lead != 0 {
		st.LeaderNode = g.nodeOf(bs.Lead)
	}
	g.status.Store(st)
}
