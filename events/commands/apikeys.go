package commands

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// NewAPIKeySecret returns a fresh key for env (domain.KeyEnvLive or KeyEnvTest)
// with 256 bits from crypto/rand.
func NewAPIKeySecret(env string) string {
	var r [32]byte
	if _, err := rand.Read(r[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return domain.FormatAPIKey(env, r)
}

// CreateAPIKeyInput is a key as requested by its creator.
type CreateAPIKeyInput struct {
	Name        string
	Owner       string
	Tenants     []string
	Permissions []string
	AllowedIPs  []string
	ExpiresAt   *time.Time
	Env         string
	// CallerPermissions tells what the creator holds in a tenant; the key
	// may hold no more (no privilege escalation).
	CallerPermissions func(tenant string) domain.PermissionSet
}

func keyEvents(k domain.APIKey, expect uint64, evs []domain.Event) []pending {
	return onAggregate(domain.AggregateAPIKey, k.ID, k.Version, expect, evs)
}

// CreateAPIKey creates a key and returns it with its secret (shown once; only
// its SHA-256 is stored).
func (s *Service) CreateAPIKey(ctx context.Context, meta events.Meta, in CreateAPIKeyInput) (domain.APIKey, string, error) {
	secret := NewAPIKeySecret(in.Env)
	cmd := domain.CreateAPIKey{
		KeyID: NewID("key"), Name: in.Name, OwnerID: in.Owner, Tenants: in.Tenants,
		Permissions: in.Permissions, AllowedIPs: in.AllowedIPs, SecretHash: HashToken(secret),
		ExpiresAt: in.ExpiresAt, Now: s.cfg.Now(), CallerPermissions: in.CallerPermissions,
	}
	evs, err := domain.DecideAPIKey(domain.APIKey{}, cmd)
	if err != nil {
		return domain.APIKey{}, "", err
	}
	if _, err := s.appendEvents(ctx, meta, NewID("cmd"), keyEvents(domain.APIKey{ID: cmd.KeyID}, 0, evs)); err != nil {
		return domain.APIKey{}, "", err
	}
	k, _, _ := s.state.APIKey(cmd.KeyID)
	return k, secret, nil
}

// ExecuteAPIKey decides a key command against the key's state and appends the result.
func (s *Service) ExecuteAPIKey(ctx context.Context, meta events.Meta, keyID string, cmd domain.APIKeyCommand) (domain.APIKey, error) {
	var out domain.APIKey
	err := s.retry(ctx, events.Subject(domain.AggregateAPIKey, keyID), func(commandID string) error {
		k, seq, ok := s.state.APIKey(keyID)
		if !ok {
			return domain.ErrNotFound
		}
		evs, err := domain.DecideAPIKey(k, cmd)
		if err != nil {
			return err
		}
		if len(evs) > 0 {
			if _, err := s.appendEvents(ctx, meta, commandID, keyEvents(k, seq, evs)); err != nil {
				return err
			}
		}
		out, _, _ = s.state.APIKey(keyID)
		return nil
	})
	return out, err
}

// RotateInput names who rotates a key: they hold the new secret and own the key.
type RotateInput struct {
	KeyID, Env, OwnerID string
	CallerPermissions   func(tenant string) domain.PermissionSet
}

// RotateAPIKey gives a key a new secret (returned once); the old one stops.
func (s *Service) RotateAPIKey(ctx context.Context, meta events.Meta, in RotateInput) (domain.APIKey, string, error) {
	secret := NewAPIKeySecret(in.Env)
	k, err := s.ExecuteAPIKey(ctx, meta, in.KeyID, domain.RotateAPIKey{
		SecretHash: HashToken(secret), Now: s.cfg.Now(), OwnerID: in.OwnerID, CallerPermissions: in.CallerPermissions,
	})
	if err != nil {
		return domain.APIKey{}, "", err
	}
	return k, secret, nil
}

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
// refuses (the key revoked or deleted meanwhile) is dropped. It returns every
// error, joined.
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
