//go:build !linux

package clockbound

import "fmt"

func mapSegment(path string, cur *shmMap) (*shmMap, error) {
	return nil, fmt.Errorf("clockbound: ClockBound segment %s: %w", path, ErrNotSupported)
}

func mapVMClock(path string) (*shmMap, error) {
	return nil, fmt.Errorf("clockbound: VMClock %s: %w", path, ErrNotSupported)
}

func unmapSegment(*shmMap) error { return nil }

func newMonotonic() func() int64 { return func() int64 { return 0 } }
