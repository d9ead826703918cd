package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
)

// replayProfile: the append_replay case's own CPU profile. -cpuprofile covers
// the whole run, filling the stream included; this one covers one more replay
// and one more bare consumer after the measured rounds, each in its own file,
// so that the two can be compared (go tool pprof -top -diff_base).
var replayProfile = flag.String("replay-cpuprofile", "",
	"append_replay: write a CPU profile of one more replay, after the measured ones, to this file, and of one more bare consumer to this file + \".bare\"")

// profiled runs fn with the CPU profiled into path.
func profiled(path string, fn func() error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if err := pprof.StartCPUProfile(f); err != nil {
		return fmt.Errorf("%w (-replay-cpuprofile cannot run with -cpuprofile)", err)
	}
	err = fn()
	pprof.StopCPUProfile()
	return err
}
