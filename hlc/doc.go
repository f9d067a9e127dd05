/*
Package hlc is Meridian's hybrid logical clock: the source of every MVCC,
transaction, lease and closed timestamp a node produces, and the guard that
keeps a node with a bad clock from serving.

A hybrid logical clock (Kulkarni et al., "Logical Physical Clocks and
Consistent Snapshots in Globally Distributed Databases", 2014) pairs a
physical wall time with a Lamport counter. Its readings stay close to real
time, so "read as of 10 seconds ago" means what it says, yet they also
capture causality the way a Lamport clock does: anything a node learns from
another node's message gets a timestamp above that message's.

# What this package owns

 1. Timestamp: {WallTime ns since the Unix epoch, Logical int32}, its total
    order, Next/Prev, and the text form "1732550000.000000123,4" that logs,
    the CLI and AS OF SYSTEM TIME use (ParseTimestamp reads it back).
 2. PhysicalClock: the one source of physical time on a node. SystemClock
    in production, ManualClock in tests, OffsetClock for the testhooks skew
    injection. Every reader of time on a node — the HLC, clockbound,
    commit-wait, leases, the offset monitor — reads the same one
    (Clock.PhysicalClock), so an injected skew is seen by all of them alike.
 3. Clock: Now, Update and the max-offset guard on Update.
 4. Restart monotonicity: WallTimeStore, FileWallTimeStore and
    NewPersistentClock.
 5. OffsetMonitor: per-peer clock offset estimates from RPC round trips, and
    the fail-stop decision when this node's clock is the one that is off.

It imports only the standard library. It does not log (errors and callbacks
carry everything a caller needs to log), does not start goroutines, and does
not know about RPC: the server wires samples in and acts on the verdicts.

# Who calls it

clockbound reads Clock.PhysicalClock and Clock.MaxOffset. Everything above
it takes timestamps from Clock.Now and feeds Clock.Update with every
timestamp that arrives from another node. The channels over which clock
readings cross nodes are:

  - BatchRequest / BatchResponse (both directions): a request carries its
    sender's clock reading, a response and an error carry the server's.
    The receiver calls Update on each.
  - Raft commands (leader to followers): a proposal carries the proposer's
    clock reading; a replica applying it calls Update. Lease transfers rely
    on this — the incoming leaseholder's clock is forwarded past the new
    lease's start, so it never serves below a write of the previous holder.
  - Heartbeats (node to node): besides Update, the RPC layer hands each round
    trip's physical readings to the OffsetMonitor.

Other packages must not keep their own "last timestamp" state to patch over
the clock: if something needs a timestamp above X, it calls Update(X) and then
Now.

# Invariants

  - Now is strictly increasing, across goroutines: no two calls on a node
    return the same timestamp, and each returns more than every earlier one.
  - Now ≥ the physical clock's reading at the start of the call.
  - After Update(r) returns nil, every later Now is > r.
  - Update never accepts a remote wall time more than MaxOffset ahead of
    local physical time; a rejected Update changes nothing.
  - A persistent clock never returns a timestamp whose WallTime is at or
    beyond the bound durable in its WallTimeStore, and after a restart it
    never returns one at or below that bound. Hence: strictly increasing
    across restarts, whatever the physical clock did meanwhile.
  - The logical counter never wraps: at math.MaxInt32 the next timestamp
    moves to the next wall nanosecond (Timestamp.Next). In practice the
    counter stays small, because any physical tick resets it to zero.

# Why it works

Now returns max(physical time, last + one logical tick); Update raises
"last" to the remote timestamp. Three properties follow, each relied on by a
layer above.

Causality. If event B on node 2 happens after node 2 received a message sent
after event A on node 1, then ts(A) < ts(B): node 1 stamped the message with
a Now taken after A, node 2's Update raised its clock to it, and node 2's Now
for B is above that. Nothing requires the physical clocks to agree for this
to hold, only that every message carrying a timestamp passes through Update.
Observed timestamps (txn) and lease handovers (ranges) are built on this:
"this node's clock was at T when I visited, so anything it writes later is
above T".

Strict monotonicity. One mutex orders all Now and Update calls on a node, so
the sequence of readings is a total order consistent with real time on that
node. Leases, the timestamp cache and closed timestamps all assume a node
never reissues or goes back on a timestamp. Across restarts this needs the
persisted bound (see "Restarts").

Closeness to real time. Because Now never returns less than physical time,
and Update refuses remote time more than MaxOffset in the future, an HLC
reading exceeds the true time by at most the node's own clock error plus
MaxOffset. The logical part absorbs bursts and backward steps without the
wall part running away.

Self-stabilisation is a side effect: nodes that exchange messages pull one
another's HLCs forward, so a node with a slightly slow physical clock still
hands out timestamps close to the cluster's. This hides small clock errors;
it is not something to rely on.

# Bounded skew, and what breaks beyond it

MaxOffset (--max-offset, default 250ms, identical on every node) is the
assumption that no two nodes' physical clocks differ by more. clockbound
uses it as ±MaxOffset when it has no better bound. The mechanisms that
depend on the assumption:

  - Read restarts (mvcc, txn). A reader at t treats values in (t, t+ε] as
    possibly committed before it started and restarts above them; with the
    static bound ε = MaxOffset. HAZARD: if a gateway's clock is slow by more
    than ε, a transaction that starts after another committed (in real time)
    can take a timestamp so low that the other's write lies above its
    uncertainty window: a stale read, breaking single-key linearizability.
    Serializability is unaffected: isolation does not depend on clocks.
  - Commit-wait (txn, clockbound). A transaction acknowledges its commit at c
    only once no node's clock can still read below c. HAZARD: if a node's
    clock is further behind than the bound used for the wait, a transaction
    it starts after the ack can get a timestamp below c and miss the commit;
    strict serializability across ranges is lost (the "causal reverse").
  - Leases (ranges). A leaseholder serves reads only while its lease is
    valid at now + ε, so an outgoing holder with a slow clock stops before an
    incoming holder with a fast one starts. HAZARD: beyond the bound two
    replicas may both believe they hold the lease for a while; Raft's lease
    sequence check still stops the deposed holder from writing, but its
    reads may be stale.
  - Update's guard. HAZARD: without it, one node with a clock an hour fast
    would, through Update, drag every HLC in the cluster an hour ahead of
    real time — and with them the timestamps the uncertainty windows and
    commit-wait are measured against.

None of these fail loudly; they return stale data. That is why a node must
stop before the assumption can fail. The OffsetMonitor does it: it estimates
each peer's offset from RPC round trips and calls the fail-stop callback when
this node is more than 80% of MaxOffset (ToleratedOffsetFraction) from a
strict majority of its known peers. Stopping at 80% rather than 100% leaves
room for the estimates' own error and for drift between two checks.

The estimate. The RPC layer reads the local physical clock at send (s) and
receive (r), and the peer puts its physical clock reading (p) in its reply.
The peer read its clock at some local instant in [s, r], so its offset lies
in [p-r, p-s]: Offset = p - (s+r)/2, Error = (r-s)/2. A peer counts against
this node only if |Offset| - Error > threshold, i.e. it is beyond even at the
near edge of the interval: a slow network must not kill a healthy node.
Samples go stale after OffsetMonitorConfig.StaleAfter, and stale peers do
not vote, so a dead peer's last reading cannot stop a live node. With no
fresh peers there is nothing to compare with and no decision.

Why a strict majority: a node cannot tell from one disagreement which side
is wrong, but if most of the cluster agrees with each other and disagrees
with it, it is the odd one out. In a 3-node cluster with one bad clock, only
the bad node sees both peers far away; each good node sees one far peer of
two, not a majority, and keeps serving. (The reference design, CockroachDB,
stops at "at least half", which would also stop both good nodes here.) In a
2-node cluster two far-apart clocks stop both nodes: there is no majority to
say which one is right.

# Restarts

Within a process the mutex gives monotonicity. A restarted process has only
the physical clock, which may have stepped back (NTP correction, VM
migration, a bad RTC) below timestamps handed out before the restart. Those
timestamps live on — in MVCC values, leases, closed timestamps, other nodes'
observed timestamps — so reissuing one would let the node write below its own
past.

A persistent clock keeps a bound B durable in a WallTimeStore (a small file,
written temp + fsync + rename + fsync of the directory, with a magic number
and a CRC so a torn or foreign file is an error, not a silent 0). It never
hands out WallTime ≥ B; when Now gets within ahead/2 of B, one caller writes a
new bound max(physical, needed) + ahead, and a caller blocks on the write only
if the clock actually reaches B first. So the file is written about once per
ahead/2 of wall time while the clock is used, never while idle, and a write
is never made while the clock's mutex is held.

On start, NewPersistentClock loads B and forwards its floor to {B, 0}: the
first Now returns at least {B, 1}, above everything the previous process
handed out. It does not wait for the physical clock to pass B. We chose this
over waiting (what CockroachDB does, sleeping out max-offset or the bound)
because:

  - Normally it costs nothing: restarting takes longer than ahead, so the
    physical clock is already past B and the floor has no effect.
  - If the clock went far back, waiting would block startup for as long as it
    went back (hours, for a bad RTC) with nothing to show for it, whereas the
    floor keeps the node correct at once, and the real problem is reported
    where it belongs: the offset monitor sees this node's physical clock
    behind its peers and stops it.
  - The cost is bounded: the floor is at most ahead beyond the higher of the
    last timestamp the previous process handed out and its physical time
    when it last wrote the bound. Keep ahead well below MaxOffset (at most
    MaxOffset/2) so peers still accept this node's timestamps through Update;
    commit-wait lengthens by at most that much, once, after a restart.

A WallTimeStore that fails a write means the node can no longer keep the
promise; the clock calls the fatal handler (WithFatalHandler; the default
panics, the server passes a clean node stop). A corrupt or unreadable file
makes NewPersistentClock fail, so the node refuses to start rather than risk
going back in time; an operator who knows the clock is right may delete the
file (a missing file is a fresh node).

# Flow

	RPC send:     s := clock.PhysicalNow(); req.Timestamp = clock.Now()
	RPC receive:  clock.Update(req.Timestamp) → reject with *UntrustedRemoteError, or serve
	              resp.Now = clock.Now(); resp.Physical = clock.PhysicalNow()
	RPC reply:    clock.Update(resp.Now)
	              monitor.Record(OffsetSample{peer, s, resp.Physical, clock.PhysicalNow()})
	heartbeat:    if err := monitor.Check(); err != nil { ... }   // OnFailStop already fired

# Not here (yet)

The RPC wiring of samples and of the max-offset agreement check between
nodes (the server's job); a forward-jump check on the physical clock; metrics
export of OffsetMonitor.Estimates.
*/
package hlc
