//go:build !testhooks

package main

import (
	"log/slog"

	"github.com/meridiandb/meridian/server"
)

// applyTestHooks does nothing in a normal build: the control endpoint
// exists only in binaries built with the testhooks tag.
func applyTestHooks(*server.Config, *slog.Logger) error { return nil }
