package server

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/stats"

	"github.com/meridiandb/meridian/api"
)

// Tracing is one node's OpenTelemetry tracing: a TracerProvider of the
// node's own (never only the global one, so several nodes in one process
// each export with their own resource and can be shut down alone), W3C
// trace-context propagation, and the gRPC stats handlers bound to both.
//
// When tracing is off the provider is a no-op: spans cost next to nothing,
// and the stats handlers still carry an incoming traceparent through to
// outgoing calls, so a traced request stays one trace across an untraced
// node.
//
// Tracing never touches the otel globals; a single-node binary may install
// TracerProvider and Propagator there itself.
type Tracing struct {
	provider trace.TracerProvider
	sdk      *sdktrace.TracerProvider // nil when off
	prop     propagation.TextMapPropagator
}

// TracingConfig configures NewTracing.
type TracingConfig struct {
	// ServiceName is the resource's service.name (default "meridian");
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override it.
	ServiceName string
	// NodeID, if known, becomes service.instance.id and meridian.node.id.
	NodeID uint64
	// Exporter, if set, receives the spans (through a batch span
	// processor) whatever the environment says: tests pass an in-memory
	// exporter. Otherwise spans go to OTLP over gRPC when the environment
	// names an endpoint (TracingEnabledByEnv), and tracing is off if not.
	Exporter sdktrace.SpanExporter
}

// untracedMethods get no spans: the Raft message stream lives as long as
// the connection (one span would cover hours of unrelated traffic), and
// heartbeats would bury every request's trace under one span a second per
// peer.
var untracedMethods = map[string]bool{
	api.RaftTransport_RaftMessages_FullMethodName: true,
	api.Node_Heartbeat_FullMethodName:             true,
}

// TracingEnabledByEnv reports whether the environment asks for OTLP
// export: OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// is set, and neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none
// turns it off. The exporter reads the rest of the OTEL_EXPORTER_OTLP_*
// variables (headers, TLS, timeout; an http:// endpoint means no TLS).
func TracingEnabledByEnv() bool {
	if v, err := strconv.ParseBool(os.Getenv("OTEL_SDK_DISABLED")); err == nil && v {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")), "none") {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// SetupTracing returns a node's tracing configured from the environment:
// OTLP over gRPC with a batch span processor when TracingEnabledByEnv, a
// no-op provider otherwise. The caller must call Shutdown, which flushes
// the spans still queued.
func SetupTracing(ctx context.Context, serviceName string, nodeID uint64) (*Tracing, error) {
	return NewTracing(ctx, TracingConfig{ServiceName: serviceName, NodeID: nodeID})
}

// NewTracing returns a node's tracing as cfg says (see TracingConfig).
func NewTracing(ctx context.Context, cfg TracingConfig) (*Tracing, error) {
	t := &Tracing{prop: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
	exp := cfg.Exporter
	if exp == nil {
		if !TracingEnabledByEnv() {
			t.provider = tracenoop.NewTracerProvider()
			return t, nil
		}
		var err error
		if exp, err = otlptracegrpc.New(ctx); err != nil {
			return nil, fmt.Errorf("server: creating the OTLP trace exporter: %w", err)
		}
	}
	res, err := tracingResource(ctx, cfg)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, err
	}
	t.sdk = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	t.provider = t.sdk
	return t, nil
}

// tracingResource describes the node: service name and instance, then the
// OTEL_* environment (which wins), then the SDK's own attributes.
func tracingResource(ctx context.Context, cfg TracingConfig) (*resource.Resource, error) {
	name := cfg.ServiceName
	if name == "" {
		name = "meridian"
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", name)}
	if cfg.NodeID != 0 {
		attrs = append(attrs,
			attribute.String("service.instance.id", strconv.FormatUint(cfg.NodeID, 10)),
			attribute.Int64("meridian.node.id", int64(cfg.NodeID)))
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attrs...),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, fmt.Errorf("server: building the trace resource: %w", err)
	}
	return res, nil
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t.sdk != nil }

// TracerProvider is the node's provider: pass it down to whatever starts
// spans (txn, ranges), or call Tracer on it.
func (t *Tracing) TracerProvider() trace.TracerProvider { return t.provider }

// Propagator is the node's W3C trace-context (and baggage) propagator.
func (t *Tracing) Propagator() propagation.TextMapPropagator { return t.prop }

// GRPCServerStatsHandler returns the stats handler to give a gRPC server
// (grpc.StatsHandler): it starts a server span per call, a child of the
// caller's traceparent.
func (t *Tracing) GRPCServerStatsHandler() stats.Handler {
	return otelgrpc.NewServerHandler(t.otelgrpcOptions()...)
}

// GRPCClientStatsHandler returns the stats handler for a node's outgoing
// connections (grpc.WithStatsHandler): it starts a client span per call and
// sends its traceparent.
func (t *Tracing) GRPCClientStatsHandler() stats.Handler {
	return otelgrpc.NewClientHandler(t.otelgrpcOptions()...)
}

func (t *Tracing) otelgrpcOptions() []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(t.provider),
		otelgrpc.WithPropagators(t.prop),
		// gRPC metrics come from Metrics.GRPCServerOptions, under our names.
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelgrpc.WithFilter(func(info *stats.RPCTagInfo) bool { return !untracedMethods[info.FullMethodName] }),
	}
}

// ForceFlush exports every span ended so far.
func (t *Tracing) ForceFlush(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	return t.sdk.ForceFlush(ctx)
}

// Shutdown flushes the queued spans and stops the exporter; spans started
// afterwards are dropped. ctx bounds the flush.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("server: shutting down tracing: %w", err)
	}
	return nil
}
