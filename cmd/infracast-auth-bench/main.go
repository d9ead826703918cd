// Command infracast-auth-bench measures, in one run, how much Infracast Auth adds
// to its hot paths and how close each is to its bound. Every case measures its
// own baseline in the same run, on the same machine, so the ratio is comparable
// across machines and runs:
//
//	go run ./cmd/infracast-auth-bench                       # every case, 3–4 minutes on 2 cores
//	go run ./cmd/infracast-auth-bench -cases validate_jwt,memory -duration 10s
//	go run ./cmd/infracast-auth-bench -cases validate_apikey -cpuprofile cpu.out
//
// It starts everything it needs itself: an embedded NATS JetStream in a
// temporary folder, the service in this process on loopback, and a load
// generator of goroutines with their own keep-alive connections. It prints a
// table, then one JSON object per line and case ({"name","value","unit",
// "baseline","ratio"} plus latency quantiles where relevant; a case without a
// baseline has no "baseline" and "ratio"). It exits 1 when
// any request fails (or a case cannot run), and with -strict 2 when a target
// is missed. See docs/performance.md for what each figure means.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"text/tabwriter"
	"time"
)

// result is one line of the report. Ratio is Value ÷ Baseline.
type result struct {
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Baseline float64 `json:"baseline"`
	Ratio    float64 `json:"ratio"`
	// Latency quantiles, in microseconds, of the measured path and of its
	// baseline (throughput and propagation cases).
	P50         *float64 `json:"p50_us,omitempty"`
	P99         *float64 `json:"p99_us,omitempty"`
	BaselineP50 *float64 `json:"baseline_p50_us,omitempty"`
	BaselineP99 *float64 `json:"baseline_p99_us,omitempty"`
	// Target is the goal ("ratio >= 0.85", "p99_us < 5000", "value < 500"),
	// OK whether this run met it; both absent when the case has no target.
	Target string `json:"target,omitempty"`
	OK     *bool  `json:"ok,omitempty"`
	// Samples is how many operations the figure is made of.
	Samples int64 `json:"samples"`
	// Heap is, for the memory cases, the growth of the live heap per entry,
	// next to Value, that of the resident set.
	Heap *float64 `json:"heap_bytes,omitempty"`

	baselineName string // what the baseline is, for the table; with noBaseline, what is measured
	// noBaseline: the case has no baseline (the audit latencies, held to an
	// absolute bound). Baseline and Ratio are then 0 and mean nothing: the
	// table prints "-" and the JSON line leaves them out.
	noBaseline bool
}

// MarshalJSON is the result's JSON line without "baseline" and "ratio" when
// it has no baseline. HTML characters are not escaped ("ratio >= 0.85").
func (r result) MarshalJSON() ([]byte, error) {
	type plain result // without this method
	var v any = plain(r)
	if r.noBaseline {
		// The outer fields hide the embedded ones of the same JSON name
		// (shallower wins), and being nil they are omitted.
		v = struct {
			plain
			Baseline *float64 `json:"baseline,omitempty"`
			Ratio    *float64 `json:"ratio,omitempty"`
		}{plain: plain(r)}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// baselineText and ratioText are the table's baseline and ratio: "-" when
// there is no baseline.
func (r result) baselineText() string {
	if r.noBaseline {
		return "-"
	}
	return fmtNum(r.Baseline)
}

func (r result) ratioText() string {
	if r.noBaseline {
		return "-"
	}
	return fmt.Sprintf("%.3f", r.Ratio)
}

// bench holds the run's settings.
type bench struct {
	duration      time.Duration
	conns         int
	writers       int
	replayEvents  int
	memoryEntries int
	loginClients  int
	log           io.Writer
}

// rounds is how many times a case alternates between its baseline and the
// measured path: about one round a second, so that a burst of other load on
// the machine hits both alike.
func (b *bench) rounds() int { return max(2, int(b.duration/time.Second)) }

type benchCase struct {
	name string
	run  func(ctx context.Context, b *bench) ([]result, error)
}

// optIn are the cases run only when named in -cases: a population too big
// for the default run.
var optIn = map[string]bool{"list_users": true}

var cases = []benchCase{
	{"validate_jwt", caseValidateJWT},
	{"validate_apikey", caseValidateAPIKey},
	{"gateway", caseGateway},
	{"nginx_proxy", caseNginxProxy},
	{"nginx_forward_auth", caseNginxForwardAuth}, // nginx_forward_auth.go
	{"middleware", caseMiddleware},               // middleware.go: the Go client's net/http middleware
	{"login", caseLogin},
	{"refresh", caseRefresh},
	{"append_replay", caseAppendReplay},
	{"propagation", casePropagation},
	{"catch_up", caseCatchUp},                 // catch_up.go: read-your-writes catch-ups while another replica serves
	{"scim_propagation", caseSCIMPropagation}, // scim_propagation.go
	{"memory", caseMemory},
	{"scale", caseScale},          // scale.go
	{"audit", caseAudit},          // audit.go
	{"console", caseConsole},      // console.go: the admin console in headless Chromium
	{"list_users", caseListUsers}, // list_users.go: token checks while the users list is read (opt-in)
}

func main() {
	if os.Getenv(serveChildEnv) != "" { // serve_child.go
		os.Exit(serveChild())
	}
	if up := os.Getenv(bareProxyEnv); up != "" { // bare_proxy.go
		os.Exit(bareProxyChild(up))
	}
	os.Exit(run())
}

func run() int {
	var names, defaults []string
	for _, c := range cases {
		names = append(names, c.name)
		if !optIn[c.name] {
			defaults = append(defaults, c.name)
		}
	}
	b := &bench{log: os.Stderr}
	casesFlag := flag.String("cases", strings.Join(defaults, ","), "comma-separated cases to run: "+strings.Join(names, ", ")+" (list_users only when named)")
	flag.DurationVar(&b.duration, "duration", 5*time.Second, "measuring time per case, shared between the case and its baseline (login: 3×)")
	flag.IntVar(&b.conns, "conns", 32, "concurrent connections of the HTTP read-path load (validate_*, gateway)")
	flag.IntVar(&b.writers, "writers", 16, "concurrent clients of the write-path cases (refresh and its raw-append baseline)")
	flag.IntVar(&b.loginClients, "login-clients", 0, "concurrent clients of the login case (0: 4×GOMAXPROCS)")
	flag.IntVar(&b.replayEvents, "replay-events", 200_000, "events in the stream that append_replay replays")
	flag.IntVar(&b.memoryEntries, "memory-entries", 1_000_000, "API keys and revoked tokens the memory case holds")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memProfile := flag.String("memprofile", "", "write a heap profile at the end of the run to this file")
	traceFile := flag.String("trace", "", "write an execution trace of the run to this file (go tool trace)")
	jsonOnly := flag.Bool("json", false, "print only the JSON lines")
	strict := flag.Bool("strict", false, "exit 2 when a target is missed")
	flag.Parse()

	var selected []benchCase
	for _, n := range strings.Split(*casesFlag, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		found := false
		for _, c := range cases {
			if c.name == n {
				selected, found = append(selected, c), true
			}
		}
		if !found {
			fmt.Fprintf(os.Stderr, "infracast-auth-bench: unknown case %q (want %s)\n", n, strings.Join(names, ", "))
			return 1
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "infracast-auth-bench:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "infracast-auth-bench:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "infracast-auth-bench:", err)
			return 1
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			fmt.Fprintln(os.Stderr, "infracast-auth-bench:", err)
			return 1
		}
		defer trace.Stop()
	}

	fmt.Fprintf(b.log, "infracast-auth-bench: %s, GOMAXPROCS=%d, %s, %d cases, %s each\n",
		cpuModel(), runtime.GOMAXPROCS(0), runtime.Version(), len(selected), b.duration)
	ctx := context.Background()
	var results []result
	failed := false
	start := time.Now()
	for _, c := range selected {
		t0 := time.Now()
		fmt.Fprintf(b.log, "== %s\n", c.name)
		rs, err := c.run(ctx, b)
		if err != nil {
			fmt.Fprintf(os.Stderr, "infracast-auth-bench: %s: %v\n", c.name, err)
			failed = true
		}
		for _, r := range rs {
			fmt.Fprintf(b.log, "   %s: %s %s", r.Name, fmtNum(r.Value), r.Unit)
			if !r.noBaseline {
				fmt.Fprintf(b.log, " (baseline %s, ratio %.3f)", fmtNum(r.Baseline), r.Ratio)
			}
			if r.Heap != nil {
				fmt.Fprintf(b.log, "; live heap %s %s", fmtNum(*r.Heap), r.Unit)
			}
			fmt.Fprintln(b.log)
		}
		fmt.Fprintf(b.log, "   (%s)\n", time.Since(t0).Round(100*time.Millisecond))
		results = append(results, rs...)
		runtime.GC()
	}
	fmt.Fprintf(b.log, "total %s\n", time.Since(start).Round(100*time.Millisecond))
	if *memProfile != "" {
		if f, err := os.Create(*memProfile); err == nil {
			runtime.GC()
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}

	if !*jsonOnly {
		printTable(os.Stdout, results)
		fmt.Println()
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	missed := false
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			fmt.Fprintf(os.Stderr, "infracast-auth-bench: %s: %v\n", r.Name, err)
			failed = true
		}
		if r.OK != nil && !*r.OK {
			missed = true
		}
	}
	switch {
	case failed:
		return 1
	case missed && *strict:
		return 2
	}
	return 0
}

func printTable(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "case\tvalue\tunit\tbaseline\tratio\tp50 µs\tp99 µs\tbase p50 µs\tbase p99 µs\ttarget\t")
	for _, r := range results {
		ok := ""
		if r.OK != nil {
			ok = "ok "
			if !*r.OK {
				ok = "MISS "
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			r.Name, fmtNum(r.Value), r.Unit, r.baselineText(), r.ratioText(),
			optNum(r.P50), optNum(r.P99), optNum(r.BaselineP50), optNum(r.BaselineP99), ok+r.Target)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	for _, r := range results {
		label := "baseline"
		if r.noBaseline {
			label = "measures"
		}
		fmt.Fprintf(w, "  %-22s %s: %s\n", r.Name, label, r.baselineName)
	}
}

func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func optNum(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmtNum(*v)
}

func ptr(v float64) *float64 { return &v }

func us(d time.Duration) *float64 { return ptr(float64(d) / float64(time.Microsecond)) }

// ratio is a/b, 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// atLeast and below set a result's target and verdict.
func (r *result) atLeast(minRatio float64) {
	ok := r.Ratio >= minRatio
	r.Target, r.OK = fmt.Sprintf("ratio >= %.2f", minRatio), &ok
}

func (r *result) valueBelow(max float64) {
	ok := r.Value < max
	r.Target, r.OK = fmt.Sprintf("value < %s", fmtNum(max)), &ok
}

// cpuModel is the CPU model from /proc/cpuinfo, with the number of CPUs.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	model := "unknown CPU"
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s × %d CPUs", model, runtime.NumCPU())
}
