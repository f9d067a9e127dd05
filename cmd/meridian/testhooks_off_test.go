//go:build !testhooks

package main

import (
	"log/slog"
	"testing"

	"github.com/meridiandb/meridian/server"
)

// A normal build ignores MERIDIAN_TESTHOOKS_ADDR: no control endpoint, no
// replaced clock, no address rewrites.
func TestNormalBuildHasNoTestHooks(t *testing.T) {
	t.Setenv(testhooksEnvName, "127.0.0.1:0")
	var cfg server.Config
	if err := applyTestHooks(&cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if cfg.TestingKnobs.PhysicalClock != nil || cfg.TestingKnobs.RewriteAddr != nil {
		t.Fatalf("normal build installed test hooks: %+v", cfg.TestingKnobs)
	}
}
