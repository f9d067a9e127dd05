//go:build testhooks

package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/server"
)

// This file exists only in binaries built with -tags testhooks
// (bin/meridian-testhooks). With MERIDIAN_TESTHOOKS_ADDR set to a loopback
// address, the node serves a control endpoint there:
//
//	POST /testhooks/clock    offset=<duration> drift=<ppm> strobe=<duration> strobe-period=<duration>
//	GET  /testhooks/clock    the clock's settings and reading, as JSON
//	POST /testhooks/rewrite  addr=<host:port> to=<host:port>   (empty to: remove)
//	GET  /testhooks/rewrite  the rewrites, as JSON
//
// The clock hook replaces the node's one physical clock, so every reader of
// time in the node (HLC, leases, clock bounds, the offset monitor, liveness)
// sees the skew. The rewrite hook changes the address the node dials for a
// peer (its advertised address stays), so a harness can put a proxy between
// nodes.

const testhooksEnv = testhooksEnvName

func applyTestHooks(cfg *server.Config, logger *slog.Logger) error {
	addr := os.Getenv(testhooksEnv)
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s=%q: %w", testhooksEnv, addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s=%q: the test hooks listen on loopback only", testhooksEnv, addr)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", testhooksEnv, err)
	}
	clock := &hookClock{base: hlc.SystemClock{}}
	rw := &rewrites{m: map[string]string{}}
	cfg.TestingKnobs.PhysicalClock = clock
	cfg.TestingKnobs.RewriteAddr = rw.rewrite
	mux := http.NewServeMux()
	mux.HandleFunc("/testhooks/clock", clock.serve)
	mux.HandleFunc("/testhooks/rewrite", rw.serve)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(lis) }() // lives as long as the process
	logger.Warn("TEST HOOKS ENABLED: this binary lets anyone on loopback skew its clock", "addr", lis.Addr().String())
	return nil
}

// hookClock is the system clock plus an offset, a drift (parts per
// million of the time since it was set) and a strobe (the offset jumps by
// +strobe every other strobe period).
type hookClock struct {
	base hlc.PhysicalClock
	mu   sync.Mutex
	set  struct {
		offset, strobe, period time.Duration
		driftPPM               float64
		since                  int64 // base time the settings took effect
	}
}

func (c *hookClock) UnixNano() int64 {
	now := c.base.UnixNano()
	c.mu.Lock()
	s := c.set
	c.mu.Unlock()
	off := int64(s.offset)
	if s.driftPPM != 0 {
		off += int64(float64(now-s.since) * s.driftPPM / 1e6)
	}
	if s.strobe != 0 && s.period > 0 && ((now-s.since)/int64(s.period))%2 == 1 {
		off += int64(s.strobe)
	}
	return now + off
}

func (c *hookClock) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		next := c.set
		var err error
		for name, dst := range map[string]*time.Duration{"offset": &next.offset, "strobe": &next.strobe, "strobe-period": &next.period} {
			if v := r.PostForm.Get(name); v != "" && err == nil {
				*dst, err = time.ParseDuration(v)
			}
		}
		if v := r.PostForm.Get("drift"); v != "" && err == nil {
			next.driftPPM, err = strconv.ParseFloat(v, 64)
			if err == nil && (math.IsNaN(next.driftPPM) || math.Abs(next.driftPPM) > 1e6) {
				err = fmt.Errorf("drift %q out of range", v)
			}
		}
		if err == nil {
			next.since = c.base.UnixNano()
			c.set = next
		}
		c.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	} else if r.Method != http.MethodGet {
		http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
		return
	}
	c.mu.Lock()
	s := c.set
	c.mu.Unlock()
	now := c.UnixNano()
	_ = json.NewEncoder(w).Encode(map[string]any{
		"offset": s.offset.String(), "drift_ppm": s.driftPPM, "strobe": s.strobe.String(),
		"strobe_period": s.period.String(), "now": time.Unix(0, now).UTC().Format(time.RFC3339Nano),
		"skew": time.Duration(now - c.base.UnixNano()).String(),
	})
}

// rewrites maps dialled addresses to the ones actually dialled.
type rewrites struct {
	mu sync.Mutex
	m  map[string]string
}

func (rw *rewrites) rewrite(addr string) string {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if to, ok := rw.m[addr]; ok {
		return to
	}
	return addr
}

func (rw *rewrites) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		addr, to := r.PostForm.Get("addr"), r.PostForm.Get("to")
		if addr == "" {
			http.Error(w, "addr is required", http.StatusBadRequest)
			return
		}
		rw.mu.Lock()
		if to == "" {
			delete(rw.m, addr)
		} else {
			rw.m[addr] = to
		}
		rw.mu.Unlock()
	} else if r.Method != http.MethodGet {
		http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
		return
	}
	rw.mu.Lock()
	defer rw.mu.Unlock()
	_ = json.NewEncoder(w).Encode(rw.m)
}
