//go:build linux

package clockbound

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestKernelStateFromTimex(t *testing.T) {
	tx := unix.Timex{Maxerror: 1234, Esterror: 56, Status: unix.STA_UNSYNC | unix.STA_NANO}
	ks := kernelStateFromTimex(&tx, unix.TIME_ERROR)
	want := KernelState{MaxErrorMicros: 1234, EstErrorMicros: 56, StatusBits: unix.STA_UNSYNC | unix.STA_NANO, ClockState: unix.TIME_ERROR}
	if ks != want {
		t.Fatalf("kernelStateFromTimex = %+v, want %+v", ks, want)
	}
	if ks.status() != Unknown {
		t.Fatalf("unsynced timex classified %s", ks.status())
	}
	// Our spelled-out constants match the kernel headers'.
	if staUnsync != unix.STA_UNSYNC || staClockErr != unix.STA_CLOCKERR || timeError != unix.TIME_ERROR {
		t.Fatal("STA_/TIME_ constants drifted from golang.org/x/sys/unix")
	}
}
