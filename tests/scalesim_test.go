package tests

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestScaleSimQuick runs the scale simulation of docs/scale.md (go run
// ./cmd/infracast-auth-scalesim) at its tiny -quick size: it must exit 0 and
// print one JSON object per figure, every figure of every part, with a
// positive value where one is always positive. What so small a run measures
// means nothing and is not checked; that the command the document names keeps
// working is.
func TestScaleSimQuick(t *testing.T) {
	t.Parallel()
	bin, err := goBuild("../cmd/infracast-auth-scalesim")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-quick", "-json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scalesim: %v\n%s", err, stderr.String())
	}
	want := []string{
		"kv.value", "kv.disk", "kv.server_memory.idle", "kv.lru_entry", "kv.get",
		"kv.lookup.hot0", "kv.lookup.hot99", "kv.lookup.hot100",
		"kv.revoke", "kv.revoke.after_ack", "stream.revoke", "stream.revoke.after_ack", "kv.server_memory.serving",
		"partition.replay.subjects.n1", "partition.replay.streams.n1", "partition.memory.n1",
		"partition.replay.subjects.n2", "partition.replay.streams.n2", "partition.memory.n2", "partition.replay.multifilter.n2",
		"partition.model.user", "partition.model.session",
		"router.direct.unloaded", "router.hop.unloaded", "router.direct", "router.hop", "router.decision",
	}
	// Differences of two live-heap readings: noise can make them anything
	// in so small a run.
	signed := map[string]bool{"kv.server_memory.idle": true, "kv.server_memory.serving": true, "kv.lru_entry": true,
		"partition.model.user": true, "partition.model.session": true}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var r struct {
			Name  string   `json:"name"`
			Value *float64 `json:"value"`
			Unit  string   `json:"unit"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		if r.Name == "" || r.Value == nil || r.Unit == "" {
			t.Fatalf("a figure lacks its name, value or unit: %s", line)
		}
		if !signed[r.Name] && *r.Value <= 0 {
			t.Errorf("%s: value %v", r.Name, *r.Value)
		}
		got = append(got, r.Name)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("figures\n %v\nwant\n %v\n%s", got, want, stderr.String())
	}
}
