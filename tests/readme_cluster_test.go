package tests

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeClusterReplicasHaveTheirOwnDataFolders: README's "As local
// processes" starts each replica on a data folder of its own. It ran them all
// on ./data, where each start emptied the others' audit index and all wrote
// one stream-sequence, with no lock to stop them (outside check 19g).
func TestReadmeClusterReplicasHaveTheirOwnDataFolders(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "**As local processes**")
	if !ok {
		t.Fatal(`README.md: no "**As local processes**"`)
	}
	_, block, _ = strings.Cut(block, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	dataDir := regexp.MustCompile(`(?:^|\s)INFRACAST_DATA_DIR=(\S+)`)
	replicas, dirs := 0, map[string]bool{}
	for _, line := range strings.Split(block, "\n") {
		if !strings.Contains(line, "./infracast-auth &") {
			continue
		}
		replicas++
		m := dataDir.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("README.md, As local processes: a replica without INFRACAST_DATA_DIR (./data, shared): %s", line)
			continue
		}
		if dirs[m[1]] {
			t.Errorf("README.md, As local processes: two replicas on data folder %s", m[1])
		}
		dirs[m[1]] = true
	}
	if replicas < 2 {
		t.Fatalf("README.md, As local processes: %d replicas started, want several", replicas)
	}
}
