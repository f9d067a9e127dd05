// Package etcd measures etcd v3.7.3 on this machine the way raftgroup's
// BenchmarkPropose measures Meridian, so the two can be run in one sitting
// and compared: three members in one process, talking over loopback, each
// with its own data directory and etcd's default fsync, 64 goroutines
// writing 128-byte values to 1000 keys, and the same metrics under the same
// names (proposals/s, p50-ms, p99-ms, cpu-us/proposal, failed).
//
// It is a module of its own so that the product's go.mod never depends on
// etcd's server and its dependencies; only this benchmark does.
//
// The figures are not quite like for like, and are read with that in mind:
//   - every etcd put goes through clientv3 and a gRPC call to one of the
//     three members (round robin; a follower forwards it to the leader),
//     and the client's CPU counts in cpu-us/proposal, while
//     BenchmarkPropose calls the leader's Host.Propose in process;
//   - a put returns once the member that took it has applied it to its
//     bbolt-backed MVCC store, where Meridian applies to Pebble;
//   - etcd runs with its own defaults (100 ms tick, 1 s election timeout)
//     and Go's default garbage collector settings, as an etcd server does,
//     while BenchmarkPropose sets the collector as a Meridian node does
//     (internal/gctune). Run with GOGC=400 to give both the same GC percent.
//
// Run it from the repository root with
//
//	make bench-etcd
//
// or directly with
//
//	cd bench/etcd && go test -run '^$' -bench . -benchtime 30000x
//
// Give a fixed count of puts (-benchtime Nx): each run of the benchmark
// function starts a fresh cluster, and a time-based -benchtime ramps b.N
// up over several such runs. `go test ./...` here runs TestEtcdCluster, a
// quick check that the harness starts a cluster and can write and read
// through it.
package etcd
