package raftgroup

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/confchange"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
)

// A worker cycle: take up to MaxBatchGroups groups from the scheduler; for
// each, feed raft its queued work and collect its Ready (and once more for
// the groups queued while it did so); apply the committed
// entries that were durable before the cycle (one batch, no fsync) and
// complete their proposals; stage every group's entries, hard state,
// snapshot and truncation into ONE Pebble batch and commit it with ONE
// fsync (group commit); then, per group, send its acknowledgements and apply
// the rest of its committed entries (all groups into one more batch,
// committed without fsync); then complete proposals and reads. Persist
// before acknowledging, apply only what is durable.

type readyGroup struct {
	g           *group
	rd          raft.Ready
	completions []completion
	snapIn      *incomingSnapshot // the snapshot this Ready applies, if any
	lateMsgs    []*raftpb.Message // messages that must wait for persistence
	truncTo     uint64            // log truncated up to here, if non-zero
	truncTerm   uint64
	destroy     chan error
	work        groupWork // with destroy: the other work taken, to answer
	// applied is how many of rd.CommittedEntries applyDurable applied
	// before the cycle's fsync; failed: the group failed this cycle.
	applied int
	failed  bool
	skip    bool // nothing left to apply after the fsync
}

// completion is a proposal's result, delivered once the apply batch that
// holds its effects is committed.
type completion struct {
	id     CommandID
	result any
}

func (h *Host) worker() {
	defer h.wg.Done()
	var buf []uint64
	var readies []readyGroup
	for {
		ids, ok := h.sched.next(buf)
		if !ok {
			return
		}
		readies, ids = h.cycle(ids, readies[:0])
		buf = ids
		h.sched.done(ids, func(id uint64) bool {
			g, err := h.group(id)
			return err == nil && g.needsCycle()
		})
		// Let the proposers this cycle completed, and the transport, run
		// before the next cycle.
		runtime.Gosched()
	}
}

func (g *group) needsCycle() bool {
	g.mu.Lock()
	closed := g.mu.closed != nil
	g.mu.Unlock()
	return !closed && g.rn.HasReady()
}

// cycle runs one worker cycle over the groups ids, and returns their
// readies and the groups it processed: ids and those it took on the way.
func (h *Host) cycle(ids []uint64, readies []readyGroup) ([]readyGroup, []uint64) {
	batch := h.cfg.DB.NewBatch()
	defer batch.Close()
	readies, mustSync, appended := h.stageAll(ids, batch, readies)
	// The appends and heartbeats just sent go out now rather than when
	// this goroutine next blocks (a goroutine it wakes waits for that).
	runtime.Gosched()
	// What arrived meanwhile (a follower's appends, a leader's
	// acknowledgements, proposals) joins this cycle's batch and fsync
	// instead of waiting a whole cycle for the next; one such pass only, so
	// a steady stream of work cannot hold the fsync back.
	if more := h.sched.poll(ids[len(ids):]); len(more) > 0 {
		n := len(ids)
		ids = append(ids, more...)
		var sync bool
		var app int
		readies, sync, app = h.stageAll(ids[n:], batch, readies)
		mustSync, appended = mustSync || sync, appended+app
		runtime.Gosched()
	}
	// Before the fsync, apply and complete what was durable before this
	// cycle: a leader's newly committed entries need not wait for the fsync
	// of the entries proposed since.
	h.applyDurable(readies)
	if !batch.Empty() {
		opt := pebble.NoSync
		if mustSync {
			opt = pebble.Sync
		}
		start := time.Now()
		if err := batch.Commit(opt); err != nil {
			for _, r := range readies {
				if r.destroy != nil {
					r.destroy <- err
					r.g.answer(r.work, err) // taken with the destroy
					r.g.requeue(r.work)
					h.sched.enqueue(r.g.id)
					continue
				}
				if r.snapIn != nil {
					r.snapIn.done <- snapshotResult{err: err}
				}
				if !r.failed {
					h.failGroup(r.g, fmt.Errorf("persisting raft state: %w", err))
				}
			}
			return readies, ids
		}
		h.metrics.cycles.Add(1)
		if mustSync {
			h.metrics.fsyncs.Add(1)
			if o := h.cfg.Observer; o != nil {
				o.Fsynced(time.Since(start), appended)
			}
		}
		h.metrics.appended.Add(uint64(appended))
	}
	// Apply every group's committed entries into one batch, committed once
	// (no fsync: the log is durable, and entries above a replica's persisted
	// applied index are re-applied after a crash). Proposals and reads
	// complete only after it is committed.
	applyBatch := h.cfg.DB.NewBatch()
	defer applyBatch.Close()
	// First make every group's Ready durable in memory and send the
	// acknowledgements that waited for the fsync, then let the transport
	// take them (once for the whole cycle) before applying.
	acked := false
	for i := range readies {
		r := &readies[i]
		if r.destroy != nil {
			h.finishDestroy(r.g, r.destroy, r.work)
			r.skip = true
			continue
		}
		if r.failed {
			r.skip = true
			continue
		}
		if r.truncTo != 0 {
			r.g.storage.markTruncated(r.truncTo, r.truncTerm)
		}
		if r.rd.HardState == nil && len(r.rd.Entries) == 0 && len(r.rd.Messages) == 0 && len(r.rd.CommittedEntries) == 0 && r.rd.SoftState == nil && raft.IsEmptySnap(r.rd.Snapshot) && len(r.rd.ReadStates) == 0 {
			r.skip = true // only a truncation
			continue
		}
		h.markPersisted(r)
		acked = acked || len(r.lateMsgs) > 0
	}
	if acked {
		runtime.Gosched()
	}
	for i := range readies {
		if r := &readies[i]; !r.skip {
			r.completions = h.afterPersist(r, applyBatch, r.completions[:0])
		}
	}
	if !applyBatch.Empty() {
		if err := applyBatch.Commit(pebble.NoSync); err != nil {
			for _, r := range readies {
				if r.destroy == nil && !r.failed {
					h.failGroup(r.g, fmt.Errorf("committing applied state: %w", err))
				}
			}
			return readies, ids
		}
	}
	for _, r := range readies {
		if r.destroy == nil && !r.failed {
			h.complete(r.g, r.completions)
		}
	}
	return readies, ids
}

// stageAll feeds each group its work and stages its Ready into batch
// (group commit); it reports whether the batch needs an fsync and how many
// entries it appends.
func (h *Host) stageAll(ids []uint64, batch *pebble.Batch, readies []readyGroup) (_ []readyGroup, mustSync bool, appended int) {
	for _, id := range ids {
		g, err := h.group(id)
		if err != nil {
			continue
		}
		w := g.takeWork()
		g.mu.Lock()
		closed := g.mu.closed
		g.mu.Unlock()
		if w.destroy != nil {
			// A destroy runs even on a failed group, so an operator can
			// remove it.
			if err := g.storage.stageDestroy(batch); err != nil {
				w.destroy <- err
				w.destroy = nil
				g.answer(w, err)
				continue
			}
			mustSync = true
			done := w.destroy
			w.destroy = nil
			readies = append(readies, readyGroup{g: g, destroy: done, work: w})
			continue
		}
		if closed != nil {
			g.answer(w, closed)
			continue
		}
		// Each group stages into a batch of its own, merged into the
		// cycle's batch only if every step succeeded: a group that fails
		// halfway leaves nothing of this cycle on disk.
		gb := h.cfg.DB.NewBatch()
		r, sync, err := h.stageGroup(g, &w, gb)
		if err == nil && !gb.Empty() {
			err = batch.Apply(gb, nil)
		}
		gb.Close()
		if err != nil {
			if r.snapIn != nil {
				r.snapIn.done <- snapshotResult{err: err}
			}
			h.failGroup(g, err)
			continue
		}
		if r.g == nil {
			continue // nothing to do this cycle
		}
		mustSync = mustSync || sync
		appended += len(r.rd.Entries)
		readies = append(readies, r)
	}
	return readies, mustSync, appended
}

// durablePrefix returns how many of a Ready's committed entries were
// durable before the cycle: at or below the persisted last index, and below
// the first entry the Ready (over)writes.
//
// Only a leader's count: applying early is for the proposals it completes.
// A follower completes none, and applying before the fsync would only delay
// the acknowledgements it sends after it, which its leader waits for.
func (r *readyGroup) durablePrefix() int {
	if r.destroy != nil || r.snapIn != nil || len(r.rd.CommittedEntries) == 0 {
		return 0
	}
	// The status published after the last cycle (BasicStatus allocates):
	// a replica that became leader in this Ready applies after the fsync,
	// and one that just lost leadership applying early is merely early.
	if r.g.status.Load().State != raft.StateLeader {
		return 0
	}
	_, last := r.g.storage.firstAndLast()
	if len(r.rd.Entries) > 0 {
		last = min(last, r.rd.Entries[0].GetIndex()-1)
	}
	n := 0
	for _, e := range r.rd.CommittedEntries {
		if e.GetIndex() > last {
			break
		}
		n++
	}
	return n
}

// applyDurable applies, into one batch committed without fsync, every
// group's committed entries that were durable before the cycle, and
// completes the proposals they satisfy — without waiting for the cycle's
// fsync. (The persisted commit index may then lag the applied index; a
// restart raises it, see storage.raiseCommit.)
func (h *Host) applyDurable(readies []readyGroup) {
	var b *pebble.Batch
	for i := range readies {
		r := &readies[i]
		n := r.durablePrefix()
		if n == 0 {
			continue
		}
		if b == nil {
			b = h.cfg.DB.NewBatch()
			defer b.Close()
		}
		g := r.g
		gb := h.cfg.DB.NewBatch()
		ents := r.rd.CommittedEntries[:n]
		var err error
		r.completions, err = h.apply(g, ents, gb, r.completions[:0])
		if err == nil {
			err = b.Apply(gb, nil)
		}
		gb.Close()
		if err != nil {
			r.failed = true
			h.failGroup(g, err)
			continue
		}
		r.applied = n
	}
	if b == nil {
		return
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		for i := range readies {
			if r := &readies[i]; r.applied > 0 {
				r.failed = true
				h.failGroup(r.g, fmt.Errorf("committing applied state: %w", err))
			}
		}
		return
	}
	for i := range readies {
		if r := &readies[i]; r.applied > 0 {
			h.finishApplied(r.g, r.completions)
			r.completions = r.completions[:0]
		}
	}
}

// stageGroup feeds a group its queued work and stages what its Ready must
// persist into b. It returns the group's readyGroup (r.g nil when there is
// nothing to do), whether the batch needs an fsync, or an error that fails
// the group.
func (h *Host) stageGroup(g *group, w *groupWork, b *pebble.Batch) (r readyGroup, sync bool, err error) {
	snaps := h.feed(g, w)
	defer declineSnapshots(snaps, nil) // all but the one applied, if any
	r.g = g
	if w.truncate != 0 {
		r.truncTo, r.truncTerm = h.stageTruncation(g, b, w.truncate)
	}
	if !g.rn.HasReady() {
		if r.truncTo == 0 {
			r.g = nil
		}
		return r, false, nil
	}
	r.rd = g.rn.Ready()
	if !raft.IsEmptySnap(r.rd.Snapshot) {
		r.snapIn = matchSnapshot(snaps, r.rd.Snapshot)
		if r.snapIn == nil {
			return r, false, errors.New("raft applied a snapshot whose data is not here")
		}
		if err := h.stageSnapshot(g, b, r.rd.Snapshot, r.snapIn); err != nil {
			return r, false, fmt.Errorf("applying snapshot: %w", err)
		}
		sync = true
	}
	r.lateMsgs = h.sendEarly(g, r.rd.Messages)
	if err := g.storage.stage(b, r.rd.HardState, r.rd.Entries, r.snapIn != nil); err != nil {
		return r, false, fmt.Errorf("staging raft state: %w", err)
	}
	h.checkDroppedConfChanges(g, r.rd.Entries)
	prev := g.storage.hardState()
	sync = sync || raft.MustSync(hardStateOr(r.rd.HardState, prev), prev, len(r.rd.Entries))
	return r, sync, nil
}

func hardStateOr(hs, prev *raftpb.HardState) *raftpb.HardState {
	if hs == nil {
		if prev == nil {
			return &raftpb.HardState{}
		}
		return prev
	}
	return hs
}

// feed hands raft everything queued for the group since its last cycle. It
// returns the incoming snapshots it stepped, to match against the Ready.
func (h *Host) feed(g *group, w *groupWork) []*incomingSnapshot {
	if len(w.props) > 0 || len(w.reads) > 0 || w.campaign || w.transfer != 0 || len(w.snapsIn) > 0 {
		h.unquiesce(g)
	}
	for _, m := range w.msgs {
		if !isQuietMessage(m) {
			h.unquiesce(g)
		}
		g.noteHeard(m.GetMessage().GetFrom())
		// Errors here are messages raft ignores (from removed peers, stale
		// terms); nothing to do about them.
		_ = g.rn.Step(m.GetMessage())
		if m.GetQuiesce() {
			h.maybeQuiesceFollower(g, m.GetMessage())
		}
	}
	// Ticks queued before the group quiesced (Tick skips a quiesced group)
	// are dropped: a quiesced leader that ticked would heartbeat without the
	// quiesce mark, waking followers it then leaves without heartbeats
	// until they elect another leader.
	if g.quiesced.Load() {
		w.ticks = 0
	}
	g.tickedThisCycle = w.ticks > 0
	for i := 0; i < w.ticks && i < 2*h.cfg.ElectionTicks; i++ {
		g.rn.Tick()
		g.ticks++
	}
	for _, id := range w.unreachable {
		g.rn.ReportUnreachable(id)
	}
	for _, r := range w.snapReports {
		status := raft.SnapshotFinish
		if !r.ok {
			status = raft.SnapshotFailure
		}
		g.rn.ReportSnapshot(r.replica, status)
	}
	for _, s := range w.snapsIn {
		_ = g.rn.Step(s.msg)
	}
	if w.campaign {
		_ = g.rn.Campaign()
	}
	if w.transfer != 0 {
		g.rn.TransferLeader(w.transfer)
	}
	h.proposeAll(g, w.props)
	for _, r := range w.reads {
		bs := g.rn.BasicStatus()
		r.term, r.lead = bs.GetTerm(), bs.Lead
		g.rn.ReadIndex(r.rctx[:])
		g.pendingRead = append(g.pendingRead, r)
	}
	return w.snapsIn
}

// proposeAll hands queued proposals to raft. Consecutive commands go in one
// MsgProp, so raft appends them together and sends each follower one
// append for all of them rather than one per command; membership changes
// go one by one, in their place.
func (h *Host) proposeAll(g *group, props []*proposal) {
	if len(props) == 0 {
		return
	}
	bs := g.rn.BasicStatus()
	if bs.RaftState != raft.StateLeader {
		err := &NotProposedError{Group: g.id, Reason: ErrNotLeader, LeaderReplica: bs.Lead, LeaderNode: g.nodeOf(bs.Lead)}
		for _, p := range props {
			p.finish(proposalResult{err: err})
		}
		return
	}
	now := time.Now()
	var dups []*proposal
	g.mu.Lock()
	kept := props[:0]
	for _, p := range props {
		if _, dup := g.mu.pending[p.id]; dup {
			// Queued while a command with its ID was between the queue and
			// the pending set: proposing it would orphan one of the two.
			dups = append(dups, p)
			continue
		}
		p.term, p.proposedAt = bs.GetTerm(), now
		g.mu.pending[p.id] = p
		kept = append(kept, p)
	}
	g.mu.Unlock()
	for _, p := range dups {
		p.finish(proposalResult{err: &NotProposedError{Group: g.id, Reason: fmt.Errorf("command %s is already pending", p.id)}})
	}
	props = kept
	dropped := func(ps []*proposal) {
		g.mu.Lock()
		for _, p := range ps {
			delete(g.mu.pending, p.id)
		}
		g.mu.Unlock()
		for _, p := range ps {
			p.finish(proposalResult{err: &NotProposedError{Group: g.id, Reason: ErrDropped}})
		}
	}
	var run []*proposal // consecutive commands not yet stepped
	flush := func() {
		if len(run) == 0 {
			return
		}
		ents := make([]*raftpb.Entry, len(run))
		for i, p := range run {
			ents[i] = &raftpb.Entry{Data: p.data}
		}
		err := g.rn.Step(&raftpb.Message{Type: raftpb.MessageType_MsgProp.Enum(), From: proto.Uint64(g.replicaID), Entries: ents})
		if err != nil {
			dropped(run)
		} else {
			h.metrics.proposals.Add(uint64(len(run)))
		}
		run = run[:0]
	}
	for _, p := range props {
		if p.cc == nil {
			run = append(run, p)
			continue
		}
		flush()
		if err := checkConfChange(g.storage.currentConfState(), p.cc); err != nil {
			g.mu.Lock()
			delete(g.mu.pending, p.id)
			reason := fmt.Errorf("%w: %v", ErrInvalidConfChange, err)
			for _, q := range g.mu.pending {
				if q.cc != nil {
					// Checked against the membership before a change still
					// pending: raft would refuse it for that reason.
					reason = ErrConfChangeInProgress
					break
				}
			}
			g.mu.Unlock()
			p.finish(proposalResult{err: &NotProposedError{Group: g.id, Reason: reason}})
			continue
		}
		if err := g.rn.ProposeConfChange(p.cc); err != nil {
			dropped([]*proposal{p})
			continue
		}
		h.metrics.proposals.Add(1)
	}
	flush()
}

// checkDroppedConfChanges ends membership-change proposals raft silently
// turned into empty entries (it does so while another change is pending):
// they are in the entries it just appended, or they were dropped.
func (h *Host) checkDroppedConfChanges(g *group, appended []*raftpb.Entry) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, p := range g.mu.pending {
		if p.cc == nil || p.ccChecked {
			continue
		}
		p.ccChecked = true
		found := false
		for _, e := range appended {
			if e.GetType() == raftpb.EntryConfChangeV2 {
				var cc raftpb.ConfChangeV2
				if proto.Unmarshal(e.GetData(), &cc) == nil && bytes.Equal(cc.GetContext(), id[:]) {
					found = true
					break
				}
			}
		}
		if !found {
			delete(g.mu.pending, id)
			p.finish(proposalResult{err: &NotProposedError{Group: g.id, Reason: ErrConfChangeInProgress}})
		}
	}
}

// markPersisted runs once the group's Ready is durable: it records that in
// the storage's view and sends the messages that waited for it.
func (h *Host) markPersisted(r *readyGroup) {
	g, rd := r.g, r.rd
	if r.snapIn != nil {
		g.storage.markSnapshot(rd.Snapshot)
		g.appliedUncommitted = rd.Snapshot.GetMetadata().GetIndex()
		h.metrics.snapshotsApplied.Add(1)
		r.snapIn.done <- snapshotResult{applied: true}
	}
	g.storage.markDurable(rd.HardState, rd.Entries)
	h.send(g, r.lateMsgs)
}

// afterPersist applies a durable Ready's committed entries into the shared
// apply batch, notes its read states and advances raft.
func (h *Host) afterPersist(r *readyGroup, applyBatch *pebble.Batch, done []completion) []completion {
	g, rd := r.g, r.rd

	for _, rs := range rd.ReadStates {
		for _, pr := range g.pendingRead {
			if string(pr.rctx[:]) == string(rs.RequestCtx) {
				pr.index = rs.Index
			}
		}
	}
	if ents := rd.CommittedEntries[r.applied:]; len(ents) > 0 {
		// The group's applies go into a batch of their own, merged only if
		// the state machine succeeded: a failure leaves none of its writes.
		gb := h.cfg.DB.NewBatch()
		var err error
		done, err = h.apply(g, ents, gb, done)
		if err == nil && !gb.Empty() {
			err = applyBatch.Apply(gb, nil)
		}
		gb.Close()
		if err != nil {
			h.failGroup(g, err)
			return nil
		}
	}
	g.rn.Advance(rd)
	return done
}

// complete finishes the proposals and reads a cycle satisfied, once their
// effects are committed, and decides whether the group may quiesce.
func (h *Host) complete(g *group, done []completion) {
	if !h.finishApplied(g, done) {
		return
	}
	g.publishStatus()
	g.publishProgress()
	h.checkLeadership(g)
	h.finishReads(g)
	h.maybeTruncate(g)
	h.maybeQuiesceLeader(g)
}

// finishApplied runs once an apply batch is committed: it calls the state
// machine's AppliedHook, finishes the proposals the batch satisfied and
// publishes the applied index. It returns false if the group failed.
func (h *Host) finishApplied(g *group, done []completion) bool {
	if hook, ok := g.sm.(AppliedHook); ok && g.appliedUncommitted > g.applied.Load() {
		hook.Applied(g.id)
	}
	g.mu.Lock()
	failed := g.mu.closed != nil
	var now time.Time
	for _, c := range done {
		if p, ok := g.mu.pending[c.id]; ok {
			delete(g.mu.pending, c.id)
			// The observer hears of it before the proposer is told, so
			// whoever waits on the proposal sees it counted.
			if o := h.cfg.Observer; o != nil {
				if now.IsZero() {
					now = time.Now()
				}
				o.ProposalApplied(now.Sub(p.proposedAt))
			}
			p.finish(proposalResult{result: c.result})
		}
	}
	g.mu.Unlock()
	if failed {
		return false
	}
	g.applied.Store(g.appliedUncommitted)
	return true
}

func (h *Host) apply(g *group, committed []*raftpb.Entry, b *pebble.Batch, done []completion) ([]completion, error) {
	ents := make([]Entry, 0, len(committed))
	for _, e := range committed {
		ent := Entry{Index: e.GetIndex(), Term: e.GetTerm()}
		switch e.GetType() {
		case raftpb.EntryNormal:
			if len(e.GetData()) == 0 {
				ent.Type = EntryEmpty
				break
			}
			id, payload, err := decodeCommand(e.GetData())
			if err != nil {
				return nil, fmt.Errorf("entry %d: %w", e.GetIndex(), err)
			}
			ent.Type, ent.ID, ent.Command = EntryCommand, id, payload
		case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
			cc, err := decodeConfChange(e)
			if err != nil {
				return nil, fmt.Errorf("entry %d: %w", e.GetIndex(), err)
			}
			if err := checkConfChange(g.storage.currentConfState(), cc); err != nil {
				// raft would panic applying it (and again after every
				// restart). Every replica finds it invalid against the same
				// configuration and skips it alike; its proposer gets the
				// error. (Propose refuses such changes; this covers any
				// committed before it did.)
				h.log.Error("committed membership change is invalid; skipped", "range", g.id, "index", e.GetIndex(), "err", err)
				ent.Type = EntryEmpty
				if len(cc.GetContext()) == len(CommandID{}) {
					copy(ent.ID[:], cc.GetContext())
					ent.Result = fmt.Errorf("%w: %v", ErrInvalidConfChange, err)
				}
				break
			}
			cs := g.rn.ApplyConfChange(cc)
			g.storage.setConfState(cs)
			ent.Type, ent.ConfChange, ent.ConfState = EntryConfChange, cc, cs
			if len(cc.GetContext()) == len(CommandID{}) {
				copy(ent.ID[:], cc.GetContext())
				ent.Result = cs
			}
		default:
			return nil, fmt.Errorf("entry %d: unknown entry type %v", e.GetIndex(), e.GetType())
		}
		ents = append(ents, ent)
	}
	if err := g.sm.Apply(g.id, ents, b); err != nil {
		return nil, fmt.Errorf("state machine: %w", err)
	}
	g.appliedUncommitted = ents[len(ents)-1].Index
	h.metrics.applied.Add(uint64(len(ents)))
	for i := range ents {
		if !ents[i].ID.IsEmpty() {
			done = append(done, completion{id: ents[i].ID, result: ents[i].Result})
		}
	}
	return done, nil
}

func decodeConfChange(e *raftpb.Entry) (*raftpb.ConfChangeV2, error) {
	if e.GetType() == raftpb.EntryConfChange {
		var cc raftpb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return nil, fmt.Errorf("corrupt conf change: %w", err)
		}
		return cc.AsV2(), nil
	}
	cc := &raftpb.ConfChangeV2{}
	if err := proto.Unmarshal(e.GetData(), cc); err != nil {
		return nil, fmt.Errorf("corrupt conf change: %w", err)
	}
	return cc, nil
}

// finishReads completes read-index requests whose index has been applied.
func (h *Host) finishReads(g *group) {
	if len(g.pendingRead) == 0 {
		return
	}
	applied := g.applied.Load()
	st := g.status.Load()
	kept := g.pendingRead[:0]
	for _, r := range g.pendingRead {
		switch {
		case r.abandoned.Load():
			// The caller gave up; forget it.
		case r.index != 0 && r.index <= applied:
			r.finish(nil)
		case r.index == 0 && (st.Term != r.term || st.Leader != r.lead):
			// Raft drops a read request when leadership moves before it is
			// confirmed; it will never answer.
			r.finish(ErrLeaderChanged)
		default:
			kept = append(kept, r)
		}
	}
	clear(g.pendingRead[len(kept):])
	g.pendingRead = kept
}

// checkLeadership ends pending proposals whose outcome this replica can no
// longer learn: it stopped being the leader of the term they were proposed in.
func (h *Host) checkLeadership(g *group) {
	st := g.status.Load()
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, p := range g.mu.pending {
		if st.State != raft.StateLeader || st.Term != p.term {
			delete(g.mu.pending, id)
			p.finish(proposalResult{err: &OutcomeUnknownError{Group: g.id, ID: id, Reason: ErrLeaderChanged}})
		}
	}
}

// failGroup stops processing a group whose storage or state machine
// failed, and answers everything waiting on it (worker-only).
func (h *Host) failGroup(g *group, err error) {
	h.log.Error("raft group failed; it stops processing", "range", g.id, "err", err)
	ferr := fmt.Errorf("%w: %v", ErrGroupFailed, err)
	g.mu.Lock()
	w := g.closeLocked(ferr)
	g.mu.Unlock()
	g.answer(w, ferr)
	g.failReads(ferr)
}

// sendEarly sends, before the cycle's batch is persisted, the messages
// whose meaning does not depend on it — a leader's appends and heartbeats, a
// candidate's vote requests — so a leader's own fsync overlaps its
// followers' (Raft thesis §10.2.1; etcd raft counts the leader's own entries
// toward commit only after Advance). It returns the rest: responses that
// acknowledge log entries or votes, which must wait until they are durable.
func (h *Host) sendEarly(g *group, msgs []*raftpb.Message) (late []*raftpb.Message) {
	// The early ones are moved to the front of the Ready's slice (ours to
	// reuse), keeping their order; the late ones are copied out.
	n := 0
	for _, m := range msgs {
		switch m.GetType() {
		case raftpb.MsgAppResp, raftpb.MsgVoteResp, raftpb.MsgPreVoteResp, raftpb.MsgSnap:
			late = append(late, m)
		default:
			msgs[n] = m
			n++
		}
	}
	h.send(g, msgs[:n])
	return late
}

func (h *Host) send(g *group, msgs []*raftpb.Message) {
	// The transport's envelopes, one allocation for all of them.
	envs := make([]api.RaftMessage, len(msgs))
	for i, m := range msgs {
		if m.GetType() == raftpb.MsgSnap {
			h.startSnapshot(g, m)
			continue
		}
		if m.GetType() == raftpb.MsgHeartbeat && g.heartbeatRedundant(m) {
			h.metrics.heartbeatsElided.Add(1)
			continue
		}
		to := g.nodeOf(m.GetTo())
		if to == 0 {
			h.metrics.dropped.Add(1)
			continue
		}
		env := &envs[i]
		env.GroupId, env.Message = g.id, m
		if h.maybeHold(g, to, env) {
			continue
		}
		h.notices.replace(g.id, m)
		if !h.cfg.Transport.Send(to, env) {
			h.metrics.dropped.Add(1)
			g.rn.ReportUnreachable(m.GetTo())
			continue
		}
		h.metrics.sent.Add(1)
		if m.GetType() == raftpb.MsgApp {
			g.noteAppend(m)
		}
	}
}

// appendSent is the term and commit index of the last append a leader sent
// a follower since its last heartbeat to it.
type appendSent struct{ term, commit uint64 }

// noteAppend records an append sent (worker-only).
func (g *group) noteAppend(m *raftpb.Message) {
	if g.appendsSent == nil {
		g.appendsSent = make(map[uint64]appendSent)
	}
	g.appendsSent[m.GetTo()] = appendSent{m.GetTerm(), m.GetCommit()}
}

// heartbeatRedundant reports whether a heartbeat tells its follower nothing
// an append sent since the previous heartbeat did not (worker-only): with
// appends flowing, they already reset the follower's election timer,
// prompt the responses that keep it recently active, and carry the commit
// index, so under load a heartbeat per group per tick is pure overhead.
// Heartbeats with a context (ReadIndex confirmations) always go, and every
// other heartbeat round goes out if no append did in between, so a lost
// append is still noticed (the heartbeat response makes raft resend).
func (g *group) heartbeatRedundant(m *raftpb.Message) bool {
	if len(m.GetContext()) > 0 || g.appendsSent == nil {
		return false
	}
	a, ok := g.appendsSent[m.GetTo()]
	delete(g.appendsSent, m.GetTo())
	return ok && a.term == m.GetTerm() && a.commit >= m.GetCommit()
}

// publishProgress records, on a leader, each member's match index, once per
// tick (worker-only).
func (g *group) publishProgress() {
	if !g.tickedThisCycle {
		return
	}
	if g.rn.BasicStatus().RaftState != raft.StateLeader {
		g.progress.Store(nil)
		return
	}
	m := make(map[uint64]uint64)
	g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		m[id] = pr.Match
	})
	g.progress.Store(&m)
}

// checkConfChange reports whether raft could apply cc to the membership cs:
// raft panics on a change it cannot apply (removing every voter, changing
// two voters without joint consensus, leaving a joint configuration that is
// not one, ...).
func checkConfChange(cs *raftpb.ConfState, cc *raftpb.ConfChangeV2) error {
	cfg, prs, err := confchange.Restore(confchange.Changer{Tracker: tracker.MakeProgressTracker(1, 0), LastIndex: 1}, cs)
	if err != nil {
		return err
	}
	trk := tracker.MakeProgressTracker(1, 0)
	trk.Config, trk.Progress = cfg, prs
	chg := confchange.Changer{Tracker: trk, LastIndex: 1}
	if cc.LeaveJoint() {
		_, _, err = chg.LeaveJoint()
	} else if autoLeave, ok := cc.EnterJoint(); ok {
		_, _, err = chg.EnterJoint(autoLeave, cc.GetChanges()...)
	} else {
		_, _, err = chg.Simple(cc.GetChanges()...)
	}
	return err
}
