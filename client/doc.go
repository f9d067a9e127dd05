// Package client is the public Go API of Meridian (DB; Txn comes with
// transactions) and the router beneath the servers: the layer that turns a
// batch of requests over arbitrary keys into per-range batches sent to the
// right nodes.
//
// Applications use DB (db.go): Open dials any nodes of a cluster and
// speaks the public gRPC API (api/meridian/v1); the node that receives a
// call routes it with its own Router. Start reading at Open and DB.Get;
// the examples show each call. Inside a node, start reading at Router.Send
// (router.go), then RangeCache (rangecache.go).
//
// # The DB API
//
//   - Open(ctx, addrs...) connects to the given nodes (plaintext gRPC for
//     now, messages up to 16 MiB) and spreads calls round-robin over those
//     that are up. Close releases the connection.
//   - Get returns a GetResult (Found, Value, the value's and the read's
//     timestamps); AsOf reads history. Put and Delete return their write
//     timestamp; DeleteRange the count and timestamp. Scan returns the
//     rows of a span in memory (Limit, Reverse, PageSize, AsOf), ScanIter
//     streams them; either way every row of one scan is read at one
//     timestamp. Keys are at most 16 KiB and values 4 MiB.
//   - Errors are *Error values carrying the gRPC status; errors.Is matches
//     ErrInvalidArgument, ErrUnavailable (nothing was written; safe to
//     retry), ErrAmbiguousResult (a write that may or may not have
//     applied), ErrBelowGCThreshold, ErrAborted, ErrUnimplemented and the
//     ctx errors; errors.As finds the node's api error.
//   - Retries: a call the node answered UNAVAILABLE (it knows nothing was
//     written) is sent again, to whichever node is up, a few times with
//     backoff; reads are also retried when the connection broke, and a
//     broken Scan resumes after its last row at its read timestamp. A write
//     whose connection broke in flight is never retried: it fails with
//     ErrAmbiguousResult.
//   - DB imports only the generated API and api's error types: never
//     server/ (the layers forbid it).
//
// # What the router owns
//
//   - The range cache (RangeCache): range descriptors ordered by end key in
//     a B-tree, with the replica believed to hold each range's lease.
//     Misses read meta (a Scan of range 1 starting at MetaKey(Next(key)));
//     concurrent misses on one key share one meta read. Inserting a
//     descriptor replaces every overlapping cached descriptor of a lower or
//     equal generation, and is dropped if an overlapping one is newer, so
//     cached descriptors never overlap and a stale meta read cannot undo
//     what a RangeKeyMismatchError taught.
//     The cache is unbounded: one entry per range the router has used.
//   - Finding range 1: until its descriptor is cached, meta reads go to
//     RouterConfig.SeedNodes (or SeedNodesFunc's list) in turn, following
//     NotLeaseholder hints. The first meta read returns range 1's own
//     descriptor with the ones after it, and the cache keeps them.
//   - Routing one batch: Send splits it by range (a span request that
//     crosses ranges is truncated to each), sends each part to the cached
//     leaseholder (else the first voter), and merges the parts' responses
//     back into one, in request order.
//
// # Invariants
//
//   - A write whose outcome is unknown is never retried: a gRPC failure
//     other than Unavailable after a write was handed to the transport, a
//     ctx that ended while a write was in flight, or an
//     AmbiguousResultError from the replica, all return
//     *api.AmbiguousResultError to the caller. Everything the router does
//     retry is known not to have applied: NotLeaseholder, RangeNotFound,
//     RangeKeyMismatch, Unavailable, dial failures.
//   - A response's rows are in key order: a Scan's rows ascend and a
//     ReverseScan's descend across all the ranges it touched, whatever
//     order the parts completed in.
//   - With limits (max_span_request_keys, target_bytes) the parts go one
//     range at a time in key order (descending for ReverseScan), and the
//     total never exceeds the key limit. Every span request not finished
//     gets a resume span covering exactly what it has not returned.
//   - Retries stay within ctx: exponential, jittered backoff between
//     attempts that learned nothing new, and ctx's error (joined with the
//     last routing error) when ctx ends.
//   - Errors are typed: the api error a replica returned (errors.As finds
//     *api.ConditionFailedError, *api.WriteTooOldError, ...), an
//     *api.InvalidRequestError for a malformed batch, or ctx's error.
//
// A batch that spans several ranges is not atomic: each range applies its
// part on its own, and on error parts on other ranges may have applied.
// Transactions (txn/) make multi-range writes atomic on top of this. A
// multi-range batch without a timestamp is read at each leaseholder's own
// clock; callers that need one snapshot set header.timestamp. The merged
// header carries the maxima of the parts' timestamps and ORs
// timestamp_pushed.
//
// # Who calls it
//
// The Router: txn/ (through its Sender interface) and server/ (the gateway
// for the public gRPC API, and pgwire). DB does not use a Router: it
// reaches the Router of the node it calls. The router calls nodes only
// through a Dialer, which server/ implements over gRPC.
//
// # A request's flow
//
//  1. Send validates the batch (api.BatchRequest.Validate, and keys within
//     [keys.MetaMin, keys.KeyMax)).
//  2. Without limits: divide walks the batch's keys from the lowest up,
//     looking up the range holding a cursor (reading meta on a miss) and
//     giving that range every request's share of [cursor, range end), so
//     each key lands in exactly one part even if the cache changes during
//     the walk, and requests sharing a key keep their order in one part.
//     Parts go out in parallel (one goroutine per part, all joined before
//     Send returns); a batch inside one range goes out unchanged on the
//     caller's goroutine. With limits, sendLimited walks the same way,
//     one range at a time.
//  3. sendToReplicas tries the range's replicas: leaseholder first, then
//     voters, then learners; a NotLeaseholderError with a lease hint sends
//     the batch to the holder next and updates the cache; Unavailable or a
//     dial error moves on to the next replica.
//  4. A RangeKeyMismatchError inserts the descriptors it carries and
//     re-divides that part at once; RangeNotFound or no replica serving
//     evicts the descriptor, waits a backoff and re-divides (a fresh meta
//     read). Any other error ends the Send.
//  5. The parts' responses are merged: point responses as they are, scans
//     concatenated in key order, DeleteRange counts summed.
package client
