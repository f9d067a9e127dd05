package raftgroup

import (
	"context"
	"io"

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

// maxBatchMessages bounds how many messages one transport batch carries.
const maxBatchMessages = 4096

// defaultQueueLen bounds each peer's outgoing queue (messages).
const defaultQueueLen = 10000
