// Package cluster tests Meridian as its users run it: real `meridian`
// processes on 127.0.0.1, started, stopped, killed and queried through the
// CLI and the public gRPC API, each with its own Pebble store on disk.
//
// Start reading at harness_test.go: TestMain builds the binary once (and a
// second one with the testhooks build tag, for the clock test), node is one
// `meridian start` process (free ports, a log file, restart with the same
// store, SIGTERM, SIGKILL), and cluster starts three of them with --join
// and `meridian init`. Every process is killed when its test ends; a failed
// test prints every node's log.
//
// What the tests assert (issue 8, sections 1, 3 and 9):
//   - cluster_test.go: three processes started through the CLI serve puts
//     and gets through the CLI, gRPC and the Go client; init run twice
//     makes one cluster; idle ranges up-replicate; SIGKILL of a node loses
//     no acknowledged write and the restarted node rejoins with its
//     identity and catches up; a range survives losing its leader right
//     after up-replication; SIGTERM drains and exits 0 without a gap in
//     service; a loaded single node joined by two more up-replicates every
//     range.
//   - badinput_test.go: keys and values over the limits get
//     INVALID_ARGUMENT; garbage on the gRPC and HTTP ports does not crash a
//     node; a store of another cluster is refused at start.
//   - clock_test.go: a node whose clock is pushed beyond max-offset
//     (testhooks build) fail-stops and the others keep serving.
//
// No test sleeps to let things settle: each waits for a condition, polled
// until a deadline. A test that found a bug says so in its doc comment,
// with the log lines that show it. The package runs in `make test` (the test process under
// -race; the meridian binaries are built without it).
package cluster
