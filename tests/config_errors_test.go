package tests

import (
	"errors"
	"testing"
	"time"
)

// configProblems runs the binary with the settings env (on a new data folder
// and a free port) and returns what it printed as an error: a configuration
// it refuses ends the process at once, before the store is opened, with
// every problem named as the variable a user sets. (service.Config.Validate
// names the fields of the Config; the command names the settings.)
func configProblems(t *testing.T, env ...string) error {
	t.Helper()
	p := startBinary(t, append([]string{"INFRACAST_LISTEN=" + freeAddr(t), "INFRACAST_DATA_DIR=" + t.TempDir()}, env...)...)
	if err := p.exited(t, 30*time.Second); err == nil {
		t.Fatalf("exited 0 with %v:\n%s", env, p.output())
	}
	return errors.New(p.output())
}
