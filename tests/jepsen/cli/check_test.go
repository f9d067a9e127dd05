package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const golden = "../check/testdata/golden"

// TestCheckGolden runs `meridian-jepsen check` on every committed golden
// run directory and checks the exit code against its expected verdict.
func TestCheckGolden(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(golden, "*"))
	if err != nil || len(dirs) < 20 {
		t.Fatalf("golden dirs: %d, %v", len(dirs), err)
	}
	want := map[string]int{"valid": exitValid, "invalid": exitInvalid, "unknown": exitUnknown}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			exp, err := os.ReadFile(filepath.Join(dir, "expected"))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(exp)), "\n")
			verdict := strings.TrimPrefix(lines[0], "verdict ")
			var out, errOut bytes.Buffer
			code := Run([]string{"check", "--dir", dir, "--viz", filepath.Join(t.TempDir(), "linear.html")}, &out, &errOut)
			if code != want[verdict] {
				t.Fatalf("exit %d, want %d (%s)\nstdout:\n%s\nstderr:\n%s", code, want[verdict], verdict, out.String(), errOut.String())
			}
			if !strings.HasPrefix(out.String(), "verdict: "+verdict) {
				t.Fatalf("output does not start with the verdict:\n%s", out.String())
			}
			for _, a := range lines[1:] {
				if !strings.Contains(out.String(), "["+a+"]") {
					t.Errorf("output does not explain %s:\n%s", a, out.String())
				}
			}
		})
	}
}

func TestCheckVisualizationOnFailure(t *testing.T) {
	viz := filepath.Join(t.TempDir(), "linear.html")
	var out bytes.Buffer
	if code := Run([]string{"check", "--dir", filepath.Join(golden, "nonlinearizable"), "--viz", viz}, &out, &out); code != exitInvalid {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	b, err := os.ReadFile(viz)
	if err != nil || !bytes.Contains(b, []byte("<html")) {
		t.Fatalf("visualisation: %d bytes, %v", len(b), err)
	}
	viz2 := filepath.Join(t.TempDir(), "linear.html")
	if code := Run([]string{"check", "--dir", filepath.Join(golden, "register-valid"), "--viz", viz2}, &out, &out); code != exitValid {
		t.Fatalf("exit %d", code)
	}
	if _, err := os.Stat(viz2); !os.IsNotExist(err) {
		t.Fatalf("a valid history should write no visualisation: %v", err)
	}
}

func TestCheckJSON(t *testing.T) {
	var out bytes.Buffer
	code := Run([]string{"check", "--json", "--dir", filepath.Join(golden, "G1c")}, &out, &out)
	if code != exitInvalid {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	var got struct {
		Valid string   `json:"valid"`
		Types []string `json:"anomaly_types"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.Valid != "invalid" || len(got.Types) != 1 || got.Types[0] != "G1c" {
		t.Fatalf("json = %+v, %v\n%s", got, err, out.String())
	}
}

func TestCheckErrors(t *testing.T) {
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "test.json"), []byte(`{"workloads":["list-append"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "history.jsonl"), []byte(`{"index":0,"type":"invoke","process":0,"f":"txn","value":[]}`+"\n"+`{"index":1,"ty`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"check"}, "--dir is required"},
		{[]string{"check", "--dir", t.TempDir()}, "test.json"},
		{[]string{"check", "--dir", bad}, "line 2: truncated event"},
		{[]string{"check", "--dir", filepath.Join(golden, "G1c"), "--model", "weird"}, "unknown model"},
	} {
		var out, errOut bytes.Buffer
		if code := Run(tc.args, &out, &errOut); code != exitError || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want exit %d mentioning %q", tc.args, code, errOut.String(), exitError, tc.want)
		}
	}
}

func TestCheckHelpDocumentsFormat(t *testing.T) {
	var out bytes.Buffer
	if code := Run([]string{"check", "--help"}, &out, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, s := range []string{"history.jsonl", "test.json", "invoke | ok | fail", "commit_ts", "Exit codes: 0 valid, 1 invalid"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("check --help does not mention %q", s)
		}
	}
}

func TestCheckModelOverride(t *testing.T) {
	dir := filepath.Join(golden, "G-single-realtime")
	var out bytes.Buffer
	if code := Run([]string{"check", "--dir", dir}, &out, &out); code != exitInvalid {
		t.Fatalf("strict-serializable: exit %d\n%s", code, out.String())
	}
	out.Reset()
	if code := Run([]string{"check", "--dir", dir, "--model", "serializable"}, &out, &out); code != exitValid {
		t.Fatalf("a stale read is serializable: exit %d\n%s", code, out.String())
	}
}
