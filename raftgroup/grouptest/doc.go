// Package grouptest is raftgroup's test harness, reused by later packages'
// tests: an in-process cluster of N raftgroup Hosts, each over its own Pebble
// (in memory or on disk), connected by real gRPC on loopback or by the
// fault-injecting in-memory network, with manual or timed ticks and node
// stop/restart; and KV, a small persisted state machine that counts how often
// each command applied so tests can prove nothing applies twice
// (Options.NoApplyCounts turns the counting off, for benchmarks).
package grouptest
