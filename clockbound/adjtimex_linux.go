//go:build linux

package clockbound

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// queryKernel reads the kernel NTP state. The zero Timex has modes = 0, which
// makes adjtimex(2) a pure read.
func queryKernel() (KernelState, error) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return KernelState{}, fmt.Errorf("clockbound: adjtimex: %w", err)
	}
	return kernelStateFromTimex(&tx, state), nil
}

func kernelStateFromTimex(tx *unix.Timex, state int) KernelState {
	return KernelState{
		MaxErrorMicros: int64(tx.Maxerror),
		EstErrorMicros: int64(tx.Esterror),
		StatusBits:     tx.Status,
		ClockState:     state,
	}
}
