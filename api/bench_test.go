package api

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"
)

func benchBatch(n int) *BatchRequest {
	b := &BatchRequest{Header: &BatchHeader{RangeId: 1, Timestamp: NewTimestamp(ts(1e18, 0)), GatewayNodeId: 1}}
	for i := range n {
		b.Add(&PutRequest{Key: fmt.Appendf(nil, "user/key/%08d", i), Value: make([]byte, 100)})
	}
	return b
}

// BenchmarkBatchValidate is the per-batch cost a gateway and a replica
// each pay before routing and evaluating.
func BenchmarkBatchValidate(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("puts=%d", n), func(b *testing.B) {
			batch := benchBatch(n)
			b.ReportAllocs()
			for b.Loop() {
				if err := batch.Validate(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBatchCodec marshals and unmarshals a batch of puts, as one hop
// of the Internal service does.
func BenchmarkBatchCodec(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("puts=%d", n), func(b *testing.B) {
			batch := benchBatch(n)
			b.ReportAllocs()
			for b.Loop() {
				data, err := proto.Marshal(batch)
				if err != nil {
					b.Fatal(err)
				}
				var back BatchRequest
				if err := proto.Unmarshal(data, &back); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkErrorRoundTrip converts a typed error for the wire and back.
func BenchmarkErrorRoundTrip(b *testing.B) {
	err := fmt.Errorf("ranges: %w", &NotLeaseholderError{Replica: &ReplicaDescriptor{NodeId: 1, StoreId: 1, ReplicaId: 1}, RangeId: 5,
		Lease: &Lease{Replica: &ReplicaDescriptor{NodeId: 2, StoreId: 2, ReplicaId: 2}, Sequence: 3}})
	b.ReportAllocs()
	for b.Loop() {
		data, mErr := proto.Marshal(ErrorFromGo(err))
		if mErr != nil {
			b.Fatal(mErr)
		}
		var back Error
		if uErr := proto.Unmarshal(data, &back); uErr != nil {
			b.Fatal(uErr)
		}
		_ = back.GoError()
	}
}
