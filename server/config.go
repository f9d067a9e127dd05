package server

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/meridiandb/meridian/hlc"
)

// Defaults of Config (and of `meridian start`'s flags).
const (
	DefaultListenAddr = "localhost:26257"
	DefaultSQLAddr    = "localhost:26258"
	DefaultHTTPAddr   = "localhost:8080"
	DefaultMaxOffset  = 250 * time.Millisecond
)

// Config configures a Node. The zero value of each field means its default.
type Config struct {
	// Store is the directory of the node's data, or "mem" for an in-memory
	// store (gone when the node stops).
	Store string
	// ListenAddr is the gRPC address: node-to-node traffic and clients
	// (default DefaultListenAddr; port 0 picks one).
	ListenAddr string
	// AdvertiseAddr is the address other nodes and clients are told to dial
	// (default: the address the listener got).
	AdvertiseAddr string
	// SQLAddr is the Postgres wire address; accepted and recorded, served
	// once pgwire lands.
	SQLAddr string
	// HTTPAddr serves /health, /metrics and /debug/pprof; empty disables
	// HTTP.
	HTTPAddr string
	// Join lists addresses of nodes of the cluster to join (it may include
	// this node's own). Empty: a new store bootstraps a single-node cluster
	// at once.
	Join []string
	// MaxOffset is the largest clock offset tolerated between any two
	// nodes; every node of a cluster must use the same (default 250ms).
	MaxOffset time.Duration
	// ClockSource is --clock-source: auto, static, adjtimex or
	// clockbound[:path] (default auto).
	ClockSource string
	// CommitWait is --commit-wait: auto, always or never (default auto:
	// on, since commit-wait is what makes transactions externally
	// consistent).
	CommitWait string
	// RangeMaxBytes: a range larger than this splits (default 64 MiB).
	RangeMaxBytes int64
	// Logger receives the node's logs (default: slog's default logger).
	Logger *slog.Logger

	// HeartbeatInterval paces node-to-node heartbeats (default 1s).
	HeartbeatInterval time.Duration
	// LivenessTTL is how long a liveness record keeps a node live; the node
	// renews it every third of it (default 4.5s).
	LivenessTTL time.Duration
	// LeaseDuration of range leases (default 4s).
	LeaseDuration time.Duration
	// RaftTickInterval drives Raft (default 50ms: elections after about
	// 0.5-1s without a leader).
	RaftTickInterval time.Duration

	// TestingKnobs are set only by tests and the testhooks build.
	TestingKnobs TestingKnobs
}

// TestingKnobs change a node's behaviour for tests.
type TestingKnobs struct {
	// PhysicalClock replaces the system clock as the node's one physical
	// clock (the testhooks build passes an adjustable one).
	PhysicalClock hlc.PhysicalClock
	// RewriteAddr, if set, maps every address the node dials to the one it
	// actually dials (a test harness puts a proxy in between).
	RewriteAddr func(addr string) string
	// TraceExporter, if set, receives the node's spans whatever the
	// environment says.
	TraceExporter sdktrace.SpanExporter
}

func (c *Config) setDefaults() error {
	if c.Store == "" {
		return fmt.Errorf("server: no --store given (a directory, or \"mem\")")
	}
	if c.ListenAddr == "" {
		c.ListenAddr = DefaultListenAddr
	}
	if c.MaxOffset == 0 {
		c.MaxOffset = DefaultMaxOffset
	}
	if c.MaxOffset < time.Millisecond {
		return fmt.Errorf("server: --max-offset %s is too small (at least 1ms)", c.MaxOffset)
	}
	if c.ClockSource == "" {
		c.ClockSource = "auto"
	}
	switch c.CommitWait {
	case "":
		c.CommitWait = "auto"
	case "auto", "always", "never":
	default:
		return fmt.Errorf("server: --commit-wait %q: want auto, always or never", c.CommitWait)
	}
	if c.RangeMaxBytes < 0 {
		return fmt.Errorf("server: --range-max-bytes %d is negative", c.RangeMaxBytes)
	}
	if c.RangeMaxBytes > 0 && c.RangeMaxBytes < 64<<10 {
		return fmt.Errorf("server: --range-max-bytes %d is below the minimum of 64 KiB", c.RangeMaxBytes)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = time.Second
	}
	if c.LivenessTTL <= 0 {
		c.LivenessTTL = 4500 * time.Millisecond
	}
	if c.LeaseDuration <= 0 {
		c.LeaseDuration = 4 * time.Second
	}
	if c.RaftTickInterval <= 0 {
		c.RaftTickInterval = 50 * time.Millisecond
	}
	var join []string
	for _, j := range c.Join {
		for _, a := range strings.Split(j, ",") {
			if a = strings.TrimSpace(a); a != "" {
				join = append(join, a)
			}
		}
	}
	c.Join = join
	return nil
}

// commitWaitOn reports whether commit-wait is in force.
func (c *Config) commitWaitOn() bool { return c.CommitWait != "never" }

// guarantee names the consistency guarantee in force.
func (c *Config) guarantee() string {
	if c.commitWaitOn() {
		return "strictly serializable"
	}
	return "serializable, linearizable per key"
}
