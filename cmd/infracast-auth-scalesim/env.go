package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/infracast/auth/events"
)

// The one login of the simulation's servers.
const natsUser = "infracast"

var natsPassword = func() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}()

// startServer starts the embedded nats-server the service uses, on dir,
// listening on a free loopback port (replicas reach NATS over TCP). sync is
// fsync on every write (SyncAlways), as the service always runs.
func startServer(dir string, sync bool) (*server.Server, error) {
	return events.StartEmbedded(events.EmbeddedOptions{
		StoreDir: dir, SyncAlways: sync, Listen: "127.0.0.1:-1",
		Users: []events.EmbeddedUser{{Name: natsUser, Password: natsPassword}},
	})
}

func stopServer(ns *server.Server) {
	ns.Shutdown()
	ns.WaitForShutdown()
}

// connect opens a TCP client connection to ns, as a replica's.
func connect(ns *server.Server, name string) (*nats.Conn, error) {
	return nats.Connect(ns.ClientURL(), nats.UserInfo(natsUser, natsPassword), nats.Name(name), nats.ReconnectBufSize(-1))
}

// loader publishes without waiting for each acknowledgement, at most a
// window at a time (a busy machine otherwise stalls the client's buffer).
type loader struct {
	js      jetstream.JetStream
	pending int
}

func (l *loader) pub(subject string, data []byte) error {
	if l.pending == 2048 {
		if err := l.wait(); err != nil {
			return err
		}
	}
	l.pending++
	_, err := l.js.PublishAsync(subject, data)
	return err
}

func (l *loader) wait() error {
	l.pending = 0
	select {
	case <-l.js.PublishAsyncComplete():
		return nil
	case <-time.After(time.Minute):
		return errors.New("loading: no acknowledgement for a minute")
	}
}

// heap is the live heap after a full collection.
func heap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// resident is the process's resident set after a collection that returned
// every free page to the OS (0 where /proc/self/statm is missing).
func resident() int64 {
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// streamDirSize is the size on disk of a stream's folder under a JetStream
// store (every file: blocks, indexes, consumer state).
func streamDirSize(storeDir, stream string) (int64, error) {
	var found string
	err := filepath.WalkDir(storeDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == stream && filepath.Base(filepath.Dir(p)) == "streams" {
			found = p
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if found == "" {
		return 0, fmt.Errorf("stream folder %s not found under %s", stream, storeDir)
	}
	var total int64
	err = filepath.WalkDir(found, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		return nil
	})
	return total, err
}

// cpuTime is the CPU time this process has used, user and system: the
// server's and the clients' together, since both run here. Unlike wall time,
// it hardly changes when other processes take the cores.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sample is what a timed run measured: operations, wall time, CPU time,
// latencies.
type sample struct {
	n       int64
	elapsed time.Duration
	cpu     time.Duration
	lat     []time.Duration
	sorted  bool
}

func (s *sample) add(o sample) {
	s.n += o.n
	s.elapsed += o.elapsed
	s.cpu += o.cpu
	s.lat = append(s.lat, o.lat...)
	s.sorted = false
}

// cpuPerOp is the process's CPU time per operation, in microseconds.
func (s *sample) cpuPerOp() float64 {
	if s.n == 0 {
		return 0
	}
	return float64(s.cpu.Nanoseconds()) / 1e3 / float64(s.n)
}

func (s *sample) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.n) / s.elapsed.Seconds()
}

// us is quantile q in microseconds.
func (s *sample) us(q float64) *float64 {
	if len(s.lat) == 0 {
		return nil
	}
	if !s.sorted {
		slices.Sort(s.lat)
		s.sorted = true
	}
	i := min(int(q*float64(len(s.lat))), len(s.lat)-1)
	return ptr(float64(s.lat[i].Nanoseconds()) / 1e3)
}

// runOps runs workers goroutines for d, each calling its own op (made by mk)
// in a loop, timing every call. The rate is the sum of each worker's own rate.
// The first error stops every worker and is returned.
func runOps(workers int, d time.Duration, mk func(i int) func() error) (sample, error) {
	var (
		stop     atomic.Bool
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
		lat      = make([][]time.Duration, workers)
		busy     = make([]time.Duration, workers)
	)
	ops := make([]func() error, workers)
	for i := range ops {
		ops[i] = mk(i)
	}
	cpu0 := cpuTime()
	start := time.Now()
	deadline := start.Add(d)
	for i := range ops {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			l := make([]time.Duration, 0, 4096)
			for !stop.Load() {
				t0 := time.Now()
				if t0.After(deadline) {
					break
				}
				if err := ops[i](); err != nil {
					errOnce.Do(func() { firstErr = err })
					stop.Store(true)
					break
				}
				l = append(l, time.Since(t0))
			}
			lat[i], busy[i] = l, time.Since(start)
		}(i)
	}
	wg.Wait()
	s := sample{cpu: cpuTime() - cpu0}
	perSecond := 0.0
	for i := range lat {
		s.n += int64(len(lat[i]))
		s.lat = append(s.lat, lat[i]...)
		if busy[i] > 0 {
			perSecond += float64(len(lat[i])) / busy[i].Seconds()
		}
	}
	if perSecond > 0 {
		s.elapsed = time.Duration(float64(s.n) / perSecond * float64(time.Second))
	}
	if firstErr != nil {
		return s, firstErr
	}
	if s.n == 0 {
		return s, fmt.Errorf("no operation completed in %s", d)
	}
	return s, nil
}

// median, lowest and highest of xs (not empty).
func spread(xs []float64) (med, lo, hi float64) {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2], s[0], s[len(s)-1]
}

func median(xs []float64) float64 {
	m, _, _ := spread(xs)
	return m
}
