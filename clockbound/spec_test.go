package clockbound

import (
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/meridiandb/meridian/hlc"
)

func TestParseSpec(t *testing.T) {
	for in, want := range map[string]Spec{
		"":                    {Kind: KindAuto},
		"auto":                {Kind: KindAuto},
		" static ":            {Kind: KindStatic},
		"adjtimex":            {Kind: KindAdjtimex},
		"clockbound":          {Kind: KindClockBound},
		"clockbound:/run/x:y": {Kind: KindClockBound, Path: "/run/x:y"},
	} {
		got, err := ParseSpec(in)
		if err != nil || got != want {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", in, got, err, want)
			continue
		}
		if back, err := ParseSpec(got.String()); err != nil || back != got {
			t.Errorf("ParseSpec(%q.String() = %q) = %+v, %v", in, got.String(), back, err)
		}
	}
	for in, want := range map[string]string{
		"ntp":         `unknown clock source "ntp"`,
		"Static":      `unknown clock source "Static"`,
		"static:/x":   `"static" takes no path`,
		"auto:/x":     `"auto" takes no path`,
		"clockbound:": "empty path",
	} {
		_, err := ParseSpec(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "want auto, static, adjtimex, clockbound") {
			t.Errorf("ParseSpec(%q) error %v, want one saying %q and listing the values", in, err, want)
		}
	}
	if Kind(9).String() != "kind(9)" {
		t.Error(Kind(9).String())
	}
}

func TestParseBuildsSources(t *testing.T) {
	clock := hlc.NewManualClock(100 * sec)
	cfg := Config{Clock: clock, MaxOffset: 250 * time.Millisecond}
	for spec, name := range map[string]string{
		"static": "static", "adjtimex": "adjtimex", "clockbound": "clockbound", "auto": "auto",
		"clockbound:" + filepath.Join(t.TempDir(), "none"): "clockbound",
	} {
		src, err := Parse(spec, cfg)
		if err != nil {
			t.Fatalf("Parse(%q): %v", spec, err)
		}
		if src.Name() != name {
			t.Fatalf("Parse(%q) built %q", spec, src.Name())
		}
		if c, ok := src.(interface{ Close() error }); ok {
			defer c.Close()
		}
	}
	// A named path that does not exist is reported as such.
	src, _ := Parse("clockbound:"+filepath.Join(t.TempDir(), "missing"), cfg)
	if _, err := src.Now(); !errors.Is(err, ErrNotPresent) && !(runtime.GOOS != "linux" && errors.Is(err, ErrNotSupported)) {
		t.Fatalf("missing path: %v", err)
	}
	src.(*ClockBound).Close()
	// Auto over a machine without a daemon still answers (here: whatever the
	// kernel or the static fallback says).
	auto, _ := Parse("auto", cfg)
	defer auto.(*Auto).Close()
	if r, err := auto.Now(); err != nil || r.Status == Unknown {
		t.Fatalf("auto: %v, %v", r, err)
	}
	if _, err := Parse("static", Config{Clock: clock}); err == nil {
		t.Fatal("static without max offset: want error")
	}
	if _, err := Parse("auto", Config{}); err == nil {
		t.Fatal("no clock: want error")
	}
	if _, err := Parse("bogus", cfg); err == nil {
		t.Fatal("bogus: want error")
	}
	if _, err := New(Spec{Kind: Kind(42)}, cfg); err == nil {
		t.Fatal("unknown kind: want error")
	}
}
