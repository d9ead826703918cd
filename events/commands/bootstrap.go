package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// Bootstrap creates the first platform admin when the event store is empty.
// Two replicas starting together race on the username reservation; exactly one
// wins. It reports whether this call created the admin.
func (s *Service) Bootstrap(ctx context.Context, username, password string) (bool, error) {
	head, err := s.log.Head(ctx)
	if err != nil {
		return false, err
	}
	if head > 0 {
		return false, nil
	}
	_, err = s.CreateUser(ctx, events.Meta{Actor: events.System}, CreateUserInput{
		Username: username, Password: password, Roles: []string{string(domain.GlobalAdmin)},
	})
	if errors.Is(err, ErrUsernameTaken) {
		return false, nil
	}
	return err == nil, err
}

// BootstrapPasswordInForce reports whether user username's password is
// password, once this replica has applied the store as it is now: a
// replica that started with a bootstrap password and found the admin made
// — by another replica starting at the same moment, with the same
// setting — says nothing of a password that was in fact used (outside
// check 17a: it warned that the setting was ignored).
func (s *Service) BootstrapPasswordInForce(ctx context.Context, username, password string) (bool, error) {
	head, err := s.log.Head(ctx)
	if err != nil {
		return false, err
	}
	if err := s.proj.WaitFor(ctx, head); err != nil {
		return false, err
	}
	u, _, found := s.state.UserByName(username)
	if !found || u.PasswordHashSealed == "" {
		return false, nil
	}
	return s.passwordMatches(ctx, Claimant{}, u, true, username, password, nil)
}

// ErrMasterKeyMismatch: the sealed fields of the store do not open with this
// replica's master key (another key, or a lost master.key replaced by a new
// one): every password login would fail.
var ErrMasterKeyMismatch = errors.New("commands: the master key does not open the store's sealed password hashes")

// CheckMasterKey opens the sealed password hash of user username (the
// bootstrap admin), or, when the store has no such user with one, of the
// first user who has one (the read model's SealedHashSample): a replica
// started with a master key other than the one the store was written with
// refuses to start, instead of serving, failing every login and sealing new
// hashes with its own key. Checking the named user only let a replica whose
// INFRACAST_BOOTSTRAP_ADMIN named no user (a renamed admin, another
// replica's setting) start with any key (an outside check, 16o: ready, and
// every login 500). A store without users is not checked.
func (s *Service) CheckMasterKey(username string) error {
	id, sealed := "", ""
	if u, _, found := s.state.UserByName(username); found && u.PasswordHashSealed != "" {
		id, sealed = u.ID, u.PasswordHashSealed
	} else if sampler, ok := s.state.(interface {
		SealedHashSample() (string, string, bool)
	}); ok {
		id, sealed, _ = sampler.SealedHashSample()
	}
	if sealed == "" {
		return nil
	}
	if _, err := s.sealer.Open(sealPasswordHash, sealed); err != nil {
		return fmt.Errorf("%w (user %s): %v", ErrMasterKeyMismatch, id, err)
	}
	return nil
}
