package events_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/natstest"
)

// freezer forwards TCP connections to a server until frozen: then it keeps
// them open and passes nothing on, as a NATS server that stopped answering
// does (SIGSTOP, a hung host) — the client still counts itself connected.
type freezer struct {
	ln     net.Listener
	mu     sync.Mutex
	frozen chan struct{} // closed while frozen
	thawed chan struct{} // closed while not frozen
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, frozen: make(chan struct{}), thawed: make(chan struct{})}
	close(f.thawed)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			go f.pipe(s, c)
			go f.pipe(c, s)
		}
	}()
	return f
}

// pipe copies src to dst, holding every chunk while frozen.
func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			f.mu.Lock()
			thawed := f.thawed
			f.mu.Unlock()
			<-thawed
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			return
		}
	}
}

func (f *freezer) URL() string { return "nats://" + f.ln.Addr().String() }

func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.thawed = make(chan struct{})
}

func (f *freezer) thaw() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.thawed)
}

// TestLeaderReadsOfAHungServerGiveUpWithinATry: reads through the stream
// leader — a subject's last sequence (every command's catch-up), the head
// (logins, lists) — of a server that stopped answering give up within one
// try (TryTimeout) with ErrUnavailable, well inside their caller's budget.
// Before, they waited out the caller's whole context: an outside check (14c)
// froze NATS and an API key's creation answered 503 after 11.5 s, past the
// request's 10 s.
func TestLeaderReadsOfAHungServerGiveUpWithinATry(t *testing.T) {
	t.Parallel()
	c := natstest.StartCluster(t, 1)
	f := newFreezer(t, c.URLs()[0][len("nats://"):])
	nc, err := nats.Connect(f.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	octx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := events.OpenStore(octx, nc, events.StoreConfig{TryTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	subject := events.Subject("user", "a")
	if _, err := st.Append(octx, events.Message{Subject: subject, ID: "a", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}

	f.freeze()
	// The caller's budget is a minute; a try is 300 ms.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := st.LastSequence(ctx, subject); !errors.Is(err, events.ErrUnavailable) || ctx.Err() != nil {
		t.Fatalf("the last sequence from a hung server: %v (the caller's context: %v), want ErrUnavailable within a try", err, ctx.Err())
	}
	if _, err := st.Head(ctx); !errors.Is(err, events.ErrUnavailable) || ctx.Err() != nil {
		t.Fatalf("the head from a hung server: %v (the caller's context: %v), want ErrUnavailable within a try", err, ctx.Err())
	}
	if !nc.IsConnected() {
		t.Fatal("the client noticed: not a hung server any more")
	}

	f.thaw()
	for {
		seq, err := st.LastSequence(ctx, subject)
		if err == nil {
			if seq != 1 {
				t.Fatalf("last sequence %d after the thaw, want 1", seq)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no answer after the thaw: %v", err)
		}
	}
}
