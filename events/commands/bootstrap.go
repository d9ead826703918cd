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

// ErrMasterKeyMismatch: the sealed fields of the store do not open with this
// replica's master key (another key, or a lost master.key replaced by a new
// one): every password login would fail.
var ErrMasterKeyMismatch = errors.New("commands: the master key does not open the store's sealed password hashes")

// CheckMasterKey opens the sealed password hash of user username (the
// bootstrap admin, whom every store has unless renamed): a replica started
// with a master key other than the one the store was written with refuses to
// start, instead of serving and failing every login. A store without that
// user is not checked.
func (s *Service) CheckMasterKey(username string) error {
	u, _, found := s.state.UserByName(username)
	if !found || u.PasswordHashSealed == "" {
		return nil
	}
	if _, err := s.sealer.Open(sealPasswordHash, u.PasswordHashSealed); err != nil {
		return fmt.Errorf("%w (user %s): %v", ErrMasterKeyMismatch, u.ID, err)
	}
	return nil
}
