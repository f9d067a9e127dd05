package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meridiandb/meridian/api"
	meridianv1 "github.com/meridiandb/meridian/api/meridian/v1"
)

func testLogger() *slog.Logger {
	if os.Getenv("MERIDIAN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testConfig is a node on loopback with fast heartbeats.
func testConfig(store string, join ...string) Config {
	return Config{
		Store: store, ListenAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Join: join,
		Logger: testLogger(), HeartbeatInterval: 200 * time.Millisecond, LivenessTTL: 1500 * time.Millisecond,
		RaftTickInterval: 20 * time.Millisecond, LeaseDuration: 2 * time.Second,
	}
}

func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	return n
}

func waitReady(t *testing.T, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}

func kvClient(t *testing.T, addr string) meridianv1.KVClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return meridianv1.NewKVClient(conn)
}

func nodeClient(t *testing.T, addr string) api.NodeClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return api.NewNodeClient(conn)
}

func nodePut(t *testing.T, kv meridianv1.KVClient, k, v string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := kv.Put(ctx, &meridianv1.PutRequest{Key: []byte(k), Value: []byte(v)}); err != nil {
		t.Fatalf("put %s: %v", k, err)
	}
}

func nodeGet(t *testing.T, kv meridianv1.KVClient, k string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := kv.Get(ctx, &meridianv1.GetRequest{Key: []byte(k)})
	if err != nil {
		t.Fatalf("get %s: %v", k, err)
	}
	if !r.GetFound() {
		return "<absent>"
	}
	return string(r.GetValue())
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSingleNodeBootstrapAndRestart(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, testConfig(dir))
	waitReady(t, n)
	if n.NodeID() != 1 || n.ClusterID() == "" {
		t.Fatalf("node %d cluster %q, want node 1 of a new cluster", n.NodeID(), n.ClusterID())
	}
	kv := kvClient(t, n.Addr())
	nodePut(t, kv, "greeting", "hello")
	if got := nodeGet(t, kv, "greeting"); got != "hello" {
		t.Fatalf("get = %q", got)
	}
	// Health endpoints.
	resp, err := http.Get("http://" + n.HTTPAddr() + "/health?ready=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/health?ready=1: %d %s", resp.StatusCode, body)
	}
	// Metrics: the store's gauges and the raft fsync histogram are there.
	resp, err = http.Get("http://" + n.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"meridian_replicas ", "meridian_raft_fsync_duration_seconds_count", "meridian_grpc_server_handled_total", "meridian_clock_max_offset_seconds"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cluster := n.ClusterID()
	if err := n.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Same store: same identity, data still there.
	n2 := startNode(t, testConfig(dir))
	waitReady(t, n2)
	if n2.NodeID() != 1 || n2.ClusterID() != cluster {
		t.Fatalf("after restart: node %d cluster %q, want node 1 of %s", n2.NodeID(), n2.ClusterID(), cluster)
	}
	if got := nodeGet(t, kvClient(t, n2.Addr()), "greeting"); got != "hello" {
		t.Fatalf("after restart get = %q", got)
	}
}

// startJoined starts three nodes with --join listing all of them, inits
// the cluster through the first, and waits until all are ready.
func startJoined(t *testing.T, dirs []string) []*Node {
	t.Helper()
	// Ports must be known up front for --join: start the first node, then
	// the others joining it and each other.
	first := startNode(t, testConfig(dirs[0], "127.0.0.1:1")) // a join list, so it waits for init
	nodes := []*Node{first}
	for _, d := range dirs[1:] {
		nodes = append(nodes, startNode(t, testConfig(d, first.Addr())))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := nodeClient(t, first.Addr()).Init(ctx, &api.InitRequest{})
	if err != nil || resp.GetAlreadyInitialized() {
		t.Fatalf("init: %v %v", resp, err)
	}
	for _, n := range nodes {
		waitReady(t, n)
	}
	// A second init says so and changes nothing. (A fresh deadline: the
	// waits above may have used up the first.)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	resp, err = nodeClient(t, nodes[1].Addr()).Init(ctx2, &api.InitRequest{})
	if err != nil || !resp.GetAlreadyInitialized() || resp.GetClusterId() != first.ClusterID() {
		t.Fatalf("second init: %v %v", resp, err)
	}
	return nodes
}

func TestJoinInitAndReplication(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	nodes := startJoined(t, dirs)
	ids := map[uint64]bool{}
	for _, n := range nodes {
		if n.ClusterID() != nodes[0].ClusterID() {
			t.Fatalf("node %d in cluster %s, want %s", n.NodeID(), n.ClusterID(), nodes[0].ClusterID())
		}
		ids[n.NodeID()] = true
	}
	if len(ids) != 3 {
		t.Fatalf("node IDs %v, want 3 distinct", ids)
	}
	for i := range 20 {
		nodePut(t, kvClient(t, nodes[i%3].Addr()), fmt.Sprintf("k%02d", i), fmt.Sprintf("v%d", i))
	}
	for i := range 20 {
		if got := nodeGet(t, kvClient(t, nodes[(i+1)%3].Addr()), fmt.Sprintf("k%02d", i)); got != fmt.Sprintf("v%d", i) {
			t.Fatalf("k%02d = %q", i, got)
		}
	}
	// Every range reaches three replicas (the replicate queue, fed by
	// liveness).
	nc := nodeClient(t, nodes[2].Addr())
	waitFor(t, 60*time.Second, "every range on 3 nodes", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rs, err := nc.ListRanges(ctx, &api.ListRangesRequest{})
		if err != nil || len(rs.GetRanges()) == 0 {
			return false
		}
		for _, r := range rs.GetRanges() {
			if len(r.GetRangeDescriptor().GetReplicas()) != 3 {
				return false
			}
		}
		return true
	})
	// Liveness records and the status calls to peers are timed: on a
	// loaded machine one can be late for a moment, so ask until all three
	// are live and answer, and report what was seen last.
	var last string
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cs, err := nc.ClusterStatus(ctx, &api.ClusterStatusRequest{})
		cancel()
		last = clusterStatusProblem(cs, err)
		if last == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster status: %s", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clusterStatusProblem says what is wrong with a three-node cluster's
// status, or "" when every node is live and answered.
func clusterStatusProblem(cs *api.ClusterStatusResponse, err error) string {
	if err != nil {
		return err.Error()
	}
	if len(cs.GetNodes()) != 3 {
		return fmt.Sprintf("%d nodes listed: %v", len(cs.GetNodes()), cs)
	}
	for _, st := range cs.GetNodes() {
		if !st.GetLive() || st.GetError() != "" || st.GetClockSource() == "" || !strings.Contains(st.GetGuarantee(), "serializable") {
			return fmt.Sprintf("node status %v", st)
		}
	}
	return ""
}

// A write through a node's public API is one trace: the gateway's gRPC
// span, then the range's evaluation and its Raft proposal as descendants.
func TestWriteIsTraced(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	cfg := testConfig("mem")
	cfg.TestingKnobs.TraceExporter = exp
	n := startNode(t, cfg)
	waitReady(t, n)
	nodePut(t, kvClient(t, n.Addr()), "traced", "yes")
	// The server's RPC span ends after the client has its answer: wait
	// for it.
	var spans tracetest.SpanStubs
	var put *tracetest.SpanStub
	waitFor(t, 10*time.Second, "the Put RPC's span", func() bool {
		if err := n.tracing.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
		spans = exp.GetSpans()
		for i := range spans {
			if spans[i].Name == "meridian.v1.KV/Put" {
				put = &spans[i]
			}
		}
		return put != nil
	})
	byID := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID().String()] = s
	}
	// descends reports whether s has the Put span as an ancestor.
	descends := func(s tracetest.SpanStub) bool {
		for range 10 {
			if s.Parent.SpanID() == put.SpanContext.SpanID() {
				return true
			}
			p, ok := byID[s.Parent.SpanID().String()]
			if !ok {
				return false
			}
			s = p
		}
		return false
	}
	found := map[string]bool{}
	for _, s := range spans {
		if s.SpanContext.TraceID() == put.SpanContext.TraceID() && descends(s) {
			found[s.Name] = true
		}
	}
	for _, want := range []string{"ranges.Send", "raft.propose"} {
		if !found[want] {
			t.Errorf("no %s span under the Put RPC; found %v", want, found)
		}
	}
}

// A historical read returns what was committed at its timestamp, even when
// the key was overwritten moments later (within the max offset): it has no
// uncertainty interval to trip over.
func TestHistoricalReadRightAfterOverwrite(t *testing.T) {
	n := startNode(t, testConfig("mem"))
	waitReady(t, n)
	kv := kvClient(t, n.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p1, err := kv.Put(ctx, &meridianv1.PutRequest{Key: []byte("h"), Value: []byte("v1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, &meridianv1.PutRequest{Key: []byte("h"), Value: []byte("v2")}); err != nil {
		t.Fatal(err)
	}
	got, err := kv.Get(ctx, &meridianv1.GetRequest{Key: []byte("h"), ReadTimestamp: p1.GetWriteTimestamp()})
	if err != nil {
		t.Fatalf("historical get: %v", err)
	}
	if string(got.GetValue()) != "v1" {
		t.Fatalf("historical get = %q, want v1", got.GetValue())
	}
	st, err := kv.Scan(ctx, &meridianv1.ScanRequest{StartKey: []byte("h"), EndKey: []byte("i"), ReadTimestamp: p1.GetWriteTimestamp()})
	if err != nil {
		t.Fatal(err)
	}
	page, err := st.Recv()
	if err != nil || len(page.GetRows()) != 1 || string(page.GetRows()[0].GetValue()) != "v1" {
		t.Fatalf("historical scan: %v %v", page, err)
	}
}

func TestAdvertisedAddresses(t *testing.T) {
	n := &Node{addr: "node1.example:26257"}
	for in, want := range map[string]string{
		"0.0.0.0:8080":    "node1.example:8080",
		"[::]:8080":       "node1.example:8080",
		":8080":           "node1.example:8080",
		"127.0.0.1:8080":  "127.0.0.1:8080",
		"localhost:26258": "localhost:26258",
		"":                "",
	} {
		if got := n.advertised(in); got != want {
			t.Errorf("advertised(%q) = %q, want %q", in, got, want)
		}
	}
}

// The cluster size the offset monitor uses counts nodes, not node IDs: an
// ID allocated to a join that never completed (same address, no liveness)
// does not count.
func TestClusterSize(t *testing.T) {
	p := newPeers(&Node{})
	if got := p.clusterSize(); got != 1 {
		t.Fatalf("empty: %d", got)
	}
	p.learn(1, "a:1")
	p.learn(2, "b:1")
	p.learn(3, "c:1")
	if got := p.clusterSize(); got != 3 {
		t.Fatalf("three addresses: %d", got)
	}
	p.setRecords(map[uint64]*api.NodeRecord{
		1: {NodeId: 1, Address: "a:1"}, 2: {NodeId: 2, Address: "b:1"}, 3: {NodeId: 3, Address: "c:1"},
		4: {NodeId: 4, Address: "c:1"}, // a join retried by node 3
	}, map[uint64]*api.Liveness{1: {NodeId: 1}, 2: {NodeId: 2}, 3: {NodeId: 3}})
	if got := p.clusterSize(); got != 3 {
		t.Fatalf("with a phantom record: %d, want 3", got)
	}
}
