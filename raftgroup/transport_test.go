package raftgroup

import (
	"bytes"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
)

// bigAppend is an append to group carrying one entry of n bytes.
func bigAppend(group uint64, index uint64, n int) *api.RaftMessage {
	app := raftpb.MsgApp
	return &api.RaftMessage{GroupId: group, Message: &raftpb.Message{
		Type: &app, To: proto.Uint64(2), From: proto.Uint64(1), Term: proto.Uint64(3), Index: proto.Uint64(index - 1),
		Entries: []*raftpb.Entry{{Term: proto.Uint64(3), Index: proto.Uint64(index), Data: bytes.Repeat([]byte{'x'}, n)}},
	}}
}

// TestOutboxBounds: a batch stays within maxBatchBytes (a message that
// would overflow it starts the next one), a lone message larger than that
// still goes, and the queue refuses what would take it past maxQueueBytes.
func TestOutboxBounds(t *testing.T) {
	o := newOutbox()
	const size = 900 << 10
	for i := range 12 {
		if !o.put(bigAppend(1, uint64(i+10), size)) {
			t.Fatalf("put %d refused", i)
		}
	}
	var got []int
	for total := 0; total < 12; {
		first, ok := o.pending()
		if !ok {
			first = <-o.ch
		}
		b := o.batch(nil, first)
		n := 0
		for _, m := range b {
			n += messageSize(m)
		}
		if n > maxBatchBytes {
			t.Fatalf("a batch of %d messages holds %d bytes, over %d", len(b), n, maxBatchBytes)
		}
		got = append(got, len(b))
		total += len(b)
	}
	if len(got) < 12*size/maxBatchBytes {
		t.Fatalf("12 messages of %d bytes went in batches of %v", size, got)
	}
	if _, carried := o.pending(); o.bytes.Load() != 0 || carried {
		t.Fatalf("queue not empty after taking everything: %d bytes", o.bytes.Load())
	}

	huge := bigAppend(1, 100, maxBatchBytes+1)
	if !o.put(huge) {
		t.Fatal("an empty queue refused a message larger than a batch")
	}
	if b := o.batch(nil, <-o.ch); len(b) != 1 {
		t.Fatalf("the large message went in a batch of %d", len(b))
	}

	n := 0
	for o.put(bigAppend(1, uint64(200+n), 1<<20)) {
		n++
		if n > 1000 {
			t.Fatal("the queue never refused")
		}
	}
	if q := o.bytes.Load(); q > maxQueueBytes || n < maxQueueBytes/(2<<20) {
		t.Fatalf("queue refused after %d messages holding %d bytes (limit %d)", n, q, maxQueueBytes)
	}
	o.clear()
	if o.bytes.Load() != 0 || !o.put(bigAppend(1, 1, 10)) {
		t.Fatal("clear did not empty the queue")
	}
}

// TestGRPCTransportLargeAppends: appends that together far exceed gRPC's
// default 4 MiB receive limit, queued before the stream is up, all arrive
// — in batches the receiver accepts — and the stream never breaks.
func TestGRPCTransportLargeAppends(t *testing.T) {
	// gRPC's default receive limit.
	h, send := transportPair(t, 64, ServerOptions()...)
	const n, size = 12, 900 << 10
	for i := range n {
		if !send.Send(2, bigAppend(7, uint64(10+i), size)) {
			t.Fatalf("send %d refused", i)
		}
	}
	next := uint64(10)
	deadline := time.After(30 * time.Second)
	for next < 10+n {
		select {
		case b := <-h.batches:
			for _, m := range b.GetMessages() {
				if idx := m.GetMessage().GetEntries()[0].GetIndex(); idx != next {
					t.Fatalf("got entry %d, want %d: messages were lost", idx, next)
				}
				next++
			}
		case <-deadline:
			t.Fatalf("after 30s only entries up to %d of %d arrived (stream breaks: %d)", next-1, 10+n-1, send.StreamBreaks())
		}
	}
	if b := send.StreamBreaks(); b != 0 {
		t.Fatalf("the stream broke %d times", b)
	}
}
