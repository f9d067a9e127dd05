package rangetest

import (
	"context"
	"errors"

	"github.com/meridiandb/meridian/api"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }

func isAttemptTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var amb *api.AmbiguousResultError
	if errors.As(err, &amb) {
		return false // a write that may have applied is never retried
	}
	s, ok := status.FromError(err)
	return ok && s.Code() == codes.DeadlineExceeded
}

func isUnavailable(err error) bool {
	s, ok := status.FromError(err)
	return ok && (s.Code() == codes.Unavailable || s.Code() == codes.Canceled)
}
