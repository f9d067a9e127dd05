package raftgroup

import (
	"context"
	"io"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
)

// Transport carries raft messages to other nodes. Send never blocks: it
// queues the message for the node and returns false if it could not (no
// route, queue full); raft retransmits what is lost. Implementations deliver
// the messages of one sender to one receiver in order, in batches, and call
// the receiver Host's HandleRaftBatch.
type Transport interface {
	Send(toNode uint64, msg *api.RaftMessage) bool
	// SendSnapshot streams one snapshot to a node on its own stream (never
	// the message stream) and returns once the receiver applied it (true),
	// declined it as stale (false, nil), or the transfer failed.
	SendSnapshot(ctx context.Context, toNode uint64, hdr *api.SnapshotHeader, data io.Reader) (bool, error)
}

// BatchHandler receives what the transport delivers (a Host).
type BatchHandler interface {
	HandleRaftBatch(b *api.RaftMessageBatch)
	HandleSnapshot(ctx context.Context, hdr *api.SnapshotHeader, data []byte) (bool, error)
}

// snapshotChunkSize is the data carried by one snapshot stream message.
const snapshotChunkSize = 1 << 20

// Bounds on the transports' batches and queues. A batch carries at most
// maxBatchMessages messages and, unless its first message alone is larger,
// maxBatchBytes of them (raft keeps a message near MaxSizePerMsg, 1 MiB), so
// it stays under gRPC's default 4 MiB receive limit: a batch the receiver
// refuses breaks the stream, and everything queued behind it with it. A
// peer's queue holds at most defaultQueueLen messages and maxQueueBytes
// (unless it is empty): beyond that Send refuses, and raft retransmits.
const (
	maxBatchMessages = 4096
	maxBatchBytes    = 2 << 20
	defaultQueueLen  = 10000
	maxQueueBytes    = 64 << 20
)

// messageSize estimates a message's encoded size: its payloads plus an
// allowance for the scalar fields of the message and of each entry.
func messageSize(m *api.RaftMessage) int {
	rm := m.GetMessage()
	n := 64 + len(rm.GetContext())
	for _, e := range rm.GetEntries() {
		n += 32 + len(e.GetData())
	}
	if s := rm.GetSnapshot(); s != nil {
		n += proto.Size(s)
	}
	return n
}

// outbox is one peer's queue of outgoing messages, bounded in messages and
// bytes. Any goroutine puts; one goroutine at a time takes batches: it waits
// on ch when pending has nothing, then calls batch.
type outbox struct {
	ch    chan queued
	bytes atomic.Int64 // of the messages in ch and carry
	carry queued       // taken from ch by batch, not yet sent (taker only)
}

// queued is a message with its size, measured once when it is put.
type queued struct {
	m    *api.RaftMessage
	size int
}

func newOutbox() *outbox {
	return &outbox{ch: make(chan queued, defaultQueueLen)}
}

// put queues m; false if the queue is full.
func (o *outbox) put(m *api.RaftMessage) bool {
	q := queued{m, messageSize(m)}
	if after := o.bytes.Add(int64(q.size)); after > maxQueueBytes && after != int64(q.size) {
		o.bytes.Add(int64(-q.size))
		return false
	}
	select {
	case o.ch <- q:
		return true
	default:
		o.bytes.Add(int64(-q.size))
		return false
	}
}

// pending returns the message a previous batch left over, if any: it goes
// first in the next batch.
func (o *outbox) pending() (queued, bool) {
	q := o.carry
	o.carry = queued{}
	return q, q.m != nil
}

// batch returns first (from pending or ch) followed by what is queued,
// within maxBatchMessages and maxBatchBytes; a message that would overflow
// it is kept for the next batch (pending).
func (o *outbox) batch(msgs []*api.RaftMessage, first queued) []*api.RaftMessage {
	msgs = append(msgs[:0], first.m)
	size := first.size
	for len(msgs) < maxBatchMessages {
		select {
		case q := <-o.ch:
			if size+q.size > maxBatchBytes {
				o.carry = q
				o.bytes.Add(int64(-size))
				return msgs
			}
			size += q.size
			msgs = append(msgs, q.m)
		default:
			o.bytes.Add(int64(-size))
			return msgs
		}
	}
	o.bytes.Add(int64(-size))
	return msgs
}

// clear drops everything queued (a broken stream's backlog).
func (o *outbox) clear() {
	if q, ok := o.pending(); ok {
		o.bytes.Add(int64(-q.size))
	}
	for {
		select {
		case q := <-o.ch:
			o.bytes.Add(int64(-q.size))
		default:
			return
		}
	}
}
