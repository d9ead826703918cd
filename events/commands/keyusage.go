package commands

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// KeyUsage coalesces "key used" observations from the request path into at
// most one apikey.used event per key per interval, appended off the request
// path by Run.
type KeyUsage struct {
	mu       sync.Mutex
	pending  map[string]time.Time // key ID -> latest use not yet recorded
	recorded map[string]time.Time // key ID -> last recorded use
	// recent mirrors recorded (key ID -> time.Time) for Touch to read
	// without the lock: most requests find their key recorded recently.
	recent   sync.Map
	interval time.Duration
}

// NewKeyUsage returns a coalescer that records each key at most once per interval.
func NewKeyUsage(interval time.Duration) *KeyUsage {
	return &KeyUsage{pending: map[string]time.Time{}, recorded: map[string]time.Time{}, interval: interval}
}

// Touch notes that keyID was used at t. It is cheap: nothing but a lock-free
// read when the key was recorded recently, else a map write under a mutex
// held for nanoseconds.
func (u *KeyUsage) Touch(keyID string, t time.Time) {
	if last, ok := u.recent.Load(keyID); ok && t.Sub(last.(time.Time)) < u.interval {
		return
	}
	u.mu.Lock()
	if last, ok := u.recorded[keyID]; !ok || t.Sub(last) >= u.interval {
		u.pending[keyID] = t
	}
	u.mu.Unlock()
}

// Flush appends an apikey.used event for every key touched since the last
// flush. A use whose event could not be appended (the store unreachable, a
// timeout) goes back to pending, so a later flush records it; one the domain
// refuses (no such key) is dropped. A key revoked meanwhile, here or on
// another replica, still gets its use recorded: it happened. It returns
// every error, joined.
func (u *KeyUsage) Flush(ctx context.Context, s *Service) error {
	u.mu.Lock()
	batch := u.pending
	u.pending = map[string]time.Time{}
	for id, t := range u.recorded {
		if len(batch) > 0 && t.Before(latest(batch).Add(-u.interval)) {
			delete(u.recorded, id) // old enough that Touch records it again anyway
			u.recent.Delete(id)
		}
	}
	for id, t := range batch {
		u.recorded[id] = t
		u.recent.Store(id, t)
	}
	u.mu.Unlock()
	var errs []error
	for id, t := range batch {
		_, err := s.ExecuteAPIKey(ctx, events.Meta{Actor: events.System}, id, domain.RecordAPIKeyUse{UsedAt: t})
		if err == nil {
			continue
		}
		errs = append(errs, fmt.Errorf("recording the use of %s: %w", id, err))
		if !isDomainRefusal(err) {
			u.retry(id, t)
		}
	}
	return errors.Join(errs...)
}

// retry puts a use whose event was not appended back into pending, unless a
// later use of the key is already waiting there.
func (u *KeyUsage) retry(id string, t time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if p, ok := u.pending[id]; !ok || p.Before(t) {
		u.pending[id] = t
	}
}

// isDomainRefusal reports whether err is the domain's answer (which a retry
// would only repeat) rather than a failure to reach the store.
func isDomainRefusal(err error) bool {
	var v *domain.ValidationError
	return errors.As(err, &v) || errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrForbidden) ||
		errors.Is(err, domain.ErrAlreadyExists)
}

func latest(m map[string]time.Time) time.Time {
	var t time.Time
	for _, v := range m {
		if v.After(t) {
			t = v
		}
	}
	return t
}

// Run flushes every interval/4 until ctx ends, and once more at the end.
// Every error of a flush is handed to onErr (logged and counted by the
// caller): a use that failed to be recorded is retried by the next flush.
func (u *KeyUsage) Run(ctx context.Context, s *Service, onErr func(error)) {
	tick := time.NewTicker(max(u.interval/4, 10*time.Millisecond))
	defer tick.Stop()
	report := func(err error) {
		if err != nil && onErr != nil {
			onErr(err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			report(u.Flush(final, s))
			cancel()
			return
		case <-tick.C:
			report(u.Flush(ctx, s))
		}
	}
}
