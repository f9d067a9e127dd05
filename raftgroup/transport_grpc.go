package raftgroup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meridiandb/meridian/api"
)

// Resolver maps a node ID to the address to dial. The server maps IDs
// through node records; tests map them directly; a test hook may wrap it to
// put a proxy in between.
type Resolver func(nodeID uint64) (addr string, err error)

// GRPCTransport sends raft messages over one long-lived bidirectional gRPC
// stream per peer node (Single-Socket Channel). Messages for every group
// bound for a peer share its stream: a sender goroutine drains the peer's
// bounded queue into batches (Request Batch) and writes them without waiting
// for replies (Request Pipeline). When a queue is full, messages are dropped
// and raft retransmits. A broken stream is re-dialled with backoff.
//
// It also serves the receiving side: register it on the node's gRPC server
// with api.RegisterRaftTransportServer.
type GRPCTransport struct {
	api.UnimplementedRaftTransportServer

	node     uint64
	clock    Clock
	resolve  Resolver
	handler  BatchHandler
	log      *slog.Logger
	dialOpts []grpc.DialOption

	maxSnapshot int64

	ctx    context.Context // cancelled by Close; bounds every stream
	cancel context.CancelFunc
	wg     sync.WaitGroup

	breaks atomic.Uint64 // streams to peers that broke

	mu struct {
		sync.RWMutex
		peers  map[uint64]*grpcPeer
		closed bool
	}
}

// StreamBreaks returns how many streams to peers broke (a failed dial
// counts too); each drops what was queued for that peer.
func (t *GRPCTransport) StreamBreaks() uint64 { return t.breaks.Load() }

type grpcPeer struct {
	out *outbox
}

// GRPCTransportConfig configures a GRPCTransport.
type GRPCTransportConfig struct {
	NodeID   uint64
	Clock    Clock
	Resolver Resolver
	Logger   *slog.Logger
	// DialOptions are added to the defaults (insecure credentials until TLS
	// lands).
	DialOptions []grpc.DialOption
	// MaxSnapshotBytes bounds a received snapshot (default 512 MiB).
	MaxSnapshotBytes int64
}

// NewGRPCTransport returns a transport. SetHandler must be called before the
// node's gRPC server starts accepting streams.
func NewGRPCTransport(cfg GRPCTransportConfig) *GRPCTransport {
	ctx, cancel := context.WithCancel(context.Background())
	t := &GRPCTransport{
		node: cfg.NodeID, clock: cfg.Clock, resolve: cfg.Resolver, log: cfg.Logger,
		dialOpts: append([]grpc.DialOption{
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20)),
			grpc.WithInitialWindowSize(streamWindow),
			grpc.WithInitialConnWindowSize(connWindow),
		}, cfg.DialOptions...),
		ctx: ctx, cancel: cancel,
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.maxSnapshot = cfg.MaxSnapshotBytes
	if t.maxSnapshot <= 0 {
		t.maxSnapshot = 512 << 20
	}
	t.mu.peers = make(map[uint64]*grpcPeer)
	return t
}

// SetHandler sets the receiver of incoming batches (the Host).
func (t *GRPCTransport) SetHandler(h BatchHandler) {
	t.mu.Lock()
	t.handler = h
	t.mu.Unlock()
}

// Send implements Transport.
func (t *GRPCTransport) Send(toNode uint64, msg *api.RaftMessage) bool {
	t.mu.RLock()
	p, ok := t.mu.peers[toNode]
	closed := t.mu.closed
	t.mu.RUnlock()
	if closed {
		return false
	}
	if !ok {
		p = t.peerSlow(toNode)
		if p == nil {
			return false
		}
	}
	return p.out.put(msg)
}

// peerSlow returns the peer's queue, starting its sender if it has none
// yet; nil once the transport is closed.
func (t *GRPCTransport) peerSlow(toNode uint64) *grpcPeer {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return nil
	}
	p, ok := t.mu.peers[toNode]
	if !ok {
		p = &grpcPeer{out: newOutbox()}
		t.mu.peers[toNode] = p
		t.wg.Add(1)
		go t.runPeer(toNode, p)
	}
	return p
}

// Close stops every sender and waits for them.
func (t *GRPCTransport) Close() {
	t.mu.Lock()
	t.mu.closed = true
	t.mu.Unlock()
	t.cancel()
	t.wg.Wait()
}

const (
	streamWindow = 4 << 20
	connWindow   = 16 << 20
)

// ServerOptions are the options a node's gRPC server should carry for the
// raft transport: fixed flow-control windows large enough for pipelined
// appends, which also turn off gRPC's bandwidth-delay probing (a PING per
// round trip of data on every connection). They apply to every service on
// that server, clients' included: each stream may have 4 MiB in flight.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.InitialWindowSize(streamWindow), grpc.InitialConnWindowSize(connWindow)}
}

const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

func (t *GRPCTransport) runPeer(to uint64, p *grpcPeer) {
	defer t.wg.Done()
	backoff := minBackoff
	for t.ctx.Err() == nil {
		start := time.Now()
		err := t.stream(to, p)
		if t.ctx.Err() != nil {
			return
		}
		if time.Since(start) > 5*time.Second {
			backoff = minBackoff // the stream was healthy for a while
		}
		t.breaks.Add(1)
		t.log.Debug("raft stream to peer broke; redialling", "peer", to, "err", err, "backoff", backoff)
		// Drop what queued while the peer was unreachable: raft will resend
		// what still matters, and stale heartbeats only do harm.
		p.out.clear()
		timer := time.NewTimer(backoff)
		select {
		case <-t.ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// stream dials the peer and pumps batches until the stream breaks.
func (t *GRPCTransport) stream(to uint64, p *grpcPeer) error {
	addr, err := t.resolve(to)
	if err != nil {
		return fmt.Errorf("resolving node %d: %w", to, err)
	}
	conn, err := grpc.NewClient(addr, t.dialOpts...)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	// The raft codec decodes batches faster than the generic one (wire.go).
	s, err := api.NewRaftTransportClient(conn).RaftMessages(ctx, grpc.CallContentSubtype(raftCodecName))
	if err != nil {
		return err
	}
	// The receiver only writes to report a problem; reading tells us the
	// stream broke even while we have nothing to send.
	broken := make(chan error, 1)
	go func() {
		for {
			resp, err := s.Recv()
			if err != nil {
				broken <- err
				return
			}
			if resp.GetError() != "" {
				broken <- errors.New(resp.GetError())
				return
			}
		}
	}()
	defer func() {
		cancel()
		<-broken
	}()
	msgs := make([]*api.RaftMessage, 0, 64)
	for {
		first, ok := p.out.pending()
		if !ok {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case err := <-broken:
				broken <- err // for the deferred wait
				return err
			case first = <-p.out.ch:
			}
		}
		msgs = p.out.batch(msgs, first)
		now := t.clock.Now()
		if err := s.Send(&api.RaftMessageBatch{FromNode: t.node, ToNode: to, SenderWallTime: now.WallTime, SenderLogical: now.Logical, Messages: msgs}); err != nil {
			return err
		}
	}
}

// RaftMessages implements api.RaftTransportServer: the receiving end of a
// peer's stream.
func (t *GRPCTransport) RaftMessages(s grpc.BidiStreamingServer[api.RaftMessageBatch, api.RaftStreamResponse]) error {
	t.mu.Lock()
	h := t.handler
	t.mu.Unlock()
	if h == nil {
		return s.Send(&api.RaftStreamResponse{Error: "raft transport not ready"})
	}
	for {
		b, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if b.GetToNode() != t.node {
			return s.Send(&api.RaftStreamResponse{Error: fmt.Sprintf("this is node %d, not node %d", t.node, b.GetToNode())})
		}
		h.HandleRaftBatch(b)
	}
}

// SendSnapshot implements Transport: it dials the peer and streams the
// snapshot in chunks on a stream of its own (gRPC's flow control paces it).
func (t *GRPCTransport) SendSnapshot(ctx context.Context, toNode uint64, hdr *api.SnapshotHeader, data io.Reader) (bool, error) {
	addr, err := t.resolve(toNode)
	if err != nil {
		return false, fmt.Errorf("resolving node %d: %w", toNode, err)
	}
	conn, err := grpc.NewClient(addr, t.dialOpts...)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := api.NewRaftTransportClient(conn).RaftSnapshot(ctx)
	if err != nil {
		return false, err
	}
	if err := s.Send(&api.SnapshotChunk{Header: hdr}); err != nil {
		return false, err
	}
	buf := make([]byte, snapshotChunkSize)
	for {
		n, rerr := io.ReadFull(data, buf)
		if n > 0 {
			if err := s.Send(&api.SnapshotChunk{Data: buf[:n]}); err != nil {
				return false, err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return false, rerr
		}
	}
	if err := s.Send(&api.SnapshotChunk{Final: true}); err != nil {
		return false, err
	}
	resp, err := s.CloseAndRecv()
	if err != nil {
		return false, err
	}
	if resp.GetError() != "" {
		return false, errors.New(resp.GetError())
	}
	return resp.GetApplied(), nil
}

// RaftSnapshot implements api.RaftTransportServer: it receives a snapshot
// into memory (bounded by the header's size and the host's limit; a stream
// that breaks midway leaves nothing behind) and hands it to the host.
func (t *GRPCTransport) RaftSnapshot(s grpc.ClientStreamingServer[api.SnapshotChunk, api.SnapshotResponse]) error {
	t.mu.Lock()
	h := t.handler
	t.mu.Unlock()
	if h == nil {
		return s.SendAndClose(&api.SnapshotResponse{Error: "raft transport not ready"})
	}
	first, err := s.Recv()
	if err != nil {
		return err
	}
	hdr := first.GetHeader()
	if hdr == nil {
		return s.SendAndClose(&api.SnapshotResponse{Error: "snapshot stream must start with a header"})
	}
	if hdr.GetToNode() != t.node {
		return s.SendAndClose(&api.SnapshotResponse{Error: fmt.Sprintf("this is node %d, not node %d", t.node, hdr.GetToNode())})
	}
	if hdr.GetSize() > uint64(t.maxSnapshot) {
		return s.SendAndClose(&api.SnapshotResponse{Error: ErrSnapshotTooLarge.Error()})
	}
	// The header's size is the sender's word: preallocate at most 1 MiB.
	data := make([]byte, 0, min(hdr.GetSize(), snapshotChunkSize))
	data = append(data, first.GetData()...)
	final := first.GetFinal()
	for !final {
		c, err := s.Recv()
		if err != nil {
			return err // half a snapshot: dropped, nothing applied
		}
		if int64(len(data)+len(c.GetData())) > t.maxSnapshot {
			return s.SendAndClose(&api.SnapshotResponse{Error: ErrSnapshotTooLarge.Error()})
		}
		data = append(data, c.GetData()...)
		final = c.GetFinal()
	}
	applied, err := h.HandleSnapshot(s.Context(), hdr, data)
	if err != nil {
		return s.SendAndClose(&api.SnapshotResponse{Error: err.Error()})
	}
	return s.SendAndClose(&api.SnapshotResponse{Applied: applied})
}
