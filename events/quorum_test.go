package events

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestServingQuorum reads the cluster part of stream infos in the shapes
// nats-server v2.15 answers with (recorded from a three-node cluster: idle
// and healthy, one member stopped, two stopped, two cut off, leaderless).
func TestServingQuorum(t *testing.T) {
	for _, c := range []struct {
		name, cluster string
		want          string // "" = serving, else part of the error
	}{
		{"single server", ``, ""},
		{"healthy, idle", `{"leader":"n3","replicas":[{"name":"n1","current":true,"active":1809180216},{"name":"n2","current":true,"active":301217491}]}`, ""},
		{"one member stopped", `{"leader":"n3","replicas":[{"name":"n1","current":true,"offline":true,"active":501895926},{"name":"n2","current":true,"active":113335830}]}`, ""},
		{"two stopped", `{"leader":"n3","replicas":[{"name":"n1","current":true,"offline":true,"active":501895926},{"name":"n2","current":true,"offline":true,"active":502185872}]}`, "hears from 1 of its group of 3"},
		{"two cut off", `{"leader":"n3","replicas":[{"name":"n1","current":true,"active":5600000000},{"name":"n2","current":true,"active":5600000000}]}`, "hears from 1 of its group of 3"},
		{"one cut off, one lagging", `{"leader":"n3","replicas":[{"name":"n1","current":false,"active":5600000000},{"name":"n2","current":false,"lag":40,"active":20000000}]}`, ""},
		{"leaderless", `{"replicas":[{"name":"n1","offline":true,"active":0},{"name":"n2","offline":true,"active":0},{"name":"n3","current":true,"active":440550484}]}`, "no leader"},
		{"a member joining", `{"leader":"n1","replicas":[{"name":"n2","active":100000000},{"name":"n3","pending":true,"offline":true}]}`, ""},
		{"five, two down", `{"leader":"n1","replicas":[{"name":"n2","active":1},{"name":"n3","active":1},{"name":"n4","offline":true},{"name":"n5","offline":true}]}`, ""},
		{"five, three down", `{"leader":"n1","replicas":[{"name":"n2","active":1},{"name":"n3","offline":true},{"name":"n4","offline":true},{"name":"n5","offline":true}]}`, "hears from 2 of its group of 5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var info struct {
				Cluster *streamCluster `json:"cluster"`
			}
			doc := `{}`
			if c.cluster != "" {
				doc = `{"cluster":` + c.cluster + `}`
			}
			if err := json.Unmarshal([]byte(doc), &info); err != nil {
				t.Fatal(err)
			}
			err := info.Cluster.servingQuorum()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("servingQuorum: %v, want serving", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("servingQuorum: %v, want an error with %q", err, c.want)
			}
		})
	}
}
