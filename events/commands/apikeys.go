package commands

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
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
	// The name must be free among the owner's live keys: a client that
	// retries a create whose answer it lost — or sends it twice at once,
	// through two replicas — gets 409 instead of a second live key whose
	// secret nobody holds. The name's reservation subject is read through
	// the stream's leader, this replica catches up with it (and with the
	// rest of the write that made it: the key), and the reservation is
	// appended expecting it unchanged, in the same atomic batch as the key.
	// The name as stored (the decision trims it): "deploy " sent again as
	// "deploy" — or the reverse — is the same name (a re-check, 14r5: a
	// name with a trailing space made a second live key).
	name := strings.TrimSpace(in.Name)
	nameKey := APIKeyNameKey(in.Owner, name)
	subject := events.Subject(domain.AggregateAPIKeyName, nameKey)
	err = s.writeBatch(ctx, meta, func() ([]pending, error) {
		last, err := s.caughtUpWithWrite(ctx, subject)
		if err != nil {
			return nil, err
		}
		if n := s.state.APIKeysHeld(in.Owner); n >= MaxAPIKeysPerOwner {
			return nil, domain.Invalid("api_keys", "this user holds %d API keys already (at most %d, expired ones included); revoke one first", n, MaxAPIKeysPerOwner)
		}
		if s.state.LiveAPIKeyNamed(in.Owner, name, cmd.Now) {
			return nil, ErrAPIKeyNameTaken
		}
		reservation := pending{
			aggregate: domain.AggregateAPIKeyName, id: nameKey, expect: last,
			event: domain.APIKeyNameReserved{OwnerID: in.Owner, Name: name, KeyID: cmd.KeyID},
		}
		return append([]pending{reservation}, onAggregate(ref{domain.AggregateAPIKey, cmd.KeyID}, 0, 0, evs)...), nil
	})
	if err != nil {
		return domain.APIKey{}, "", err
	}
	k, _, _ := s.state.APIKey(cmd.KeyID)
	return k, secret, nil
}

// replacedMeanwhile reports whether what a request just stored on the
// aggregate was replaced by another write before the request answers:
// replaced is asked once this replica has caught up with the aggregate. A
// failed catch-up says no (counted, CatchUpFailures): the write was stored
// and in force, and an error now would tell the client that nothing
// changed while its old secret is already void.
func (s *Service) replacedMeanwhile(ctx context.Context, aggregate, id string, replaced func() bool) bool {
	if err := s.CatchUp(ctx, aggregate, id); err != nil {
		s.catchUpFailures.Add(1)
		return false
	}
	return replaced()
}

// ErrAPIKeyNameTaken: a live key of the same owner has that name.
var ErrAPIKeyNameTaken = fmt.Errorf("%w: api key name taken", domain.ErrAlreadyExists)

// MaxAPIKeysPerOwner bounds the keys one user holds (not revoked; expired
// ones count until revoked): a service needs a few, a fleet of machines a
// few hundred, and nothing bounded them — one tenant admin made 25,000
// keys, each up to 16 KB in every replica's memory, and every creation
// looked at all of the owner's keys (an outside check, 19l). A constant,
// as MaxSCIMConnectionsPerOwner: a bound, not exact under creations at
// once through several replicas.
const MaxAPIKeysPerOwner = 1000

// ExecuteAPIKey decides a key command against the key's state and appends the result.
func (s *Service) ExecuteAPIKey(ctx context.Context, meta events.Meta, keyID string, cmd domain.APIKeyCommand) (domain.APIKey, error) {
	return s.ExecuteAPIKeyAs(ctx, meta, keyID, cmd, nil)
}

// ExecuteAPIKeyAs is ExecuteAPIKey for a caller whose authority over the
// key rests on the key's state (its owner, who changes with a rotation):
// may, when not nil, is checked on the state each decision is made against
// (the one the append expects the key's subject at), and its error is the
// answer, nothing appended (see ExecuteUserAs).
func (s *Service) ExecuteAPIKeyAs(ctx context.Context, meta events.Meta, keyID string, cmd domain.APIKeyCommand, may func(domain.APIKey) error) (domain.APIKey, error) {
	return execute(ctx, s, meta, write[domain.APIKey]{
		on: s.apiKeyAggregate(keyID), missing: domain.ErrNotFound,
		decide: func(k domain.APIKey) ([]domain.Event, error) {
			if may != nil {
				if err := may(k); err != nil {
					return nil, err
				}
			}
			return domain.DecideAPIKey(k, cmd)
		},
	})
}

// RotateInput names who rotates a key: they hold the new secret and own the key.
type RotateInput struct {
	KeyID, Env, OwnerID string
	CallerPermissions   func(tenant string) domain.PermissionSet
	// May, when not nil, is the caller's authority over the key, checked
	// on the key as the rotation is decided against it (ExecuteAPIKeyAs).
	May func(domain.APIKey) error
	// Replaces is the hash of the secret of the key as the caller found it
	// (and authorized); "": as this replica's read model has it now.
	Replaces string
}

// RotateAPIKey gives a key a new secret (returned once); the old one
// stops. The secret replaced is the one the caller saw: a key rotated by
// another request meanwhile (rotations at once) is refused,
// domain.ErrAPIKeyRotated — only the secret in force is ever shown.
func (s *Service) RotateAPIKey(ctx context.Context, meta events.Meta, in RotateInput) (domain.APIKey, string, error) {
	secret := NewAPIKeySecret(in.Env)
	replaces := in.Replaces
	if replaces == "" {
		k, _, _ := s.state.APIKey(in.KeyID) // unknown: the decision says so
		replaces = k.SecretHash
	}
	k, err := s.ExecuteAPIKeyAs(ctx, meta, in.KeyID, domain.RotateAPIKey{
		Replaces: replaces, SecretHash: HashToken(secret), Now: s.cfg.Now(), OwnerID: in.OwnerID, CallerPermissions: in.CallerPermissions,
	}, in.May)
	if err != nil {
		return domain.APIKey{}, "", err
	}
	// Another rotation decided after this one was stored — a request sent
	// with it whose read found this secret — may have replaced it before
	// this answer goes out: then this secret is void and is not shown (a
	// re-check, 14r4: of six rotations sent together, three answered a
	// secret, two of them void). One round trip, on a rare request.
	// Compared with this request's own secret: k is the key as the read
	// model had it once the write was applied, which may hold the other
	// rotation already.
	if s.replacedMeanwhile(ctx, domain.AggregateAPIKey, in.KeyID, func() bool {
		now, _, _ := s.state.APIKey(in.KeyID)
		return now.SecretHash != HashToken(secret)
	}) {
		return domain.APIKey{}, "", domain.ErrAPIKeyRotated
	}
	return k, secret, nil
}
