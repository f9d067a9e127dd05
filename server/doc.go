// Package server is one Meridian node: it opens the store (Pebble, through
// mvcc), serves gRPC (the public KV service, the node-to-node Internal,
// Admin, RaftTransport and Node services, gRPC health and reflection) and
// HTTP (/health, /metrics, /debug/pprof), brings the node into its cluster
// (bootstrap, join, init), keeps node records and liveness in the system
// keyspace, heartbeats the other nodes (clock offsets, fail-stop), and
// drains on shutdown. cmd/meridian wires flags to Config and calls Start.
//
// Start reading at Start (node.go), then cluster.go (identity), liveness.go
// and peers.go.
//
// # Becoming part of a cluster
//
// A store belongs to one cluster and one node for life: its identity
// (cluster ID, node ID, store ID; api.StoreIdent) sits at
// keys.StoreIdentKey, written in the same synced batch as the store's
// first ranges (bootstrap) or before the store starts (join). On Start:
//
//   - a store with an identity restarts as that node;
//   - a new store without Join bootstraps a cluster of one node at once:
//     the initial ranges, the cluster ID, the node ID generator and node 1's
//     record, in one batch, so no crash leaves a half-made cluster;
//   - a new store with Join asks those nodes to admit it (the Join RPC)
//     each heartbeat interval until one that belongs to a cluster answers,
//     or until `meridian init` (the Init RPC) makes this node bootstrap
//     one. The admitting node allocates the ID with an Increment of
//     keys.NodeIDGeneratorKey (atomic on the range that holds it) and
//     writes the new node's record. A store of another cluster is detected
//     by the first heartbeat and the node stops with a message saying so.
//
// The gRPC server starts before the node has an identity (it must answer
// Init and Join), so the services that need the store are gates that
// answer UNAVAILABLE until it runs.
//
// # Finding other nodes
//
// peers maps node IDs to addresses, learned from heartbeats (a heartbeat's
// answer names the node), joins, and the node records every node reads
// from the system keyspace about every third of LivenessTTL. Raft's
// transport and the router dial by node ID through it; the node's own
// store is called directly. Until the router knows where range 1 is, every
// node with a known address is a seed.
//
// # Liveness and clocks
//
// Each node rewrites its liveness record (api.Liveness at
// keys.NodeLivenessKey) every LivenessTTL/3 with an expiration LivenessTTL
// ahead; a node whose record expired is dead. Live, non-draining nodes are
// the candidates for new replicas (ranges' replicate queue). Separately,
// every node heartbeats every other node each HeartbeatInterval over its
// gRPC connection: heartbeats carry HLC readings (each side updates its
// clock) and physical clock readings that feed hlc.OffsetMonitor. A node
// farther than 0.8 × max-offset from a majority of the cluster's nodes
// (counting nodes that ever wrote liveness, so a lone skewed peer cannot
// stop a healthy node) fail-stops: Failed delivers the reason and cmd/meridian exits
// non-zero. Nodes check on each heartbeat that they agree on cluster ID and
// max-offset; a mismatch found while starting stops the starting node.
//
// # Shutdown
//
// Drain marks the node draining (readiness fails, its liveness record
// says so, the KV service refuses new requests) and moves every lease it
// can to another voter (ranges.Store.Drain). Stop then stops the servers,
// the store and the transport and closes Pebble. An acknowledged write is
// durable (Raft fsyncs before acknowledging), so SIGKILL loses nothing
// acknowledged; drain only avoids unavailability.
//
// # Errors
//
// StatusError (status.go) is the one place where errors become gRPC status
// codes for clients.
package server
