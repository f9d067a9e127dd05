package raftgroup

import (
	"github.com/meridiandb/meridian/api"
)

// Transport carries raft messages to other nodes. Send never blocks: it
// queues the message for the node and returns false if it could not (no
// route, queue full); raft retransmits what is lost. Implementations deliver
// the messages of one sender to one receiver in order, in batches, and call
// the receiver Host's HandleRaftBatch.
type Transport interface {
	Send(toNode uint64, msg *api.RaftMessage) bool
}

// BatchHandler receives batches from the transport (a Host).
type BatchHandler interface {
	HandleRaftBatch(b *api.RaftMessageBatch)
}

// maxBatchMessages bounds how many messages one transport batch carries.
const maxBatchMessages = 4096

// defaultQueueLen bounds each peer's outgoing queue (messages).
const defaultQueueLen = 10000
