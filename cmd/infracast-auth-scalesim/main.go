// Command infracast-auth-scalesim measures, on this machine, what it would cost
// to take Infracast Auth past one replica's memory, for the designs of
// docs/scale.md:
//
//   - kv: cold sessions served from a JetStream KV bucket with the hot set in
//     an in-memory LRU — a cold lookup's latency and throughput at several
//     shares of lookups going to the hot set, a revocation as a KV put seen by a watch on another connection
//     (next to the stream path of today), and what a cold session costs the
//     NATS server in memory and on disk;
//   - partition: sessions partitioned by slot (hash of the user ID) across the
//     subjects of one stream (infracast.auth.session.<slot>.<id>, filtered
//     consumers) or across streams of their own, each replica consuming the
//     users and its slots only — replay time and memory per replica for 1, 2,
//     4, 8 partitions;
//   - router: the cost of a consistent router in front of partitioned
//     replicas — an extra loopback HTTP hop (fasthttp), and the routing
//     decision alone (what a smart client pays).
//
// Run it so:
//
//	go run ./cmd/infracast-auth-scalesim                 # everything, about 1–2 minutes on 2 cores
//	go run ./cmd/infracast-auth-scalesim -parts kv -kv-sessions 1000000
//	go run ./cmd/infracast-auth-scalesim -quick          # a few seconds: does it still run
//
// Everything runs in this process on loopback: an embedded nats-server (the
// one the service embeds, listening on a free loopback port, fsync on every
// write as in production) in a temporary folder, removed at the end. Bulk data
// is loaded by a server without fsync (with it, this machine stores ~1,350
// messages/s), which is then stopped and started again on the same folder with
// fsync on every write for every measurement. It imports nothing of the
// service but events/ and domain/. It prints a table, then one JSON object per
// line and figure; it exits 1 if anything fails.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// result is one figure of the report.
type result struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Latency quantiles in microseconds, where the figure has latencies.
	P50 *float64 `json:"p50_us,omitempty"`
	P99 *float64 `json:"p99_us,omitempty"`
	// Min and Max of Value over the repeats, where it was repeated.
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// Samples is how many operations (or repeats) the figure is made of.
	Samples int64 `json:"samples"`
	// Params are what the figure was measured with.
	Params map[string]any `json:"params,omitempty"`

	what string // one line for the table
}

type config struct {
	parts map[string]bool

	kvSessions  int
	hotShare    float64
	hits        []float64 // percent
	lookupDur   time.Duration
	lookers     int
	revocations int
	cacheWait   time.Duration

	sessions   int
	perUser    int
	partitions []int
	slots      int
	repeats    int
	multiLimit time.Duration

	routerDur time.Duration
	conns     int

	log io.Writer
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("infracast-auth-scalesim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		quick      = fs.Bool("quick", false, "a tiny run (a few seconds) that only checks everything still works; its figures mean nothing")
		parts      = fs.String("parts", "kv,partition,router", "what to measure: kv, partition, router (comma list)")
		kvSessions = fs.Int("kv-sessions", 100_000, "cold sessions in the KV bucket")
		hotShare   = fs.Float64("hot-share", 0.1, "share of the KV sessions in the hot set (the LRU holds them)")
		hits       = fs.String("hits", "0,90,99,99.9,100", "shares of lookups that go to the hot set, in percent, one measurement each (the LRU's hit ratio comes out near it, and is printed)")
		lookupDur  = fs.Duration("lookup-duration", 2*time.Second, "measuring time per hit ratio (and for unloaded gets)")
		lookers    = fs.Int("lookers", 32, "concurrent lookups (as the bench's 32 connections)")
		revs       = fs.Int("revocations", 1000, "revocations measured for each of the KV and stream paths")
		cacheWait  = fs.Duration("cache-wait", 0, "wait this long after starting the loaded server before measuring its idle memory (it has no block cached after a start; nats-server drops a block's cache 10 s after its last use)")
		sessions   = fs.Int("sessions", 100_000, "sessions in the partitioned stream (two events each: started, refreshed)")
		perUser    = fs.Int("sessions-per-user", 2, "sessions per user (users = sessions / this; one user.created each)")
		partitions = fs.String("partitions", "1,2,4,8", "partition counts to measure (each must divide -slots)")
		slots      = fs.Int("slots", 8, "slots sessions are hashed into (by user ID); a partition is a set of slots")
		repeats    = fs.Int("repeats", 3, "replays per partition count and layout")
		multiLimit = fs.Duration("multifilter-limit", 2*time.Second, "how long to measure one consumer with every filter of a partition (0: not at all)")
		routerDur  = fs.Duration("router-duration", 2*time.Second, "measuring time per router case")
		conns      = fs.Int("conns", 32, "concurrent HTTP connections for the router's loaded case")
		jsonOnly   = fs.Bool("json", false, "print the JSON lines only")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("kv-sessions", func() { *kvSessions = 2000 })
		def("hits", func() { *hits = "0,99,100" })
		def("lookup-duration", func() { *lookupDur = 150 * time.Millisecond })
		def("lookers", func() { *lookers = 8 })
		def("revocations", func() { *revs = 30 })
		def("sessions", func() { *sessions = 2000 })
		def("partitions", func() { *partitions = "1,2" })
		def("repeats", func() { *repeats = 1 })
		def("multifilter-limit", func() { *multiLimit = 100 * time.Millisecond })
		def("router-duration", func() { *routerDur = 150 * time.Millisecond })
		def("conns", func() { *conns = 4 })
	}
	c := &config{
		parts: map[string]bool{}, kvSessions: *kvSessions, hotShare: *hotShare, lookupDur: *lookupDur,
		lookers: *lookers, revocations: *revs, cacheWait: *cacheWait, sessions: *sessions, perUser: *perUser,
		slots: *slots, repeats: *repeats, multiLimit: *multiLimit, routerDur: *routerDur, conns: *conns, log: stderr,
	}
	var bad []string
	for _, p := range strings.Split(*parts, ",") {
		switch p = strings.TrimSpace(p); p {
		case "kv", "partition", "router":
			c.parts[p] = true
		case "":
		default:
			bad = append(bad, fmt.Sprintf("-parts: unknown part %q", p))
		}
	}
	for _, h := range strings.Split(*hits, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(h), 64)
		if err != nil || v < 0 || v > 100 {
			bad = append(bad, fmt.Sprintf("-hits: %q is not a percentage", h))
			continue
		}
		c.hits = append(c.hits, v)
	}
	for _, p := range strings.Split(*partitions, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 1 || c.slots%v != 0 {
			bad = append(bad, fmt.Sprintf("-partitions: %q must be a positive divisor of -slots %d", p, c.slots))
			continue
		}
		c.partitions = append(c.partitions, v)
	}
	switch {
	case c.kvSessions < 100:
		bad = append(bad, "-kv-sessions must be at least 100")
	case c.hotShare <= 0 || c.hotShare >= 1:
		bad = append(bad, "-hot-share must be between 0 and 1")
	}
	if c.sessions < c.perUser || c.perUser < 1 {
		bad = append(bad, "-sessions must be at least -sessions-per-user, which must be at least 1")
	}
	if c.lookers < 1 || c.conns < 1 || c.repeats < 1 || c.revocations < 1 {
		bad = append(bad, "-lookers, -conns, -repeats and -revocations must be at least 1")
	}
	if len(bad) > 0 {
		for _, b := range bad {
			fmt.Fprintln(stderr, b)
		}
		return 2
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	fmt.Fprintf(stderr, "infracast-auth-scalesim: %s, GOMAXPROCS=%d, %d CPUs\n", runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU())
	start := time.Now()
	var all []result
	for _, p := range []struct {
		name string
		fn   func(context.Context, *config) ([]result, error)
	}{{"kv", runKV}, {"partition", runPartition}, {"router", runRouter}} {
		if !c.parts[p.name] {
			continue
		}
		t0 := time.Now()
		fmt.Fprintf(stderr, "== %s\n", p.name)
		rs, err := p.fn(ctx, c)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", p.name, err)
			return 1
		}
		fmt.Fprintf(stderr, "   %s took %s\n", p.name, time.Since(t0).Round(time.Millisecond))
		all = append(all, rs...)
	}
	fmt.Fprintf(stderr, "done in %s\n", time.Since(start).Round(time.Millisecond))
	if !*jsonOnly {
		printTable(stdout, all)
		fmt.Fprintln(stdout)
	}
	enc := json.NewEncoder(stdout)
	for _, r := range all {
		if err := enc.Encode(r); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	return 0
}

func printTable(w io.Writer, rs []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "name\tvalue\tunit\tp50 µs\tp99 µs\tmin–max\t\twhat\t")
	for _, r := range rs {
		rng := "–"
		if r.Min != nil && r.Max != nil {
			rng = fmt.Sprintf("%s–%s", num(*r.Min), num(*r.Max))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\t%s\t\n", r.Name, num(r.Value), r.Unit, opt(r.P50), opt(r.P99), rng, r.what)
	}
	tw.Flush()
}

func opt(v *float64) string {
	if v == nil {
		return "–"
	}
	return num(*v)
}

// num prints a figure with three significant digits or so, thousands grouped.
func num(v float64) string {
	switch a := abs(v); {
	case a >= 1000:
		return group(strconv.FormatFloat(v, 'f', 0, 64))
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

func group(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func ptr(v float64) *float64 { return &v }
