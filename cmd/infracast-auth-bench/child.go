package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// caseInChild runs case name in a fresh process (this program again, with
// the environment variable childEnv set to 1 and flags beside -cases name
// -json) and reads the JSON lines it prints: the figures baselines names,
// each with its baseline's name, and no other. echoLog: the child's log
// (its standard error) goes to this process's.
func caseInChild(ctx context.Context, b *bench, name, childEnv string, flags []string, baselines map[string]string, echoLog bool) ([]result, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := append(append([]string{"-cases", name}, flags...), "-json")
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s case in a child process: %v\n%s", name, err, stderr.String())
	}
	if echoLog {
		fmt.Fprint(b.log, stderr.String())
	}
	var rs []result
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("%s case: child printed %q: %v", name, line, err)
		}
		r.baselineName = baselines[r.Name]
		rs = append(rs, r)
	}
	if len(rs) != len(baselines) {
		return nil, fmt.Errorf("%s case: %d results from the child, want %d", name, len(rs), len(baselines))
	}
	return rs, nil
}
