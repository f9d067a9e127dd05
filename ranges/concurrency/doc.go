/*
Package concurrency sequences the requests that a replica evaluates, so that
requests on overlapping keys do not interleave: a read-modify-write such as
Increment or ConditionalPut never loses an update, and a read never sees half
of a concurrent write.

# What it owns

Span latches (LatchManager): short-lived, in-memory, per-replica claims on
key spans, taken by every request before evaluation and held until its
command has applied (or it returns an error). A request declares its spans
in a SpanSet, each a read or a write at a timestamp; Acquire returns a Guard
once no conflicting latch is ahead of it, and Release lets the next ones go.
Latches are not locks: they last one request, are never persisted or
replicated, and exist only on the leaseholder.

Later, with transactions, the same package gets the lock table (locks held
by transactions across many requests, and replicated intents discovered
during evaluation) and its wait queues, pushes and deadlock detection. They
sit behind latches in the same sequence (latch, scan the lock table, wait
or push, evaluate), which is why LatchManager keeps its internals to itself
and exposes only Acquire and Release: the concurrency manager that adds the
lock table will wrap Guard, and no caller of Acquire changes.

# Conflicts

Two latches conflict iff their spans overlap and (see Conflicts):

  - both are writes (whatever their timestamps); or
  - one is a read at r and the other a write at w with w <= r; or
  - one is a read and the other a write, and either has an empty
    timestamp (a non-MVCC access conflicts with every access of the other
    kind).

Reads never conflict with reads. A read below a write's timestamp cannot
observe it, so the two run at once, as in CockroachDB. The caller must
declare a read at the highest timestamp it may observe, which for a read
with an uncertainty window is the top of the window.

Spans are [Key, EndKey) over keys compared bytewise; an empty EndKey is a
point span on Key. The caller passes the keys it latches on (logical keys),
and must not modify them until Release.

# Invariants

 1. Safety: no two conflicting latches are held at once.
 2. FIFO per conflict: Acquire inserts a request's latches at once, under
    the manager's mutex, and the request then waits for every conflicting
    latch that was inserted before it, held or still waiting. A request
    therefore never overtakes an earlier request it conflicts with, and a
    stream of readers cannot starve a writer.
 3. Cancellation leaves nothing behind: when ctx is done while waiting,
    Acquire removes the request's latches and wakes whoever waited for
    them. A later request that conflicted with the cancelled one also
    waited directly for every earlier latch it conflicts with, so it may
    go as soon as those are gone: no transitive waiting, no stuck waiters.
 4. No deadlock among latches: a request only ever waits for requests
    that arrived before it, so the waits-for graph has no cycle. (Locks,
    which come with transactions, are another matter: the lock table will
    need deadlock detection.)
 5. No goroutine per latch or per request: a Guard carries one channel,
    closed when its latches leave; waiters block on the channels of the
    guards ahead of them, outside the mutex.

# Structure and cost

Latches live in two interval trees (reads and writes), treaps ordered by
start key and augmented with the highest end key of each subtree, so
finding the latches that overlap a span costs O(log n + k) expected. The
latch nodes are the Guard's own latch array, and a Guard's channel is made
only when a later request has to wait for it: an uncontended single-span
Acquire makes one allocation (the Guard, with its latch inline), a
multi-span one two. A waiter also grows its list of the guards it waits
for. One mutex guards both trees; it is held only to insert, scan and
remove, never while waiting.

# Who calls it

ranges.Replica on the leaseholder, once per request, before evaluation:

	var ss concurrency.SpanSet
	ss.AddWrite(key, nil, ts)                  // declared from the requests
	g, err := r.latches.Acquire(ctx, &ss)      // waits its turn, or ctx
	if err != nil { return err }
	defer r.latches.Release(g)                 // after the command applies
	// check the lease, consult the timestamp cache, evaluate, propose, wait

Nothing outside ranges/ may import it.
*/
package concurrency
