package domain

import (
	"errors"
	"testing"
	"time"
)

func TestLoginThrottle(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := LoginThrottle{MaxFailures: 3, LockoutFor: 15 * time.Minute}
	for _, tc := range []struct {
		name     string
		failures int
		now      time.Time
		locked   bool
	}{
		{"below the limit", 2, t0, false},
		{"at the limit", 3, t0, true},
		{"just before the lockout ends", 3, t0.Add(15*time.Minute - time.Nanosecond), true},
		{"when the lockout ends", 3, t0.Add(15 * time.Minute), false},
		{"far above the limit, recent", 50, t0.Add(time.Minute), true},
	} {
		err := p.Check(tc.failures, t0, tc.now)
		if (err != nil) != tc.locked {
			t.Errorf("%s: err %v, want locked=%v", tc.name, err, tc.locked)
		}
		var te *ThrottledError
		if tc.locked && (!errors.Is(err, ErrThrottled) || !errors.As(err, &te) || !te.Until.Equal(t0.Add(15*time.Minute))) {
			t.Errorf("%s: %v is not a ThrottledError until the lockout ends", tc.name, err)
		}
	}
	if err := (LoginThrottle{}).Check(1000, t0, t0); err != nil {
		t.Fatalf("zero throttle locked: %v", err)
	}
}

func TestThrottleOnUserAndUnknownNamesAlike(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := LoginThrottle{MaxFailures: 2, LockoutFor: time.Hour}
	u := EvolveUser(User{}, UserCreated{UserID: "u", Username: "u"})
	var a LoginAttempts
	for i := 0; i < 2; i++ {
		evs, err := DecideUser(u, RecordLoginFailure{Reason: "invalid_credentials", Now: t0, Throttle: p})
		if err != nil || len(evs) != 1 {
			t.Fatalf("user failure %d: %v %v", i, evs, err)
		}
		u = EvolveUser(u, evs[0])
		evs, err = RecordUnknownLoginFailure(a, "invalid_credentials", t0, p)
		if err != nil || len(evs) != 1 {
			t.Fatalf("unknown failure %d: %v %v", i, evs, err)
		}
		a = EvolveLoginAttempts(a, evs[0])
	}
	// Locked: a further failure records nothing, and the right password is refused too.
	if evs, err := DecideUser(u, RecordLoginFailure{Now: t0, Throttle: p}); !errors.Is(err, ErrThrottled) || evs != nil {
		t.Fatalf("locked user failure: %v %v", evs, err)
	}
	if _, err := DecideUser(u, RecordLogin{SessionID: "s", Now: t0.Add(time.Minute), Throttle: p}); !errors.Is(err, ErrThrottled) {
		t.Fatalf("locked user login: %v", err)
	}
	if _, err := RecordUnknownLoginFailure(a, "x", t0, p); !errors.Is(err, ErrThrottled) {
		t.Fatalf("locked unknown name: %v", err)
	}
	// After the lockout the right password works and resets the count.
	evs, err := DecideUser(u, RecordLogin{SessionID: "s", Now: t0.Add(time.Hour), Throttle: p})
	if err != nil {
		t.Fatalf("login after lockout: %v", err)
	}
	if u = EvolveUser(u, evs[0]); u.FailedLogins != 0 {
		t.Fatalf("failures after success: %d", u.FailedLogins)
	}
}
