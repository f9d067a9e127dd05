package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/clockbound"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/raftgroup"
	"github.com/meridiandb/meridian/ranges"
)

// Metrics is one node's metrics: OpenTelemetry instruments exported in the
// Prometheus text format on a registry of the node's own, so several nodes
// in one process (tests, `meridian demo`) never share or clash on a
// metric. Every name starts with "meridian_", durations are in seconds
// ("_seconds"), and counters end in "_total".
//
// Synchronous instruments (gRPC calls, fsyncs, proposal latency,
// commit-wait) are recorded as events happen; everything read from a
// component (replica counts, raft and queue counters, clock offset and ε) is
// an observable instrument whose callback runs when /metrics is scraped, so
// an idle node does no metrics work.
//
// Metrics implements raftgroup.Observer: pass it as
// ranges.StoreConfig.RaftObserver. All methods are safe for concurrent use.
type Metrics struct {
	registry *prometheus.Registry
	provider *sdkmetric.MeterProvider
	meter    metric.Meter

	grpcHandled  metric.Int64Counter
	grpcDuration metric.Float64Histogram
	fsync        metric.Float64Histogram
	fsyncEntries metric.Int64Histogram
	commit       metric.Float64Histogram
	commitWait   metric.Float64Histogram

	mu struct {
		sync.Mutex
		regs     []metric.Registration
		store    bool
		clock    bool
		shutdown bool
	}
}

var _ raftgroup.Observer = (*Metrics)(nil)

// latencyBuckets are the histogram bounds, in seconds, for every latency:
// 100 µs to 10 s, about three per decade.
var latencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// entriesBuckets are the bounds of the entries-per-fsync histogram.
var entriesBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}

// NewMetrics creates a node's metrics with the Go runtime and process
// collectors. nodeID is read at every scrape (a joining node learns its ID
// after it starts) and exported as meridian_node_id; it may return 0 while
// the ID is unknown. Shutdown releases the metrics.
func NewMetrics(nodeID func() uint64) (*Metrics, error) {
	if nodeID == nil {
		return nil, errors.New("server: NewMetrics needs a nodeID function")
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("server: registering the Go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("server: registering the process collector: %w", err)
	}
	exp, err := otelprom.New(
		otelprom.WithRegisterer(reg),
		otelprom.WithNamespace("meridian"),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
		otelprom.WithoutScopeInfo(),
		otelprom.WithoutTargetInfo(),
	)
	if err != nil {
		return nil, fmt.Errorf("server: creating the Prometheus exporter: %w", err)
	}
	m := &Metrics{registry: reg, provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))}
	m.meter = m.provider.Meter("github.com/meridiandb/meridian/server")
	if err := m.init(nodeID); err != nil {
		_ = m.provider.Shutdown(context.Background())
		return nil, err
	}
	return m, nil
}

// init creates the synchronous instruments and the node ID gauge.
func (m *Metrics) init(nodeID func() uint64) error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	var err error
	m.grpcHandled, err = m.meter.Int64Counter("grpc.server.handled", metric.WithUnit("{call}"),
		metric.WithDescription("gRPC calls this node served, by full method and status code."))
	add(err)
	m.grpcDuration, err = m.meter.Float64Histogram("grpc.server.handling", metric.WithUnit("s"),
		metric.WithDescription("Time this node took to serve a gRPC call (a stream: its whole life), by full method."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	add(err)
	m.fsync, err = m.meter.Float64Histogram("raft.fsync.duration", metric.WithUnit("s"),
		metric.WithDescription("Time of one synced commit of Raft log entries and hard states to the store's engine."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	add(err)
	m.fsyncEntries, err = m.meter.Int64Histogram("raft.fsync.entries", metric.WithUnit("{entry}"),
		metric.WithDescription("Raft log entries made durable by one fsync (proposals per fsync: the batching factor)."),
		metric.WithExplicitBucketBoundaries(entriesBuckets...))
	add(err)
	m.commit, err = m.meter.Float64Histogram("raft.proposal.commit.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from handing a proposal to Raft to applying it on this node (commit latency as the proposer sees it)."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	add(err)
	m.commitWait, err = m.meter.Float64Histogram("txn.commit_wait", metric.WithUnit("s"),
		metric.WithDescription("Time a commit waited for the clock's uncertainty to pass before it was acknowledged."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	add(err)
	id, err := m.meter.Int64ObservableGauge("node.id",
		metric.WithDescription("This node's ID (0 until it has joined a cluster)."))
	add(err)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("server: creating metrics: %w", err)
	}
	reg, err := m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(id, int64(nodeID()))
		return nil
	}, id)
	if err != nil {
		return fmt.Errorf("server: registering the node ID gauge: %w", err)
	}
	m.mu.regs = append(m.mu.regs, reg)
	return nil
}

// Handler serves the metrics in the Prometheus text format (/metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		Registry:          m.registry, // promhttp_metric_handler_errors_total
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: false,
	})
}

// Registry returns the node's Prometheus registry, for collectors of other
// libraries (and tests that Gather directly).
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// MeterProvider returns the node's OpenTelemetry meter provider, for
// instruments other packages create (they are exported on the same
// /metrics, prefixed "meridian_").
func (m *Metrics) MeterProvider() metric.MeterProvider { return m.provider }

// Shutdown unregisters every callback and stops the meter provider; a scrape
// after Shutdown returns only the Go and process collectors.
func (m *Metrics) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	if m.mu.shutdown {
		m.mu.Unlock()
		return nil
	}
	m.mu.shutdown = true
	regs := m.mu.regs
	m.mu.regs = nil
	m.mu.Unlock()
	var errs []error
	for _, r := range regs {
		errs = append(errs, r.Unregister())
	}
	errs = append(errs, m.provider.Shutdown(ctx))
	return errors.Join(errs...)
}

// Fsynced implements raftgroup.Observer.
func (m *Metrics) Fsynced(d time.Duration, entries int) {
	ctx := context.Background()
	m.fsync.Record(ctx, d.Seconds())
	m.fsyncEntries.Record(ctx, int64(entries))
}

// ProposalApplied implements raftgroup.Observer.
func (m *Metrics) ProposalApplied(d time.Duration) {
	m.commit.Record(context.Background(), d.Seconds())
}

// RecordCommitWait records how long one commit waited out the clock's
// uncertainty (txn's commit-wait) before it was acknowledged.
func (m *Metrics) RecordCommitWait(d time.Duration) {
	m.commitWait.Record(context.Background(), d.Seconds())
}

// GRPCServerOptions returns the server options that count and time every
// gRPC call by method and status code: chained unary and stream
// interceptors, which compose with any other Chain options. Interceptors run
// only for registered methods, so a client naming arbitrary methods cannot
// create new label values.
func (m *Metrics) GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			start := time.Now()
			resp, err := h(ctx, req)
			m.recordRPC(ctx, info.FullMethod, start, err)
			return resp, err
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			start := time.Now()
			err := h(srv, ss)
			m.recordRPC(ss.Context(), info.FullMethod, start, err)
			return err
		}),
	}
}

func (m *Metrics) recordRPC(ctx context.Context, method string, start time.Time, err error) {
	d := time.Since(start)
	code := status.Code(err)
	m.grpcHandled.Add(ctx, 1, metric.WithAttributes(attribute.String("method", method), attribute.String("code", code.String())))
	m.grpcDuration.Record(ctx, d.Seconds(), metric.WithAttributes(attribute.String("method", method)))
}

// RegisterStore exports a store's gauges and counters, read at each scrape:
//
//   - meridian_replicas, meridian_replicas_leaders,
//     meridian_replicas_leaseholders, meridian_replicas_quiescent: the
//     store's initialised replicas, those leading their Raft group, holding
//     a lease valid now (with the clock's stasis margin, as the admin
//     RangeStatus decides), and quiesced;
//   - meridian_ranges: the ranges this store accounts for, those whose Raft
//     leader is here, so the sum over nodes is the cluster's range count;
//   - meridian_store_draining: 1 while the store drains;
//   - meridian_raft_*_total: the raft host's counters (proposals, entries
//     appended and applied, fsyncs, messages sent, dropped and received,
//     snapshots sent, applied and failed, log truncations, quiesce events);
//   - meridian_queue_*_total: the store's queues (splits, meta repairs, GC
//     runs and versions removed, replicas added), each with its failures.
//
// A node has one store; a second RegisterStore is an error.
func (m *Metrics) RegisterStore(s *ranges.Store) error {
	if s == nil {
		return errors.New("server: RegisterStore needs a store")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.shutdown {
		return errors.New("server: metrics are shut down")
	}
	if m.mu.store {
		return errors.New("server: a store is already registered with these metrics")
	}
	var errs []error
	gauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		g, err := m.meter.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := m.meter.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	replicas := gauge("replicas", "{replica}", "Initialised replicas on this node's store.")
	leaders := gauge("replicas.leaders", "{replica}", "Replicas on this store that lead their Raft group.")
	leaseholders := gauge("replicas.leaseholders", "{replica}", "Replicas on this store that hold a lease valid now.")
	quiescent := gauge("replicas.quiescent", "{replica}", "Replicas on this store whose Raft group is quiesced.")
	rangesG := gauge("ranges", "{range}", "Ranges whose Raft leader is on this store (summed over nodes: the cluster's ranges).")
	draining := gauge("store.draining", "", "1 while the store drains (takes no lease, hands leases and Raft leadership away).")

	type hostCounter struct {
		c   metric.Int64ObservableCounter
		get func(raftgroup.Metrics) uint64
	}
	hc := func(name, unit, desc string, get func(raftgroup.Metrics) uint64) hostCounter {
		return hostCounter{counter(name, unit, desc), get}
	}
	hostCounters := []hostCounter{
		hc("raft.proposals", "{proposal}", "Commands this node handed to Raft.", func(x raftgroup.Metrics) uint64 { return x.Proposals }),
		hc("raft.entries.appended", "{entry}", "Raft log entries this node persisted.", func(x raftgroup.Metrics) uint64 { return x.EntriesAppended }),
		hc("raft.entries.applied", "{entry}", "Raft log entries this node applied.", func(x raftgroup.Metrics) uint64 { return x.Applied }),
		hc("raft.fsyncs", "{fsync}", "Synced commits of Raft state.", func(x raftgroup.Metrics) uint64 { return x.Fsyncs }),
		hc("raft.ready_cycles", "{cycle}", "Raft worker cycles that persisted something.", func(x raftgroup.Metrics) uint64 { return x.Cycles }),
		hc("raft.messages.sent", "{message}", "Raft messages sent to other nodes.", func(x raftgroup.Metrics) uint64 { return x.MessagesSent }),
		hc("raft.messages.dropped", "{message}", "Raft messages the transport refused (queue full, no route).", func(x raftgroup.Metrics) uint64 { return x.MessagesDropped }),
		hc("raft.messages.received", "{message}", "Raft messages received from other nodes.", func(x raftgroup.Metrics) uint64 { return x.MessagesRecv }),
		hc("raft.transport.stream_breaks", "{break}", "Raft message streams to peers that broke or failed to dial (each drops what was queued for that peer).", func(x raftgroup.Metrics) uint64 { return x.StreamBreaks }),
		hc("raft.snapshots.sent", "{snapshot}", "Snapshots this node sent that a follower applied.", func(x raftgroup.Metrics) uint64 { return x.SnapshotsSent }),
		hc("raft.snapshots.applied", "{snapshot}", "Snapshots this node applied.", func(x raftgroup.Metrics) uint64 { return x.SnapshotsApplied }),
		hc("raft.snapshots.failed", "{snapshot}", "Snapshot sends that failed (retried with backoff).", func(x raftgroup.Metrics) uint64 { return x.SnapshotsFailed }),
		hc("raft.log.truncations", "{truncation}", "Raft log truncations.", func(x raftgroup.Metrics) uint64 { return x.Truncations }),
		hc("raft.quiesced", "{event}", "Times a leader quiesced its Raft group.", func(x raftgroup.Metrics) uint64 { return x.Quiesced }),
		hc("raft.heartbeats.elided", "{message}", "Raft heartbeats not sent because an append since the previous one told the follower as much.", func(x raftgroup.Metrics) uint64 { return x.HeartbeatsElided }),
		hc("raft.commit_notices.elided", "{message}", "Raft appends that only carried a commit index, not sent because a later message to the follower carried it.", func(x raftgroup.Metrics) uint64 { return x.CommitNoticesElided }),
		hc("raft.commit_notices.delayed", "{message}", "Raft appends that only carried a commit index, sent when their delay ran out.", func(x raftgroup.Metrics) uint64 { return x.CommitNoticesDelayed }),
	}

	type queueCounter struct {
		c   metric.Int64ObservableCounter
		get func(ranges.QueueMetrics) int64
	}
	qc := func(name, unit, desc string, get func(ranges.QueueMetrics) int64) queueCounter {
		return queueCounter{counter(name, unit, desc), get}
	}
	queueCounters := []queueCounter{
		qc("queue.splits", "{split}", "Ranges the split queue split.", func(x ranges.QueueMetrics) int64 { return x.Splits }),
		qc("queue.split_failures", "{split}", "Splits the split queue attempted that failed.", func(x ranges.QueueMetrics) int64 { return x.SplitFailures }),
		qc("queue.meta_repairs", "{repair}", "Meta entries the meta-repair queue rewrote.", func(x ranges.QueueMetrics) int64 { return x.MetaRepairs }),
		qc("queue.meta_repair_failures", "{repair}", "Meta repairs that failed.", func(x ranges.QueueMetrics) int64 { return x.MetaFailures }),
		qc("queue.gc_runs", "{run}", "GC passes over a range.", func(x ranges.QueueMetrics) int64 { return x.GCRuns }),
		qc("queue.gc_versions_removed", "{version}", "MVCC versions the GC queue removed.", func(x ranges.QueueMetrics) int64 { return x.GCVersionsRemoved }),
		qc("queue.replicas_added", "{replica}", "Replicas the replicate queue added.", func(x ranges.QueueMetrics) int64 { return x.ReplicasAdded }),
		qc("queue.replica_add_failures", "{replica}", "Replica additions that failed.", func(x ranges.QueueMetrics) int64 { return x.ReplicaAddFailures }),
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("server: creating store metrics: %w", err)
	}

	insts := []metric.Observable{replicas, leaders, leaseholders, quiescent, rangesG, draining}
	for _, c := range hostCounters {
		insts = append(insts, c.c)
	}
	for _, c := range queueCounters {
		insts = append(insts, c.c)
	}
	admin := s.Admin()
	reg, err := m.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		st := countReplicas(ctx, admin)
		o.ObserveInt64(replicas, st.replicas)
		o.ObserveInt64(leaders, st.leaders)
		o.ObserveInt64(leaseholders, st.leaseholders)
		o.ObserveInt64(quiescent, st.quiescent)
		o.ObserveInt64(rangesG, st.leaders)
		var d int64
		if s.Draining() {
			d = 1
		}
		o.ObserveInt64(draining, d)
		hm := s.Host().Metrics()
		for _, c := range hostCounters {
			o.ObserveInt64(c.c, int64(c.get(hm)))
		}
		qm := s.Metrics()
		for _, c := range queueCounters {
			o.ObserveInt64(c.c, c.get(qm))
		}
		return nil
	}, insts...)
	if err != nil {
		return fmt.Errorf("server: registering store metrics: %w", err)
	}
	m.mu.regs = append(m.mu.regs, reg)
	m.mu.store = true
	return nil
}

type replicaCounts struct {
	replicas, leaders, leaseholders, quiescent int64
}

// countReplicas counts a store's replicas by role through the admin's
// RangeStatus, the one place that decides leaseholder-ness for operators.
func countReplicas(ctx context.Context, admin *ranges.Admin) replicaCounts {
	var c replicaCounts
	resp, err := admin.RangeStatus(ctx, &api.RangeStatusRequest{})
	if err != nil {
		return c
	}
	for _, r := range resp.GetRanges() {
		c.replicas++
		if r.GetLeaseholder() {
			c.leaseholders++
		}
		if r.GetRaft().GetState() == "StateLeader" {
			c.leaders++
		}
		if r.GetRaft().GetQuiesced() {
			c.quiescent++
		}
	}
	return c
}

// RegisterClock exports the node's clock health, read at each scrape:
//
//   - meridian_clock_offset_seconds: the largest absolute offset of a peer's
//     clock from ours among the offset monitor's current (non-stale)
//     estimates (0 with no peers);
//   - meridian_clock_offset_peers: how many peers those estimates cover;
//   - meridian_clock_max_offset_seconds: the configured maximum offset
//     (--max-offset), the bound the offset monitor enforces;
//   - meridian_clockbound_error_bound_seconds{source,status}: ε, the width
//     Latest − Earliest of the clock source's current reading, labelled with
//     the source in force (for clockbound.Auto, the one it chose) and its
//     status. Absent while the source fails.
//
// offsets may be nil (a single node has no peers); clock and src may not.
func (m *Metrics) RegisterClock(clock *hlc.Clock, src clockbound.Source, offsets *hlc.OffsetMonitor) error {
	if clock == nil || src == nil {
		return errors.New("server: RegisterClock needs a clock and a clock source")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.shutdown {
		return errors.New("server: metrics are shut down")
	}
	if m.mu.clock {
		return errors.New("server: a clock is already registered with these metrics")
	}
	var errs []error
	fgauge := func(name, unit, desc string) metric.Float64ObservableGauge {
		g, err := m.meter.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	offset := fgauge("clock.offset", "s", "Largest absolute offset of a peer's clock from this node's, over the current estimates.")
	maxOffset := fgauge("clock.max_offset", "s", "The configured maximum clock offset between any two nodes.")
	epsilon := fgauge("clockbound.error_bound", "s", "ε: width (Latest − Earliest) of the clock source's current uncertainty interval.")
	peers, err := m.meter.Int64ObservableGauge("clock.offset.peers", metric.WithUnit("{peer}"),
		metric.WithDescription("Peers with a current clock offset estimate."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("server: creating clock metrics: %w", err)
	}
	reg, err := m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveFloat64(maxOffset, clock.MaxOffset().Seconds())
		var worst time.Duration
		var n int64
		if offsets != nil {
			for _, e := range offsets.Estimates() {
				n++
				worst = max(worst, e.Offset, -e.Offset)
			}
		}
		o.ObserveFloat64(offset, worst.Seconds())
		o.ObserveInt64(peers, n)
		if name, r, err := readSource(src); err == nil {
			o.ObserveFloat64(epsilon, r.Width().Seconds(), metric.WithAttributes(
				attribute.String("source", name), attribute.String("status", r.Status.String())))
		}
		return nil
	}, offset, maxOffset, epsilon, peers)
	if err != nil {
		return fmt.Errorf("server: registering clock metrics: %w", err)
	}
	m.mu.regs = append(m.mu.regs, reg)
	m.mu.clock = true
	return nil
}

// readSource takes a reading of src and names the source that gave it:
// clockbound.Auto reports the source it chose.
func readSource(src clockbound.Source) (string, clockbound.Reading, error) {
	if a, ok := src.(*clockbound.Auto); ok {
		s, r, err := a.Choose()
		if err != nil {
			return "", r, err
		}
		return s.Name(), r, nil
	}
	r, err := src.Now()
	return src.Name(), r, err
}
