package service

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// failingListener answers Accept with errs, one per call, then with conns,
// then blocks until closed (net.ErrClosed).
type failingListener struct {
	mu     sync.Mutex
	errs   []error
	conns  []net.Conn
	closed chan struct{}
}

func newFailingListener(errs []error, conns ...net.Conn) *failingListener {
	return &failingListener{errs: errs, conns: conns, closed: make(chan struct{})}
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	if len(l.conns) > 0 {
		c := l.conns[0]
		l.conns = l.conns[1:]
		l.mu.Unlock()
		return c, nil
	}
	l.mu.Unlock()
	<-l.closed
	return nil, &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}
}

func (l *failingListener) Close() error {
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return nil
}

func (l *failingListener) Addr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
}

// acceptError is an accept error as the net package returns it.
func acceptError(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

// TestRetryingListenerWaitsOutTemporaryErrors: out of file descriptors
// (EMFILE, and the like), Accept waits and tries again until a connection
// comes, counting each error and logging the episode once as it starts and
// once as it ends; fasthttp's Serve ended at the first such error, and the
// process with it (an outside check, 18q). Closed, it answers net.ErrClosed,
// also while it waits; any other error ends Accept as it is.
func TestRetryingListenerWaitsOutTemporaryErrors(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	var counted atomic.Int64
	count := func() { counted.Add(1) }

	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	errs := []error{acceptError(syscall.EMFILE), acceptError(syscall.ENFILE), acceptError(syscall.ENOBUFS),
		acceptError(syscall.ENOMEM), acceptError(syscall.ECONNABORTED), acceptError(syscall.EMFILE)}
	ln := newRetryingListener(newFailingListener(errs, server), log, count)
	// The waits, seen without being taken.
	var waits []time.Duration
	ln.after = func(d time.Duration) <-chan time.Time {
		waits = append(waits, d)
		now := make(chan time.Time, 1)
		now <- time.Now()
		return now
	}
	ms := func(ds ...int) []time.Duration {
		out := make([]time.Duration, len(ds))
		for i, d := range ds {
			out[i] = time.Duration(d) * time.Millisecond
		}
		return out
	}
	c, err := ln.Accept()
	if err != nil || c != server {
		t.Fatalf("Accept after %d temporary errors: %v, %v", len(errs), c, err)
	}
	// 5+10+20+40+80+160 ms of waits, doubling.
	if want := ms(5, 10, 20, 40, 80, 160); !slices.Equal(waits, want) {
		t.Errorf("waits %v, want %v: it did not back off, doubling", waits, want)
	}
	if n := counted.Load(); n != int64(len(errs)) {
		t.Errorf("counted %d errors, want %d", n, len(errs))
	}
	out := logs.String()
	if n := strings.Count(out, "accepting HTTP connections failed"); n != 1 {
		t.Errorf("the episode's start logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "accepting HTTP connections again"); n != 1 {
		t.Errorf("the episode's end logged %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "too many open files") {
		t.Errorf("the log does not name the error:\n%s", out)
	}

	// The delay is capped, and the next episode starts from the first delay again.
	ln.firstDelay, ln.maxDelay = time.Millisecond, 4*time.Millisecond
	server2, client2 := net.Pipe()
	defer server2.Close()
	defer client2.Close()
	inner := newFailingListener([]error{acceptError(syscall.EMFILE), acceptError(syscall.EMFILE), acceptError(syscall.EMFILE), acceptError(syscall.EMFILE)}, server2)
	ln.Listener = inner
	waits = nil
	if c, err := ln.Accept(); err != nil || c != server2 {
		t.Fatalf("second episode: %v, %v", c, err)
	}
	if want := ms(1, 2, 4, 4); !slices.Equal(waits, want) {
		t.Errorf("four errors waited %v, want %v: capped, from the first delay again", waits, want)
	}

	// Any other error: returned as it is.
	bad := acceptError(syscall.EBADF)
	ln.Listener = newFailingListener([]error{bad})
	if _, err := ln.Accept(); err != bad {
		t.Errorf("EBADF: %v, want it returned as it is", err)
	}

	// Closed while waiting out errors: net.ErrClosed, at once.
	many := make([]error, 1000)
	for i := range many {
		many[i] = acceptError(syscall.EMFILE)
	}
	inner = newFailingListener(many)
	ln = newRetryingListener(inner, log, count)
	waiting := make(chan struct{}, len(many))
	waits3 := 0 // called from Accept's goroutine only
	ln.after = func(time.Duration) <-chan time.Time {
		waiting <- struct{}{}
		if waits3++; waits3 < 3 {
			now := make(chan time.Time, 1)
			now <- time.Now()
			return now
		}
		return nil // the third wait lasts until Close
	}
	done := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		done <- err
	}()
	for range 3 {
		select {
		case <-waiting:
		case <-time.After(10 * time.Second):
			t.Fatal("Accept did not retry")
		}
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still waiting after Close")
	}
	// Closed while blocked in the listener's Accept: as before.
	ln = newRetryingListener(newFailingListener(nil), log, count)
	go func() {
		_, err := ln.Accept()
		done <- err
	}()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

func TestTemporaryAcceptError(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{acceptError(syscall.EMFILE), true},
		{acceptError(syscall.ENFILE), true},
		{acceptError(syscall.ENOBUFS), true},
		{acceptError(syscall.ENOMEM), true},
		{acceptError(syscall.ECONNABORTED), true},
		{acceptError(syscall.EBADF), false},
		{acceptError(syscall.EINVAL), false},
		{&net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}, false},
		{errors.New("something else"), false},
	} {
		if got := temporaryAcceptError(c.err); got != c.want {
			t.Errorf("%v: temporary %v, want %v", c.err, got, c.want)
		}
	}
}
