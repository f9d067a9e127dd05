package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"
)

// HTTPConfig lists what a node's HTTP port serves.
type HTTPConfig struct {
	// Metrics serves /metrics (Metrics.Handler); nil leaves it out.
	Metrics http.Handler
	// Ready reports whether the node can serve: initialised, joined, not
	// draining. nil means always ready once the process is up.
	Ready func() error
}

// NewHTTPHandler returns the node's HTTP routes:
//
//	GET /health           200 "ok" while the process runs (liveness)
//	GET /health?ready=1   200 "ok" if Ready returns nil, else 503 with the
//	                      reason (readiness: load balancers and the
//	                      orchestrator route to the node only then)
//	GET /metrics          Prometheus text format
//	/debug/pprof/...      net/http/pprof (profile, heap, goroutine, trace, ...)
//
// Everything else is 404, and other methods on these paths 405. The pprof
// handlers are registered on this handler's own mux. (Importing
// net/http/pprof also registers them on http.DefaultServeMux, which no
// Meridian listener serves.)
func NewHTTPHandler(cfg HTTPConfig) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		ready := false
		if v := r.URL.Query().Get("ready"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				http.Error(w, fmt.Sprintf("server: bad ready parameter %q: want 1 or 0", v), http.StatusBadRequest)
				return
			}
			ready = b
		}
		if ready && cfg.Ready != nil {
			if err := cfg.Ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = fmt.Fprintln(w, "ok")
	})
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// HTTP timeouts. A client gets ReadHeaderTimeout to send its request line
// and headers and ReadTimeout for the whole request, so a slow or silent
// connection cannot hold a goroutine for long; WriteTimeout leaves room for
// a 60 s CPU profile or execution trace.
const (
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = 30 * time.Second
	httpWriteTimeout      = 90 * time.Second
	httpIdleTimeout       = 2 * time.Minute
	httpMaxHeaderBytes    = 64 << 10
)

// HTTPServer is a running HTTP server that ServeHTTP started.
type HTTPServer struct {
	srv  *http.Server
	lis  net.Listener
	done chan struct{}
	err  error // Serve's error, set before done closes
}

// ServeHTTP serves h on lis in a goroutine until Shutdown or Close. logger
// receives the server's own errors (malformed requests it rejects are not
// errors; a failing Accept is); nil discards them.
func ServeHTTP(lis net.Listener, h http.Handler, logger *slog.Logger) *HTTPServer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if h == nil {
		h = http.NotFoundHandler() // never http.DefaultServeMux
	}
	s := &HTTPServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: httpReadHeaderTimeout,
			ReadTimeout:       httpReadTimeout,
			WriteTimeout:      httpWriteTimeout,
			IdleTimeout:       httpIdleTimeout,
			MaxHeaderBytes:    httpMaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		lis:  lis,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	return s
}

// Addr is the address the server listens on.
func (s *HTTPServer) Addr() net.Addr { return s.lis.Addr() }

// Shutdown stops accepting connections, waits for requests in flight until
// ctx ends (then closes what is left), and waits for the serving goroutine.
// It returns the error Serve failed with, if it failed on its own.
func (s *HTTPServer) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.srv.Close())
	}
	<-s.done
	return errors.Join(err, s.err)
}

// Close closes the listener and every connection at once and waits for the
// serving goroutine.
func (s *HTTPServer) Close() error {
	err := s.srv.Close()
	<-s.done
	return errors.Join(err, s.err)
}
