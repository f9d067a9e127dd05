package ranges

import "errors"

var (
	// errLeaseChanged: a command was evaluated under a lease that is no
	// longer the range's lease when it applies; it applied nothing.
	errLeaseChanged = errors.New("ranges: lease changed before the command applied")
	// errLeaseRejected: a lease request or transfer lost to another lease
	// change.
	errLeaseRejected = errors.New("ranges: lease change rejected")
	// ErrStoreStopped is returned once the store is stopping.
	ErrStoreStopped = errors.New("ranges: store stopped")
)
