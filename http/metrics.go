package http

import (
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the service's Prometheus metrics, on a registry of their own
// (github.com/prometheus/client_golang: the exposition format and the
// collectors are the maintained library's, not ours).
type Metrics struct {
	Registry     *prometheus.Registry
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
	logins       *prometheus.CounterVec
	background   *prometheus.CounterVec
	// refusalLines counts the refusal log lines held back (refusals.go).
	refusalLines prometheus.Counter
	handler      fiber.Handler
	// series holds each (route, method, status)'s request counter and its
	// route's latency histogram once resolved (seriesKey → *routeSeries): a
	// lookup in a vector hashes the label values and takes its lock, which
	// every request paid. Its keys are the vectors' label values, so it
	// grows as they do: with the registered routes and the statuses they
	// answer with, never with requests.
	series sync.Map
}

type seriesKey struct {
	route, method string
	status        int
}

type routeSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// NewMetrics registers the HTTP metrics and the Go and process collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infracast_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "infracast_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infracast_auth_failures_total", Help: "Refused credentials by reason.",
		}, []string{"reason"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infracast_logins_total", Help: "Password logins by result.",
		}, []string{"result"}),
		background: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infracast_background_errors_total", Help: "Errors of background tasks (off the request path) by task.",
		}, []string{"task"}),
		refusalLines: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "infracast_refusal_log_suppressed_total", Help: "Log lines of refused requests held back by the refusal log's limits.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.authFailures, m.logins, m.background, m.refusalLines,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	m.handler = adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return m
}

// authFailure counts a refused credential.
func (m *Metrics) authFailure(reason string) {
	if m != nil {
		m.authFailures.WithLabelValues(reason).Inc()
	}
}

// refusalSuppressed counts a refusal's log line held back (refusals.go).
func (m *Metrics) refusalSuppressed() {
	if m != nil {
		m.refusalLines.Inc()
	}
}

// login counts a password login by result.
func (m *Metrics) login(result string) {
	if m != nil {
		m.logins.WithLabelValues(result).Inc()
	}
}

// BackgroundError counts an error of a background task, such as recording
// API key usage; the caller logs it.
func (m *Metrics) BackgroundError(task string) {
	if m != nil {
		m.background.WithLabelValues(task).Inc()
	}
}

func (m *Metrics) observe(route, method string, status int, d time.Duration) {
	// Label values are kept by the registry (and the key by series): never
	// the request's own bytes, which fasthttp reuses for the next request.
	k := seriesKey{route, stableMethod(method), status}
	v, ok := m.series.Load(k)
	if !ok {
		v, _ = m.series.LoadOrStore(k, &routeSeries{
			requests: m.requests.WithLabelValues(k.route, k.method, strconv.Itoa(status)),
			duration: m.duration.WithLabelValues(k.route),
		})
	}
	rs := v.(*routeSeries)
	rs.requests.Inc()
	rs.duration.Observe(d.Seconds())
}

var methods = []string{
	fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch,
	fiber.MethodDelete, fiber.MethodOptions, fiber.MethodConnect, fiber.MethodTrace,
}

// stableMethod returns a constant string for method ("OTHER" for the rest).
func stableMethod(method string) string {
	for _, m := range methods {
		if m == method {
			return m
		}
	}
	return "OTHER"
}
