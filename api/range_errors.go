package api

import (
	"errors"
	"fmt"
)

// ErrorDetail is implemented by every error type the Error wrapper can
// carry: the errors of range_errors.proto and errors.proto.
type ErrorDetail interface {
	error
	// setOn stores the detail in e's oneof.
	setOn(e *Error)
}

func (e *NotLeaseholderError) Error() string {
	if e.GetLease() == nil {
		return fmt.Sprintf("api: replica %s is not the leaseholder of range %d; leaseholder unknown",
			e.GetReplica().Short(), e.GetRangeId())
	}
	return fmt.Sprintf("api: replica %s is not the leaseholder of range %d; %s",
		e.GetReplica().Short(), e.GetRangeId(), e.GetLease().Short())
}

func (e *RangeNotFoundError) Error() string {
	return fmt.Sprintf("api: range %d not found", e.GetRangeId())
}

func (e *RangeKeyMismatchError) Error() string {
	span := fmt.Sprintf("key %q", e.GetRequestedStartKey())
	if len(e.GetRequestedEndKey()) > 0 {
		span = fmt.Sprintf("span [%q, %q)", e.GetRequestedStartKey(), e.GetRequestedEndKey())
	}
	if len(e.GetRanges()) == 0 {
		return fmt.Sprintf("api: %s is outside the addressed range", span)
	}
	d := e.GetRanges()[0]
	return fmt.Sprintf("api: %s is outside range %d [%q, %q) (generation %d)",
		span, d.GetRangeId(), d.GetStartKey(), d.GetEndKey(), d.GetGeneration())
}

func (e *AmbiguousResultError) Error() string {
	return "api: result is ambiguous: " + e.GetMessage()
}

func (e *ConditionFailedError) Error() string {
	if e.GetActualValue() == nil {
		return fmt.Sprintf("api: condition failed on %q: no value", e.GetKey())
	}
	return fmt.Sprintf("api: condition failed on %q: found value %q at %s",
		e.GetKey(), e.GetActualValue().GetRawBytes(), e.GetActualValue().GetTimestamp().ToHLC())
}

func (e *InvalidRequestError) Error() string {
	if e.GetIndex() < 0 {
		return "api: invalid batch: " + e.GetMessage()
	}
	return fmt.Sprintf("api: invalid request %d: %s", e.GetIndex(), e.GetMessage())
}

func (e *InternalError) Error() string { return e.GetMessage() }

func (e *NotLeaseholderError) setOn(w *Error) { w.Detail = &Error_NotLeaseholder{e} }
func (e *RangeNotFoundError) setOn(w *Error)  { w.Detail = &Error_RangeNotFound{e} }
func (e *RangeKeyMismatchError) setOn(w *Error) {
	w.Detail = &Error_RangeKeyMismatch{e}
}
func (e *AmbiguousResultError) setOn(w *Error)       { w.Detail = &Error_AmbiguousResult{e} }
func (e *WriteTooOldError) setOn(w *Error)           { w.Detail = &Error_WriteTooOld{e} }
func (e *ReadWithinUncertaintyError) setOn(w *Error) { w.Detail = &Error_ReadWithinUncertainty{e} }
func (e *LockConflictError) setOn(w *Error)          { w.Detail = &Error_LockConflict{e} }
func (e *ConditionFailedError) setOn(w *Error)       { w.Detail = &Error_ConditionFailed{e} }
func (e *InvalidRequestError) setOn(w *Error)        { w.Detail = &Error_InvalidRequest{e} }
func (e *InternalError) setOn(w *Error)              { w.Detail = &Error_Internal{e} }

// ErrorFromGo wraps err for the wire. The first error in err's chain that
// is an ErrorDetail is carried as it is (text added by wrapping it is
// dropped); any other error becomes an InternalError with err's full text.
// A nil err gives nil.
func ErrorFromGo(err error) *Error {
	if err == nil {
		return nil
	}
	var e Error
	var d ErrorDetail
	if errors.As(err, &d) && !isNilDetail(d) {
		d.setOn(&e)
	} else {
		e.Detail = &Error_Internal{&InternalError{Message: err.Error()}}
	}
	return &e
}

// isNilDetail reports whether d is a typed nil pointer, which must not
// cross the wire as an empty detail.
func isNilDetail(d ErrorDetail) bool {
	switch d := d.(type) {
	case *NotLeaseholderError:
		return d == nil
	case *RangeNotFoundError:
		return d == nil
	case *RangeKeyMismatchError:
		return d == nil
	case *AmbiguousResultError:
		return d == nil
	case *WriteTooOldError:
		return d == nil
	case *ReadWithinUncertaintyError:
		return d == nil
	case *LockConflictError:
		return d == nil
	case *ConditionFailedError:
		return d == nil
	case *InvalidRequestError:
		return d == nil
	case *InternalError:
		return d == nil
	}
	return false
}

// GoError returns the detail e carries as a Go error: the same typed error
// (e.g. *NotLeaseholderError) ErrorFromGo was given, so callers match it
// with errors.As. A nil e gives nil; an Error without a detail (sent by a
// newer node with a detail this one does not know, or malformed) gives an
// *InternalError saying so.
func (e *Error) GoError() error {
	if e == nil {
		return nil
	}
	var d ErrorDetail
	switch v := e.GetDetail().(type) {
	case *Error_NotLeaseholder:
		d = v.NotLeaseholder
	case *Error_RangeNotFound:
		d = v.RangeNotFound
	case *Error_RangeKeyMismatch:
		d = v.RangeKeyMismatch
	case *Error_AmbiguousResult:
		d = v.AmbiguousResult
	case *Error_WriteTooOld:
		d = v.WriteTooOld
	case *Error_ReadWithinUncertainty:
		d = v.ReadWithinUncertainty
	case *Error_LockConflict:
		d = v.LockConflict
	case *Error_ConditionFailed:
		d = v.ConditionFailed
	case *Error_InvalidRequest:
		d = v.InvalidRequest
	case *Error_Internal:
		d = v.Internal
	}
	if d == nil || isNilDetail(d) {
		return &InternalError{Message: "api: error without a known detail"}
	}
	return d
}
