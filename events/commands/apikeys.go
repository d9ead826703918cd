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
