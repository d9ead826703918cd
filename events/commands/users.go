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
	// Unvouched: who creates the user cannot vouch for it
	// (domain.User.Unvouched): anyone but a platform admin.
	Unvouched bool
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
		Roles: in.Roles, Tenants: in.Tenants, Unvouched: in.Unvouched, Now: s.cfg.Now(),
		PasswordHashSealed: "pending", // validated first; hashed only for valid input
	}
	if _, err := domain.DecideUser(domain.User{}, cmd); err != nil {
		return domain.User{}, err
	}
	sealed, err := s.hashAndSeal(ctx, Claimant{Address: meta.Request.IP}, in.Password)
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

// hashAndSeal hashes password (waiting for a hash slot while ctx lasts, if
// the queue has room and who's share of it: else ErrHashBusy) and seals the
// hash.
func (s *Service) hashAndSeal(ctx context.Context, who Claimant, password string) (string, error) {
	h, err := s.passwords.Hash(ctx, who, password)
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
	return s.ExecuteUserAs(ctx, meta, userID, cmd, nil)
}

// ExecuteUserAs is ExecuteUser for a caller whose authority over the user
// rests on the user's own state (a tenant admin's: on the tenants the user
// holds roles in). may, when not nil, is checked on the state each decision
// is made against — the one the append expects the user's subject at, read
// again after a conflict — and its error is the answer, nothing appended. A
// check on the read model before the command is not enough: a concurrent
// change of the user (a role granted in a tenant the caller does not
// administer) lands in between, and the command is decided on top of it
// (an outside check, 13d: user.role_granted, then user.deactivated by an
// admin of the other tenant only — an order no serial run gives).
func (s *Service) ExecuteUserAs(ctx context.Context, meta events.Meta, userID string, cmd domain.UserCommand, may func(domain.User) error) (domain.User, error) {
	switch cmd.(type) {
	case domain.Deactivate, domain.Activate:
		return s.lifecycle(ctx, meta, userID, cmd, may)
	}
	return execute(ctx, s, meta, write[domain.User]{
		on: s.userAggregate(userID), missing: domain.ErrNotFound,
		decide: func(u domain.User) ([]domain.Event, error) {
			if may != nil {
				if err := may(u); err != nil {
					return nil, err
				}
			}
			return domain.DecideUser(u, cmd)
		},
	})
}

// profilePending addresses the user.profile_changed events evs, decided
// on user u (its last event at stream sequence seq), for an atomic append:
// with the new username's reservation ("subject must be new") when the
// name changes other than in case. A name another user has, or that was
// ever reserved — a username once used is never reused, not even by the
// user who had it — is ErrUsernameTaken.
func (s *Service) profilePending(ctx context.Context, u domain.User, seq uint64, evs []domain.Event) ([]pending, error) {
	out := onAggregate(ref{domain.AggregateUser, u.ID}, u.Version, seq, evs)
	name := newUsername(u, evs)
	if name == "" {
		return out, nil
	}
	if other, _, ok := s.state.UserByName(name); ok && other.ID != u.ID {
		return nil, ErrUsernameTaken
	}
	last, err := s.log.LastSequence(ctx, events.Subject(domain.AggregateUsername, usernameKey(name)))
	if err != nil {
		return nil, err
	}
	if last != 0 {
		return nil, ErrUsernameTaken
	}
	reservation := pending{
		aggregate: domain.AggregateUsername, id: usernameKey(name),
		event: domain.UsernameReserved{Username: name, UserID: u.ID},
	}
	return append([]pending{reservation}, out...), nil
}

// newUsername is the username that user u's events evs reserve: one that
// differs from u's other than in case ("" for none).
func newUsername(u domain.User, evs []domain.Event) string {
	for _, e := range evs {
		if p, ok := e.(domain.UserProfileChanged); ok && p.Username != "" && domain.UsernameChangeNeedsReservation(u.Username, p.Username) {
			return p.Username
		}
	}
	return ""
}

// reservedAgain reports, after an append of profile events evs of user u
// conflicted, whether it was the new username that someone reserved
// meanwhile.
func (s *Service) reservedAgain(ctx context.Context, u domain.User, evs []domain.Event) (bool, error) {
	name := newUsername(u, evs)
	if name == "" {
		return false, nil
	}
	last, err := s.log.LastSequence(ctx, events.Subject(domain.AggregateUsername, usernameKey(name)))
	return last != 0, err
}

// ChangePassword sets a user's password; every other session of the user is
// revoked. With current (the user changing their own), current must be the
// user's password — checked on the read model, then again in the decision,
// against the hash it was checked against, so that of two changes made with
// the same current password at once only the first holds (the second is
// refused as if made after it).
func (s *Service) ChangePassword(ctx context.Context, meta events.Meta, userID, password, current, keepSession string) error {
	u, _, found := s.state.User(userID) // unknown: ExecuteUser says so below
	// The new password's policy first: checked after the current one, its
	// refusal told a right guess of the current password (400 password)
	// from a wrong one (400 current_password) in a burst that recorded
	// nothing for it (an outside check, 15e).
	if err := s.passwords.Check(password, PasswordContext{Username: u.Username, Email: u.Email}); err != nil {
		return err
	}
	verified := ""
	now := s.cfg.Now()
	if current != "" {
		// A guess of the current password is a guess of the password:
		// it counts toward the login lockout, and a locked account (or
		// address) is refused before any hashing — else a stolen access
		// token would allow guessing it online, unthrottled.
		if err := s.throttled(u, found, u.Username, meta.Request.IP, now); err != nil {
			return err
		}
	}
	// The new password is hashed before the current one is verified: a
	// right guess and a wrong one then cost the same two argon2id before
	// their answer. Hashed after, only the right one paid the second, and
	// the slowest 429 of a burst told the right guess, though the lockout
	// refused it (a re-check, 15r1: the slowest in 6 of 6 bursts).
	who := Claimant{Address: meta.Request.IP, Account: userID}
	sealed, err := s.hashAndSeal(ctx, who, password)
	if err != nil {
		return err
	}
	if current != "" {
		// The throttles again once a hash slot is held (as a login's):
		// the guesses of a burst that locked it meanwhile are refused
		// without hashing.
		ok, err := s.passwordMatches(ctx, who, u, found, userID, current, func() error {
			u, _, found := s.state.User(userID)
			return s.throttled(u, found, u.Username, meta.Request.IP, now)
		})
		if err != nil {
			return err
		}
		if err := s.addressThrottled(meta.Request.IP, now); err != nil {
			return err
		}
		if !ok {
			if found {
				if err := s.recordLoginFailure(ctx, meta, u, true, u.Username, "current_password", now); err != nil {
					return err
				}
			}
			return domain.Invalid("current_password", "does not match")
		}
		verified = u.PasswordHashSealed
	}
	// With verified, decided against the lockout as it stands when the
	// change is appended (domain.ChangePassword.Throttle): the wrong
	// guesses of a burst that landed first refuse the right one.
	_, err = s.ExecuteUser(ctx, meta, userID, domain.ChangePassword{
		PasswordHashSealed: sealed, KeepSessionID: keepSession, VerifiedHash: verified,
		Throttle: s.cfg.Throttle, Now: now,
	})
	return err
}
