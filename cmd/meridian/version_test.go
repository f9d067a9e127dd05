package main

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestVersion(t *testing.T) {
	out, err := runCLI(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Meridian ", "commit:", "go version: " + runtime.Version(), "build tags:"} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
}

func TestVersionJSON(t *testing.T) {
	out, err := runCLI(t, "version", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("version -o json is not JSON: %v\n%s", err, out)
	}
	if got["go_version"] != runtime.Version() {
		t.Errorf("go_version = %v, want %s", got["go_version"], runtime.Version())
	}
}

func TestVersionBadFormat(t *testing.T) {
	if _, err := runCLI(t, "version", "-o", "yaml"); err == nil || !strings.Contains(err.Error(), "unknown output format") {
		t.Fatalf("want a clear error for -o yaml, got %v", err)
	}
}
