package api

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// allRequests returns one valid request of every kind, in oneof order.
func allRequests() []Request {
	return []Request{
		&GetRequest{Key: []byte("a")},
		&PutRequest{Key: []byte("a"), Value: []byte("v")},
		&ConditionalPutRequest{Key: []byte("a"), Value: []byte("v"), ExpectAbsent: true},
		&IncrementRequest{Key: []byte("a"), Increment: 1},
		&DeleteRequest{Key: []byte("a")},
		&DeleteRangeRequest{Key: []byte("a"), EndKey: []byte("b")},
		&ScanRequest{Key: []byte("a"), EndKey: []byte("b")},
		&ReverseScanRequest{Key: []byte("a"), EndKey: []byte("b")},
	}
}

func allResponses() []Response {
	return []Response{
		&GetResponse{Value: &Value{RawBytes: []byte("v")}},
		&PutResponse{Timestamp: NewTimestamp(ts(1, 0))},
		&ConditionalPutResponse{Timestamp: NewTimestamp(ts(1, 0))},
		&IncrementResponse{NewValue: 3},
		&DeleteResponse{Timestamp: NewTimestamp(ts(1, 0))},
		&DeleteRangeResponse{NumKeys: 2, ResumeSpan: &Span{Key: []byte("b"), EndKey: []byte("c")}},
		&ScanResponse{Rows: []*KeyValue{{Key: []byte("a"), Value: &Value{RawBytes: []byte("v")}}}},
		&ReverseScanResponse{ResumeSpan: &Span{Key: []byte("a"), EndKey: []byte("b")}},
	}
}

func TestRequestUnionRoundTrip(t *testing.T) {
	reqs := allRequests()
	fields := (&RequestUnion{}).ProtoReflect().Descriptor().Oneofs().ByName("value").Fields()
	if fields.Len() != len(reqs) {
		t.Fatalf("RequestUnion has %d kinds, the test knows %d", fields.Len(), len(reqs))
	}
	var b BatchRequest
	b.Add(reqs...)
	data, err := proto.Marshal(&b)
	if err != nil {
		t.Fatal(err)
	}
	var back BatchRequest
	if err := proto.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	for i, u := range back.GetRequests() {
		r := u.Inner()
		if r == nil || !proto.Equal(r, reqs[i]) {
			t.Errorf("request %d came back as %v, want %v", i, r, reqs[i])
			continue
		}
		if want := Method(i + 1); r.Method() != want {
			t.Errorf("request %d: Method() = %v, want %v", i, r.Method(), want)
		}
		if name := string(fields.Get(i).Message().Name()); name != r.Method().String()+"Request" {
			t.Errorf("oneof field %d is %s but Method() says %v", i, name, r.Method())
		}
	}
	if (&RequestUnion{}).Inner() != nil || (&RequestUnion{Value: &RequestUnion_Get{}}).Inner() != nil {
		t.Error("empty union has an inner request")
	}
}

func TestResponseUnionRoundTrip(t *testing.T) {
	resps := allResponses()
	if n := (&ResponseUnion{}).ProtoReflect().Descriptor().Oneofs().ByName("value").Fields().Len(); n != len(resps) {
		t.Fatalf("ResponseUnion has %d kinds, the test knows %d", n, len(resps))
	}
	br := &BatchResponse{Header: &BatchResponseHeader{Now: NewTimestamp(ts(5, 0)), TimestampPushed: true}}
	for _, r := range resps {
		br.Responses = append(br.Responses, WrapResponse(r))
	}
	data, err := proto.Marshal(br)
	if err != nil {
		t.Fatal(err)
	}
	var back BatchResponse
	if err := proto.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	for i, u := range back.GetResponses() {
		if r := u.Inner(); r == nil || !proto.Equal(r, resps[i]) {
			t.Errorf("response %d came back as %v, want %v", i, r, resps[i])
		}
	}
	if (&ResponseUnion{}).Inner() != nil {
		t.Error("empty union has an inner response")
	}
}

func TestMethodFlags(t *testing.T) {
	writes := map[Method]bool{MethodPut: true, MethodConditionalPut: true, MethodIncrement: true, MethodDelete: true, MethodDeleteRange: true}
	ranged := map[Method]bool{MethodDeleteRange: true, MethodScan: true, MethodReverseScan: true}
	for _, r := range allRequests() {
		m := r.Method()
		if m.IsWrite() != writes[m] || m.IsRange() != ranged[m] {
			t.Errorf("%v: IsWrite %v IsRange %v", m, m.IsWrite(), m.IsRange())
		}
		key, endKey := r.KeySpan()
		if !bytes.Equal(key, []byte("a")) || (len(endKey) > 0) != ranged[m] {
			t.Errorf("%v: KeySpan() = %q, %q", m, key, endKey)
		}
	}
	if s := Method(0).String(); s != "Method(0)" {
		t.Errorf("Method(0) = %q", s)
	}
	read := &BatchRequest{}
	read.Add(&GetRequest{Key: []byte("a")}, &ScanRequest{Key: []byte("a"), EndKey: []byte("b")})
	if !read.IsReadOnly() {
		t.Error("Get+Scan batch is not read-only")
	}
	read.Add(&DeleteRequest{Key: []byte("a")})
	if read.IsReadOnly() {
		t.Error("batch with a Delete is read-only")
	}
}

func TestBatchValidate(t *testing.T) {
	bigKey := bytes.Repeat([]byte("k"), MaxInternalKeySize+1)
	maxKey := bytes.Repeat([]byte("k"), MaxInternalKeySize)
	bigVal := make([]byte, MaxValueSize+1)
	maxVal := make([]byte, MaxValueSize)
	batch := func(h *BatchHeader, reqs ...Request) *BatchRequest {
		b := &BatchRequest{Header: h}
		b.Add(reqs...)
		return b
	}
	for _, tc := range []struct {
		name  string
		b     *BatchRequest
		index int32  // of the offending request, -1 for the batch
		want  string // substring of the message; "" = valid
	}{
		{"every kind", batch(nil, allRequests()...), 0, ""},
		{"header set", batch(&BatchHeader{RangeId: 3, MaxSpanRequestKeys: 10, TargetBytes: 1 << 20, Txn: &TxnMeta{}}, allRequests()...), 0, ""},
		{"key at the limit", batch(nil, &PutRequest{Key: maxKey, Value: maxVal}), 0, ""},
		{"empty value", batch(nil, &PutRequest{Key: []byte("a")}), 0, ""},
		{"cput expecting empty value", batch(nil, &ConditionalPutRequest{Key: []byte("a")}), 0, ""},
		{"inconsistent read", batch(&BatchHeader{ReadConsistency: ReadConsistency_INCONSISTENT}, &GetRequest{Key: []byte("a")}), 0, ""},

		{"empty batch", &BatchRequest{}, -1, "empty batch"},
		{"nil batch", nil, -1, "empty batch"},
		{"negative key limit", batch(&BatchHeader{MaxSpanRequestKeys: -1}, &GetRequest{Key: []byte("a")}), -1, "negative limit"},
		{"negative byte limit", batch(&BatchHeader{TargetBytes: -1}, &GetRequest{Key: []byte("a")}), -1, "negative limit"},
		{"unknown consistency", batch(&BatchHeader{ReadConsistency: 7}, &GetRequest{Key: []byte("a")}), -1, "unknown read consistency 7"},
		{"inconsistent write", batch(&BatchHeader{ReadConsistency: ReadConsistency_INCONSISTENT}, &GetRequest{Key: []byte("a")}, &PutRequest{Key: []byte("a")}), -1, "INCONSISTENT"},
		{"empty union", &BatchRequest{Requests: []*RequestUnion{WrapRequest(&GetRequest{Key: []byte("a")}), {}}}, 1, "no request"},
		{"empty key", batch(nil, &GetRequest{Key: []byte("a")}, &GetRequest{}), 1, "Get: empty key"},
		{"empty put key", batch(nil, &PutRequest{Value: []byte("v")}), 0, "Put: empty key"},
		{"key too big", batch(nil, &DeleteRequest{Key: bigKey}), 0, "Delete: key of 16449 bytes is over the 16448-byte limit"},
		{"end key too big", batch(nil, &ScanRequest{Key: []byte("a"), EndKey: bigKey}), 0, "Scan: end key of 16449 bytes"},
		{"value too big", batch(nil, &PutRequest{Key: []byte("a"), Value: bigVal}), 0, "Put: value of 4194305 bytes is over the 4194304-byte limit"},
		{"cput value too big", batch(nil, &ConditionalPutRequest{Key: []byte("a"), Value: bigVal}), 0, "ConditionalPut: value of"},
		{"cput expected too big", batch(nil, &ConditionalPutRequest{Key: []byte("a"), ExpectedValue: bigVal}), 0, "expected value of"},
		{"cput absent and value", batch(nil, &ConditionalPutRequest{Key: []byte("a"), ExpectedValue: []byte("x"), ExpectAbsent: true}), 0, "expects both absence and a value"},
		{"scan without end", batch(nil, &ScanRequest{Key: []byte("a")}), 0, "Scan: empty or inverted span"},
		{"scan empty span", batch(nil, &ReverseScanRequest{Key: []byte("a"), EndKey: []byte("a")}), 0, "ReverseScan: empty or inverted span"},
		{"inverted delete range", batch(nil, &DeleteRangeRequest{Key: []byte("b"), EndKey: []byte("a")}), 0, `DeleteRange: empty or inverted span ["b", "a")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.b.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ire *InvalidRequestError
			if !errors.As(err, &ire) {
				t.Fatalf("want *InvalidRequestError, got %T %v", err, err)
			}
			if ire.GetIndex() != tc.index || !strings.Contains(ire.GetMessage(), tc.want) {
				t.Fatalf("got index %d %q, want index %d and %q", ire.GetIndex(), ire.GetMessage(), tc.index, tc.want)
			}
		})
	}
}

func TestCounter(t *testing.T) {
	for _, n := range []int64{0, 1, -1, 42, math.MaxInt64, math.MinInt64} {
		got, err := DecodeCounter(EncodeCounter(n))
		if err != nil || got != n {
			t.Errorf("round trip of %d gave %d, %v", n, got, err)
		}
	}
	if string(EncodeCounter(-12)) != "-12" {
		t.Errorf("EncodeCounter(-12) = %q", EncodeCounter(-12))
	}
	if n, err := DecodeCounter(nil); n != 0 || err != nil {
		t.Errorf("missing counter = %d, %v", n, err)
	}
	for _, bad := range []string{"", "x", "1.5", "99999999999999999999", " 1"} {
		if _, err := DecodeCounter([]byte(bad)); err == nil {
			t.Errorf("DecodeCounter(%q) accepted", bad)
		}
	}
	for _, tc := range []struct {
		n, d int64
		ok   bool
	}{
		{1, 2, true}, {math.MaxInt64, 0, true}, {math.MaxInt64, 1, false}, {math.MinInt64, -1, false},
		{math.MinInt64, 1, true}, {-5, -5, true}, {math.MaxInt64, math.MinInt64, true},
	} {
		s, err := AddCounter(tc.n, tc.d)
		if (err == nil) != tc.ok || (tc.ok && s != tc.n+tc.d) {
			t.Errorf("AddCounter(%d, %d) = %d, %v", tc.n, tc.d, s, err)
		}
	}
}

// FuzzBatchRequest feeds arbitrary bytes to the decoder and Validate, as a
// node receives them from a peer: neither may panic, and a batch Validate
// accepts has a key on every request.
func FuzzBatchRequest(f *testing.F) {
	var b BatchRequest
	b.Add(allRequests()...)
	seed, err := proto.Marshal(&b)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{0x12, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		var b BatchRequest
		if proto.Unmarshal(data, &b) != nil {
			return
		}
		if b.Validate() != nil {
			return
		}
		for i, u := range b.GetRequests() {
			r := u.Inner()
			if r == nil {
				t.Fatalf("valid batch with empty request %d", i)
			}
			if key, _ := r.KeySpan(); len(key) == 0 || len(key) > MaxInternalKeySize {
				t.Fatalf("valid batch with bad request %d: %v", i, u)
			}
		}
		ErrorFromGo(b.Validate()).GoError()
	})
}
