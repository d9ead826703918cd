package domain

import (
	"errors"
	"fmt"
	"time"
)

// LoginThrottle is the brute-force policy. After MaxFailures consecutive failed
// logins, every further attempt — with the right password too — is refused
// until LockoutFor has passed since the last failure. The zero value throttles
// nothing.
type LoginThrottle struct {
	MaxFailures int
	LockoutFor  time.Duration
}

// ErrThrottled: too many failed logins; see *ThrottledError for when to retry.
var ErrThrottled = errors.New("domain: too many failed logins")

// ThrottledError says until when logins are refused.
type ThrottledError struct{ Until time.Time }

func (e *ThrottledError) Error() string { return fmt.Sprintf("%v until %s", ErrThrottled, e.Until) }

// Unwrap makes errors.Is(err, ErrThrottled) hold.
func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// Check returns a *ThrottledError when failures consecutive failures, the last
// at lastFailure, lock logins at now.
func (p LoginThrottle) Check(failures int, lastFailure, now time.Time) error {
	if p.MaxFailures <= 0 || failures < p.MaxFailures {
		return nil
	}
	until := lastFailure.Add(p.LockoutFor)
	if now.Before(until) {
		return &ThrottledError{Until: until}
	}
	return nil
}

// AggregateLogin names the aggregate of failed logins on a name that
// matches no user; its ID is a hash of the name (LoginAttempts).
const AggregateLogin = "login"

// LoginAttempts is the state of a "login" aggregate: failed logins on a name
// that matches no user, throttled exactly like a user's so that a lockout
// tells nothing about whether the user exists.
type LoginAttempts struct {
	Failures     int
	LastFailedAt time.Time
	Version      uint64
}

// RecordUnknownLoginFailure decides a failed login on a name that matches no user.
func RecordUnknownLoginFailure(a LoginAttempts, reason string, now time.Time, p LoginThrottle) ([]Event, error) {
	if err := p.Check(a.Failures, a.LastFailedAt, now); err != nil {
		return nil, err
	}
	return []Event{UserLoginFailed{Reason: reason, At: now.UTC()}}, nil
}

// EvolveLoginAttempts applies a failed login to a login aggregate.
func EvolveLoginAttempts(a LoginAttempts, e Event) LoginAttempts {
	if ev, ok := Deref(e).(UserLoginFailed); ok {
		a.Failures++
		a.LastFailedAt = ev.At
		a.Version++
	}
	return a
}
