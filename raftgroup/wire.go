package raftgroup

import (
	"errors"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
)

// The raft stream's messages are ordinary protobufs on the wire, but they
// are decoded here rather than by proto.Unmarshal. etcd raft v3.7's
// messages are proto2 with a pointer per scalar field, so the generic
// decoder makes a dozen allocations for a one-entry append (the Message,
// one per field, the Entry and one per its fields); this decoder puts a
// message's scalars, and its entries' scalars, in one allocation each, and
// the batch's RaftMessage wrappers in one. Anything it does not expect — a
// snapshot, a field it does not know, a wire type it does not expect, an
// enum value raft does not define, a repeated message field — sends the
// whole batch to proto.Unmarshal, so the result is always what
// proto.Unmarshal would give (a fuzz test holds it to that).

// raftCodecName is the gRPC content-subtype of the raft message stream.
const raftCodecName = "meridian-raft"

func init() {
	encoding.RegisterCodecV2(raftCodec{})
}

// raftCodec is gRPC's proto codec, except that it decodes a
// RaftMessageBatch with decodeBatch.
type raftCodec struct{}

// protoCodec is gRPC's proto codec (registered by its package's init,
// which runs before this package's).
var protoCodec = encoding.GetCodecV2(grpcproto.Name)

func (raftCodec) Name() string { return raftCodecName }

func (raftCodec) Marshal(v any) (mem.BufferSlice, error) {
	return protoCodec.Marshal(v)
}

func (raftCodec) Unmarshal(data mem.BufferSlice, v any) error {
	b, ok := v.(*api.RaftMessageBatch)
	if !ok {
		return protoCodec.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return decodeBatch(buf.ReadOnlyData(), b)
}

// errSlowPath: the fast decoder met something it leaves to proto.Unmarshal.
var errSlowPath = errors.New("raftgroup: batch needs the generic decoder")

// decodeBatch decodes data into b (which it resets), as proto.Unmarshal
// would. It copies what it keeps: data may be reused once it returns.
func decodeBatch(data []byte, b *api.RaftMessageBatch) error {
	proto.Reset(b)
	err := decodeBatchFast(data, b)
	if err == nil {
		return nil
	}
	proto.Reset(b)
	return proto.Unmarshal(data, b)
}

// field is one protobuf field: a varint's value, or a length-delimited
// field's bytes.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

// nextField consumes one varint or length-delimited field; ok is false for
// any other wire type or a malformed field (left to the slow path).
func nextField(data []byte) (f field, rest []byte, ok bool) {
	num, typ, l := protowire.ConsumeTag(data)
	if l < 0 {
		return f, nil, false
	}
	data = data[l:]
	f.num, f.typ = num, typ
	switch typ {
	case protowire.VarintType:
		f.v, l = protowire.ConsumeVarint(data)
	case protowire.BytesType:
		f.b, l = protowire.ConsumeBytes(data)
	default:
		return f, nil, false
	}
	if l < 0 {
		return f, nil, false
	}
	return f, data[l:], true
}

func decodeBatchFast(data []byte, b *api.RaftMessageBatch) error {
	// Count the messages first, so their wrappers are one allocation.
	n := 0
	for rest := data; len(rest) > 0; {
		f, r, ok := nextField(rest)
		if !ok {
			return errSlowPath
		}
		rest = r
		if f.num == 5 {
			n++
		}
	}
	var wrappers []api.RaftMessage
	if n > 0 {
		wrappers = make([]api.RaftMessage, n)
		b.Messages = make([]*api.RaftMessage, 0, n)
	}
	for len(data) > 0 {
		f, rest, _ := nextField(data) // validated above
		data = rest
		switch {
		case f.num == 5 && f.typ == protowire.BytesType:
			w := &wrappers[len(b.Messages)]
			if err := decodeRaftMessage(f.b, w); err != nil {
				return err
			}
			b.Messages = append(b.Messages, w)
		case f.num == 1 && f.typ == protowire.VarintType:
			b.FromNode = f.v
		case f.num == 2 && f.typ == protowire.VarintType:
			b.ToNode = f.v
		case f.num == 3 && f.typ == protowire.VarintType:
			b.SenderWallTime = int64(f.v)
		case f.num == 4 && f.typ == protowire.VarintType:
			b.SenderLogical = int32(f.v)
		default:
			return errSlowPath
		}
	}
	return nil
}

func decodeRaftMessage(data []byte, w *api.RaftMessage) error {
	for len(data) > 0 {
		f, rest, ok := nextField(data)
		if !ok {
			return errSlowPath
		}
		data = rest
		switch {
		case f.num == 2 && f.typ == protowire.BytesType:
			if w.Message != nil {
				return errSlowPath // a repeated message field merges: leave it
			}
			m, err := decodeMessage(f.b)
			if err != nil {
				return err
			}
			w.Message = m
		case f.num == 1 && f.typ == protowire.VarintType:
			w.GroupId = f.v
		case f.num == 3 && f.typ == protowire.VarintType:
			w.Quiesce = protowire.DecodeBool(f.v)
		default:
			return errSlowPath
		}
	}
	return nil
}

// messageSlab holds a raftpb.Message and the values its pointer fields
// point to: one allocation.
type messageSlab struct {
	m      raftpb.Message
	typ    raftpb.MessageType
	u      [8]uint64
	reject bool
}

// entrySlab holds a raftpb.Entry and its scalars.
type entrySlab struct {
	e     raftpb.Entry
	typ   raftpb.EntryType
	term  uint64
	index uint64
}

func decodeMessage(data []byte) (*raftpb.Message, error) {
	s := &messageSlab{}
	m := &s.m
	// Count the entries first, so they are one allocation.
	n := 0
	for rest := data; len(rest) > 0; {
		f, r, ok := nextField(rest)
		if !ok {
			return nil, errSlowPath
		}
		rest = r
		if f.num == 7 {
			n++
		}
	}
	var ents []entrySlab
	if n > 0 {
		ents = make([]entrySlab, n)
		m.Entries = make([]*raftpb.Entry, 0, n)
	}
	for len(data) > 0 {
		f, rest, _ := nextField(data) // validated above
		data = rest
		switch {
		case f.typ == protowire.VarintType:
			if err := setMessageVarint(s, f.num, f.v); err != nil {
				return nil, err
			}
		case f.num == 7:
			e := &ents[len(m.Entries)]
			if err := decodeWireEntry(f.b, e); err != nil {
				return nil, err
			}
			m.Entries = append(m.Entries, &e.e)
		case f.num == 12:
			m.Context = append(make([]byte, 0, len(f.b)), f.b...)
		default:
			return nil, errSlowPath // snapshot, responses, unknown
		}
	}
	return m, nil
}

func setMessageVarint(s *messageSlab, num protowire.Number, v uint64) error {
	m := &s.m
	switch num {
	case 1:
		t := raftpb.MessageType(int32(v))
		if _, ok := raftpb.MessageType_name[int32(t)]; !ok {
			return errSlowPath // a value raft does not define: proto decides
		}
		s.typ = t
		m.Type = &s.typ
	case 2:
		s.u[0], m.To = v, &s.u[0]
	case 3:
		s.u[1], m.From = v, &s.u[1]
	case 4:
		s.u[2], m.Term = v, &s.u[2]
	case 5:
		s.u[3], m.LogTerm = v, &s.u[3]
	case 6:
		s.u[4], m.Index = v, &s.u[4]
	case 8:
		s.u[5], m.Commit = v, &s.u[5]
	case 10:
		s.reject, m.Reject = protowire.DecodeBool(v), &s.reject
	case 11:
		s.u[6], m.RejectHint = v, &s.u[6]
	case 13:
		s.u[7], m.Vote = v, &s.u[7]
	default:
		return errSlowPath
	}
	return nil
}

func decodeWireEntry(data []byte, s *entrySlab) error {
	e := &s.e
	for len(data) > 0 {
		f, rest, ok := nextField(data)
		if !ok {
			return errSlowPath
		}
		data = rest
		switch {
		case f.num == 4 && f.typ == protowire.BytesType:
			e.Data = append(make([]byte, 0, len(f.b)), f.b...)
		case f.num == 1 && f.typ == protowire.VarintType:
			t := raftpb.EntryType(int32(f.v))
			if _, ok := raftpb.EntryType_name[int32(t)]; !ok {
				return errSlowPath
			}
			s.typ, e.Type = t, &s.typ
		case f.num == 2 && f.typ == protowire.VarintType:
			s.term, e.Term = f.v, &s.term
		case f.num == 3 && f.typ == protowire.VarintType:
			s.index, e.Index = f.v, &s.index
		default:
			return errSlowPath
		}
	}
	return nil
}
