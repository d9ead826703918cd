package commands

import (
	"context"
	"errors"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// Field names bound into sealed values.
const sealPasswordHash = "password_hash"

// userAggregate is the user id as the write loop reads it.
func (s *Service) userAggregate(id string) aggregate[domain.User] {
	return aggregate[domain.User]{
		ref:     ref{domain.AggregateUser, id},
		load:    func() (domain.User, uint64, bool) { return s.state.User(id) },
		version: func(u domain.User) uint64 { return u.Version },
	}
}

// CreateUserInput is a new user as requested.
type CreateUserInput struct {
	Username, Email, Password string
	Roles                     []string
	Tenants                   []domain.TenantRole
}

// CreateUser creates a user and reserves the username in one atomic append.
func (s *Service) CreateUser(ctx context.Context, meta events.Meta, in CreateUserInput) (domain.User, error) {
	if err := s.passwords.Check(in.Password, PasswordContext{Username: in.Username, Email: in.Email}); err != nil {
		return domain.User{}, err
	}
	if _, _, taken := s.state.UserByName(in.Username); taken {
		return domain.User{}, ErrUsernameTaken
	}
	cmd := domain.CreateUser{
		UserID: NewID("user"), Username: in.Username, Email: in.Email,
		Roles: in.Roles, Tenants: in.Tenants, Now: s.cfg.Now(),
		PasswordHashSealed: "pending", // validated first; hashed only for valid input
	}
	if _, err := domain.DecideUser(domain.User{}, cmd); err != nil {
		return domain.User{}, err
	}
	sealed, err := s.hashAndSeal(in.Password)
	if err != nil {
		return domain.User{}, err
	}
	cmd.PasswordHashSealed = sealed
	evs, err := domain.DecideUser(domain.User{}, cmd)
	if err != nil {
		return domain.User{}, err
	}
	reservation := pending{
		aggregate: domain.AggregateUsername, id: usernameKey(in.Username),
		event: domain.UsernameReserved{Username: in.Username, UserID: cmd.UserID},
	}
	all := append([]pending{reservation}, onAggregate(ref{domain.AggregateUser, cmd.UserID}, 0, 0, evs)...)
	if _, err := s.appendEvents(ctx, meta, NewID("cmd"), all); err != nil {
		if errors.Is(err, events.ErrConflict) {
			return domain.User{}, ErrUsernameTaken
		}
		return domain.User{}, err
	}
	u, _, _ := s.state.User(cmd.UserID)
	return u, nil
}

func (s *Service) hashAndSeal(password string) (string, error) {
	h, err := s.passwords.Hash(password)
	if err != nil {
		return "", err
	}
	return s.sealer.Seal(sealPasswordHash, h)
}

// ExecuteUser decides cmd against the user's current state and appends the
// result, retrying on concurrent modification. It returns the new state.
// domain.Deactivate and domain.Activate also revoke the user's live API
// keys, in the same atomic append (DeactivateUser, ActivateUser).
func (s *Service) ExecuteUser(ctx context.Context, meta events.Meta, userID string, cmd domain.UserCommand) (domain.User, error) {
	switch c := cmd.(type) {
	case domain.Deactivate:
		return s.DeactivateUser(ctx, meta, userID, c.Reason)
	case domain.Activate:
		return s.ActivateUser(ctx, meta, userID, c.Reason)
	}
	return execute(ctx, s, meta, write[domain.User]{
		on: s.userAggregate(userID), missing: domain.ErrNotFound,
		decide: func(u domain.User) ([]domain.Event, error) { return domain.DecideUser(u, cmd) },
	})
}

// ChangePassword sets a user's password; every other session of the user is revoked.
func (s *Service) ChangePassword(ctx context.Context, meta events.Meta, userID, password, keepSession string) error {
	u, _, _ := s.state.User(userID) // unknown: ExecuteUser says so below
	if err := s.passwords.Check(password, PasswordContext{Username: u.Username, Email: u.Email}); err != nil {
		return err
	}
	sealed, err := s.hashAndSeal(password)
	if err != nil {
		return err
	}
	_, err = s.ExecuteUser(ctx, meta, userID, domain.ChangePassword{PasswordHashSealed: sealed, KeepSessionID: keepSession})
	return err
}

// VerifyPassword reports whether password is the user's current password.
func (s *Service) VerifyPassword(userID, password string) bool {
	u, _, ok := s.state.User(userID)
	hash := ""
	if ok {
		if h, err := s.sealer.Open(sealPasswordHash, u.PasswordHashSealed); err == nil {
			hash = h
		}
	}
	return s.passwords.Verify(password, hash)
}
