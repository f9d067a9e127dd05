package api

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// errorDetails returns one populated value of every detail the Error
// oneof can carry, with the substring its message must contain.
func errorDetails() []struct {
	err  ErrorDetail
	text string
} {
	desc := testDesc()
	lease := &Lease{Replica: desc.Replicas[1], Start: NewTimestamp(ts(1, 0)), Expiration: NewTimestamp(ts(9, 0)), Sequence: 4}
	return []struct {
		err  ErrorDetail
		text string
	}{
		{&NotLeaseholderError{Replica: desc.Replicas[0], Lease: lease, RangeId: 7}, "replica n1/s1/r1 is not the leaseholder of range 7; lease #4 held by n2/s2/r2"},
		{&NotLeaseholderError{Replica: desc.Replicas[0], RangeId: 7}, "leaseholder unknown"},
		{&RangeNotFoundError{RangeId: 12}, "api: range 12 not found"},
		{&RangeKeyMismatchError{RequestedStartKey: []byte("a"), RequestedEndKey: []byte("z"), Ranges: []*RangeDescriptor{desc}}, `span ["a", "z") is outside range 7 ["b", "m") (generation 3)`},
		{&RangeKeyMismatchError{RequestedStartKey: []byte("a")}, `key "a" is outside the addressed range`},
		{&AmbiguousResultError{Message: "proposal outcome unknown"}, "result is ambiguous: proposal outcome unknown"},
		{&WriteTooOldError{Key: []byte("k"), Timestamp: NewTimestamp(ts(1, 0)), ActualTimestamp: NewTimestamp(ts(2, 1))}, "write too old"},
		{&ReadWithinUncertaintyError{Key: []byte("k"), ReadTimestamp: NewTimestamp(ts(1, 0)), ValueTimestamp: NewTimestamp(ts(2, 0)), UncertaintyLimit: NewTimestamp(ts(3, 0))}, "uncertainty"},
		{&LockConflictError{Locks: []*Lock{{Key: []byte("k"), Txn: &TxnMeta{Id: []byte{1, 2, 3, 4}}}}}, `"k" held by txn 01020304`},
		{&ConditionFailedError{Key: []byte("k"), ActualValue: &Value{RawBytes: []byte("v"), Timestamp: NewTimestamp(ts(5, 0))}}, `condition failed on "k": found value "v"`},
		{&ConditionFailedError{Key: []byte("k")}, `condition failed on "k": no value`},
		{&InvalidRequestError{Index: 2, Message: "Put: empty key"}, "api: invalid request 2: Put: empty key"},
		{&InvalidRequestError{Index: -1, Message: "empty batch"}, "api: invalid batch: empty batch"},
		{&InternalError{Message: "ranges: disk on fire"}, "ranges: disk on fire"},
	}
}

// TestErrorDetailsCovered fails when a field is added to the Error oneof
// without a case in errorDetails (and so, likely, in GoError).
func TestErrorDetailsCovered(t *testing.T) {
	seen := map[protoreflect.Name]bool{}
	for _, d := range errorDetails() {
		seen[d.err.(proto.Message).ProtoReflect().Descriptor().Name()] = true
	}
	fields := (&Error{}).ProtoReflect().Descriptor().Oneofs().ByName("detail").Fields()
	for i := range fields.Len() {
		name := fields.Get(i).Message().Name()
		if !seen[name] {
			t.Errorf("Error detail %s has no test case", name)
		}
	}
}

func TestErrorRoundTrip(t *testing.T) {
	for _, tc := range errorDetails() {
		name := fmt.Sprintf("%T", tc.err)
		t.Run(name, func(t *testing.T) {
			if msg := tc.err.Error(); !strings.Contains(msg, tc.text) {
				t.Errorf("Error() = %q, want it to contain %q", msg, tc.text)
			}
			// A replica wraps the error with context; the gateway gets the
			// typed error back after the wire.
			wrapped := fmt.Errorf("ranges: evaluating batch: %w", tc.err)
			b, err := proto.Marshal(ErrorFromGo(wrapped))
			if err != nil {
				t.Fatal(err)
			}
			var back Error
			if err := proto.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			got := back.GoError()
			if reflect.TypeOf(got) != reflect.TypeOf(tc.err) {
				t.Fatalf("came back as %T, want %T", got, tc.err)
			}
			if !proto.Equal(got.(proto.Message), tc.err.(proto.Message)) {
				t.Fatalf("came back as %v, want %v", got, tc.err)
			}
			// errors.As works on the gateway, also through further wrapping.
			target := reflect.New(reflect.TypeOf(tc.err))
			if !errors.As(fmt.Errorf("client: %w", got), target.Interface()) {
				t.Fatalf("errors.As(%T) failed", tc.err)
			}
			if got.Error() != tc.err.Error() {
				t.Fatalf("message changed: %q vs %q", got.Error(), tc.err.Error())
			}
		})
	}
}

func TestErrorFromGoUntyped(t *testing.T) {
	if ErrorFromGo(nil) != nil {
		t.Fatal("nil error gave a wire error")
	}
	var nilErr *Error
	if nilErr.GoError() != nil {
		t.Fatal("nil wire error gave a Go error")
	}
	plain := fmt.Errorf("ranges: applying: %w", errors.New("pebble: closed"))
	b, err := proto.Marshal(ErrorFromGo(plain))
	if err != nil {
		t.Fatal(err)
	}
	var back Error
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	var ie *InternalError
	if got := back.GoError(); !errors.As(got, &ie) || got.Error() != plain.Error() {
		t.Fatalf("plain error came back as %T %q", got, got)
	}
	// A typed nil in the chain must not cross as an empty detail.
	var nl *NotLeaseholderError
	if d := ErrorFromGo(fmt.Errorf("x: %w", error(nl))).GetInternal(); d == nil {
		t.Fatal("typed nil crossed as a typed detail")
	}
	// The first typed error in the chain wins.
	both := fmt.Errorf("%w: %w", &RangeNotFoundError{RangeId: 1}, &AmbiguousResultError{})
	if ErrorFromGo(both).GetRangeNotFound() == nil {
		t.Fatal("first typed error in the chain was not the one sent")
	}
	// An Error without a detail (a newer sender's unknown detail, or an
	// empty message) is an InternalError, never nil.
	if err := (&Error{}).GoError(); !errors.As(err, &ie) {
		t.Fatalf("empty Error gave %T %v", err, err)
	}
	if err := (&Error{Detail: &Error_WriteTooOld{}}).GoError(); !errors.As(err, &ie) {
		t.Fatalf("Error with a nil detail gave %T %v", err, err)
	}
}
