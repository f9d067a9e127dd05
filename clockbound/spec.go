package clockbound

import (
	"fmt"
	"strings"
	"time"

	"github.com/meridiandb/meridian/hlc"
)

// Kind names a kind of Source, as chosen by --clock-source.
type Kind int8

// The kinds of source.
const (
	KindAuto Kind = iota
	KindStatic
	KindAdjtimex
	KindClockBound
)

// String implements fmt.Stringer with the flag spelling.
func (k Kind) String() string {
	switch k {
	case KindAuto:
		return "auto"
	case KindStatic:
		return "static"
	case KindAdjtimex:
		return "adjtimex"
	case KindClockBound:
		return "clockbound"
	default:
		return fmt.Sprintf("kind(%d)", int8(k))
	}
}

// Spec is a parsed --clock-source value.
type Spec struct {
	Kind Kind
	// Path is the ClockBound segment for "clockbound:<path>"; empty means
	// the daemon's default paths (v2 shm0, then v1 shm).
	Path string
}

// String returns the flag spelling of s; ParseSpec(s.String()) == s.
func (s Spec) String() string {
	if s.Kind == KindClockBound && s.Path != "" {
		return "clockbound:" + s.Path
	}
	return s.Kind.String()
}

const specUsage = "want auto, static, adjtimex, clockbound or clockbound:<path>"

// ParseSpec parses a --clock-source value: auto | static | adjtimex |
// clockbound | clockbound:<path>. The empty string means auto.
func ParseSpec(v string) (Spec, error) {
	name, path, hasPath := strings.Cut(strings.TrimSpace(v), ":")
	var k Kind
	switch name {
	case "", "auto":
		k = KindAuto
	case "static":
		k = KindStatic
	case "adjtimex":
		k = KindAdjtimex
	case "clockbound":
		k = KindClockBound
	default:
		return Spec{}, fmt.Errorf("clockbound: unknown clock source %q: %s", v, specUsage)
	}
	if hasPath {
		if k != KindClockBound {
			return Spec{}, fmt.Errorf("clockbound: clock source %q takes no path: %s", name, specUsage)
		}
		if path == "" {
			return Spec{}, fmt.Errorf("clockbound: clock source %q has an empty path: %s", v, specUsage)
		}
	}
	return Spec{Kind: k, Path: path}, nil
}

// Config is what New needs besides the Spec.
type Config struct {
	// Clock is the node's one physical clock; required.
	Clock hlc.PhysicalClock
	// MaxOffset is --max-offset, the static source's bound; required for
	// static and auto.
	MaxOffset time.Duration
	// MaxAdjtimexError is Auto's threshold; 0 means DefaultMaxAdjtimexError.
	MaxAdjtimexError time.Duration
}

// New builds the Source that spec names. Building never fails because a
// daemon is absent or unsynchronised: that shows in the readings (auto falls
// back; an explicit clockbound or adjtimex source returns errors or Status
// Unknown, which commit-wait refuses).
func New(spec Spec, cfg Config) (Source, error) {
	if cfg.Clock == nil {
		return nil, fmt.Errorf("clockbound: no physical clock")
	}
	switch spec.Kind {
	case KindStatic:
		return NewStatic(cfg.Clock, cfg.MaxOffset)
	case KindAdjtimex:
		return NewAdjtimex(cfg.Clock), nil
	case KindClockBound:
		return newClockBoundAt(cfg.Clock, spec.Path)
	case KindAuto:
		static, err := NewStatic(cfg.Clock, cfg.MaxOffset)
		if err != nil {
			return nil, err
		}
		cb, err := newClockBoundAt(cfg.Clock, spec.Path)
		if err != nil {
			return nil, err
		}
		return NewAuto(AutoConfig{
			ClockBound:       cb,
			Adjtimex:         NewAdjtimex(cfg.Clock),
			Static:           static,
			MaxAdjtimexError: cfg.MaxAdjtimexError,
		})
	default:
		return nil, fmt.Errorf("clockbound: unknown source kind %s", spec.Kind)
	}
}

// Parse is ParseSpec followed by New.
func Parse(v string, cfg Config) (Source, error) {
	spec, err := ParseSpec(v)
	if err != nil {
		return nil, err
	}
	return New(spec, cfg)
}

func newClockBoundAt(clock hlc.PhysicalClock, path string) (*ClockBound, error) {
	cfg := ClockBoundConfig{Clock: clock}
	if path != "" {
		cfg.Paths = []string{path}
	}
	return NewClockBound(cfg)
}
