package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/meridiandb/meridian/api"
	meridianv1 "github.com/meridiandb/meridian/api/meridian/v1"
	"github.com/meridiandb/meridian/client"
	"github.com/meridiandb/meridian/clockbound"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/internal/buildinfo"
	"github.com/meridiandb/meridian/mvcc"
	"github.com/meridiandb/meridian/raftgroup"
	"github.com/meridiandb/meridian/ranges"
)

// MaxMessageBytes is the largest gRPC message a node accepts or sends: room
// for a 4 MiB value with a 16 KiB key, and for batches of them.
const MaxMessageBytes = 16 << 20

// Node is one running Meridian node. Start creates it; Stop (or Drain then
// Stop) ends it.
type Node struct {
	cfg       Config
	log       *slog.Logger
	engine    *mvcc.Engine
	phys      hlc.PhysicalClock
	clock     *hlc.Clock
	clockSrc  clockbound.Source
	offsets   *hlc.OffsetMonitor
	lis       net.Listener
	grpcSrv   *grpc.Server
	health    *health.Server
	httpLis   net.Listener
	httpSrv   *HTTPServer
	metrics   *Metrics
	tracing   *Tracing
	addr      string
	startedAt time.Time
	peers     *peers

	ident     atomic.Pointer[api.StoreIdent]
	store     atomic.Pointer[ranges.Store]
	router    atomic.Pointer[client.Router]
	transport atomic.Pointer[raftgroup.GRPCTransport]
	kv        atomic.Pointer[kvHolder]

	// initMu serialises becoming part of a cluster (bootstrap, init, join).
	initMu sync.Mutex
	// joined is closed once the node has an identity and its store runs.
	joined chan struct{}
	// live is set once the node wrote its liveness record.
	live     atomic.Bool
	draining atomic.Bool

	// failed receives the reason the node must stop (clock offset, a store
	// of another cluster); Failed returns it.
	failOnce sync.Once
	failed   chan error

	stopCtx  context.Context
	stopFn   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
}

type kvHolder struct{ srv meridianv1.KVServer }

// Start opens the node's store, starts serving gRPC (and HTTP) and brings
// the node into its cluster: a store that already belongs to a cluster
// restarts with its identity; a new store without Join bootstraps a
// single-node cluster before Start returns; a new store with Join keeps
// trying to join until one of those nodes is part of a cluster, or until
// `meridian init` makes this node bootstrap one (WaitReady waits for it).
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, joined: make(chan struct{}), failed: make(chan error, 1), startedAt: time.Now()}
	n.stopCtx, n.stopFn = context.WithCancel(context.Background())
	if err := n.open(); err != nil {
		n.closeResources()
		return nil, err
	}
	ident, err := n.loadIdent()
	if err != nil {
		n.closeResources()
		return nil, err
	}
	if err := n.observe(ctx, ident.GetNodeId()); err != nil {
		n.closeResources()
		return nil, err
	}
	if ident != nil {
		// Before serving: an Init arriving while the store starts must
		// find the node initialised.
		n.ident.Store(ident)
	}
	n.serve()
	switch {
	case ident != nil:
		n.log.Info("restarting node", "node", ident.GetNodeId(), "cluster", ident.GetClusterId(), "store", cfg.Store)
		err = n.startStore(ident)
	case len(cfg.Join) == 0:
		_, err = n.bootstrap()
	default:
		n.log.Info("waiting to join a cluster (or for `meridian init`)", "join", cfg.Join)
	}
	if err != nil {
		n.Stop(ctx)
		return nil, err
	}
	n.wg.Add(1)
	go n.heartbeatLoop()
	if ident == nil && len(cfg.Join) > 0 {
		n.wg.Add(1)
		go n.joinLoop()
	}
	return n, nil
}

// open sets up the clock, the engine and the listeners.
func (n *Node) open() error {
	cfg := &n.cfg
	n.phys = cfg.TestingKnobs.PhysicalClock
	if n.phys == nil {
		n.phys = hlc.SystemClock{}
	}
	src, err := clockbound.Parse(cfg.ClockSource, clockbound.Config{Clock: n.phys, MaxOffset: cfg.MaxOffset})
	if err != nil {
		return fmt.Errorf("server: --clock-source: %w", err)
	}
	n.clockSrc = src
	var fs vfs.FS = vfs.Default
	dir := cfg.Store
	if cfg.Store == "mem" {
		fs, dir = vfs.NewMem(), "data"
		n.clock = hlc.NewClock(n.phys, cfg.MaxOffset)
	} else {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("server: creating the store directory: %w", err)
		}
		clock, err := hlc.NewPersistentClock(n.phys, cfg.MaxOffset,
			hlc.NewFileWallTimeStore(filepath.Join(dir, "hlc-wall-time")), cfg.MaxOffset/2)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		n.clock = clock
	}
	e, err := mvcc.Open(dir, mvcc.Options{FS: fs})
	if err != nil {
		return fmt.Errorf("server: opening the store at %s: %w", cfg.Store, err)
	}
	n.engine = e
	n.offsets = hlc.NewOffsetMonitor(n.clock, hlc.OffsetMonitorConfig{
		StaleAfter:  10 * cfg.HeartbeatInterval,
		ClusterSize: func() int { return n.peers.clusterSize() },
		OnFailStop: func(err *hlc.ClockOffsetError) {
			n.fail(fmt.Errorf("server: stopping the node: %w", err))
		},
	})
	n.lis, err = net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("server: --listen-addr: %w", err)
	}
	n.addr = n.lis.Addr().String()
	if cfg.AdvertiseAddr != "" {
		n.addr = cfg.AdvertiseAddr
	}
	if cfg.HTTPAddr != "" {
		n.httpLis, err = net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("server: --http-addr: %w", err)
		}
	}
	n.peers = newPeers(n)
	return nil
}

// observe sets up metrics and tracing.
func (n *Node) observe(ctx context.Context, nodeID uint64) error {
	m, err := NewMetrics(n.NodeID)
	if err != nil {
		return fmt.Errorf("server: metrics: %w", err)
	}
	n.metrics = m
	if err := m.RegisterClock(n.clock, n.clockSrc, n.offsets); err != nil {
		return fmt.Errorf("server: metrics: %w", err)
	}
	t, err := NewTracing(ctx, TracingConfig{ServiceName: "meridian", NodeID: nodeID, Exporter: n.cfg.TestingKnobs.TraceExporter})
	if err != nil {
		return fmt.Errorf("server: tracing: %w", err)
	}
	n.tracing = t
	if t.Enabled() {
		n.log.Info("tracing: exporting spans over OTLP")
	}
	return nil
}

// serve starts the gRPC (and HTTP) servers. Services that need the store
// answer UNAVAILABLE until the node has joined a cluster.
func (n *Node) serve() {
	opts := append(n.metrics.GRPCServerOptions(),
		grpc.StatsHandler(n.tracing.GRPCServerStatsHandler()),
		grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes),
		// Stop waits for handlers: none may touch the engine after it closes.
		grpc.WaitForHandlers(true),
	)
	// Fixed flow-control windows for the raft streams (see
	// raftgroup.ServerOptions).
	opts = append(opts, raftgroup.ServerOptions()...)
	n.grpcSrv = grpc.NewServer(opts...)
	api.RegisterNodeServer(n.grpcSrv, &nodeService{n: n})
	api.RegisterInternalServer(n.grpcSrv, &internalGate{n: n})
	api.RegisterAdminServer(n.grpcSrv, &adminGate{n: n})
	api.RegisterRaftTransportServer(n.grpcSrv, &raftGate{n: n})
	meridianv1.RegisterKVServer(n.grpcSrv, &kvGate{n: n})
	n.health = health.NewServer()
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(n.grpcSrv, n.health)
	reflection.Register(n.grpcSrv)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.grpcSrv.Serve(n.lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			n.log.Error("gRPC server stopped", "err", err)
		}
	}()
	if n.httpLis != nil {
		n.httpSrv = ServeHTTP(n.httpLis, NewHTTPHandler(HTTPConfig{Ready: n.Ready, Metrics: n.metrics.Handler()}), n.log)
	}
}

// startStore starts the node's store, transport and router under ident.
func (n *Node) startStore(ident *api.StoreIdent) error {
	id := ident.GetNodeId()
	n.ident.Store(ident)
	log := n.log.With("node", id) // n.log itself stays as it was: other goroutines read it
	n.peers.learn(id, n.addr)
	tr := raftgroup.NewGRPCTransport(raftgroup.GRPCTransportConfig{
		NodeID: id, Clock: n.clock, Resolver: n.peers.resolveForRaft, Logger: log,
		DialOptions: []grpc.DialOption{grpc.WithStatsHandler(n.tracing.GRPCClientStatsHandler())},
	})
	router := client.NewRouter(client.RouterConfig{
		Dialer: n, SeedNodesFunc: n.peers.seedNodes, GatewayNodeID: id, Logger: log,
	})
	rangeMax := n.cfg.RangeMaxBytes
	s, err := ranges.NewStore(ranges.StoreConfig{
		NodeID: id, StoreID: ident.GetStoreId(), Engine: n.engine, Clock: n.clock, Transport: tr,
		TickInterval: n.cfg.RaftTickInterval, LeaseDuration: n.cfg.LeaseDuration,
		Sender: router, RangeMaxBytes: rangeMax, LiveStores: n.peers.liveStores,
		Logger: log, RaftObserver: n.metrics, TracerProvider: n.tracing.TracerProvider(),
	})
	if err != nil {
		tr.Close()
		return fmt.Errorf("server: starting the store: %w", err)
	}
	if err := n.metrics.RegisterStore(s); err != nil {
		s.Stop()
		tr.Close()
		return fmt.Errorf("server: metrics: %w", err)
	}
	tr.SetHandler(s.Host())
	n.transport.Store(tr)
	n.router.Store(router)
	n.store.Store(s)
	n.kv.Store(&kvHolder{srv: NewKVServer(router)})
	close(n.joined)
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	n.wg.Add(1)
	go n.livenessLoop()
	return nil
}

// Addr returns the node's gRPC address (as advertised).
func (n *Node) Addr() string { return n.addr }

// HTTPAddr returns the address HTTP is served on, or "" when disabled.
func (n *Node) HTTPAddr() string {
	if n.httpLis == nil {
		return ""
	}
	return n.httpLis.Addr().String()
}

// advertised is how other hosts reach one of this node's listen
// addresses: a wildcard host (0.0.0.0, ::, empty) is replaced by the
// advertised gRPC address's host.
func (n *Node) advertised(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return addr
	}
	ahost, _, err := net.SplitHostPort(n.addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(ahost, port)
}

// NodeID returns the node's ID, 0 until it has joined a cluster.
func (n *Node) NodeID() uint64 { return n.ident.Load().GetNodeId() }

// ClusterID returns the node's cluster ID, "" until it has joined one.
func (n *Node) ClusterID() string { return n.ident.Load().GetClusterId() }

// Store returns the node's store, nil until it has joined a cluster.
func (n *Node) Store() *ranges.Store { return n.store.Load() }

// Clock returns the node's hybrid logical clock.
func (n *Node) Clock() *hlc.Clock { return n.clock }

// Failed is closed-over by a channel that receives the reason the node must
// stop (its clock is too far from the cluster's, or its store belongs to
// another cluster). The caller stops the node and exits non-zero.
func (n *Node) Failed() <-chan error { return n.failed }

// fail reports a fatal condition once.
func (n *Node) fail(err error) {
	n.failOnce.Do(func() {
		n.log.Error("fail-stop", "err", err)
		n.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		n.failed <- err
	})
}

// Ready says whether the node serves: it has joined a cluster, written its
// liveness record and is not draining. The error says why not.
func (n *Node) Ready() error {
	switch {
	case n.ident.Load() == nil:
		return errors.New("not part of a cluster yet: waiting to join, or for `meridian init`")
	case n.store.Load() == nil:
		return errors.New("starting")
	case !n.live.Load():
		return errors.New("not live yet: cannot write its liveness record (no quorum?)")
	case n.draining.Load():
		return errors.New("draining")
	}
	return nil
}

// WaitReady waits until Ready is nil, or ctx ends.
func (n *Node) WaitReady(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		err := n.Ready()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server: node not ready: %v: %w", err, ctx.Err())
		case err := <-n.failed:
			n.failed <- err
			return err
		case <-t.C:
		}
	}
}

// Drain makes the node stop serving without making ranges unavailable:
// it marks itself draining (in its liveness record, so other nodes route
// away), hands every lease to another replica, and waits for that, or for
// ctx.
func (n *Node) Drain(ctx context.Context) error {
	n.draining.Store(true)
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s := n.store.Load()
	if s == nil {
		return nil
	}
	n.log.Info("draining: moving leases away")
	_ = n.writeLiveness(ctx)
	err := s.Drain(ctx)
	if err != nil {
		n.log.Warn("drain did not finish; stopping anyway", "err", err)
	} else {
		n.log.Info("drained")
	}
	return err
}

// Stop stops the node: servers, store, transport and engine (flushed and
// closed). It does not drain; call Drain first for a clean shutdown.
func (n *Node) Stop(ctx context.Context) error {
	n.stopOnce.Do(func() {
		n.stopFn()
		if n.grpcSrv != nil {
			done := make(chan struct{})
			go func() { n.grpcSrv.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				n.grpcSrv.Stop()
				<-done
			}
		}
		if n.httpSrv != nil {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_ = n.httpSrv.Shutdown(sctx)
			cancel()
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if n.tracing != nil {
			_ = n.tracing.Shutdown(sctx)
		}
		if n.metrics != nil {
			_ = n.metrics.Shutdown(sctx)
		}
		cancel()
		n.wg.Wait()
		if s := n.store.Load(); s != nil {
			s.Stop()
		}
		if tr := n.transport.Load(); tr != nil {
			tr.Close()
		}
		n.peers.close()
		if n.engine != nil {
			// Flush memtables so a restart replays no WAL (durability does
			// not depend on it: every acknowledged write was synced).
			if err := n.engine.DB().Flush(); err != nil {
				n.log.Warn("flushing the store", "err", err)
			}
		}
		n.stopErr = n.closeResources()
	})
	return n.stopErr
}

// closeResources closes what open opened.
func (n *Node) closeResources() error {
	var err error
	if n.lis != nil && n.grpcSrv == nil {
		n.lis.Close()
	}
	if n.httpLis != nil && n.httpSrv == nil {
		n.httpLis.Close()
	}
	if n.engine != nil {
		err = n.engine.Close()
		n.engine = nil
	}
	if c, ok := n.clockSrc.(interface{ Close() error }); ok {
		_ = c.Close()
	}
	return err
}

// build is the version string recorded in node records.
func build() string { return buildinfo.Get().Version }
