package service

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// retryingListener is the HTTP listener as Serve hands it to the server: it
// waits out an accept error that passes (the process or the system out of
// file descriptors, out of socket buffers, a connection that failed before
// it was accepted), as Go's net/http does, where fasthttp's Serve ends at
// the first accept error that is not a timeout. An outside check (18q):
// ~21,000 idle connections under `ulimit -n 20000` ended Serve with "accept4:
// too many open files" within 2 s, and the process with it.
//
// It waits 5 ms after the first error of an episode, doubling up to 1 s,
// until a connection is accepted again; each error is counted (count), and
// an episode is logged twice — when it starts and when it ends — not once per
// error. Any other error, and Close, end Accept as before (a closed listener:
// net.ErrClosed, which the server takes for a shutdown).
type retryingListener struct {
	net.Listener
	log   *slog.Logger
	count func() // one accept error waited out
	// firstDelay and maxDelay bound the waits (net/http's: 5 ms, 1 s).
	firstDelay, maxDelay time.Duration
	// after is time.After: a test's way to see the waits without taking them.
	after func(time.Duration) <-chan time.Time

	closeOnce sync.Once
	closed    chan struct{}
}

func newRetryingListener(ln net.Listener, log *slog.Logger, count func()) *retryingListener {
	return &retryingListener{
		Listener: ln, log: log, count: count,
		firstDelay: 5 * time.Millisecond, maxDelay: time.Second, after: time.After,
		closed: make(chan struct{}),
	}
}

// Accept accepts the next connection, waiting out temporary errors.
func (l *retryingListener) Accept() (net.Conn, error) {
	var (
		delay    time.Duration
		failures int
		since    time.Time
	)
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			if failures > 0 {
				l.log.Info("accepting HTTP connections again", "errors", failures, "after", time.Since(since).Round(time.Millisecond).String())
			}
			return c, nil
		}
		if !temporaryAcceptError(err) {
			return nil, err
		}
		select {
		case <-l.closed:
			return nil, l.closedError()
		default:
		}
		l.count()
		if failures == 0 {
			since = time.Now()
			// The likeliest cause by far is the descriptor limit: say where
			// to raise it. Connections wait in the kernel's backlog meanwhile.
			l.log.Warn("accepting HTTP connections failed; retrying until it works again (out of file descriptors? raise the limit: LimitNOFILE, ulimit -n)", "err", err)
		}
		failures++
		if delay == 0 {
			delay = l.firstDelay
		} else {
			delay = min(2*delay, l.maxDelay)
		}
		select {
		case <-l.after(delay):
		case <-l.closed:
			return nil, l.closedError()
		}
	}
}

// closedError is Accept's error once the listener is closed, as a closed
// net.TCPListener's: the server ends Serve quietly on it.
func (l *retryingListener) closedError() error {
	return &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: net.ErrClosed}
}

// Close closes the listener, ending an Accept that waits.
func (l *retryingListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// temporaryAcceptError reports whether an accept error passes by itself:
// what net/http waits out (a net.Error's Timeout, EINTR, EMFILE, ENFILE;
// ECONNRESET and ECONNABORTED from accept), with ENOBUFS and ENOMEM (out of
// socket buffers or memory) and the errors of a connection that failed while
// waiting to be accepted, which Linux reports from accept(2) and asks to be
// retried (its manual page: ENETDOWN, EPROTO, ENOPROTOOPT, EHOSTDOWN,
// EHOSTUNREACH, ENETUNREACH).
func temporaryAcceptError(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EINTR,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EPROTO, syscall.ENETDOWN,
		syscall.ENOPROTOOPT, syscall.EHOSTDOWN, syscall.EHOSTUNREACH, syscall.ENETUNREACH:
		return true
	}
	return false
}
