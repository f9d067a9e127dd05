package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridiandb/meridian/internal/gctune"
	"github.com/meridiandb/meridian/server"
)

// startFlags are `meridian start`'s flags.
type startFlags struct {
	store, listen, advertise, sql, http string
	join                                []string
	maxOffset                           time.Duration
	clockSource, commitWait             string
	rangeMaxBytes                       int64
	logLevel, logFormat                 string
	insecure                            bool
}

func newStartCmd() *cobra.Command {
	var f startFlags
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start a node",
		Long: `Start a Meridian node.

Without --join, a new store bootstraps a single-node cluster at once:
    meridian start --store=./data
With --join, the node joins the cluster those nodes belong to, or, if none
is initialised yet, waits for ` + "`meridian init --host=<one of them>`" + `:
    meridian start --store=./n1 --listen-addr=localhost:26257 --join=localhost:26257,localhost:26267,localhost:26277
Restarting with the same --store keeps the node's identity and data.

SIGTERM or SIGINT drains the node (its leases move to other nodes), flushes
and exits 0. The Go garbage collector runs at GC percent 400 under a soft
memory limit of a quarter of the memory the machine or cgroup allows; GOGC
and GOMEMLIMIT override either. TLS is not implemented yet: nodes and clients talk in
plaintext (--insecure), so run only on networks you trust.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runStart(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.store, "store", "meridian-data", `directory of the node's data, or "mem" for an in-memory store`)
	fl.StringVar(&f.listen, "listen-addr", server.DefaultListenAddr, "gRPC address for clients and other nodes")
	fl.StringVar(&f.advertise, "advertise-addr", "", "address other nodes and clients dial (default: the listen address)")
	fl.StringVar(&f.sql, "sql-addr", server.DefaultSQLAddr, "Postgres wire address (recorded now; served once pgwire lands)")
	fl.StringVar(&f.http, "http-addr", server.DefaultHTTPAddr, "HTTP address: /health, /metrics, /debug/pprof (empty: off)")
	fl.StringSliceVar(&f.join, "join", nil, "addresses of nodes of the cluster to join (may include this node's own)")
	fl.DurationVar(&f.maxOffset, "max-offset", server.DefaultMaxOffset, "largest clock offset tolerated between nodes; the same on every node")
	fl.StringVar(&f.clockSource, "clock-source", "auto", "clock error bound source: auto, static, adjtimex or clockbound[:path]")
	fl.StringVar(&f.commitWait, "commit-wait", "auto", "commit-wait: auto, always or never (never gives up strict serializability)")
	fl.Int64Var(&f.rangeMaxBytes, "range-max-bytes", 64<<20, "a range larger than this splits")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.BoolVar(&f.insecure, "insecure", true, "plaintext gRPC and HTTP (the only mode until TLS lands)")
	return cmd
}

// newLogger builds the node's slog logger.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func runStart(cmd *cobra.Command, f startFlags) error {
	if !f.insecure {
		return fmt.Errorf("TLS is not implemented yet; start with --insecure")
	}
	logger, err := newLogger(cmd.ErrOrStderr(), f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	logGC(logger, gctune.Apply())
	cfg := server.Config{
		Store: f.store, ListenAddr: f.listen, AdvertiseAddr: f.advertise, SQLAddr: f.sql, HTTPAddr: f.http,
		Join: f.join, MaxOffset: f.maxOffset, ClockSource: f.clockSource, CommitWait: f.commitWait,
		RangeMaxBytes: f.rangeMaxBytes, Logger: logger,
	}
	if err := applyTestHooks(&cfg, logger); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	n, err := server.Start(ctx, cfg)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if n.NodeID() != 0 {
		fmt.Fprintf(out, "node %d of cluster %s\n", n.NodeID(), n.ClusterID())
	} else {
		fmt.Fprintf(out, "waiting to join a cluster through %v, or for `meridian init --host=%s`\n", cfg.Join, n.Addr())
	}
	fmt.Fprintf(out, "gRPC:  %s\nHTTP:  %s\nstore: %s\ntry:   meridian kv put --host=%s hello world\n", n.Addr(), n.HTTPAddr(), f.store, n.Addr())
	select {
	case <-ctx.Done():
		stop()
		logger.Info("shutting down: draining")
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = n.Drain(dctx)
		if err := n.Stop(dctx); err != nil {
			return fmt.Errorf("stopping: %w", err)
		}
		logger.Info("stopped")
		return nil
	case ferr := <-n.Failed():
		_ = n.Stop(context.Background())
		return ferr
	}
}

// logGC says how the garbage collector was set (gctune.Apply).
func logGC(logger *slog.Logger, s gctune.Settings) {
	args := []any{}
	if s.Percent != 0 {
		args = append(args, "gc_percent", s.Percent)
	}
	if s.Limit != 0 {
		args = append(args, "memory_limit_mib", s.Limit>>20)
	}
	if len(args) > 0 {
		logger.Info("go runtime: garbage collector set (GOGC and GOMEMLIMIT override)", args...)
	}
}

// waitForSignal waits for SIGINT or SIGTERM (demo runs until then).
func waitForSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	<-ch
	signal.Stop(ch)
}
