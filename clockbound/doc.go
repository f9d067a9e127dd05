// Package clockbound owns the node's clock error bound: how far the local
// physical clock may be from true time, right now. It answers one question,
// Source.Now: an interval [Earliest, Latest] of wall time (ns since the Unix
// epoch, the unit of hlc.Timestamp.WallTime) and a Status saying whether the
// interval can be trusted. On top of it sits WaitUntilAfter, the commit-wait
// primitive.
//
// # Invariants
//
//   - Every reading has Earliest <= Latest.
//   - If the Status is Synchronized or FreeRunning, Earliest <= true time <=
//     Latest at the instant of the call, under the source's assumptions:
//     Static trusts the operator's --max-offset; Adjtimex trusts the sync
//     daemon's maxerror as the kernel grows it; ClockBound trusts the
//     daemon's bound and its configured maximum drift rate. Status Unknown
//     promises nothing.
//   - Every source reads wall time only through the hlc.PhysicalClock it was
//     given: the node's single clock, which the test hook skews. No source
//     calls time.Now for wall time. (ClockBound also reads CLOCK_MONOTONIC,
//     to age the daemon's snapshot; no hook skews that, and it is not wall
//     time.)
//   - Reading the kernel or the daemon never changes them: adjtimex(2) is
//     called with modes = 0 and the segment is mapped read-only.
//   - Malformed input (a segment with bad magic, version, size or fields)
//     yields an error wrapping ErrMalformed, never a panic.
//
// # Why commit-wait needs Earliest > ts
//
// A transaction that commits at timestamp c must not be acknowledged until
// every clock in the cluster reads above c; otherwise a transaction that
// starts after the acknowledgement, on a node whose clock is behind, could
// pick a timestamp below c and miss the write (a violation of strict
// serializability). Earliest > c proves true time has passed c. Whether
// that is enough for other nodes' clocks, or whether c must first be raised
// by the next gateway's error, is the txn package's rule (DESIGN.md "Time and
// the guarantees"); with Static, Earliest > c means our clock is at least
// max-offset past c, so any clock within max-offset of ours is past c too.
// The wait costs about Latest − Earliest — cheap with a real bound,
// expensive with the static fallback.
//
// # Sources and their cost
//
//   - Static: clock ± max-offset (250 ms by default). One clock read
//     (~100 ns on the 2-core VM this was written on, where time.Now is slow).
//     Always available; Status always Synchronized (an assumption, enforced
//     by the offset monitor, not measured).
//   - Adjtimex: clock ± (kernel maxerror + 500 µs). One adjtimex(2) call,
//     ~5 µs on that VM, so the kernel state is reused for 10 ms (bound
//     widened by 500 ppm of its age): ~0.33 µs per reading. Linux only.
//   - ClockBound: clock ± (daemon bound + drift since its snapshot), from the
//     AWS ClockBound daemon's shared memory (/var/run/clockbound/shm0, layout
//     v2, or /var/run/clockbound/shm, v1), checked against the VMClock
//     device's disruption marker when the daemon enables disruption support. A few atomic loads on a read-only
//     mapping, decoding only when the daemon has written a new snapshot
//     (about once a second): ~0.24 µs per reading, ~0.67 µs on a new
//     generation. Linux only.
//   - Auto: ClockBound if Synchronized, else Adjtimex if Synchronized with a
//     bound ≤ 10 ms (configurable), else Static; decided on every call.
//   - Fake: whatever a test sets.
//
// # Who calls it
//
// server builds one Source per node from --clock-source (Parse) and passes it
// down; txn calls WaitUntilAfter before acknowledging a commit; ranges uses
// readings for uncertainty windows and lease validity (now + ε); server
// reports Auto.Current in metrics and `meridian node status`. clockbound
// imports only hlc (for PhysicalClock).
//
// # Flow of a commit-wait
//
//	txn: commit at c ──► WaitUntilAfter(ctx, src, c.WallTime)
//	     src.Now() ──► Auto.Choose ──► ClockBound: seqlock-copy the segment,
//	                                   bound = daemon bound + drift × age,
//	                                   centre on PhysicalClock.UnixNano()
//	     Earliest > c? return : sleep (c − Earliest), read again
package clockbound
