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

func (raftCodec) Name() string { return raftCodecName }

func (raftCodec) Marshal(v any) (mem.BufferSlice, error) {
	return encoding.GetCodecV2(grpcproto.Name).Marshal(v)
}

func (raftCodec) Unmarshal(data mem.BufferSlice, v any) error {
	b, ok := v.(*api.RaftMessageBatch)
	if !ok {
		return encoding.GetCodecV2(grpcproto.Name).Unmarshal(data, v)
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

func decodeBatchFast(data []byte, b *api.RaftMessageBatch) error {
	// Count the messages first, so their wrappers are one allocation.
	n := 0
	var wrappers []api.RaftMessage
	for pass := 0; pass < 2; pass++ {
		rest := data
		for len(rest) > 0 {
			num, typ, l := protowire.ConsumeTag(rest)
			if l < 0 {
				return errSlowPath
			}
			rest = rest[l:]
			switch {
			case num == 5 && typ == protowire.BytesType:
				v, l := protowire.ConsumeBytes(rest)
				if l < 0 {
					return errSlowPath
				}
				rest = rest[l:]
				if pass == 0 {
					n++
					continue
				}
				w := &wrappers[len(b.Messages)]
				if err := decodeRaftMessage(v, w); err != nil {
					return err
				}
				b.Messages = append(b.Messages, w)
			case num >= 1 && num <= 4 && typ == protowire.VarintType:
				v, l := protowire.ConsumeVarint(rest)
				if l < 0 {
					return errSlowPath
				}
				rest = rest[l:]
				if pass == 0 {
					continue
				}
				switch num {
				case 1:
					b.FromNode = v
				case 2:
					b.ToNode = v
				case 3:
					b.SenderWallTime = int64(v)
				case 4:
					b.SenderLogical = int32(v)
				}
			default:
				return errSlowPath
			}
		}
		if pass == 0 && n > 0 {
			wrappers = make([]api.RaftMessage, n)
			b.Messages = make([]*api.RaftMessage, 0, n)
		}
	}
	return nil
}

func decodeRaftMessage(data []byte, w *api.RaftMessage) error {
	seenMsg := false
	for len(data) > 0 {
		num, typ, l := protowire.ConsumeTag(data)
		if l < 0 {
			return errSlowPath
		}
		data = data[l:]
		switch {
		case num == 2 && typ == protowire.BytesType:
			v, l := protowire.ConsumeBytes(data)
			if l < 0 || seenMsg {
				return errSlowPath // a repeated message field merges: leave it
			}
			data = data[l:]
			seenMsg = true
			m, err := decodeMessage(v)
			if err != nil {
				return err
			}
			w.Message = m
		case (num == 1 || num == 3) && typ == protowire.VarintType:
			v, l := protowire.ConsumeVarint(data)
			if l < 0 {
				return errSlowPath
			}
			data = data[l:]
			if num == 1 {
				w.GroupId = v
			} else {
				w.Quiesce = protowire.DecodeBool(v)
			}
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
	nents := 0
	for pass := 0; pass < 2; pass++ {
		var ents []entrySlab
		if pass == 1 && nents > 0 {
			ents = make([]entrySlab, nents)
			m.Entries = make([]*raftpb.Entry, 0, nents)
		}
		rest := data
		for len(rest) > 0 {
			num, typ, l := protowire.ConsumeTag(rest)
			if l < 0 {
				return nil, errSlowPath
			}
			rest = rest[l:]
			switch typ {
			case protowire.VarintType:
				v, l := protowire.ConsumeVarint(rest)
				if l < 0 {
					return nil, errSlowPath
				}
				rest = rest[l:]
				if pass == 0 {
					continue
				}
				if err := setMessageVarint(s, num, v); err != nil {
					return nil, err
				}
			case protowire.BytesType:
				v, l := protowire.ConsumeBytes(rest)
				if l < 0 {
					return nil, errSlowPath
				}
				rest = rest[l:]
				switch num {
				case 7:
					if pass == 0 {
						nents++
						continue
					}
					e := &ents[len(m.Entries)]
					if err := decodeWireEntry(v, e); err != nil {
						return nil, err
					}
					m.Entries = append(m.Entries, &e.e)
				case 12:
					if pass == 1 {
						m.Context = append(make([]byte, 0, len(v)), v...)
					}
				default:
					return nil, errSlowPath // snapshot, responses, unknown
				}
			default:
				return nil, errSlowPath
			}
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
			return errSlowPath // proto2 keeps unknown enum values aside
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
		num, typ, l := protowire.ConsumeTag(data)
		if l < 0 {
			return errSlowPath
		}
		data = data[l:]
		switch {
		case num == 4 && typ == protowire.BytesType:
			v, l := protowire.ConsumeBytes(data)
			if l < 0 {
				return errSlowPath
			}
			data = data[l:]
			e.Data = append(make([]byte, 0, len(v)), v...)
		case num >= 1 && num <= 3 && typ == protowire.VarintType:
			v, l := protowire.ConsumeVarint(data)
			if l < 0 {
				return errSlowPath
			}
			data = data[l:]
			switch num {
			case 1:
				t := raftpb.EntryType(int32(v))
				if _, ok := raftpb.EntryType_name[int32(t)]; !ok {
					return errSlowPath
				}
				s.typ, e.Type = t, &s.typ
			case 2:
				s.term, e.Term = v, &s.term
			case 3:
				s.index, e.Index = v, &s.index
			}
		default:
			return errSlowPath
		}
	}
	return nil
}
