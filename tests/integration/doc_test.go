// Package integration holds multi-node tests of the layers together: the
// client router against real stores over gRPC on loopback.
package integration_test
