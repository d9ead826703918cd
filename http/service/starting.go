package service

import (
	"encoding/json"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	authhttp "github.com/infracast/auth/http"
)

// Starting answers on the HTTP address from the moment the process has it,
// while Start connects to NATS, opens the stream and restores the snapshot —
// which with the embedded NATS includes nats-server's recovery of the stream,
// tens of seconds after a crash at a million users (outside check 20s: 19–25
// s before the snapshot restore began, `/health` unanswered meanwhile, so a
// liveness probe restarted the replica in the middle of its recovery, which
// then started over). Until Serve takes over, GET /health answers 200
// (alive), GET /ready 503 UNAVAILABLE whose message names what the start
// waits for, and everything else the same with Retry-After; each answer closes its connection, so none is
// left with this server when the service's own takes the address over.
//
// Starting is the listener Serve is then given: connections accepted after
// the handover go to the service's server, none is dropped between the two.
type Starting struct {
	ln    *retryingListener
	early *fasthttp.Server
	phase atomic.Pointer[string]
	// count is called for each accept error waited out: the metric once
	// the service has one (Service.Serve).
	count atomic.Pointer[func()]

	mu      sync.Mutex
	handed  bool // Serve took over: connections go to conns
	conns   chan net.Conn
	failed  chan error // the accept loop's end (buffered)
	closeMu sync.Once
	closed  chan struct{}
}

// StartingPhase is the phase /ready names before Start says more, and
// StartingMessage what its message says before the phase.
const (
	StartingPhase   = "starting"
	StartingMessage = "Starting, not ready yet: "
)

// ServeStarting starts answering on ln at once (Starting). Close it if the
// start fails; otherwise hand it to Service.Serve.
func ServeStarting(ln net.Listener, log *slog.Logger) *Starting {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st := &Starting{conns: make(chan net.Conn), failed: make(chan error, 1), closed: make(chan struct{})}
	st.ln = newRetryingListener(ln, log, func() {
		if f := st.count.Load(); f != nil {
			(*f)()
		}
	})
	st.SetPhase(StartingPhase)
	st.early = &fasthttp.Server{
		Handler: st.answer, Name: "infracast-auth",
		// As the service's own server (authhttp.Config): an idle
		// connection does not hold a descriptor for long.
		ReadTimeout: 15 * time.Second, WriteTimeout: 15 * time.Second,
		NoDefaultServerHeader: true, NoDefaultDate: true,
	}
	go st.acceptLoop()
	return st
}

// SetPhase sets what GET /ready names as the start's current step.
func (st *Starting) SetPhase(phase string) { st.phase.Store(&phase) }

// Phase is what /ready names while starting.
func (st *Starting) Phase() string { return *st.phase.Load() }

func (st *Starting) acceptLoop() {
	for {
		c, err := st.ln.Accept()
		if err != nil {
			st.failed <- err
			return
		}
		st.mu.Lock()
		handed := st.handed
		st.mu.Unlock()
		if !handed {
			go func() { _ = st.early.ServeConn(c) }() // its errors are the client's (a reset, a timeout)
			continue
		}
		select {
		case st.conns <- c:
		case <-st.closed:
			_ = c.Close()
			return
		}
	}
}

// answer is the handler of the start: alive, not ready.
func (st *Starting) answer(ctx *fasthttp.RequestCtx) {
	ctx.SetConnectionClose()
	ctx.Response.Header.Set("X-Request-ID", authhttp.NewRequestID())
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetContentType("application/json")
	if string(ctx.Method()) == fasthttp.MethodGet && string(ctx.Path()) == "/health" {
		ctx.SetBodyString(`{"status":"ok"}`)
		return
	}
	// The contract's error shape, exactly (the phase in the message).
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = "UNAVAILABLE", StartingMessage+st.Phase()
	b, err := json.Marshal(body)
	if err != nil { // strings only: cannot happen
		b = []byte(`{"error":{"code":"UNAVAILABLE","message":"Starting"}}`)
	}
	ctx.Response.Header.Set("Retry-After", "1")
	ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	ctx.SetBody(b)
}

// handOver sends the connections accepted from now on to Accept.
func (st *Starting) handOver(count func()) {
	st.count.Store(&count)
	st.mu.Lock()
	st.handed = true
	st.mu.Unlock()
}

// Accept returns the next connection handed over (after Service.Serve).
func (st *Starting) Accept() (net.Conn, error) {
	select {
	case c := <-st.conns:
		return c, nil
	case err := <-st.failed:
		st.failed <- err // for the next call
		return nil, err
	case <-st.closed:
		return nil, st.ln.closedError()
	}
}

// Close closes the address; connections being answered finish.
func (st *Starting) Close() error {
	st.closeMu.Do(func() { close(st.closed) })
	return st.ln.Close()
}

// Addr is the HTTP address.
func (st *Starting) Addr() net.Addr { return st.ln.Addr() }
