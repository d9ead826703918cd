package commands

import (
	"context"
	"crypto/rand"
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

// apiKeyAggregate is the key id as the write loop reads it.
func (s *Service) apiKeyAggregate(id string) aggregate[domain.APIKey] {
	return aggregate[domain.APIKey]{
		ref:     ref{domain.AggregateAPIKey, id},
		load:    func() (domain.APIKey, uint64, bool) { return s.state.APIKey(id) },
		version: func(k domain.APIKey) uint64 { return k.Version },
	}
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
	if _, err := s.appendEvents(ctx, meta, NewID("cmd"), onAggregate(ref{domain.AggregateAPIKey, cmd.KeyID}, 0, 0, evs)); err != nil {
		return domain.APIKey{}, "", err
	}
	k, _, _ := s.state.APIKey(cmd.KeyID)
	return k, secret, nil
}

// ExecuteAPIKey decides a key command against the key's state and appends the result.
func (s *Service) ExecuteAPIKey(ctx context.Context, meta events.Meta, keyID string, cmd domain.APIKeyCommand) (domain.APIKey, error) {
	return execute(ctx, s, meta, write[domain.APIKey]{
		on: s.apiKeyAggregate(keyID), missing: domain.ErrNotFound,
		decide: func(k domain.APIKey) ([]domain.Event, error) { return domain.DecideAPIKey(k, cmd) },
	})
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
