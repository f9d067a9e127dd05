package server

import (
	"context"
	"net"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/meridiandb/meridian/api"
)

func newTestTracing(t *testing.T, node uint64) (*Tracing, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tr, err := NewTracing(context.Background(), TracingConfig{ServiceName: "meridian-test", NodeID: node, Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if !tr.Enabled() {
		t.Fatal("tracing with an exporter is off")
	}
	return tr, exp
}

func flushSpans(t *testing.T, tr *Tracing, exp *tracetest.InMemoryExporter) tracetest.SpanStubs {
	t.Helper()
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return exp.GetSpans()
}

func resourceValue(s tracetest.SpanStub, key attribute.Key) attribute.Value {
	v, _ := s.Resource.Set().Value(key)
	return v
}

// TestTracingAcrossNodes: a call from node 1 to node 2 through the stats
// handlers makes a client span on node 1, a child of the caller's span, and
// a server span on node 2, a child of the client span, all in one trace and
// each exported by its own node's provider.
func TestTracingAcrossNodes(t *testing.T) {
	t1, exp1 := newTestTracing(t, 1)
	t2, exp2 := newTestTracing(t, 2)

	conn := serveGRPC(t, grpc.StatsHandler(t2.GRPCServerStatsHandler()))
	client, err := grpc.NewClient(conn, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithStatsHandler(t1.GRPCClientStatsHandler()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), obsWait)
	defer cancel()
	ctx, gateway := t1.TracerProvider().Tracer("test").Start(ctx, "gateway")
	if _, err := healthpb.NewHealthClient(client).Check(ctx, &healthpb.HealthCheckRequest{Service: "meridian"}); err != nil {
		t.Fatal(err)
	}
	// Heartbeats are not traced (Unimplemented here, but the handler sees
	// the call all the same).
	if _, err := api.NewNodeClient(client).Heartbeat(ctx, &api.HeartbeatRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("heartbeat: %v, want Unimplemented", err)
	}
	gateway.End()

	// Node 2 ends its span after sending the reply, so the client can have
	// the reply first: wait for the span.
	spans1 := flushSpans(t, t1, exp1)
	var spans2 tracetest.SpanStubs
	waitFor(t, obsWait, "node 2's server span", func() bool {
		spans2 = flushSpans(t, t2, exp2)
		return len(spans2) > 0
	})
	if len(spans1) != 2 || len(spans2) != 1 {
		t.Fatalf("node 1 exported %d spans, node 2 %d; want 2 (gateway, client) and 1 (server): %v %v", len(spans1), len(spans2), spans1, spans2)
	}
	var gw, cl tracetest.SpanStub
	for _, s := range spans1 {
		switch s.SpanKind {
		case trace.SpanKindClient:
			cl = s
		case trace.SpanKindInternal:
			gw = s
		}
	}
	srv := spans2[0]
	if cl.Name != "grpc.health.v1.Health/Check" || srv.Name != cl.Name || srv.SpanKind != trace.SpanKindServer {
		t.Fatalf("spans: client %q (%v), server %q (%v)", cl.Name, cl.SpanKind, srv.Name, srv.SpanKind)
	}
	tid := gw.SpanContext.TraceID()
	if !tid.IsValid() || cl.SpanContext.TraceID() != tid || srv.SpanContext.TraceID() != tid {
		t.Fatalf("trace IDs differ: gateway %s, client %s, server %s", tid, cl.SpanContext.TraceID(), srv.SpanContext.TraceID())
	}
	if cl.Parent.SpanID() != gw.SpanContext.SpanID() {
		t.Errorf("the client span's parent is %s, not the gateway span %s", cl.Parent.SpanID(), gw.SpanContext.SpanID())
	}
	if !srv.Parent.IsRemote() || srv.Parent.SpanID() != cl.SpanContext.SpanID() {
		t.Errorf("the server span's parent is %s (remote %v), not the client span %s", srv.Parent.SpanID(), srv.Parent.IsRemote(), cl.SpanContext.SpanID())
	}
	if got := resourceValue(cl, "meridian.node.id").AsInt64(); got != 1 {
		t.Errorf("client span from node %d", got)
	}
	if got := resourceValue(srv, "meridian.node.id").AsInt64(); got != 2 {
		t.Errorf("server span from node %d", got)
	}
	if got := resourceValue(srv, "service.name").AsString(); got != "meridian-test" {
		t.Errorf("service.name = %q", got)
	}
}

// TestTracingOffPropagates: a node with tracing off records nothing but
// still hands the caller's trace context to its handlers, so a trace
// crosses it.
func TestTracingOffPropagates(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	off, err := SetupTracing(context.Background(), "meridian", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer off.Shutdown(context.Background())
	if off.Enabled() {
		t.Fatal("tracing is on with no endpoint")
	}
	on, _ := newTestTracing(t, 1)

	var mu sync.Mutex
	var seen trace.SpanContext
	capture := grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		mu.Lock()
		seen = trace.SpanContextFromContext(ctx)
		mu.Unlock()
		return h(ctx, req)
	})
	addr := serveGRPC(t, grpc.StatsHandler(off.GRPCServerStatsHandler()), capture)
	client, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithStatsHandler(on.GRPCClientStatsHandler()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), obsWait)
	defer cancel()
	ctx, span := on.TracerProvider().Tracer("test").Start(ctx, "gateway")
	defer span.End()
	if _, err := healthpb.NewHealthClient(client).Check(ctx, &healthpb.HealthCheckRequest{Service: "meridian"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen.TraceID() != span.SpanContext().TraceID() {
		t.Fatalf("the untraced server saw trace %s, want the caller's %s", seen.TraceID(), span.SpanContext().TraceID())
	}
	if _, s := off.TracerProvider().Tracer("test").Start(context.Background(), "x"); s.IsRecording() {
		t.Error("a span of the off provider records")
	}
}

// otlpCollector is a minimal OTLP trace receiver.
type otlpCollector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu   sync.Mutex
	reqs []*collectortrace.ExportTraceServiceRequest
}

func (c *otlpCollector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// TestTracingOTLP: with OTEL_EXPORTER_OTLP_ENDPOINT set, spans reach an
// OTLP otlpCollector over gRPC by Shutdown, with the node's resource.
func TestTracingOTLP(t *testing.T) {
	col := &otlpCollector{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, col)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	defer func() {
		srv.Stop()
		<-done
	}()

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+lis.Addr().String())
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")
	tr, err := SetupTracing(context.Background(), "meridian-otlp", 3)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Enabled() {
		t.Fatal("tracing is off with an endpoint set")
	}
	_, span := tr.TracerProvider().Tracer("test").Start(context.Background(), "put")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), obsWait)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	col.mu.Lock()
	defer col.mu.Unlock()
	var names []string
	var service, instance string
	for _, req := range col.reqs {
		for _, rs := range req.GetResourceSpans() {
			for _, kv := range rs.GetResource().GetAttributes() {
				switch kv.GetKey() {
				case "service.name":
					service = kv.GetValue().GetStringValue()
				case "service.instance.id":
					instance = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					names = append(names, s.GetName())
				}
			}
		}
	}
	if len(names) != 1 || names[0] != "put" || service != "meridian-otlp" || instance != "3" {
		t.Fatalf("the otlpCollector got spans %v from service %q instance %q", names, service, instance)
	}
}

func TestTracingEnabledByEnv(t *testing.T) {
	for _, tc := range []struct {
		endpoint, traces, disabled, exporter string
		want                                 bool
	}{
		{want: false},
		{endpoint: "http://127.0.0.1:4317", want: true},
		{traces: "http://127.0.0.1:4317", want: true},
		{endpoint: "http://127.0.0.1:4317", disabled: "true", want: false},
		{endpoint: "http://127.0.0.1:4317", disabled: "false", want: true},
		{endpoint: "http://127.0.0.1:4317", exporter: "none", want: false},
	} {
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tc.endpoint)
		t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", tc.traces)
		t.Setenv("OTEL_SDK_DISABLED", tc.disabled)
		t.Setenv("OTEL_TRACES_EXPORTER", tc.exporter)
		if got := TracingEnabledByEnv(); got != tc.want {
			t.Errorf("%+v: enabled = %v", tc, got)
		}
	}
}
