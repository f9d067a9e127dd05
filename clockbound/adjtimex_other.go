//go:build !linux

package clockbound

import "fmt"

func queryKernel() (KernelState, error) {
	return KernelState{}, fmt.Errorf("clockbound: adjtimex: %w", ErrNotSupported)
}
