package commands

import (
	"context"
	"errors"

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
