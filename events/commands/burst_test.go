package commands_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// burstReplica is a replica whose client addresses are locked after
// maxFailures failures (the accounts are not throttled), with its hasher.
func burstReplica(t *testing.T, maxFailures int) (*stream, *commands.Service, *commands.Passwords) {
	t.Helper()
	s := &stream{}
	_, svc, pw := replicaWith(t, s, s, func(c *commands.Config) {
		c.AddressThrottle = domain.LoginThrottle{MaxFailures: maxFailures, LockoutFor: 15 * time.Minute}
	})
	if _, err := svc.CreateUser(context.Background(), events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}},
		commands.CreateUserInput{Username: "vera", Password: "vera-passphrase-long"}); err != nil {
		t.Fatal(err)
	}
	return s, svc, pw
}

// waitUntil polls cond until it holds, failing the test after a deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !holdsWithin(10*time.Second, time.Millisecond, cond) {
		t.Fatalf("timed out waiting until %s", what)
	}
}

// holdsWithin polls cond every step until it holds (true) or d has passed
// (false); usable off the test's goroutine, where t.Fatal is not.
func holdsWithin(d, step time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(step)
	}
	return true
}

// within is f's answer, if it comes within a deadline: else the test fails
// (f left to run).
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	answer := make(chan error, 1)
	go func() { answer <- f() }()
	select {
	case err := <-answer:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no answer", what)
		return nil
	}
}

// holdSlots takes pw's hash slots until the function it returns is called
// (or the test ends).
func holdSlots(t *testing.T, pw *commands.Passwords) func() {
	var once sync.Once
	release := pw.HoldSlots()
	free := func() { once.Do(release) }
	t.Cleanup(free)
	return free
}

// TestBurstFromOneAddressIsRefusedWithoutHashing: a burst of wrong guesses
// from one address, all past the first throttle check at once and queued
// for the hash slots (each argon2id held by a stub until the one before
// it is answered), runs at most the address's limit of argon2id plus the
// slots: once the first guesses' failures lock the address, the rest are
// refused 429 when they get a slot, before hashing — for a name that
// matches no user as for a user's. Before, the wait for a slot came after
// the last check before hashing, and every guess ran its argon2id (an
// outside check, 18q: 1,000 guesses at once from one address, 1,000
// argon2id, ~20 s of CPU).
func TestBurstFromOneAddressIsRefusedWithoutHashing(t *testing.T) {
	const limit, n = 5, 24
	s, svc, pw := burstReplica(t, limit)
	// The whole burst waits, from one address on one account: here the
	// address's lockout refuses it, not the queue's share of one address
	// (TestHashQueueShareOfOneAddress).
	pw.SetShare(n)
	entered := make(chan int)
	permit := make([]chan struct{}, n)
	done := make([]chan struct{}, n)
	for i := range n {
		permit[i], done[i] = make(chan struct{}), make(chan struct{})
	}
	pw.StubCheck(func(password, hash string) (bool, *argon2id.Params, error) {
		var i int
		if _, err := fmt.Sscanf(password, "guess-%d", &i); err != nil {
			return argon2id.CheckHash(password, hash)
		}
		entered <- i
		<-permit[i]
		return argon2id.CheckHash(password, hash)
	})
	runs := pw.Runs()
	meta := events.Meta{Request: events.RequestInfo{IP: "198.51.100.9"}}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		name := "vera"
		if i%2 == 1 {
			name = fmt.Sprintf("nobody-%d", i)
		}
		wg.Go(func() {
			defer close(done[i])
			_, errs[i] = svc.Login(context.Background(), meta, commands.LoginInput{Username: name, Password: fmt.Sprintf("guess-%d", i)})
		})
	}
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	// Every guess passed the first check: the slots' holders wait in the
	// stub, the others for a slot.
	waitUntil(t, "the burst holds the slots and queues", func() bool { return pw.Waiting() == int64(n-pw.Slots()) })
	deadline := time.After(10 * time.Second)
	for finished := false; !finished; {
		select {
		case i := <-entered:
			close(permit[i])
			select {
			case <-done[i]:
			case <-deadline:
				t.Fatal("a guess let hash was not answered")
			}
		case <-all:
			finished = true
		case <-deadline:
			t.Fatal("the burst was not answered")
		}
	}
	counts := map[string]int{}
	for i, err := range errs {
		switch {
		case errors.Is(err, domain.ErrInvalidCredentials):
			counts["401"]++
		case errors.Is(err, domain.ErrThrottled):
			counts["429"]++
		default:
			t.Errorf("guess %d: %v", i, err)
		}
	}
	if ran := pw.Runs() - runs; ran > uint64(limit+pw.Slots()) {
		t.Errorf("%d guesses at once ran %d argon2id, want at most %d (the limit) + %d (the slots)", n, ran, limit, pw.Slots())
	}
	if counts["401"] != limit || counts["429"] != n-limit {
		t.Errorf("answers %v, want %d × 401, %d × 429", counts, limit, n-limit)
	}
	failures := 0
	for _, m := range s.msgs {
		if env, _, err := events.Decode(m.Data); err == nil && env.Request.IP == meta.Request.IP {
			failures++
		}
	}
	if failures != limit {
		t.Errorf("%d failures recorded from the address, want %d", failures, limit)
	}
}

// TestHashWaitEndsWithTheRequest: a login waiting for a hash slot whose
// request ends (its client gone, its deadline past) is answered
// ErrHashBusy at once and runs no argon2id once the slots are free, nor
// records a failure. Before, the wait ignored the context: a burst's
// requests were all hashed after their clients had given up.
func TestHashWaitEndsWithTheRequest(t *testing.T) {
	s, svc, pw := burstReplica(t, 5)
	release := holdSlots(t, pw)
	runs, stored := pw.Runs(), len(s.msgs)
	ctx, cancel := context.WithCancel(context.Background())
	answer := make(chan error, 1)
	go func() {
		_, err := svc.Login(ctx, events.Meta{Request: events.RequestInfo{IP: "198.51.100.9"}}, commands.LoginInput{Username: "vera", Password: "a-wrong-guess"})
		answer <- err
	}()
	waitUntil(t, "the login waits for a slot", func() bool { return pw.Waiting() == 1 })
	cancel()
	err := within(t, "a login whose request ended while it waited", func() error { return <-answer })
	release()
	if !errors.Is(err, commands.ErrHashBusy) || !errors.Is(err, context.Canceled) || !errors.Is(err, events.ErrUnavailable) {
		t.Fatalf("a login whose request ended while it waited: %v, want ErrHashBusy (503)", err)
	}
	if ran := pw.Runs() - runs; ran != 0 || pw.Waiting() != 0 {
		t.Fatalf("%d argon2id run, %d waiting, want none", ran, pw.Waiting())
	}
	if len(s.msgs) != stored {
		t.Fatalf("%d events stored", len(s.msgs)-stored)
	}
	// A request already ended does not take a free slot either.
	if err := within(t, "a login whose request had ended", func() error {
		_, err := svc.Login(ctx, events.Meta{}, commands.LoginInput{Username: "vera", Password: "vera-passphrase-long"})
		return err
	}); !errors.Is(err, commands.ErrHashBusy) || pw.Runs() != runs {
		t.Fatalf("a login whose request had ended: %v, %d argon2id", err, pw.Runs()-runs)
	}
}

// TestHashQueueIsBounded: past the queue's limit a password check or hash
// is refused at once with ErrHashBusy (503 UNAVAILABLE, Retry-After), no
// argon2id run and nothing stored — a login's as a user creation's — and
// those that waited go on once the slots are free.
func TestHashQueueIsBounded(t *testing.T) {
	s, svc, pw := burstReplica(t, 5)
	pw.SetQueue(2)
	release := holdSlots(t, pw)
	runs, stored := pw.Runs(), len(s.msgs)
	answers := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := svc.Login(context.Background(), events.Meta{}, commands.LoginInput{Username: "vera", Password: "vera-passphrase-long"})
			answers <- err
		}()
	}
	waitUntil(t, "two logins wait for a slot", func() bool { return pw.Waiting() == 2 })
	if err := within(t, "a login past the queue's limit", func() error {
		_, err := svc.Login(context.Background(), events.Meta{}, commands.LoginInput{Username: "vera", Password: "vera-passphrase-long"})
		return err
	}); !errors.Is(err, commands.ErrHashBusy) || !errors.Is(err, events.ErrUnavailable) {
		t.Fatalf("a login past the queue's limit: %v, want ErrHashBusy", err)
	}
	if err := within(t, "a user's creation past the queue's limit", func() error {
		_, err := svc.CreateUser(context.Background(), events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}},
			commands.CreateUserInput{Username: "wren", Password: "wren-passphrase-long"})
		return err
	}); !errors.Is(err, commands.ErrHashBusy) {
		t.Fatalf("a user's creation past the queue's limit: %v, want ErrHashBusy", err)
	}
	if ran := pw.Runs() - runs; ran != 0 || len(s.msgs) != stored {
		t.Fatalf("refused past the limit, yet %d argon2id run and %d events stored", ran, len(s.msgs)-stored)
	}
	release()
	for range 2 {
		if err := <-answers; err != nil {
			t.Fatalf("a login that waited for a slot: %v", err)
		}
	}
	if ran := pw.Runs() - runs; ran != 2 {
		t.Fatalf("the two that waited ran %d argon2id, want 2", ran)
	}
}

// shareReplica is burstReplica (its address limit high) with users wren and
// xena besides vera, and a hash queue of 8 of which one client address or
// one account may have 2 waiting, its slots held until the function it
// returns is called; and wren's ID.
func shareReplica(t *testing.T) (*commands.Service, *commands.Passwords, func(), string) {
	t.Helper()
	_, svc, pw := burstReplica(t, 1000)
	var wren string
	for _, name := range []string{"wren", "xena"} {
		u, err := svc.CreateUser(context.Background(), events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}},
			commands.CreateUserInput{Username: name, Password: name + "-passphrase-long"})
		if err != nil {
			t.Fatal(err)
		}
		if name == "wren" {
			wren = u.ID
		}
	}
	pw.SetQueue(8)
	pw.SetShare(2)
	return svc, pw, holdSlots(t, pw), wren
}

// shareLogin starts a login of name with its right password from address
// ip, and returns its answer's channel.
func shareLogin(svc *commands.Service, ip, name string) <-chan error {
	answer := make(chan error, 1)
	go func() {
		_, err := svc.Login(context.Background(), events.Meta{Request: events.RequestInfo{IP: ip}}, commands.LoginInput{Username: name, Password: name + "-passphrase-long"})
		answer <- err
	}()
	return answer
}

// refusedAtOnce fails the test unless f's answer is ErrHashBusy (503),
// at once and with no argon2id run.
func refusedAtOnce(t *testing.T, pw *commands.Passwords, what string, f func() error) {
	t.Helper()
	runs := pw.Runs()
	if err := within(t, what, f); !errors.Is(err, commands.ErrHashBusy) || !errors.Is(err, events.ErrUnavailable) {
		t.Fatalf("%s: %v, want ErrHashBusy (503 with Retry-After)", what, err)
	}
	if ran := pw.Runs() - runs; ran != 0 {
		t.Fatalf("%s: %d argon2id run", what, ran)
	}
}

// TestHashQueueShareOfOneAddress: one client address (an IPv4 address, an
// IPv6 /64, as the address throttle counts them) may have at most its
// share of the hash queue's waiters: past it, its next password check is
// refused at once with ErrHashBusy, no argon2id run, whichever account —
// while another address's login still finds room, waits and signs in.
// Before, one address with one account's right password (no throttle
// refuses it) filled the whole queue, and the other tenants' logins got
// 503 (an outside check, 19l: 12 of 21). The counts are back to nothing
// once the waiters have their slots.
func TestHashQueueShareOfOneAddress(t *testing.T) {
	svc, pw, release, _ := shareReplica(t)
	var answers []<-chan error
	answers = append(answers, shareLogin(svc, "2001:db8:1:2::1", "vera"), shareLogin(svc, "2001:db8:1:2::2", "wren"))
	waitUntil(t, "two logins from one /64 wait for a slot", func() bool { return pw.Waiting() == 2 })
	refusedAtOnce(t, pw, "a third login from the same /64", func() error {
		return <-shareLogin(svc, "2001:db8:1:2::ffff", "xena")
	})
	refusedAtOnce(t, pw, "a user's creation from the same /64", func() error {
		_, err := svc.CreateUser(context.Background(), events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}, Request: events.RequestInfo{IP: "2001:db8:1:2::3"}},
			commands.CreateUserInput{Username: "yves", Password: "yves-passphrase-long"})
		return err
	})
	answers = append(answers, shareLogin(svc, "198.51.100.7", "xena"), shareLogin(svc, "2001:db8:1:3::1", "xena"))
	waitUntil(t, "the logins from other addresses wait too", func() bool { return pw.Waiting() == 4 })
	release()
	for i, answer := range answers {
		if err := within(t, "a login that waited", func() error { return <-answer }); err != nil {
			t.Fatalf("login %d, which waited for a slot: %v", i, err)
		}
	}
	if addresses, accounts := pw.Shares(); pw.Waiting() != 0 || addresses != 0 || accounts != 0 {
		t.Fatalf("after the waits: %d waiting, %d addresses and %d accounts counted, want none", pw.Waiting(), addresses, accounts)
	}
}

// TestHashQueueShareOfOneAccount: one account may have at most its share
// of the hash queue's waiters, from however many addresses: past it, its
// next password check is refused at once with ErrHashBusy — a login's, a
// password change's — while another account's login from the same
// addresses still finds room. A name that matches no user has a share as
// a user has (so it tells nothing of who exists). The counts are back to
// nothing after.
func TestHashQueueShareOfOneAccount(t *testing.T) {
	svc, pw, release, wren := shareReplica(t)
	var answers []<-chan error
	answers = append(answers, shareLogin(svc, "198.51.100.1", "wren"), shareLogin(svc, "198.51.100.2", "wren"))
	waitUntil(t, "two logins of one account wait for a slot", func() bool { return pw.Waiting() == 2 })
	refusedAtOnce(t, pw, "a third login of the account, from a third address", func() error {
		return <-shareLogin(svc, "198.51.100.3", "wren")
	})
	refusedAtOnce(t, pw, "the account's password change", func() error {
		return svc.ChangePassword(context.Background(), events.Meta{Actor: events.Actor{Type: "user", ID: wren}, Request: events.RequestInfo{IP: "198.51.100.4"}},
			wren, "wren-new-passphrase-long", "wren-passphrase-long", "")
	})
	ghost := func(ip string) <-chan error {
		answer := make(chan error, 1)
		go func() {
			_, err := svc.Login(context.Background(), events.Meta{Request: events.RequestInfo{IP: ip}}, commands.LoginInput{Username: "ghost", Password: "a-guess-of-nobody"})
			answer <- err
		}()
		return answer
	}
	answers = append(answers, shareLogin(svc, "198.51.100.1", "vera"))
	ghosts := []<-chan error{ghost("198.51.100.5"), ghost("198.51.100.6")}
	waitUntil(t, "another account's login and a name's wait", func() bool { return pw.Waiting() == 5 })
	refusedAtOnce(t, pw, "a third login of a name that matches no user", func() error { return <-ghost("198.51.100.8") })
	release()
	for i, answer := range answers {
		if err := within(t, "a login that waited", func() error { return <-answer }); err != nil {
			t.Fatalf("login %d, which waited for a slot: %v", i, err)
		}
	}
	for _, answer := range ghosts {
		if err := within(t, "a login of a name that waited", func() error { return <-answer }); !errors.Is(err, domain.ErrInvalidCredentials) {
			t.Fatalf("a login of a name that matches no user, which waited: %v, want ErrInvalidCredentials", err)
		}
	}
	if addresses, accounts := pw.Shares(); pw.Waiting() != 0 || addresses != 0 || accounts != 0 {
		t.Fatalf("after the waits: %d waiting, %d addresses and %d accounts counted, want none", pw.Waiting(), addresses, accounts)
	}
}
