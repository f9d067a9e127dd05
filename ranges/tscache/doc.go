/*
Package tscache is the timestamp cache: the leaseholder's in-memory record of
the highest timestamp at which each key span has been read, so that no write
can land at or below a read that already happened and change what that read
should have seen.

# What it owns

A Cache of disjoint key segments [start, end), each with the highest read
timestamp over it (and the one transaction that read at that timestamp, if
exactly one did), plus a low-water mark that answers for every key no
segment covers. Add records a read; GetMax answers, for a span a write is
about to touch, the highest timestamp any of its keys may have been read at.

The cache lives on the leaseholder only, is never persisted or replicated,
and is bounded by a memory budget (New(budget, lowWater)).

# Invariants

 1. Conservative: GetMax(span) is never below the highest timestamp of any
    Add that overlapped span, nor below any low-water mark ever set. It may
    be higher (after eviction), never lower.
 2. Exact while nothing is evicted: GetMax is then the max over the
    overlapping Adds and the low-water mark (the rapid model test checks
    both properties against a list of every Add).
 3. Bounded: after every Add the entries take at most the budget (in the
    cache's own estimate: 96 bytes per segment plus its keys). Over budget,
    the segments with the lowest timestamps are evicted until three
    quarters of the budget remain, and the low-water mark rises to the
    highest timestamp evicted, which keeps invariant 1.
 4. Segments are disjoint, non-empty, and strictly above the low-water mark;
    a read at or below the mark is not recorded, since the mark already
    answers for it.
 5. The mark only rises: SetLowWater with a lower timestamp does nothing.

Transaction identity: with a segment's timestamp the cache keeps the TxnID
of its reader if exactly one transaction read at that timestamp (a
non-transactional read, or two transactions, leave none); GetMaxValue
returns it. Transactions will use it so that a transaction's own reads do
not push its own writes: a write by txn T at or below a max read by T alone
need not move. The low-water mark names no transaction.

# Who calls it

ranges.Replica on the leaseholder, while holding the request's latches
(ranges/concurrency), so that a read's Add and a conflicting write's GetMax
are ordered by the latches:

	// a write at ts, before evaluation:
	if max := r.tscache.GetMax(key, endKey); ts.LessEq(max) {
		ts = max.Next() // the write moves above the read; the response says so
	}
	// a read at ts, after evaluation:
	r.tscache.Add(key, endKey, ts, tscache.NoTxn)

When a replica acquires a lease it raises the mark to the lease start
(SetLowWater): reads served by the previous holder, which this replica never
saw, all happened below the start of the new lease. A newly created cache
(a replica that just became leaseholder) starts with its mark at the lease
start for the same reason.

Keys are plain byte strings compared bytewise; the caller passes the logical
keys it latches on. An empty end key means the point span [key, key\x00).
Add copies the keys it keeps. The cache is safe for concurrent use (one
mutex; each operation is O(log n + k) for k segments in the span, eviction
O(n log n) amortised over the quarter of the budget it frees).

Nothing outside ranges/ may import it.

# Differences from CockroachDB

CockroachDB's cache is a lock-free interval skiplist in fixed-size pages,
rotated wholesale (the oldest page dropped, the mark raised to its max).
This one is a mutex around a btree of disjoint segments and evicts the
lowest timestamps first, which raises the mark no more than necessary; it
is simpler, and fast enough until profiles say otherwise.
*/
package tscache
