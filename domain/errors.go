package domain

import (
	"errors"
	"fmt"
)

// Sentinel errors. The HTTP layer maps each to one status and code of the contract.
var (
	ErrNotFound           = errors.New("domain: not found")
	ErrAlreadyExists      = errors.New("domain: already exists")
	ErrUnknownPermission  = errors.New("domain: unknown permission")
	ErrUnknownRole        = errors.New("domain: unknown role")
	ErrInvalidCredentials = errors.New("domain: invalid credentials")
	ErrUserInactive       = errors.New("domain: user deactivated")
	ErrUserActive         = errors.New("domain: user already active")
	ErrSessionRevoked     = errors.New("domain: session revoked")
	ErrSessionExpired     = errors.New("domain: session expired")
	ErrRefreshReused      = errors.New("domain: refresh token reused")
	ErrForbidden          = errors.New("domain: insufficient permissions")
)

// ValidationError names the offending field of a command.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("domain: invalid %s: %s", e.Field, e.Message)
}

// Invalid returns a *ValidationError for field.
func Invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}
