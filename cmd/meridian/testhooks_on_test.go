//go:build testhooks

package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/server"
)

func TestHookClock(t *testing.T) {
	base := hlc.NewManualClock(1_000_000_000_000)
	c := &hookClock{base: base}
	if c.UnixNano() != base.UnixNano() {
		t.Fatal("an unset hook clock must read the base clock")
	}
	c.set.offset, c.set.since = 2*time.Second, base.UnixNano()
	if got := c.UnixNano() - base.UnixNano(); got != int64(2*time.Second) {
		t.Fatalf("offset: skew %d", got)
	}
	c.set.offset, c.set.driftPPM = 0, 1000 // 1 ms per second
	base.Advance(10 * time.Second)
	if got := c.UnixNano() - base.UnixNano(); got != int64(10*time.Millisecond) {
		t.Fatalf("drift: skew %s, want 10ms", time.Duration(got))
	}
	c.set.driftPPM, c.set.since = 0, base.UnixNano()
	c.set.strobe, c.set.period = 300*time.Millisecond, time.Second
	skews := []int64{}
	for range 4 {
		skews = append(skews, c.UnixNano()-base.UnixNano())
		base.Advance(time.Second)
	}
	want := []int64{0, int64(300 * time.Millisecond), 0, int64(300 * time.Millisecond)}
	for i := range want {
		if skews[i] != want[i] {
			t.Fatalf("strobe: skews %v, want %v", skews, want)
		}
	}
}

func TestTestHooksEndpoint(t *testing.T) {
	var cfg server.Config
	t.Setenv(testhooksEnvName, "0.0.0.0:0")
	if err := applyTestHooks(&cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("a non-loopback address was accepted: %v", err)
	}
	// A fixed free port: applyTestHooks does not report the one it got.
	addr := freeAddr(0)
	if addr == "127.0.0.1:0" {
		t.Skip("no free port")
	}
	t.Setenv(testhooksEnvName, addr)
	if err := applyTestHooks(&cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if cfg.TestingKnobs.PhysicalClock == nil || cfg.TestingKnobs.RewriteAddr == nil {
		t.Fatal("hooks not installed")
	}
	post := func(path string, v url.Values) string {
		resp, err := http.PostForm("http://"+addr+path, v)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	post("/testhooks/clock", url.Values{"offset": {"1500ms"}})
	skew := cfg.TestingKnobs.PhysicalClock.UnixNano() - time.Now().UnixNano()
	if skew < int64(1400*time.Millisecond) || skew > int64(1600*time.Millisecond) {
		t.Fatalf("clock skew after offset=1500ms: %s", time.Duration(skew))
	}
	if resp, err := http.PostForm("http://"+addr+"/testhooks/clock", url.Values{"offset": {"soon"}}); err != nil || resp.StatusCode != 400 {
		t.Fatalf("bad duration accepted: %v %v", resp, err)
	}
	post("/testhooks/rewrite", url.Values{"addr": {"10.0.0.1:1"}, "to": {"127.0.0.1:2"}})
	if got := cfg.TestingKnobs.RewriteAddr("10.0.0.1:1"); got != "127.0.0.1:2" {
		t.Fatalf("rewrite = %s", got)
	}
	post("/testhooks/rewrite", url.Values{"addr": {"10.0.0.1:1"}})
	if got := cfg.TestingKnobs.RewriteAddr("10.0.0.1:1"); got != "10.0.0.1:1" {
		t.Fatalf("rewrite after removal = %s", got)
	}
}
