package server

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/clockbound"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/mvcc"
	"github.com/meridiandb/meridian/raftgroup"
	"github.com/meridiandb/meridian/ranges"
)

const obsWait = 30 * time.Second

// scrape fetches url and parses the Prometheus text it serves.
func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: status %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); expfmt.ResponseFormat(resp.Header).FormatType() != expfmt.TypeTextPlain {
		t.Fatalf("scraping %s: content type %q, want the Prometheus text format", url, ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the scrape of %s: %v", url, err)
	}
	return fams
}

// sample returns the metric of family name whose labels include want.
func findMetric(fams map[string]*dto.MetricFamily, name string, want map[string]string) (*dto.Metric, bool) {
	f, ok := fams[name]
	if !ok {
		return nil, false
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		return m, true
	}
	return nil, false
}

// value returns a gauge's or counter's value, failing the test if absent.
func metricValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	m, ok := findMetric(fams, name, labels)
	if !ok {
		t.Fatalf("metric %s%v missing from the scrape", name, labels)
	}
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	t.Fatalf("metric %s is neither a gauge nor a counter", name)
	return 0
}

// histogram returns a histogram's sample count and sum.
func metricHistogram(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) (uint64, float64) {
	t.Helper()
	m, ok := findMetric(fams, name, labels)
	if !ok || m.GetHistogram() == nil {
		t.Fatalf("histogram %s%v missing from the scrape", name, labels)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// singleStore starts a one-node store on an in-memory engine with m as its
// Raft observer, and stops it when the test ends.
func obsStore(t *testing.T, m *Metrics) *ranges.Store {
	t.Helper()
	e, err := mvcc.Open("data", mvcc.Options{FS: vfs.NewMem(), CacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ranges.Bootstrap(e, ranges.BootstrapConfig{Replicas: []ranges.InitialReplica{{NodeID: 1, StoreID: 1}}}); err != nil {
		t.Fatal(err)
	}
	clock := hlc.NewClock(hlc.SystemClock{}, 250*time.Millisecond)
	netw := raftgroup.NewMemNetwork(1)
	s, err := ranges.NewStore(ranges.StoreConfig{
		NodeID: 1, StoreID: 1, Engine: e, Clock: clock, Transport: netw.Transport(1, clock),
		TickInterval: 10 * time.Millisecond, RangeMaxBytes: -1, GCTTL: -1, RaftObserver: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	netw.Register(1, s.Host())
	t.Cleanup(func() {
		s.Stop()
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// putKey writes one user key through the store, retrying while the range
// elects a leader and acquires its lease.
func obsPut(t *testing.T, s *ranges.Store, k string) {
	t.Helper()
	key := keys.UserKey([]byte(k))
	ctx, cancel := context.WithTimeout(context.Background(), obsWait)
	defer cancel()
	for {
		var rangeID uint64
		for _, r := range s.Replicas() {
			if d := r.Desc(); d.ContainsKey(key) {
				rangeID = d.GetRangeId()
			}
		}
		ba := &api.BatchRequest{Header: &api.BatchHeader{RangeId: rangeID}}
		ba.Add(&api.PutRequest{Key: key, Value: []byte("v")})
		_, err := s.Send(ctx, ba)
		if err == nil {
			return
		}
		var nlh *api.NotLeaseholderError
		if !errors.As(err, &nlh) || ctx.Err() != nil {
			t.Fatalf("put %s: %v", k, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// serveGRPC serves the health service (status SERVING for "meridian")
// and an unimplemented Node service on loopback with opts, and returns the
// address.
func serveGRPC(t *testing.T, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	hs := health.NewServer()
	hs.SetServingStatus("meridian", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	api.RegisterNodeServer(srv, struct{ api.UnimplementedNodeServer }{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}

// startGRPC is serveGRPC with a client connection to it.
func startGRPC(t *testing.T, opts ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(serveGRPC(t, opts...), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func newTestMetrics(t *testing.T, id uint64) *Metrics {
	t.Helper()
	m, err := NewMetrics(func() uint64 { return id })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return m
}

func nearly(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestMetricsScrape(t *testing.T) {
	m := newTestMetrics(t, 7)
	s := obsStore(t, m)
	if err := m.RegisterStore(s); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterStore(s); err == nil {
		t.Fatal("a second RegisterStore succeeded")
	}

	// The clock: a manual physical clock, a peer measured 20 ms ahead
	// (±1 ms), and a source with a ±3 ms bound.
	phys := hlc.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := hlc.NewClock(phys, 250*time.Millisecond)
	offsets := hlc.NewOffsetMonitor(clock, hlc.OffsetMonitorConfig{})
	now := phys.UnixNano()
	if err := offsets.Record(hlc.OffsetSample{Peer: "n2", Sent: now - 2e6, Remote: now - 1e6 + 20e6, Received: now}); err != nil {
		t.Fatal(err)
	}
	if err := offsets.Record(hlc.OffsetSample{Peer: "n3", Sent: now - 2e6, Remote: now - 1e6 - 5e6, Received: now}); err != nil {
		t.Fatal(err)
	}
	src := clockbound.NewTrackingFake("fake", phys, 3*time.Millisecond, clockbound.Synchronized)
	if err := m.RegisterClock(clock, src, offsets); err != nil {
		t.Fatal(err)
	}

	const puts = 5
	for i := range puts {
		obsPut(t, s, string(rune('a'+i)))
	}
	m.RecordCommitWait(5 * time.Millisecond)

	conn := startGRPC(t, m.GRPCServerOptions()...)
	hc := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), obsWait)
	defer cancel()
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "meridian"}); err != nil {
		t.Fatal(err)
	}
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("checking an unknown service: %v, want NotFound", err)
	}
	// A method the server does not have makes no series.
	if err := conn.Invoke(ctx, "/no.Such/Method", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("calling an unknown method: %v", err)
	}

	hs := httptest.NewServer(m.Handler())
	defer hs.Close()

	// The lease was valid when the last put returned, but it may lapse
	// before a slow scrape; keep the range busy until a scrape sees it.
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(obsWait)
	for {
		fams = scrapeMetrics(t, hs.URL)
		if metricValue(t, fams, "meridian_replicas_leaseholders", nil) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no scrape counted a leaseholder")
		}
		obsPut(t, s, "again")
	}

	if got := metricValue(t, fams, "meridian_node_id", nil); got != 7 {
		t.Errorf("meridian_node_id = %v, want 7", got)
	}
	// Bootstrap makes the meta range and the user range.
	if got := metricValue(t, fams, "meridian_replicas", nil); got != 2 {
		t.Errorf("meridian_replicas = %v, want 2", got)
	}
	leaders := metricValue(t, fams, "meridian_replicas_leaders", nil)
	if leaders < 1 || leaders > 2 {
		t.Errorf("meridian_replicas_leaders = %v, want 1 or 2", leaders)
	}
	if got := metricValue(t, fams, "meridian_ranges", nil); got != leaders {
		t.Errorf("meridian_ranges = %v, want the leaders' %v", got, leaders)
	}
	_ = metricValue(t, fams, "meridian_replicas_quiescent", nil)
	if got := metricValue(t, fams, "meridian_store_draining", nil); got != 0 {
		t.Errorf("meridian_store_draining = %v, want 0", got)
	}
	for _, name := range []string{"meridian_raft_proposals_total", "meridian_raft_entries_appended_total", "meridian_raft_entries_applied_total", "meridian_raft_fsyncs_total", "meridian_raft_ready_cycles_total"} {
		if got := metricValue(t, fams, name, nil); got < puts {
			t.Errorf("%s = %v, want at least %d", name, got, puts)
		}
	}
	for _, name := range []string{"meridian_raft_messages_sent_total", "meridian_raft_messages_dropped_total", "meridian_raft_messages_received_total",
		"meridian_raft_snapshots_sent_total", "meridian_raft_snapshots_applied_total", "meridian_raft_snapshots_failed_total",
		"meridian_raft_log_truncations_total", "meridian_raft_quiesced_total", "meridian_raft_transport_stream_breaks_total", "meridian_raft_heartbeats_elided_total", "meridian_raft_commit_notices_elided_total", "meridian_raft_commit_notices_delayed_total",
		"meridian_queue_splits_total", "meridian_queue_split_failures_total", "meridian_queue_meta_repairs_total",
		"meridian_queue_meta_repair_failures_total", "meridian_queue_gc_runs_total", "meridian_queue_gc_versions_removed_total",
		"meridian_queue_replicas_added_total", "meridian_queue_replica_add_failures_total"} {
		if got := metricValue(t, fams, name, nil); got < 0 {
			t.Errorf("%s = %v", name, got)
		}
	}
	if got := fams["meridian_raft_proposals_total"].GetType(); got != dto.MetricType_COUNTER {
		t.Errorf("meridian_raft_proposals_total is a %v, want a counter", got)
	}

	// Histograms from the Raft observer.
	n, sum := metricHistogram(t, fams, "meridian_raft_fsync_duration_seconds", nil)
	if n < puts || sum <= 0 {
		t.Errorf("fsync histogram: %d fsyncs taking %vs, want ≥ %d", n, sum, puts)
	}
	// One sample per fsync in each histogram, but recorded one after the
	// other: background fsyncs (lease extensions, on any worker) can fall
	// between them while the scrape reads, so the counts are compared
	// within a few, not exactly.
	if en, esum := metricHistogram(t, fams, "meridian_raft_fsync_entries", nil); en < puts || en > n+4 || en+4 < n || esum < puts {
		t.Errorf("entries per fsync: %d samples summing to %v, want %d (±4) samples, at least %d entries", en, esum, n, puts)
	}
	if cn, csum := metricHistogram(t, fams, "meridian_raft_proposal_commit_duration_seconds", nil); cn < puts || csum <= 0 {
		t.Errorf("commit latency histogram: %d samples, %vs; want ≥ %d", cn, csum, puts)
	}
	if wn, wsum := metricHistogram(t, fams, "meridian_txn_commit_wait_seconds", nil); wn != 1 || !nearly(wsum, 0.005) {
		t.Errorf("commit-wait histogram: %d samples, %vs; want 1 of 0.005", wn, wsum)
	}

	// Clock.
	if got := metricValue(t, fams, "meridian_clock_offset_seconds", nil); !nearly(got, 0.020) {
		t.Errorf("meridian_clock_offset_seconds = %v, want 0.020", got)
	}
	if got := metricValue(t, fams, "meridian_clock_offset_peers", nil); got != 2 {
		t.Errorf("meridian_clock_offset_peers = %v, want 2", got)
	}
	if got := metricValue(t, fams, "meridian_clock_max_offset_seconds", nil); !nearly(got, 0.25) {
		t.Errorf("meridian_clock_max_offset_seconds = %v", got)
	}
	if got := metricValue(t, fams, "meridian_clockbound_error_bound_seconds", map[string]string{"source": "fake", "status": "synchronized"}); !nearly(got, 0.006) {
		t.Errorf("meridian_clockbound_error_bound_seconds = %v, want 0.006 (the interval's width)", got)
	}

	// gRPC, by method and code.
	const check = "/grpc.health.v1.Health/Check"
	if got := metricValue(t, fams, "meridian_grpc_server_handled_total", map[string]string{"method": check, "code": "OK"}); got != 1 {
		t.Errorf("OK checks = %v, want 1", got)
	}
	if got := metricValue(t, fams, "meridian_grpc_server_handled_total", map[string]string{"method": check, "code": "NotFound"}); got != 1 {
		t.Errorf("NotFound checks = %v, want 1", got)
	}
	if hn, _ := metricHistogram(t, fams, "meridian_grpc_server_handling_seconds", map[string]string{"method": check}); hn != 2 {
		t.Errorf("check latency samples = %d, want 2", hn)
	}
	if n := len(fams["meridian_grpc_server_handled_total"].GetMetric()); n != 2 {
		t.Errorf("meridian_grpc_server_handled_total has %d series, want 2 (no series for an unknown method)", n)
	}

	// A single-voter store drains at once, keeping its leases.
	if err := s.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := metricValue(t, scrapeMetrics(t, hs.URL), "meridian_store_draining", nil); got != 1 {
		t.Errorf("meridian_store_draining after Drain = %v, want 1", got)
	}

	// The Go and process collectors.
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
	// Every Meridian metric carries the prefix.
	for name := range fams {
		if len(name) < 3 || (name[:3] != "go_" && name[:8] != "process_" && name[:9] != "meridian_" && name[:9] != "promhttp_") {
			t.Errorf("metric %s has no known prefix", name)
		}
	}
}

// TestMetricsSeparateNodes checks that two nodes' metrics in one process do
// not share a registry.
func TestMetricsSeparateNodes(t *testing.T) {
	a, b := newTestMetrics(t, 1), newTestMetrics(t, 2)
	a.RecordCommitWait(time.Millisecond)
	a.RecordCommitWait(time.Millisecond)
	b.RecordCommitWait(time.Millisecond)
	ha, hb := httptest.NewServer(a.Handler()), httptest.NewServer(b.Handler())
	defer ha.Close()
	defer hb.Close()
	fa, fb := scrapeMetrics(t, ha.URL), scrapeMetrics(t, hb.URL)
	if n, _ := metricHistogram(t, fa, "meridian_txn_commit_wait_seconds", nil); n != 2 {
		t.Errorf("node 1 commit waits = %d, want 2", n)
	}
	if n, _ := metricHistogram(t, fb, "meridian_txn_commit_wait_seconds", nil); n != 1 {
		t.Errorf("node 2 commit waits = %d, want 1", n)
	}
	if metricValue(t, fa, "meridian_node_id", nil) != 1 || metricValue(t, fb, "meridian_node_id", nil) != 2 {
		t.Error("node IDs mixed up")
	}
}

func TestMetricsBadInput(t *testing.T) {
	if _, err := NewMetrics(nil); err == nil {
		t.Error("NewMetrics(nil) succeeded")
	}
	m := newTestMetrics(t, 1)
	if err := m.RegisterStore(nil); err == nil {
		t.Error("RegisterStore(nil) succeeded")
	}
	if err := m.RegisterClock(nil, nil, nil); err == nil {
		t.Error("RegisterClock(nil, nil, nil) succeeded")
	}
	phys := hlc.NewManualClock(1)
	clock := hlc.NewClock(phys, time.Second)
	src, err := clockbound.NewStatic(phys, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterClock(clock, src, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterClock(clock, src, nil); err == nil {
		t.Error("a second RegisterClock succeeded")
	}
	hs := httptest.NewServer(m.Handler())
	defer hs.Close()
	fams := scrapeMetrics(t, hs.URL)
	if got := metricValue(t, fams, "meridian_clock_offset_seconds", nil); got != 0 {
		t.Errorf("offset with no monitor = %v, want 0", got)
	}
	if got := metricValue(t, fams, "meridian_clockbound_error_bound_seconds", map[string]string{"source": "static"}); got != 2 {
		t.Errorf("static ε = %v, want 2 (±1 s)", got)
	}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterClock(clock, src, nil); err == nil {
		t.Error("RegisterClock after Shutdown succeeded")
	}
	if _, ok := scrapeMetrics(t, hs.URL)["meridian_clock_offset_seconds"]; ok {
		t.Error("a scrape after Shutdown still runs the callbacks")
	}
}
