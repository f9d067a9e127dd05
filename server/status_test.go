package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meridiandb/meridian/api"
)

// detailAs finds the *api.Error detail of st and matches its Go error
// against target (errors.As).
func detailAs(st *status.Status, target any) bool {
	for _, d := range st.Details() {
		if e, ok := d.(*api.Error); ok {
			return errors.As(e.GoError(), target)
		}
	}
	return false
}

func TestStatusError(t *testing.T) {
	deadline := fmt.Errorf("client: %w (last error: %w)", context.DeadlineExceeded, errors.New("client: no replica of range 4 served the batch"))
	gc := &api.InvalidRequestError{Index: -1, Message: "batch timestamp 5.000000000,0 is at or below the range's GC threshold 9.000000000,0: older versions may be gone"}
	for _, tc := range []struct {
		name string
		err  error
		code codes.Code
		// msg must appear in the status message.
		msg string
		// detail, if set, must be recoverable from the status details.
		detail any
	}{
		{"invalid request", &api.InvalidRequestError{Index: 0, Message: "Put: empty key"}, codes.InvalidArgument, "empty key", new(*api.InvalidRequestError)},
		{"below the GC threshold", gc, codes.FailedPrecondition, "GC threshold", new(*api.InvalidRequestError)},
		{"GC threshold, wrapped", fmt.Errorf("client: %w", gc), codes.FailedPrecondition, "GC threshold", nil},
		{"ambiguous", &api.AmbiguousResultError{Message: "lost leadership"}, codes.Unknown, "outcome of the write is unknown", new(*api.AmbiguousResultError)},
		{"ambiguous after the deadline", fmt.Errorf("client: %w (last error: %w)", context.DeadlineExceeded, &api.AmbiguousResultError{Message: "ctx ended"}),
			codes.Unknown, "outcome of the write is unknown", new(*api.AmbiguousResultError)},
		{"server timeout", &unavailableError{err: deadline}, codes.Unavailable, "no replica served", nil},
		{"not leaseholder", &api.NotLeaseholderError{RangeId: 3}, codes.Unavailable, "not the leaseholder", new(*api.NotLeaseholderError)},
		{"range not found", &api.RangeNotFoundError{RangeId: 3}, codes.Unavailable, "range 3 not found", new(*api.RangeNotFoundError)},
		{"range key mismatch", &api.RangeKeyMismatchError{RequestedStartKey: []byte("a")}, codes.Unavailable, "outside", new(*api.RangeKeyMismatchError)},
		{"caller deadline", deadline, codes.DeadlineExceeded, "deadline exceeded", nil},
		{"bare deadline", context.DeadlineExceeded, codes.DeadlineExceeded, "deadline", nil},
		{"canceled", fmt.Errorf("client: %w", context.Canceled), codes.Canceled, "canceled", nil},
		{"uncertainty", &api.ReadWithinUncertaintyError{Key: []byte("k")}, codes.Aborted, "uncertainty", new(*api.ReadWithinUncertaintyError)},
		{"write too old", &api.WriteTooOldError{Key: []byte("k")}, codes.Aborted, "write too old", new(*api.WriteTooOldError)},
		{"lock conflict", &api.LockConflictError{}, codes.Aborted, "conflicting locks", new(*api.LockConflictError)},
		{"api internal", &api.InternalError{Message: "disk on fire"}, codes.Internal, "disk on fire", new(*api.InternalError)},
		{"anything else", errors.New("ranges: something broke"), codes.Internal, "something broke", new(*api.InternalError)},
		{"a status stays as it is", status.Error(codes.InvalidArgument, "Scan: negative limit"), codes.InvalidArgument, "negative limit", nil},
		{"not found is not a code here", status.Error(codes.NotFound, "x"), codes.NotFound, "x", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := StatusError(tc.err)
			st, ok := status.FromError(err)
			if !ok {
				t.Fatalf("StatusError(%v) = %v, not a status", tc.err, err)
			}
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
				t.Fatalf("StatusError(%v) = %v %q; want %v containing %q", tc.err, st.Code(), st.Message(), tc.code, tc.msg)
			}
			if tc.detail != nil && !detailAs(st, tc.detail) {
				t.Fatalf("StatusError(%v): details %v do not carry %T", tc.err, st.Details(), tc.detail)
			}
		})
	}
	if StatusError(nil) != nil {
		t.Fatal("StatusError(nil) is not nil")
	}
}
