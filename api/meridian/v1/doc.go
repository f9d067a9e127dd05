// Package meridianv1 is Meridian's public gRPC API (kv.proto): the KV
// service that applications, the Go client (package client) and the
// `meridian kv` commands use. The .proto file documents every message,
// the limits and the status codes; this package is generated from it by
// `make proto` and committed.
package meridianv1
