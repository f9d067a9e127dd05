// Package buildinfo reports what binary is running: the release version
// (set by the Makefile through -ldflags), the VCS commit and the build tags
// (read from the Go toolchain's embedded build information), and the Go
// version. It imports nothing of Meridian's and may be used by any package.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is the release version. `make build` sets it from `git describe`;
// a plain `go build` leaves it as "dev".
var Version = "dev"

// Info describes the running binary.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Modified  bool   `json:"modified"`
	GoVersion string `json:"go_version"`
	Tags      string `json:"tags"`
	Platform  string `json:"platform"`
}

// Get returns the build information of the running binary.
func Get() Info {
	info := Info{
		Version:   Version,
		Commit:    "unknown",
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		case "-tags":
			info.Tags = s.Value
		}
	}
	return info
}

// HasTag reports whether the binary was built with the given build tag.
func (i Info) HasTag(tag string) bool {
	for _, t := range strings.Split(i.Tags, ",") {
		if t == tag {
			return true
		}
	}
	return false
}

// String renders the information on one line per field, for `meridian version`.
func (i Info) String() string {
	commit := i.Commit
	if i.Modified {
		commit += " (modified)"
	}
	tags := i.Tags
	if tags == "" {
		tags = "(none)"
	}
	return fmt.Sprintf("Meridian %s\ncommit:     %s\ngo version: %s\nplatform:   %s\nbuild tags: %s\n",
		i.Version, commit, i.GoVersion, i.Platform, tags)
}
