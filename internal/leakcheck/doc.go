// Package leakcheck is how the tests check that no goroutine outlives them:
// goleak's checks, given longer to settle. goleak itself waits about 0.4 s
// for goroutines to exit; gRPC connections, Pebble and raft workers end on
// their own schedule after Close, and on a loaded CI machine that can take
// longer without anything having leaked. Here a check that still finds
// goroutines is repeated for up to Patience before it reports them.
package leakcheck
