package check

import (
	"slices"
	"strings"
	"testing"

	"github.com/meridiandb/meridian/tests/jepsen/history"
)

func laTypes(t *testing.T, b *hb, model string) (*Result, []string) {
	t.Helper()
	r, err := CheckListAppend(b.ops(history.ListAppend), ListAppendOptions{Model: model})
	if err != nil {
		t.Fatal(err)
	}
	return r, r.AnomalyTypes()
}

func TestListAppendReadme(t *testing.T) {
	// Elle's README example: G1c.
	b := &hb{}
	b.inv(1, "append x 2; append y 1").inv(2, "append x 1; r y").inv(3, "r x")
	b.done(1, history.OK, "append x 2; append y 1").done(2, history.OK, "append x 1; r y [1]").done(3, history.OK, "r x [1 2]")
	r, got := laTypes(t, b, "")
	if !slices.Equal(got, []string{"G1c"}) {
		t.Fatalf("anomalies = %v\n%s", got, Worst(r))
	}
	t.Log(Worst(r))
}

func TestListAppendStaleRead(t *testing.T) {
	b := &hb{}
	b.ok(1, "append x 1").ok(2, "r x []")
	_, got := laTypes(t, b, "")
	if !slices.Equal(got, []string{"G-single-realtime"}) {
		t.Fatalf("anomalies = %v", got)
	}
	r, got := laTypes(t, b, Serializable)
	if len(got) != 0 || r.Valid != ValidTrue {
		t.Fatalf("serializable: anomalies = %v valid %v", got, r.Valid)
	}
}

func TestListAppendSearchTimeout(t *testing.T) {
	b := &hb{}
	b.inv(1, "append x 2; append y 1").inv(2, "append x 1; r y").inv(3, "r x")
	b.done(1, history.OK, "append x 2; append y 1").done(2, history.OK, "append x 1; r y [1]").done(3, history.OK, "r x [1 2]")
	r, err := CheckListAppend(b.ops(history.ListAppend), ListAppendOptions{SearchTimeout: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Valid == ValidTrue || len(r.Unknown) == 0 || !strings.Contains(r.Unknown[0], "cycle-search-timeout") {
		t.Fatalf("a search that gave up must not be valid: %s", Worst(r))
	}
	if len(r.Anomalies) == 0 {
		t.Fatalf("the fallback cycle should still be reported: %s", Worst(r))
	}
}
