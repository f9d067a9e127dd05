package server

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meridiandb/meridian/api"
)

// This file is the one place where errors become gRPC status codes (kv.proto
// documents them for clients). Lower layers know nothing of gRPC codes.

// unavailableError marks a request that no replica served before the
// server's own request timeout (the caller's deadline had not passed).
// Only failures known not to have applied get here (see kvServer.send).
type unavailableError struct{ err error }

func (e *unavailableError) Error() string {
	return "server: no replica served the request in time: " + e.err.Error()
}
func (e *unavailableError) Unwrap() error { return e.err }

// gcThresholdMarker is how ranges words a read at or below a range's GC
// threshold (an *api.InvalidRequestError, ranges/replica_send.go); until
// api has a typed error for it, this text is what tells it apart from a
// malformed request. TestStatusFromRealGCThreshold breaks if it changes.
const gcThresholdMarker = "GC threshold"

// StatusError returns the gRPC status error for err:
//
//	nil                                   nil
//	a gRPC status error (as it is)        its code
//	*api.AmbiguousResultError             Unknown (the write's outcome is unknown)
//	no replica served within the server's
//	  request timeout; NotLeaseholder,
//	  RangeNotFound, RangeKeyMismatch
//	  that escaped the router             Unavailable (safe to retry)
//	context.DeadlineExceeded              DeadlineExceeded
//	context.Canceled                      Canceled
//	*api.InvalidRequestError              InvalidArgument, or FailedPrecondition
//	                                        for a read below the GC threshold
//	*api.ReadWithinUncertaintyError,
//	  *api.WriteTooOldError,
//	  *api.LockConflictError              Aborted (retry the operation)
//	anything else                         Internal
//
// An ambiguous result wins over the ctx errors it may be joined with (the
// router reports a write in flight when ctx ended as ambiguous). Statuses
// built from an api error carry that error as an *api.Error detail, so a
// Go client can recover the typed error; every status this function builds
// carries one (an *api.InternalError with the text for non-api errors).
func StatusError(err error) error {
	if err == nil {
		return nil
	}
	if s, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return s.GRPCStatus().Err()
	}
	var (
		amb  *api.AmbiguousResultError
		unav *unavailableError
		inv  *api.InvalidRequestError
		unc  *api.ReadWithinUncertaintyError
		wto  *api.WriteTooOldError
		lc   *api.LockConflictError
		nlh  *api.NotLeaseholderError
		rnf  *api.RangeNotFoundError
		rkm  *api.RangeKeyMismatchError
	)
	switch {
	case errors.As(err, &amb):
		return withDetail(codes.Unknown, "the outcome of the write is unknown: it may or may not have applied: "+err.Error(), err)
	case errors.As(err, &unav), errors.As(err, &nlh), errors.As(err, &rnf), errors.As(err, &rkm):
		return withDetail(codes.Unavailable, err.Error(), err)
	case errors.Is(err, context.DeadlineExceeded):
		return withDetail(codes.DeadlineExceeded, err.Error(), err)
	case errors.Is(err, context.Canceled):
		return withDetail(codes.Canceled, err.Error(), err)
	case errors.As(err, &inv):
		if strings.Contains(inv.GetMessage(), gcThresholdMarker) {
			return withDetail(codes.FailedPrecondition, err.Error(), err)
		}
		return withDetail(codes.InvalidArgument, err.Error(), err)
	case errors.As(err, &unc), errors.As(err, &wto), errors.As(err, &lc):
		return withDetail(codes.Aborted, err.Error(), err)
	}
	return withDetail(codes.Internal, err.Error(), err)
}

// withDetail builds a status of code with msg, carrying err as an api.Error
// detail.
func withDetail(code codes.Code, msg string, err error) error {
	s := status.New(code, msg)
	if d, derr := s.WithDetails(api.ErrorFromGo(err)); derr == nil {
		s = d
	}
	return s.Err()
}
