package api

import (
	"bytes"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"
)

// Size limits of the KV protocol, enforced by BatchRequest.Validate on the
// gateway and again on the serving replica. The public API documents the
// same limits.
const (
	// MaxKeySize is the largest key a client may use, in bytes (the public
	// API checks it on the client's own key).
	MaxKeySize = 16 << 10
	// MaxInternalKeySize is the largest key a batch may carry: a client key
	// plus the prefix of its keyspace, with room to spare.
	MaxInternalKeySize = MaxKeySize + 64
	// MaxValueSize is the largest value, in bytes.
	MaxValueSize = 4 << 20
)

// Method names a kind of request.
type Method int

// The methods, in the order of the RequestUnion oneof.
const (
	MethodGet Method = iota + 1
	MethodPut
	MethodConditionalPut
	MethodIncrement
	MethodDelete
	MethodDeleteRange
	MethodScan
	MethodReverseScan
)

var methodNames = [...]string{
	MethodGet:            "Get",
	MethodPut:            "Put",
	MethodConditionalPut: "ConditionalPut",
	MethodIncrement:      "Increment",
	MethodDelete:         "Delete",
	MethodDeleteRange:    "DeleteRange",
	MethodScan:           "Scan",
	MethodReverseScan:    "ReverseScan",
}

func (m Method) String() string {
	if m > 0 && int(m) < len(methodNames) {
		return methodNames[m]
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// IsWrite reports whether requests of kind m write (and so take write
// latches, go through Raft and are checked against the timestamp cache).
func (m Method) IsWrite() bool {
	switch m {
	case MethodPut, MethodConditionalPut, MethodIncrement, MethodDelete, MethodDeleteRange:
		return true
	}
	return false
}

// IsRange reports whether requests of kind m address a span [Key, EndKey)
// rather than a single key.
func (m Method) IsRange() bool {
	return m == MethodDeleteRange || m == MethodScan || m == MethodReverseScan
}

// Request is implemented by every request message.
type Request interface {
	proto.Message
	Method() Method
	// KeySpan returns the keys the request touches: the single key (with
	// a nil endKey) or the span [key, endKey).
	KeySpan() (key, endKey []byte)
}

func (*GetRequest) Method() Method            { return MethodGet }
func (*PutRequest) Method() Method            { return MethodPut }
func (*ConditionalPutRequest) Method() Method { return MethodConditionalPut }
func (*IncrementRequest) Method() Method      { return MethodIncrement }
func (*DeleteRequest) Method() Method         { return MethodDelete }
func (*DeleteRangeRequest) Method() Method    { return MethodDeleteRange }
func (*ScanRequest) Method() Method           { return MethodScan }
func (*ReverseScanRequest) Method() Method    { return MethodReverseScan }

func (r *GetRequest) KeySpan() ([]byte, []byte)            { return r.GetKey(), nil }
func (r *PutRequest) KeySpan() ([]byte, []byte)            { return r.GetKey(), nil }
func (r *ConditionalPutRequest) KeySpan() ([]byte, []byte) { return r.GetKey(), nil }
func (r *IncrementRequest) KeySpan() ([]byte, []byte)      { return r.GetKey(), nil }
func (r *DeleteRequest) KeySpan() ([]byte, []byte)         { return r.GetKey(), nil }
func (r *DeleteRangeRequest) KeySpan() ([]byte, []byte)    { return r.GetKey(), r.GetEndKey() }
func (r *ScanRequest) KeySpan() ([]byte, []byte)           { return r.GetKey(), r.GetEndKey() }
func (r *ReverseScanRequest) KeySpan() ([]byte, []byte)    { return r.GetKey(), r.GetEndKey() }

// WrapRequest puts r in a RequestUnion.
func WrapRequest(r Request) *RequestUnion {
	var u RequestUnion
	switch r := r.(type) {
	case *GetRequest:
		u.Value = &RequestUnion_Get{r}
	case *PutRequest:
		u.Value = &RequestUnion_Put{r}
	case *ConditionalPutRequest:
		u.Value = &RequestUnion_ConditionalPut{r}
	case *IncrementRequest:
		u.Value = &RequestUnion_Increment{r}
	case *DeleteRequest:
		u.Value = &RequestUnion_Delete{r}
	case *DeleteRangeRequest:
		u.Value = &RequestUnion_DeleteRange{r}
	case *ScanRequest:
		u.Value = &RequestUnion_Scan{r}
	case *ReverseScanRequest:
		u.Value = &RequestUnion_ReverseScan{r}
	}
	return &u
}

// Inner returns the request u holds, or nil if it holds none (or one this
// node does not know).
func (u *RequestUnion) Inner() Request {
	var r Request
	switch v := u.GetValue().(type) {
	case *RequestUnion_Get:
		r = v.Get
	case *RequestUnion_Put:
		r = v.Put
	case *RequestUnion_ConditionalPut:
		r = v.ConditionalPut
	case *RequestUnion_Increment:
		r = v.Increment
	case *RequestUnion_Delete:
		r = v.Delete
	case *RequestUnion_DeleteRange:
		r = v.DeleteRange
	case *RequestUnion_Scan:
		r = v.Scan
	case *RequestUnion_ReverseScan:
		r = v.ReverseScan
	}
	if r == nil || !r.ProtoReflect().IsValid() {
		return nil
	}
	return r
}

// Response is implemented by every response message.
type Response interface {
	proto.Message
	isResponse()
}

func (*GetResponse) isResponse()            {}
func (*PutResponse) isResponse()            {}
func (*ConditionalPutResponse) isResponse() {}
func (*IncrementResponse) isResponse()      {}
func (*DeleteResponse) isResponse()         {}
func (*DeleteRangeResponse) isResponse()    {}
func (*ScanResponse) isResponse()           {}
func (*ReverseScanResponse) isResponse()    {}

// WrapResponse puts r in a ResponseUnion.
func WrapResponse(r Response) *ResponseUnion {
	var u ResponseUnion
	switch r := r.(type) {
	case *GetResponse:
		u.Value = &ResponseUnion_Get{r}
	case *PutResponse:
		u.Value = &ResponseUnion_Put{r}
	case *ConditionalPutResponse:
		u.Value = &ResponseUnion_ConditionalPut{r}
	case *IncrementResponse:
		u.Value = &ResponseUnion_Increment{r}
	case *DeleteResponse:
		u.Value = &ResponseUnion_Delete{r}
	case *DeleteRangeResponse:
		u.Value = &ResponseUnion_DeleteRange{r}
	case *ScanResponse:
		u.Value = &ResponseUnion_Scan{r}
	case *ReverseScanResponse:
		u.Value = &ResponseUnion_ReverseScan{r}
	}
	return &u
}

// Inner returns the response u holds, or nil if it holds none.
func (u *ResponseUnion) Inner() Response {
	var r Response
	switch v := u.GetValue().(type) {
	case *ResponseUnion_Get:
		r = v.Get
	case *ResponseUnion_Put:
		r = v.Put
	case *ResponseUnion_ConditionalPut:
		r = v.ConditionalPut
	case *ResponseUnion_Increment:
		r = v.Increment
	case *ResponseUnion_Delete:
		r = v.Delete
	case *ResponseUnion_DeleteRange:
		r = v.DeleteRange
	case *ResponseUnion_Scan:
		r = v.Scan
	case *ResponseUnion_ReverseScan:
		r = v.ReverseScan
	}
	if r == nil || !r.ProtoReflect().IsValid() {
		return nil
	}
	return r
}

// Add appends requests to the batch.
func (b *BatchRequest) Add(reqs ...Request) {
	for _, r := range reqs {
		b.Requests = append(b.Requests, WrapRequest(r))
	}
}

// IsReadOnly reports whether no request of the batch writes.
func (b *BatchRequest) IsReadOnly() bool {
	for _, u := range b.GetRequests() {
		if r := u.Inner(); r == nil || r.Method().IsWrite() {
			return false
		}
	}
	return true
}

// Validate checks the batch's shape before it is routed or evaluated: at
// least one request, each a known kind with a non-empty key; spans with
// Key < EndKey; keys of at most MaxInternalKeySize bytes and values of at most
// MaxValueSize bytes; non-negative limits; a known read consistency, and
// INCONSISTENT only for read-only batches; a ConditionalPut that expects
// absence expects no value. The error is an *InvalidRequestError. Validate
// does not check that the keys lie in one range: that is the serving
// replica's job (RangeKeyMismatchError).
func (b *BatchRequest) Validate() error {
	if len(b.GetRequests()) == 0 {
		return &InvalidRequestError{Index: -1, Message: "empty batch"}
	}
	h := b.GetHeader()
	if h.GetMaxSpanRequestKeys() < 0 || h.GetTargetBytes() < 0 {
		return &InvalidRequestError{Index: -1, Message: fmt.Sprintf(
			"negative limit (max_span_request_keys %d, target_bytes %d)", h.GetMaxSpanRequestKeys(), h.GetTargetBytes())}
	}
	switch h.GetReadConsistency() {
	case ReadConsistency_CONSISTENT:
	case ReadConsistency_INCONSISTENT:
		if !b.IsReadOnly() {
			return &InvalidRequestError{Index: -1, Message: "INCONSISTENT read consistency in a batch that writes"}
		}
	default:
		return &InvalidRequestError{Index: -1, Message: fmt.Sprintf("unknown read consistency %d", h.GetReadConsistency())}
	}
	for i, u := range b.GetRequests() {
		r := u.Inner()
		if r == nil {
			return &InvalidRequestError{Index: int32(i), Message: "no request (empty or unknown kind)"}
		}
		if msg := validateRequest(r); msg != "" {
			return &InvalidRequestError{Index: int32(i), Message: r.Method().String() + ": " + msg}
		}
	}
	return nil
}

// validateRequest returns what is wrong with r, or "".
func validateRequest(r Request) string {
	key, endKey := r.KeySpan()
	if len(key) == 0 {
		return "empty key"
	}
	if len(key) > MaxInternalKeySize {
		return fmt.Sprintf("key of %d bytes is over the %d-byte limit", len(key), MaxInternalKeySize)
	}
	if r.Method().IsRange() {
		if len(endKey) > MaxInternalKeySize {
			return fmt.Sprintf("end key of %d bytes is over the %d-byte limit", len(endKey), MaxInternalKeySize)
		}
		if bytes.Compare(key, endKey) >= 0 {
			return fmt.Sprintf("empty or inverted span [%q, %q)", truncate(key), truncate(endKey))
		}
	}
	var value []byte
	switch r := r.(type) {
	case *PutRequest:
		value = r.GetValue()
	case *ConditionalPutRequest:
		value = r.GetValue()
		if len(r.GetExpectedValue()) > MaxValueSize {
			return fmt.Sprintf("expected value of %d bytes is over the %d-byte limit", len(r.GetExpectedValue()), MaxValueSize)
		}
		if r.GetExpectAbsent() && len(r.GetExpectedValue()) > 0 {
			return "expects both absence and a value"
		}
	}
	if len(value) > MaxValueSize {
		return fmt.Sprintf("value of %d bytes is over the %d-byte limit", len(value), MaxValueSize)
	}
	return ""
}

// truncate shortens a key for an error message.
func truncate(k []byte) []byte {
	const max = 64
	if len(k) > max {
		return k[:max]
	}
	return k
}

// EncodeCounter returns the stored form of an Increment counter: the
// decimal ASCII text of n (so it reads naturally through every interface).
func EncodeCounter(n int64) []byte { return strconv.AppendInt(nil, n, 10) }

// DecodeCounter parses a value stored by EncodeCounter. A missing value
// (nil) is 0; anything that is not a decimal int64 is an error.
func DecodeCounter(v []byte) (int64, error) {
	if v == nil {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("api: value %q is not an integer counter", truncate(v))
	}
	return n, nil
}

// AddCounter returns n + delta, or an error if the sum overflows int64.
func AddCounter(n, delta int64) (int64, error) {
	s := n + delta
	if (delta > 0 && s < n) || (delta < 0 && s > n) {
		return 0, fmt.Errorf("api: increment of %d by %d overflows", n, delta)
	}
	return s, nil
}
