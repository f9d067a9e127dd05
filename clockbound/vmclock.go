package clockbound

import (
	"encoding/binary"
	"fmt"
	"runtime"
)

// The VMClock device (/dev/vmclock0, Linux ≥ 6.13 or recent Amazon Linux
// kernels) is a page the hypervisor writes; its disruption marker changes
// whenever the VM's clock is disrupted (live migration, snapshot restore).
// A ClockBound 2.x daemon started with clock-disruption support copies the
// marker it last saw into its segment. A reader that sees a different marker
// in the device knows the daemon has not yet caught up with a disruption, and
// must not trust the segment's status (the ClockBound client library reports
// Unknown until the daemon catches up). Fields are little-endian by ABI.
//
//	off size field
//	  0    4 magic 0x4B4C4356 ("VCLK")
//	  4    4 size
//	  8    2 version
//	 10    1 counter id
//	 11    1 time type
//	 12    4 seq_count: seqlock, odd while the hypervisor writes
//	 16    8 disruption_marker
//	 ...     (clock data this package does not use)
const (
	// DefaultVMClockPath is where Linux exposes the VMClock device.
	DefaultVMClockPath = "/dev/vmclock0"

	vmclockMagic   = 0x4B4C4356
	offVMSeq       = 12
	offVMMarker    = 16
	vmclockMinSize = 24
)

// decodeVMClockHeader validates a copy of the VMClock page's first bytes and
// returns its sequence count and disruption marker.
func decodeVMClockHeader(b []byte) (seq uint32, marker uint64, err error) {
	if len(b) < vmclockMinSize {
		return 0, 0, fmt.Errorf("%w: VMClock page of %d bytes, want at least %d", ErrMalformed, len(b), vmclockMinSize)
	}
	le := binary.LittleEndian
	if m := le.Uint32(b); m != vmclockMagic {
		return 0, 0, fmt.Errorf("%w: VMClock bad magic %#08x", ErrMalformed, m)
	}
	if size := le.Uint32(b[4:]); size < vmclockMinSize {
		return 0, 0, fmt.Errorf("%w: VMClock declares %d bytes, want at least %d", ErrMalformed, size, vmclockMinSize)
	}
	if v := le.Uint16(b[8:]); v == 0 {
		return 0, 0, fmt.Errorf("%w: VMClock version 0 (not initialised)", ErrMalformed)
	}
	return le.Uint32(b[offVMSeq:]), le.Uint64(b[offVMMarker:]), nil
}

// readVMClockMarker reads the disruption marker from a VMClock mapping under
// its seqlock.
func readVMClockMarker(m *shmMap, maxRetries int) (uint64, error) {
	if len(m.data) < vmclockMinSize {
		return 0, fmt.Errorf("%w: %s has %d bytes, want at least %d", ErrMalformed, m.path, len(m.data), vmclockMinSize)
	}
	var buf, again [vmclockMinSize]byte
	for range maxRetries {
		if err := copyWords(buf[:], m.data[:vmclockMinSize]); err != nil {
			return 0, fmt.Errorf("clockbound: reading %s: %w", m.path, err)
		}
		seq, marker, err := decodeVMClockHeader(buf[:])
		if err != nil {
			return 0, fmt.Errorf("%s: %w", m.path, err)
		}
		if seq&1 == 0 {
			if err := copyWords(again[offVMSeq:offVMSeq+4], m.data[offVMSeq:offVMSeq+4]); err != nil {
				return 0, fmt.Errorf("clockbound: reading %s: %w", m.path, err)
			}
			if binary.LittleEndian.Uint32(again[offVMSeq:]) == seq {
				return marker, nil
			}
		}
		runtime.Gosched()
	}
	return 0, fmt.Errorf("clockbound: %s: no consistent read in %d attempts", m.path, maxRetries)
}
