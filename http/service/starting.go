package service

import (
	"bytes"
	"encoding/json"
	"errors"
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
// then started over). Until Serve takes over, GET (and HEAD) /health answers 200
// (alive), GET /ready 503 UNAVAILABLE whose message names what the start
// waits for, and everything else the same with Retry-After; each answer closes its connection.
//
// Starting is the listener Serve is then given: connections accepted after
// the handover go to the service's server, none is dropped between the two.
// A connection accepted before goes to the early server only once its
// request's head has arrived; one still waiting for it at the handover (a
// client that opened it early and writes later, or is halfway through) goes
// to the service's server with what it sent so far. Re-check 20r5 saw the
// early server keep such a connection and answer its request, sent after
// /ready said 200, "Starting, not ready yet".
type Starting struct {
	ln    *retryingListener
	early *fasthttp.Server
	phase atomic.Pointer[string]
	// count is called for each accept error waited out: the metric once
	// the service has one (Service.Serve).
	count atomic.Pointer[func()]

	mu     sync.Mutex
	handed bool // Serve took over: connections go to conns
	// waiting are the connections accepted before the handover whose
	// request's head has not arrived yet (sortOut).
	waiting map[net.Conn]struct{}
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
	st := &Starting{conns: make(chan net.Conn), failed: make(chan error, 1), closed: make(chan struct{}), waiting: map[net.Conn]struct{}{}}
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
		ReadTimeout: startingReadTimeout, WriteTimeout: startingReadTimeout,
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
		if !handed {
			st.waiting[c] = struct{}{}
		}
		st.mu.Unlock()
		if !handed {
			go st.sortOut(c)
			continue
		}
		if !st.pass(c) {
			return
		}
	}
}

// startingReadTimeout bounds how long a connection of the start may take
// to send its request (as the service's own server: authhttp.Config), and
// the early server's answer.
const startingReadTimeout = 15 * time.Second

// maxStartingHead is how much of a request's head sortOut reads before
// leaving the connection to the early server (which refuses a bigger one).
const maxStartingHead = 16 << 10

// pass gives c to the service's server (Accept); false once closed.
func (st *Starting) pass(c net.Conn) bool {
	select {
	case st.conns <- c:
		return true
	case <-st.closed:
		_ = c.Close()
		return false
	}
}

// sortOut reads the head of c's first request, accepted before the
// handover: complete before it, the early server answers it; the handover
// (or Close) first, handOver ends the read (a deadline in the past) and c
// goes, with the bytes read so far, to the service's server (or is closed).
func (st *Starting) sortOut(c net.Conn) {
	var head []byte
	err := c.SetReadDeadline(time.Now().Add(startingReadTimeout))
	for err == nil {
		buf := make([]byte, 4096)
		var n int
		n, err = c.Read(buf)
		head = append(head, buf[:n]...)
		if bytes.Contains(head, []byte("\r\n\r\n")) || len(head) >= maxStartingHead {
			break
		}
	}
	st.mu.Lock()
	delete(st.waiting, c)
	handed := st.handed
	st.mu.Unlock()
	select {
	case <-st.closed:
		_ = c.Close()
		return
	default:
	}
	var netErr net.Error
	timedOut := errors.As(err, &netErr) && netErr.Timeout()
	if (timedOut && !handed) || (err != nil && !timedOut && len(head) == 0) {
		_ = c.Close() // sent nothing in time, or went away: as a server's read timeout
		return
	}
	// The server that answers sets its own deadlines.
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		_ = c.Close()
		return
	}
	if len(head) > 0 {
		c = &prefixedConn{Conn: c, prefix: head}
	}
	if handed {
		st.pass(c)
		return
	}
	_ = st.early.ServeConn(c) // its errors are the client's (a reset, a timeout)
}

// prefixedConn is a connection whose first bytes were already read.
type prefixedConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixedConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// answer is the handler of the start: alive, not ready.
func (st *Starting) answer(ctx *fasthttp.RequestCtx) {
	ctx.SetConnectionClose()
	ctx.Response.Header.Set("X-Request-ID", authhttp.NewRequestID())
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetContentType("application/json")
	// HEAD as GET, as the service's own routes (fasthttp sends no body):
	// re-check 20r5 found HEAD /health 503 while starting, 200 once running.
	if (ctx.IsGet() || ctx.IsHead()) && string(ctx.Path()) == "/health" {
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
	st.interruptWaiting()
	st.mu.Unlock()
}

// interruptWaiting ends the reads of sortOut (st.mu held).
func (st *Starting) interruptWaiting() {
	for c := range st.waiting {
		_ = c.SetReadDeadline(time.Unix(1, 0)) // fails only on a closed connection, whose read has ended
	}
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
	st.mu.Lock()
	st.interruptWaiting()
	st.mu.Unlock()
	return st.ln.Close()
}

// Addr is the HTTP address.
func (st *Starting) Addr() net.Addr { return st.ln.Addr() }
