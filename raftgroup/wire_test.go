package raftgroup

import (
	"context"
	"net"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
)

// optU64 draws an optional uint64 (nil: field absent).
func optU64(t *rapid.T, label string) *uint64 {
	if !rapid.Bool().Draw(t, label+"?") {
		return nil
	}
	v := rapid.OneOf(rapid.Just(uint64(0)), rapid.Uint64Range(1, 1000), rapid.Uint64()).Draw(t, label)
	return &v
}

func optBytes(t *rapid.T, label string) []byte {
	if !rapid.Bool().Draw(t, label+"?") {
		return nil
	}
	return rapid.SliceOfN(rapid.Byte(), 0, 40).Draw(t, label)
}

func genEntry(t *rapid.T) *raftpb.Entry {
	e := &raftpb.Entry{Term: optU64(t, "eterm"), Index: optU64(t, "eindex"), Data: optBytes(t, "edata")}
	if rapid.Bool().Draw(t, "etype?") {
		// Mostly defined types, sometimes one raft does not define.
		ty := raftpb.EntryType(rapid.Int32Range(0, 3).Draw(t, "etype"))
		e.Type = &ty
	}
	return e
}

func genMessage(t *rapid.T, slow bool) *raftpb.Message {
	m := &raftpb.Message{
		To: optU64(t, "to"), From: optU64(t, "from"), Term: optU64(t, "term"), LogTerm: optU64(t, "logterm"),
		Index: optU64(t, "index"), Commit: optU64(t, "commit"), Vote: optU64(t, "vote"),
		RejectHint: optU64(t, "hint"), Context: optBytes(t, "ctx"),
	}
	if rapid.Bool().Draw(t, "type?") {
		ty := raftpb.MessageType(rapid.Int32Range(0, 25).Draw(t, "type"))
		m.Type = &ty
	}
	if rapid.Bool().Draw(t, "reject?") {
		r := rapid.Bool().Draw(t, "reject")
		m.Reject = &r
	}
	for range rapid.IntRange(0, 4).Draw(t, "entries") {
		m.Entries = append(m.Entries, genEntry(t))
	}
	if slow && rapid.IntRange(0, 9).Draw(t, "snapshot?") == 0 {
		m.Snapshot = &raftpb.Snapshot{Data: []byte("snap"), Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(7), Term: proto.Uint64(2)}}
	}
	return m
}

func genBatch(t *rapid.T, slow bool) *api.RaftMessageBatch {
	b := &api.RaftMessageBatch{
		FromNode:       rapid.Uint64().Draw(t, "fromNode"),
		ToNode:         rapid.Uint64().Draw(t, "toNode"),
		SenderWallTime: rapid.Int64().Draw(t, "wall"),
		SenderLogical:  rapid.Int32().Draw(t, "logical"),
	}
	for range rapid.IntRange(0, 5).Draw(t, "messages") {
		w := &api.RaftMessage{GroupId: rapid.Uint64().Draw(t, "group"), Quiesce: rapid.Bool().Draw(t, "quiesce")}
		if rapid.IntRange(0, 9).Draw(t, "nomsg") != 0 {
			w.Message = genMessage(t, slow)
		}
		b.Messages = append(b.Messages, w)
	}
	return b
}

// TestDecodeBatchMatchesProto: whatever the batch, decodeBatch gives what
// proto.Unmarshal gives.
func TestDecodeBatchMatchesProto(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genBatch(t, true)
		data, err := proto.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var want, got api.RaftMessageBatch
		if err := proto.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		if err := decodeBatch(data, &got); err != nil {
			t.Fatalf("decodeBatch: %v", err)
		}
		if !proto.Equal(&want, &got) {
			t.Fatalf("decodeBatch differs from proto.Unmarshal:\n got %v\nwant %v", &got, &want)
		}
		// The decoded batch must not alias the input.
		for i := range data {
			data[i] = 0xff
		}
		if !proto.Equal(&want, &got) {
			t.Fatal("decoded batch changed with its input buffer")
		}
	})
}

// TestDecodeBatchFastPath: the batches raft sends every moment (appends,
// their responses, heartbeats) take the fast path, or the decoder would
// quietly be proto.Unmarshal.
func TestDecodeBatchFastPath(t *testing.T) {
	app, resp, hb := raftpb.MsgApp, raftpb.MsgAppResp, raftpb.MsgHeartbeat
	norm := raftpb.EntryNormal
	in := &api.RaftMessageBatch{FromNode: 1, ToNode: 2, SenderWallTime: 123, SenderLogical: 4, Messages: []*api.RaftMessage{
		{GroupId: 7, Message: &raftpb.Message{Type: &app, To: proto.Uint64(2), From: proto.Uint64(1), Term: proto.Uint64(3),
			LogTerm: proto.Uint64(3), Index: proto.Uint64(10), Commit: proto.Uint64(9),
			Entries: []*raftpb.Entry{{Type: &norm, Term: proto.Uint64(3), Index: proto.Uint64(11), Data: []byte("cmd")}}}},
		{GroupId: 8, Message: &raftpb.Message{Type: &resp, To: proto.Uint64(1), From: proto.Uint64(2), Term: proto.Uint64(3), Index: proto.Uint64(11), Reject: proto.Bool(false)}},
		{GroupId: 9, Quiesce: true, Message: &raftpb.Message{Type: &hb, To: proto.Uint64(1), From: proto.Uint64(2), Term: proto.Uint64(3), Context: []byte("rctx")}},
	}}
	data, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var got api.RaftMessageBatch
	if err := decodeBatchFast(data, &got); err != nil {
		t.Fatalf("fast path refused a plain batch: %v", err)
	}
	if !proto.Equal(in, &got) {
		t.Fatalf("got %v\nwant %v", &got, in)
	}
	allocs := testing.AllocsPerRun(100, func() {
		var b api.RaftMessageBatch
		_ = decodeBatch(data, &b)
	})
	want := testing.AllocsPerRun(100, func() {
		var b api.RaftMessageBatch
		_ = proto.Unmarshal(data, &b)
	})
	// The batch itself, wrappers, pointer slice, 3 message slabs, entry
	// slab, entry pointers, entry data, context: 10.
	if allocs > 12 || allocs > want/2 {
		t.Errorf("decodeBatch made %v allocations for 3 messages (proto.Unmarshal %v)", allocs, want)
	}
}

// edgeBatches are hand-built encodings proto.Marshal never produces:
// repeated fields, odd enum values and wire types, unknown fields.
func edgeBatches() map[string][]byte {
	v := func(b []byte, n protowire.Number, x uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(b, n, protowire.VarintType), x)
	}
	by := func(b []byte, n protowire.Number, x []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, n, protowire.BytesType), x)
	}
	wrap := func(msg []byte) []byte { return by(nil, 5, by(v(nil, 1, 7), 2, msg)) }
	return map[string][]byte{
		"type above 2^32":            wrap(v(nil, 1, 1<<32|3)),
		"type negative":              wrap(v(nil, 1, ^uint64(0))),
		"type unknown":               wrap(v(nil, 1, 99)),
		"to twice":                   wrap(v(v(nil, 2, 5), 2, 6)),
		"empty context":              wrap(by(nil, 12, nil)),
		"context twice":              wrap(by(by(nil, 12, []byte("a")), 12, nil)),
		"empty entry":                wrap(by(nil, 7, nil)),
		"entry with empty data":      wrap(by(nil, 7, by(nil, 4, nil))),
		"entry data twice":           wrap(by(nil, 7, by(by(nil, 4, []byte("x")), 4, nil))),
		"entry type above 2^32":      wrap(by(nil, 7, v(nil, 1, 1<<33|1))),
		"entries field as varint":    wrap(v(nil, 7, 1)),
		"reject 2":                   wrap(v(nil, 10, 2)),
		"message field twice":        by(nil, 5, by(by(v(nil, 1, 7), 2, v(nil, 2, 1)), 2, v(nil, 3, 2))),
		"logical negative":           v(nil, 4, ^uint64(0)),
		"logical above 2^32":         v(nil, 4, 1<<40|5),
		"wall time negative":         v(nil, 3, ^uint64(0)),
		"messages field as varint":   v(nil, 5, 1),
		"quiesce 300":                by(nil, 5, v(nil, 3, 300)),
		"empty wrapper":              by(nil, 5, nil),
		"empty message":              by(nil, 5, by(nil, 2, nil)),
		"unknown batch field":        v(nil, 6, 1),
		"field number out of range":  v(nil, protowire.MaxValidNumber+1, 1),
		"group id as bytes":          by(nil, 5, by(nil, 1, nil)),
		"entries between other data": wrap(by(v(by(nil, 7, v(nil, 2, 1)), 2, 9), 7, v(nil, 3, 4))),
		"truncated":                  wrap(v(nil, 2, 5))[:6],
	}
}

// sameAsProto fails unless decodeBatch and proto.Unmarshal agree on data.
func sameAsProto(t *testing.T, data []byte) {
	t.Helper()
	var want, got api.RaftMessageBatch
	werr := proto.Unmarshal(data, &want)
	gerr := decodeBatch(data, &got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("proto.Unmarshal: %v, decodeBatch: %v", werr, gerr)
	}
	if werr == nil && !proto.Equal(&want, &got) {
		t.Fatalf("got %v\nwant %v", &got, &want)
	}
}

func TestDecodeBatchEdgeCases(t *testing.T) {
	for name, data := range edgeBatches() {
		t.Run(name, func(t *testing.T) { sameAsProto(t, data) })
	}
}

// FuzzDecodeBatch: on any input, decodeBatch succeeds exactly when
// proto.Unmarshal does, with the same result.
func FuzzDecodeBatch(f *testing.F) {
	app := raftpb.MsgApp
	seed, _ := proto.Marshal(&api.RaftMessageBatch{FromNode: 1, ToNode: 2, Messages: []*api.RaftMessage{{GroupId: 3, Message: &raftpb.Message{Type: &app, Entries: []*raftpb.Entry{{Data: []byte("x")}}}}}})
	f.Add(seed)
	f.Add([]byte{})
	for _, data := range edgeBatches() {
		f.Add(data)
	}
	f.Fuzz(sameAsProto)
}

// transportPair starts node 2's transport on a gRPC server with opts, on
// loopback, delivering into a recordingHandler with room for buffered
// batches, and returns it with node 1's transport, which dials it. Both stop
// with the test.
func transportPair(t *testing.T, buffered int, opts ...grpc.ServerOption) (recordingHandler, *GRPCTransport) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	clock := hlc.NewClock(hlc.SystemClock{}, 500*time.Millisecond)
	recv := NewGRPCTransport(GRPCTransportConfig{NodeID: 2, Clock: clock})
	h := recordingHandler{batches: make(chan *api.RaftMessageBatch, buffered)}
	recv.SetHandler(h)
	srv := grpc.NewServer(opts...)
	api.RegisterRaftTransportServer(srv, recv)
	go func() { _ = srv.Serve(lis) }()
	send := NewGRPCTransport(GRPCTransportConfig{NodeID: 1, Clock: clock, Resolver: func(uint64) (string, error) { return lis.Addr().String(), nil }})
	t.Cleanup(func() {
		send.Close()
		srv.Stop()
		recv.Close()
	})
	return h, send
}

// recordingHandler keeps the batches a transport delivers.
type recordingHandler struct{ batches chan *api.RaftMessageBatch }

func (h recordingHandler) HandleRaftBatch(b *api.RaftMessageBatch) { h.batches <- b }
func (recordingHandler) HandleSnapshot(context.Context, *api.SnapshotHeader, []byte) (bool, error) {
	return false, nil
}

// TestGRPCTransportUsesRaftCodec: the raft stream travels with the
// "meridian-raft" content-subtype, so batches reach decodeBatch rather than
// gRPC's generic proto codec, and arrive intact.
func TestGRPCTransportUsesRaftCodec(t *testing.T) {
	contentType := make(chan string, 1)
	h, send := transportPair(t, 1, append(ServerOptions(), grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if md, ok := metadata.FromIncomingContext(ss.Context()); ok && len(md.Get("content-type")) > 0 {
			select {
			case contentType <- md.Get("content-type")[0]:
			default:
			}
		}
		return handler(srv, ss)
	}))...)
	app := raftpb.MsgApp
	msg := &raftpb.Message{Type: &app, To: proto.Uint64(2), From: proto.Uint64(1), Term: proto.Uint64(4), Index: proto.Uint64(9),
		Entries: []*raftpb.Entry{{Term: proto.Uint64(4), Index: proto.Uint64(10), Data: []byte("cmd")}}}
	if !send.Send(2, &api.RaftMessage{GroupId: 5, Message: msg}) {
		t.Fatal("send refused")
	}
	select {
	case b := <-h.batches:
		if len(b.GetMessages()) != 1 || b.GetMessages()[0].GetGroupId() != 5 || !proto.Equal(b.GetMessages()[0].GetMessage(), msg) {
			t.Fatalf("delivered %v", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no batch delivered")
	}
	if ct := <-contentType; ct != "application/grpc+"+raftCodecName {
		t.Fatalf("raft stream content-type %q, want application/grpc+%s", ct, raftCodecName)
	}
}
