package raftgroup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
)

// This file is the lifecycle half of raftgroup: snapshots, log truncation,
// membership changes, destroying a replica, and quiescence.

// ---- Snapshots ----------------------------------------------------------

// incomingSnapshot is a snapshot fully received from a leader, waiting for
// the worker to step it into raft and, if raft accepts it, apply it.
type incomingSnapshot struct {
	msg      *raftpb.Message
	data     []byte
	done     chan snapshotResult
	answered bool // worker-only
}

type snapshotResult struct {
	applied bool
	err     error
}

const (
	minSnapshotBackoff = 100 * time.Millisecond
	maxSnapshotBackoff = 5 * time.Second
)

// ErrSnapshotTooLarge is returned when a snapshot exceeds MaxSnapshotBytes.
var ErrSnapshotTooLarge = errors.New("raftgroup: snapshot larger than the configured limit")

func matchSnapshot(snaps []*incomingSnapshot, snap *raftpb.Snapshot) *incomingSnapshot {
	md := snap.GetMetadata()
	for _, s := range snaps {
		smd := s.msg.GetSnapshot().GetMetadata()
		if !s.answered && smd.GetIndex() == md.GetIndex() && smd.GetTerm() == md.GetTerm() {
			s.answered = true
			return s
		}
	}
	return nil
}

// declineSnapshots answers every incoming snapshot raft did not apply.
func declineSnapshots(snaps []*incomingSnapshot, err error) {
	for _, s := range snaps {
		if !s.answered {
			s.answered = true
			s.done <- snapshotResult{err: err}
		}
	}
}

func (h *Host) stageSnapshot(g *group, b *pebble.Batch, snap *raftpb.Snapshot, in *incomingSnapshot) error {
	if err := g.storage.stageSnapshot(b, snap); err != nil {
		return err
	}
	md := snap.GetMetadata()
	meta := SnapshotMeta{Index: md.GetIndex(), Term: md.GetTerm(), ConfState: md.GetConfState()}
	return g.sm.ApplySnapshot(g.id, meta, bytes.NewReader(in.data), b)
}

// startSnapshot sends a snapshot for raft's MsgSnap on its own goroutine,
// so neither the worker nor the message stream waits for it. At most one
// snapshot is in flight per follower; after a failure the next attempt
// waits (exponential backoff).
func (h *Host) startSnapshot(g *group, m *raftpb.Message) {
	to := g.nodeOf(m.GetTo())
	g.mu.Lock()
	if _, busy := g.mu.snapsOut[m.GetTo()]; to == 0 || busy {
		g.mu.Unlock()
		if to == 0 {
			g.rn.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
		}
		return
	}
	g.mu.snapsOut[m.GetTo()] = 0 // index not known yet: truncation waits
	backoff := g.mu.backoff[m.GetTo()]
	g.mu.Unlock()

	h.snapWG.Add(1)
	go func() {
		defer h.snapWG.Done()
		ok := false
		if backoff > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-h.stopCtx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if h.stopCtx.Err() == nil {
			applied, err := h.sendSnapshot(g, to, m)
			if err != nil {
				h.metrics.snapshotsFailed.Add(1)
				h.log.Warn("sending raft snapshot failed; will retry", "range", g.id, "to", to, "err", err)
			}
			ok = applied && err == nil
			if ok {
				h.metrics.snapshotsSent.Add(1)
			}
		}
		g.mu.Lock()
		idx := g.mu.snapsOut[m.GetTo()]
		delete(g.mu.snapsOut, m.GetTo())
		if ok {
			delete(g.mu.backoff, m.GetTo())
			// Its acknowledgement comes by the message stream, later:
			// until then raft still has the follower where it was.
			g.mu.snapsSent[m.GetTo()] = idx
		} else {
			g.mu.backoff[m.GetTo()] = min(max(2*backoff, minSnapshotBackoff), maxSnapshotBackoff)
		}
		g.mu.work.snapReports = append(g.mu.work.snapReports, snapReport{replica: m.GetTo(), ok: ok})
		g.mu.Unlock()
		h.sched.enqueue(g.id)
	}()
}

func (h *Host) sendSnapshot(g *group, toNode uint64, m *raftpb.Message) (bool, error) {
	sd, err := g.sm.Snapshot(g.id)
	if err != nil {
		return false, fmt.Errorf("state machine snapshot: %w", err)
	}
	defer sd.Data.Close()
	// From here truncation keeps the entries after the snapshot's index:
	// the follower continues from there (and its term is read just below).
	g.mu.Lock()
	g.mu.snapsOut[m.GetTo()] = sd.Index
	g.mu.Unlock()
	if sd.Size > h.cfg.MaxSnapshotBytes {
		return false, ErrSnapshotTooLarge
	}
	term, err := g.storage.Term(sd.Index)
	if err != nil {
		return false, fmt.Errorf("term of snapshot index %d: %w", sd.Index, err)
	}
	msg := proto.Clone(m).(*raftpb.Message)
	msg.Snapshot = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		Index: proto.Uint64(sd.Index), Term: proto.Uint64(term), ConfState: sd.ConfState,
	}}
	now := h.cfg.Clock.Now()
	hdr := &api.SnapshotHeader{
		FromNode: h.cfg.NodeID, ToNode: toNode, GroupId: g.id, Message: msg,
		SenderWallTime: now.WallTime, SenderLogical: now.Logical, Size: uint64(max(sd.Size, 0)),
	}
	data := &limitedReader{r: sd.Data, left: h.cfg.MaxSnapshotBytes}
	return h.cfg.Transport.SendSnapshot(h.stopCtx, toNode, hdr, data)
}

type limitedReader struct {
	r    io.Reader
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, ErrSnapshotTooLarge
	}
	return n, err
}

// HandleSnapshot is called by the transport with a snapshot fully received
// from a leader. It returns once the replica applied it durably (true), raft
// declined it as stale (false, nil), or it failed.
func (h *Host) HandleSnapshot(ctx context.Context, hdr *api.SnapshotHeader, data []byte) (bool, error) {
	if hdr.GetToNode() != h.cfg.NodeID {
		return false, fmt.Errorf("raftgroup: snapshot for node %d arrived at node %d", hdr.GetToNode(), h.cfg.NodeID)
	}
	if int64(len(data)) > h.cfg.MaxSnapshotBytes {
		return false, ErrSnapshotTooLarge
	}
	if !h.enter() {
		return false, ErrStopped
	}
	defer h.inflight.Done()
	if err := h.cfg.Clock.Update(hlc.Timestamp{WallTime: hdr.GetSenderWallTime(), Logical: hdr.GetSenderLogical()}); err != nil {
		return false, err
	}
	m := hdr.GetMessage()
	if m.GetType() != raftpb.MsgSnap || m.GetSnapshot().GetMetadata().GetIndex() == 0 {
		return false, errors.New("raftgroup: snapshot stream without a MsgSnap")
	}
	g, err := h.group(hdr.GetGroupId())
	if errors.Is(err, ErrGroupNotFound) && h.cfg.UnknownGroup != nil {
		h.cfg.UnknownGroup(hdr.GetGroupId(), m.GetTo(), m.GetFrom(), hdr.GetFromNode())
		g, err = h.group(hdr.GetGroupId())
	}
	if err != nil {
		return false, fmt.Errorf("raftgroup: snapshot for group %d: %w", hdr.GetGroupId(), err)
	}
	if f, ok := g.sm.(SnapshotFilter); ok {
		md := m.GetSnapshot().GetMetadata()
		if !f.AcceptSnapshot(g.id, SnapshotMeta{Index: md.GetIndex(), Term: md.GetTerm(), ConfState: md.GetConfState()}, data) {
			return false, nil
		}
	}
	in := &incomingSnapshot{msg: m, data: data, done: make(chan snapshotResult, 1)}
	g.mu.Lock()
	if err := g.mu.closed; err != nil {
		g.mu.Unlock()
		return false, fmt.Errorf("raftgroup: snapshot for group %d: %w", hdr.GetGroupId(), err)
	}
	g.mu.work.snapsIn = append(g.mu.work.snapsIn, in)
	g.mu.Unlock()
	h.sched.enqueue(g.id)
	select {
	case r := <-in.done:
		return r.applied, r.err
	case <-ctx.Done():
		return false, ctx.Err()
	case <-h.stopping:
		// Stop waits for this delivery, and a stopped host's workers skip
		// its groups: waiting on would deadlock. Stop answers the queued
		// snapshot.
		return false, fmt.Errorf("raftgroup: snapshot for group %d: %w", hdr.GetGroupId(), ErrStopped)
	}
}

// ---- Log truncation (Low-Water Mark) --------------------------------------

// TruncationPolicy is the default rule for keeping raft logs short. Each
// replica applies it to its own log after applying entries.
type TruncationPolicy struct {
	// MinEntries: truncate only once at least this many applied entries sit
	// in the log (default 64), so truncation is batched.
	MinEntries uint64
	// MaxLagEntries: a leader keeps entries a live follower (heard from
	// within two election timeouts) still needs, unless that follower is
	// more than this many entries behind (default 10,000); then the follower
	// gets a snapshot instead. While a snapshot is on its way, the leader
	// keeps the entries after its index.
	MaxLagEntries uint64
}

func (p *TruncationPolicy) setDefaults() {
	if p.MinEntries == 0 {
		p.MinEntries = 64
	}
	if p.MaxLagEntries == 0 {
		p.MaxLagEntries = 10000
	}
}

// Truncate deletes a group's log entries up to and including index (never
// past what this replica has applied). It returns at once; the truncation is
// persisted in the group's next cycle.
func (h *Host) Truncate(groupID, index uint64) error {
	g, err := h.group(groupID)
	if err != nil {
		return fmt.Errorf("raftgroup: group %d: %w", groupID, err)
	}
	g.mu.Lock()
	g.mu.work.truncate = max(g.mu.work.truncate, index)
	g.mu.Unlock()
	h.sched.enqueue(groupID)
	return nil
}

// stageTruncation stages a truncation to min(index, applied); it returns the
// index and its term, or zeros if there is nothing to truncate.
func (h *Host) stageTruncation(g *group, b *pebble.Batch, index uint64) (uint64, uint64) {
	index = min(index, g.applied.Load())
	first, _ := g.storage.firstAndLast()
	if index < first {
		return 0, 0
	}
	term, err := g.storage.stageTruncation(b, index)
	if err != nil {
		h.log.Warn("raft log truncation skipped", "range", g.id, "index", index, "err", err)
		return 0, 0
	}
	h.metrics.truncations.Add(1)
	return index, term
}

// maybeTruncate applies the host's TruncationPolicy to a group.
func (h *Host) maybeTruncate(g *group) {
	p := h.cfg.Truncation
	if p == nil {
		return
	}
	applied := g.applied.Load()
	first, _ := g.storage.firstAndLast()
	if applied+1 < first+p.MinEntries {
		return
	}
	target := applied
	if g.rn.BasicStatus().RaftState == raft.StateLeader {
		// Keep what a live follower within MaxLagEntries still needs; one
		// not heard from for two election timeouts gets a snapshot later.
		// And keep what follows a snapshot to a live follower, from when it is
		// taken until the follower acknowledges its index: the follower
		// continues from there. (Until the snapshot is taken its index is
		// not known, and nothing is truncated.)
		live := 2 * h.cfg.ElectionTicks
		g.mu.Lock()
		g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
			if id == g.replicaID || !g.heardRecently(id, live) {
				return
			}
			if pr.Match < target && applied-pr.Match <= p.MaxLagEntries {
				target = pr.Match
			}
			if idx, ok := g.mu.snapsSent[id]; ok {
				if pr.Match >= idx {
					delete(g.mu.snapsSent, id) // acknowledged
				} else {
					target = min(target, idx)
				}
			}
		})
		for id, idx := range g.mu.snapsOut {
			if g.heardRecently(id, live) {
				target = min(target, idx)
			}
		}
		for id := range g.mu.snapsSent {
			if !g.heardRecently(id, live) {
				delete(g.mu.snapsSent, id)
			}
		}
		g.mu.Unlock()
	} else {
		g.mu.Lock()
		clear(g.mu.snapsSent)
		g.mu.Unlock()
	}
	if target+1 < first+p.MinEntries/2 {
		return
	}
	g.mu.Lock()
	g.mu.work.truncate = max(g.mu.work.truncate, target)
	g.mu.Unlock()
	h.sched.enqueue(g.id)
}

// ---- Membership -----------------------------------------------------------

// ProposeConfChange proposes a membership change (ConfChangeV2: add or
// remove voters and learners, joint consensus when it changes more than one
// voter) and returns once it applied on this replica, with the resulting
// membership. Errors are classified as for Propose; ErrConfChangeInProgress
// (not proposed) means another change has not applied yet, and
// ErrInvalidConfChange (not proposed) that raft could not apply this one to
// the current membership.
//
// The replica → node map of every member must already include added
// replicas (SetPeers), so messages can reach them; a replica added on a new
// node must exist there, uninitialised, to receive its snapshot.
func (h *Host) ProposeConfChange(ctx context.Context, groupID uint64, cc *raftpb.ConfChangeV2) (*raftpb.ConfState, error) {
	id := NewCommandID()
	cc = proto.Clone(cc).(*raftpb.ConfChangeV2)
	cc.Context = id[:]
	res, err := h.propose(ctx, groupID, &proposal{id: id, cc: cc, doneCh: make(chan proposalResult, 1)})
	if err != nil {
		return nil, err
	}
	if err, ok := res.(error); ok {
		// Committed, but invalid: every replica skipped it, it changed
		// nothing.
		return nil, &NotProposedError{Group: groupID, Reason: err}
	}
	cs, _ := res.(*raftpb.ConfState)
	return cs, nil
}

// DestroyGroup removes a replica from this host and deletes all of its raft
// state (log, hard state, truncated state) durably. The caller deletes the
// state machine's data. Pending proposals end with an ambiguous outcome.
func (h *Host) DestroyGroup(ctx context.Context, groupID uint64) error {
	g, err := h.group(groupID)
	if err != nil {
		return fmt.Errorf("raftgroup: group %d: %w", groupID, err)
	}
	done := make(chan error, 1)
	g.mu.Lock()
	if g.mu.work.destroy != nil || errors.Is(g.mu.closed, ErrGroupDestroyed) {
		g.mu.Unlock()
		return fmt.Errorf("raftgroup: group %d is already being destroyed", groupID)
	}
	g.mu.work.destroy = done
	g.mu.Unlock()
	h.sched.enqueue(groupID)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Host) finishDestroy(g *group, done chan error, taken groupWork) {
	h.mu.Lock()
	if h.mu.groups[g.id] == g {
		delete(h.mu.groups, g.id)
	}
	h.mu.Unlock()
	h.notices.forget(g.id)
	g.mu.Lock()
	g.mu.closed = ErrGroupDestroyed // replaces a failure: the group is gone
	w := g.closeLocked(ErrGroupDestroyed)
	// A second DestroyGroup that came while this one ran (it saw no destroy
	// queued) got what it asked for: nothing will process the group again.
	again := g.mu.work.destroy
	g.mu.work.destroy = nil
	g.mu.Unlock()
	g.answer(taken, ErrGroupDestroyed)
	g.answer(w, ErrGroupDestroyed)
	g.failReads(ErrGroupDestroyed)
	done <- nil
	if again != nil {
		again <- nil
	}
}

// ---- Quiescence ------------------------------------------------------------

// A leader whose followers have every entry, with nothing pending, stops
// ticking and tells its followers to stop too with a heartbeat marked
// quiesce; an idle group then costs nothing. It wakes on a proposal, a read,
// any message other than those quiesce heartbeats and their responses, or
// when the caller reports (ReportNodeDown) that the node of its leader died
// — without that, a quiesced group would never notice and never elect.

func isQuietMessage(m *api.RaftMessage) bool {
	return m.GetQuiesce() || m.GetMessage().GetType() == raftpb.MsgHeartbeatResp
}

func (h *Host) unquiesce(g *group) {
	g.quiesced.Store(false)
}

// maybeQuiesceLeader quiesces a leader that is idle and fully replicated.
func (h *Host) maybeQuiesceLeader(g *group) {
	if !g.tickedThisCycle || g.quiesced.Load() || g.rn.HasReady() || len(g.pendingRead) > 0 {
		return
	}
	st := g.rn.Status()
	if st.RaftState != raft.StateLeader || st.LeadTransferee != 0 {
		return
	}
	_, last := g.storage.firstAndLast()
	if st.GetCommit() != last || st.Applied != last {
		return
	}
	g.mu.Lock()
	busy := len(g.mu.pending) > 0 || len(g.mu.work.props) > 0 || len(g.mu.work.reads) > 0 || len(g.mu.snapsOut) > 0
	g.mu.Unlock()
	if busy {
		return
	}
	for id, pr := range st.Progress {
		if id == g.replicaID {
			continue
		}
		if pr.Match != last || !pr.RecentActive || pr.IsPaused() {
			return
		}
	}
	g.quiesced.Store(true)
	h.metrics.quiesced.Add(1)
	for id := range st.Progress {
		if id == g.replicaID {
			continue
		}
		to := g.nodeOf(id)
		if to == 0 {
			continue
		}
		hb := &raftpb.Message{
			Type: raftpb.MsgHeartbeat.Enum(), To: proto.Uint64(id), From: proto.Uint64(g.replicaID),
			Term: proto.Uint64(st.GetTerm()), Commit: proto.Uint64(last),
		}
		h.notices.drop(g.id, id)
		if h.cfg.Transport.Send(to, &api.RaftMessage{GroupId: g.id, Message: hb, Quiesce: true}) {
			h.metrics.sent.Add(1)
		}
	}
}

// maybeQuiesceFollower quiesces a follower told to by its leader, if it
// agrees it has everything the leader has.
func (h *Host) maybeQuiesceFollower(g *group, m *raftpb.Message) {
	leaderNode := g.nodeOf(m.GetFrom())
	// Checked and set under the host's lock, which ReportNodeDown takes to
	// record a death: either it sees this group quiesced and wakes it, or
	// this sees the death.
	h.mu.RLock()
	defer h.mu.RUnlock()
	if _, down := h.mu.down[leaderNode]; down {
		// A quiesce heartbeat the dead leader sent before it died must not
		// put the group back to sleep.
		return
	}
	bs := g.rn.BasicStatus()
	_, last := g.storage.firstAndLast()
	if bs.RaftState == raft.StateFollower && bs.GetTerm() == m.GetTerm() && bs.Lead == m.GetFrom() &&
		bs.GetCommit() == m.GetCommit() && last == m.GetCommit() {
		// The leader it sleeps under, for ReportNodeDown: the published
		// status may still name the previous one.
		g.quietLeaderNode.Store(leaderNode)
		g.quiesced.Store(true)
	}
}

// ReportNodeDown tells the host that a node stopped heartbeating: every
// quiesced group whose leader lives there wakes up, so it elects a new one.
func (h *Host) ReportNodeDown(nodeID uint64) {
	now := h.cfg.Clock.Now()
	h.mu.Lock()
	h.mu.down[nodeID] = now
	h.mu.Unlock()
	// A follower quiescing concurrently either saw the death or is
	// quiesced by now (maybeQuiesceFollower).
	h.mu.RLock()
	var wake []uint64
	for id, g := range h.mu.groups {
		if !g.quiesced.Load() {
			continue
		}
		if st := g.status.Load(); st.LeaderNode == nodeID || g.quietLeaderNode.Load() == nodeID {
			g.quiesced.Store(false)
			wake = append(wake, id)
		}
	}
	h.mu.RUnlock()
	h.sched.enqueueAll(wake)
}

// Quiesced reports whether a group is quiesced on this host.
func (h *Host) Quiesced(groupID uint64) bool {
	g, err := h.group(groupID)
	return err == nil && g.quiesced.Load()
}
