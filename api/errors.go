package api

import (
	"fmt"
	"strings"
)

// The error messages implement error so a package can return them as they
// are and callers can match them with errors.As; the same message later
// crosses the wire unchanged. Keys are rendered with %q: api sits below keys
// and cannot pretty-print them.

func (e *WriteTooOldError) Error() string {
	return fmt.Sprintf("api: write too old: write of %q at %s found a newer version; retry at %s",
		e.GetKey(), e.GetTimestamp().ToHLC(), e.GetActualTimestamp().ToHLC())
}

func (e *ReadWithinUncertaintyError) Error() string {
	return fmt.Sprintf("api: read within uncertainty interval: read of %q at %s found a value at %s (uncertainty limit %s)",
		e.GetKey(), e.GetReadTimestamp().ToHLC(), e.GetValueTimestamp().ToHLC(), e.GetUncertaintyLimit().ToHLC())
}

func (e *LockConflictError) Error() string {
	var sb strings.Builder
	sb.WriteString("api: conflicting locks on ")
	for i, l := range e.GetLocks() {
		if i > 0 {
			sb.WriteString(", ")
		}
		if i == 5 {
			fmt.Fprintf(&sb, "and %d more", len(e.GetLocks())-i)
			break
		}
		fmt.Fprintf(&sb, "%q held by txn %s", l.GetKey(), l.GetTxn().Short())
	}
	return sb.String()
}
