package domain

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// givenMFA folds events into an MFA state, starting from the zero value.
func givenMFA(events ...Event) MFA {
	var m MFA
	for _, e := range events {
		m = EvolveMFA(m, e)
	}
	return m
}

// recoveryHashes is a set of RecoveryCodeCount distinct hashes named by
// prefix.
func recoveryHashes(prefix string) []string {
	out := make([]string, RecoveryCodeCount)
	for i := range out {
		out[i] = prefix + string(rune('a'+i))
	}
	return out
}

// The events of a user who enrolled TOTP (confirmed at step 100, with the
// recovery codes "old-*"), and a passkey.
var (
	mfaEnrolled  = MFATOTPEnrolled{UserID: uid, SecretSealed: "sealed:s1", At: t0}
	mfaConfirmed = MFATOTPConfirmed{UserID: uid, Step: 100, At: t0}
	mfaCodes     = MFARecoveryCodesGenerated{UserID: uid, Hashes: recoveryHashes("old-"), At: t0}
	mfaPasskey   = Passkey{ID: "cred-1", Name: "Laptop", PublicKey: []byte{1, 2, 3}, CreatedAt: t0}
	mfaWithKey   = MFAPasskeyRegistered{UserID: uid, Passkey: mfaPasskey, TokenID: "reg-1", TokenExpires: t0.Add(5 * time.Minute)}
)

func TestDecideMFA(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	later := t0.Add(time.Minute)
	tooMany := []Event{mfaEnrolled}
	for i := 0; i < MaxPasskeys; i++ {
		p := mfaPasskey
		p.ID = "cred-" + strings.Repeat("x", i+2)
		tooMany = append(tooMany, MFAPasskeyRegistered{UserID: uid, Passkey: p})
	}
	newKey := mfaPasskey
	newKey.ID = "cred-2"

	tests := []struct {
		name  string
		given []Event
		when  MFACommand
		then  outcome
	}{
		// Enrolment and confirmation of TOTP.
		{
			name: "enrol: a pending secret, the time in UTC",
			when: EnrollTOTP{UserID: uid, SecretSealed: "sealed:s1", Now: t0.In(cet)},
			then: outcome{events: events(mfaEnrolled)},
		},
		{
			name: "enrol: no secret",
			when: EnrollTOTP{UserID: uid, Now: t0},
			then: outcome{field: "secret"},
		},
		{
			name: "confirm: nothing enrolled",
			when: ConfirmTOTP{SecretSealed: "sealed:s1", Step: 100, RecoveryHashes: recoveryHashes("new-"), Now: t0},
			then: outcome{err: ErrMFANotEnrolled},
		},
		{
			name:  "confirm: the secret and a first set of recovery codes",
			given: events(mfaEnrolled),
			when:  ConfirmTOTP{SecretSealed: "sealed:s1", Step: 100, RecoveryHashes: recoveryHashes("old-"), Now: t0},
			then:  outcome{events: events(mfaConfirmed, mfaCodes)},
		},
		{
			// Two tabs: the code was checked against s1, and another
			// enrolment put s2 in its place meanwhile (an outside check,
			// 13f: the confirmation confirmed s2, which the code never matched).
			name:  "confirm: the secret checked was replaced by another enrolment",
			given: events(mfaEnrolled, MFATOTPEnrolled{UserID: uid, SecretSealed: "sealed:s2", At: t0}),
			when:  ConfirmTOTP{SecretSealed: "sealed:s1", Step: 100, RecoveryHashes: recoveryHashes("old-"), Now: t0},
			then:  outcome{err: ErrTOTPEnrolmentReplaced},
		},
		{
			name: "confirm: the secret checked was replaced by another enrolment, confirmed since",
			given: events(mfaEnrolled, MFATOTPEnrolled{UserID: uid, SecretSealed: "sealed:s2", At: t0},
				MFATOTPConfirmed{UserID: uid, Step: 100, At: t0}),
			when: ConfirmTOTP{SecretSealed: "sealed:s1", Step: 100, RecoveryHashes: recoveryHashes("old-"), Now: t0},
			then: outcome{err: ErrTOTPEnrolmentReplaced},
		},
		{
			name:  "confirm: not ten recovery codes",
			given: events(mfaEnrolled),
			when:  ConfirmTOTP{SecretSealed: "sealed:s1", Step: 100, RecoveryHashes: recoveryHashes("new-")[:9], Now: t0},
			then:  outcome{field: "recovery_codes"},
		},
		{
			name:  "confirm: already confirmed, nothing pending (a retry whose answer was lost)",
			given: events(mfaEnrolled, mfaConfirmed, mfaCodes),
			when:  ConfirmTOTP{SecretSealed: "sealed:s1", Step: 101, RecoveryHashes: recoveryHashes("new-"), Now: later},
			then:  outcome{err: ErrTOTPConfirmed},
		},
		{
			name:  "first recovery codes: the user has some, none made",
			given: events(mfaEnrolled, mfaConfirmed, mfaCodes),
			when:  GenerateRecoveryCodes{Hashes: recoveryHashes("new-"), IfNone: true, Now: later},
			then:  outcome{},
		},
		{
			// The old secret's last step says nothing of the new one's codes,
			// none of which was ever used (a re-check: a rotation right after
			// signing in was refused 401 "already used").
			name:  "confirm: a new secret in the step the old one last used",
			given: events(mfaEnrolled, mfaConfirmed, mfaCodes, MFATOTPEnrolled{UserID: uid, SecretSealed: "sealed:s2", At: later}),
			when:  ConfirmTOTP{SecretSealed: "sealed:s2", Step: 100, RecoveryHashes: recoveryHashes("new-"), Now: later},
			then: outcome{events: events(MFATOTPConfirmed{UserID: uid, Step: 100, At: later},
				MFARecoveryCodesGenerated{UserID: uid, Hashes: recoveryHashes("new-"), At: later})},
		},
		{
			// The confirmation's own code is spent: a login with it is a replay.
			name: "TOTP: the step a new secret was confirmed with",
			given: events(mfaEnrolled, mfaConfirmed, mfaCodes, MFATOTPEnrolled{UserID: uid, SecretSealed: "sealed:s2", At: later},
				MFATOTPConfirmed{UserID: uid, Step: 90, At: later}),
			when: UseTOTP{Step: 90, Now: later},
			then: outcome{err: ErrMFACodeUsed},
		},

		// Using a TOTP code.
		{
			name:  "TOTP: pending only, not confirmed",
			given: events(mfaEnrolled),
			when:  UseTOTP{Step: 101, Now: later},
			then:  outcome{err: ErrMFANotEnrolled},
		},
		{
			name:  "TOTP: a later step, spending the MFA token",
			given: events(mfaEnrolled, mfaConfirmed, mfaCodes),
			when:  UseTOTP{Step: 101, TokenID: "mfa-1", TokenExpires: later.In(cet), Now: later},
			then:  outcome{events: events(MFACodeUsed{UserID: uid, Step: 101, TokenID: "mfa-1", TokenExpires: later, At: later})},
		},
		{
			name:  "TOTP: the step that confirmed the secret is spent",
			given: events(mfaEnrolled, mfaConfirmed, mfaCodes),
			when:  UseTOTP{Step: 100, Now: later},
			then:  outcome{err: ErrMFACodeUsed},
		},
		{
			name:  "TOTP: a replayed step is refused",
			given: events(mfaEnrolled, mfaConfirmed, mfaCodes, MFACodeUsed{UserID: uid, Step: 101, At: later}),
			when:  UseTOTP{Step: 101, Now: later},
			then:  outcome{err: ErrMFACodeUsed},
		},
		{
			name:  "TOTP: an earlier step than one used is refused (RFC 6238 §5.2)",
			given: events(mfaEnrolled, mfaConfirmed, mfaCodes, MFACodeUsed{UserID: uid, Step: 103, At: later}),
			when:  UseTOTP{Step: 102, Now: later},
			then:  outcome{err: ErrMFACodeUsed},
		},
		{
			name:  "TOTP: a spent MFA token, even with a fresh step",
			given: events(mfaEnrolled, mfaConfirmed, mfaCodes, MFACodeUsed{UserID: uid, Step: 101, TokenID: "mfa-1", TokenExpires: later.Add(time.Hour), At: later}),
			when:  UseTOTP{Step: 102, TokenID: "mfa-1", Now: later},
			then:  outcome{err: ErrMFATokenUsed},
		},

		// Recovery codes.
		{
			name:  "recovery code: unused",
			given: events(mfaEnrolled, mfaConfirmed, mfaCodes),
			when:  UseRecoveryCode{Index: 3, TokenID: "mfa-1", TokenExpires: later, Now: later},
			then:  outcome{events: events(MFARecoveryCodeUsed{UserID: uid, Index: 3, TokenID: "mfa-1", TokenExpires: later, At: later})},
		},
		{
			name:  "recovery code: single use",
			given: events(mfaEnrolled, mfaConfirmed, mfaCodes, MFARecoveryCodeUsed{UserID: uid, Index: 3, At: later}),
			when:  UseRecoveryCode{Index: 3, Now: later},
			then:  outcome{err: ErrMFACodeUsed},
		},
		{
			name:  "recovery code: another of the set is still good",
			given: events(mfaEnrolled, mfaConfirmed, mfaCodes, MFARecoveryCodeUsed{UserID: uid, Index: 3, At: later}),
			when:  UseRecoveryCode{Index: 4, Now: later},
			then:  outcome{events: events(MFARecoveryCodeUsed{UserID: uid, Index: 4, At: later})},
		},
		{
			name:  "recovery code: no such index",
			given: events(mfaEnrolled, mfaConfirmed, mfaCodes),
			when:  UseRecoveryCode{Index: RecoveryCodeCount, Now: later},
			then:  outcome{err: ErrMFANotEnrolled},
		},
		{
			name:  "recovery codes: a new set needs a factor",
			given: events(mfaEnrolled),
			when:  GenerateRecoveryCodes{Hashes: recoveryHashes("new-"), Now: later},
			then:  outcome{err: ErrMFANotEnrolled},
		},
		{
			name:  "recovery codes: a new set",
			given: events(mfaEnrolled, mfaConfirmed, mfaCodes),
			when:  GenerateRecoveryCodes{Hashes: recoveryHashes("new-"), Replaces: recoveryHashes("old-")[0], Now: later},
			then:  outcome{events: events(MFARecoveryCodesGenerated{UserID: uid, Hashes: recoveryHashes("new-"), At: later})},
		},
		{
			// Two requests at once, both seeing the "old-" set: the second
			// is refused rather than showing a set that the first voids
			// (an outside check, 13f: both answered 200).
			name:  "recovery codes: the set seen was replaced meanwhile",
			given: events(mfaEnrolled, mfaConfirmed, mfaCodes, MFARecoveryCodesGenerated{UserID: uid, Hashes: recoveryHashes("mid-"), At: later}),
			when:  GenerateRecoveryCodes{Hashes: recoveryHashes("new-"), Replaces: recoveryHashes("old-")[0], Now: later},
			then:  outcome{err: ErrRecoveryCodesReplaced},
		},

		// Passkeys.
		{
			name: "passkey: the first factor of a user",
			when: RegisterPasskey{UserID: uid, Passkey: mfaPasskey, TokenID: "reg-1", TokenExpires: t0.Add(5 * time.Minute).In(cet)},
			then: outcome{events: events(mfaWithKey)},
		},
		{
			name: "passkey: no public key",
			when: RegisterPasskey{UserID: uid, Passkey: Passkey{ID: "cred-1", Name: "Laptop"}},
			then: outcome{field: "credential"},
		},
		{
			name: "passkey: a name with a control character",
			when: RegisterPasskey{UserID: uid, Passkey: Passkey{ID: "cred-1", Name: "Lap\ntop", PublicKey: []byte{1}}},
			then: outcome{field: "name"},
		},
		{
			name:  "passkey: the same credential twice",
			given: events(mfaWithKey),
			when:  RegisterPasskey{UserID: uid, Passkey: mfaPasskey},
			then:  outcome{err: ErrAlreadyExists},
		},
		{
			name:  "passkey: a spent registration challenge",
			given: events(mfaWithKey),
			when:  RegisterPasskey{UserID: uid, Passkey: newKey, TokenID: "reg-1"},
			then:  outcome{err: ErrMFATokenUsed},
		},
		{
			// A ceremony begun before an administrator's reset (Resets 0)
			// does not finish after it (outside check 14e).
			name:  "passkey: a registration begun before a reset of the factors",
			given: events(mfaWithKey, MFAReset{UserID: uid, Reason: "lost device"}),
			when:  RegisterPasskey{UserID: uid, Passkey: newKey, TokenID: "reg-2"},
			then:  outcome{err: ErrMFATokenUsed},
		},
		{
			name:  "passkey: a registration begun after the reset",
			given: events(mfaWithKey, MFAReset{UserID: uid, Reason: "lost device"}),
			when:  RegisterPasskey{UserID: uid, Passkey: newKey, TokenID: "reg-2", Resets: 1},
			then:  outcome{events: events(MFAPasskeyRegistered{UserID: uid, Passkey: newKey, TokenID: "reg-2"})},
		},
		{
			name:  "passkey: at most MaxPasskeys",
			given: tooMany,
			when:  RegisterPasskey{UserID: uid, Passkey: newKey},
			then:  outcome{field: "credential"},
		},
		{
			name:  "passkey: used, passwordless",
			given: events(mfaWithKey),
			when:  UsePasskey{CredentialID: "cred-1", SignCount: 7, Passwordless: true, TokenID: "pk-1", TokenExpires: later, Now: later},
			then: outcome{events: events(MFAPasskeyUsed{UserID: uid, CredentialID: "cred-1", SignCount: 7, Passwordless: true,
				TokenID: "pk-1", TokenExpires: later, At: later})},
		},
		{
			name:  "passkey: an unknown credential",
			given: events(mfaWithKey),
			when:  UsePasskey{CredentialID: "cred-2", Now: later},
			then:  outcome{err: ErrMFANotEnrolled},
		},
		{
			name:  "passkey: a challenge is spent once",
			given: events(mfaWithKey, MFAPasskeyUsed{UserID: uid, CredentialID: "cred-1", TokenID: "pk-1", TokenExpires: later.Add(time.Hour), At: later}),
			when:  UsePasskey{CredentialID: "cred-1", TokenID: "pk-1", Now: later},
			then:  outcome{err: ErrMFATokenUsed},
		},
		{
			name:  "passkey: deleted",
			given: events(mfaWithKey),
			when:  DeletePasskey{CredentialID: "cred-1"},
			then:  outcome{events: events(MFAPasskeyDeleted{UserID: uid, CredentialID: "cred-1"})},
		},
		{
			name:  "passkey: delete an unknown one",
			given: events(mfaWithKey),
			when:  DeletePasskey{CredentialID: "cred-2"},
			then:  outcome{err: ErrNotFound},
		},

		// Reset.
		{
			name:  "reset: every factor",
			given: events(mfaEnrolled, mfaConfirmed, mfaCodes, mfaWithKey),
			when:  ResetMFA{Reason: "lost phone"},
			then:  outcome{events: events(MFAReset{UserID: uid, Reason: "lost phone"})},
		},
		{
			name:  "reset: a pending secret alone",
			given: events(mfaEnrolled),
			when:  ResetMFA{},
			then:  outcome{events: events(MFAReset{UserID: uid})},
		},
		{
			// Still an event: it voids the enrolment tokens issued before.
			name:  "reset: nothing left to reset",
			given: events(mfaEnrolled, mfaConfirmed, mfaCodes, MFAReset{UserID: uid}),
			when:  ResetMFA{},
			then:  outcome{events: events(MFAReset{UserID: uid})},
		},
		{
			name: "reset: a user who never enrolled anything",
			when: ResetMFA{UserID: uid, Reason: "policy"},
			then: outcome{events: events(MFAReset{UserID: uid, Reason: "policy"})},
		},
		{
			name: "a command on a user who never enrolled anything",
			when: UseTOTP{Step: 1, Now: t0},
			then: outcome{err: ErrMFANotEnrolled},
		},
		{
			name:  "an unknown command",
			given: events(mfaEnrolled),
			when:  nil,
			then:  outcome{field: "command"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecideMFA(givenMFA(tc.given...), tc.when)
			tc.then.check(t, got, err)
		})
	}
}

// TestEvolveMFA: the state a history folds into — enrolment, use,
// recovery codes spent once and voided by a new set, passkeys, the reset
// (which keeps the replay guard) — and that it never changes an earlier
// state's slices.
func TestEvolveMFA(t *testing.T) {
	later := t0.Add(time.Minute)

	pending := givenMFA(mfaEnrolled)
	if pending.HasTOTP() || pending.HasFactor() || pending.PendingSecretSealed != "sealed:s1" || len(pending.Factors()) != 0 {
		t.Fatalf("pending only: %+v, factors %v", pending, pending.Factors())
	}

	m := givenMFA(mfaEnrolled, mfaConfirmed, mfaCodes)
	if !m.HasTOTP() || m.PendingSecretSealed != "" || m.TOTPSecretSealed != "sealed:s1" || m.LastTOTPStep != 100 {
		t.Fatalf("confirmed: %+v", m)
	}
	if got := m.Factors(); !reflect.DeepEqual(got, []string{FactorTOTP, FactorRecoveryCode}) || m.RecoveryCodesLeft() != 10 || m.Version != 3 {
		t.Fatalf("confirmed: factors %v, %d codes left, version %d", got, m.RecoveryCodesLeft(), m.Version)
	}

	// A code of a later step raises the guard; a recovery code is spent.
	used := EvolveMFA(m, MFACodeUsed{UserID: uid, Step: 105, TokenID: "mfa-1", TokenExpires: later.Add(5 * time.Minute), At: later})
	if used.LastTOTPStep != 105 || !used.IsSpent("mfa-1") {
		t.Fatalf("after a code: step %d, spent %v", used.LastTOTPStep, used.Spent)
	}
	used = EvolveMFA(used, MFACodeUsed{UserID: uid, Step: 102, At: later}) // never lowers it
	if used.LastTOTPStep != 105 {
		t.Fatalf("an earlier step lowered the guard to %d", used.LastTOTPStep)
	}
	spent := EvolveMFA(used, MFARecoveryCodeUsed{UserID: uid, Index: 2, At: later})
	if spent.RecoveryCodesLeft() != 9 || !spent.RecoveryUsed[2] {
		t.Fatalf("after a recovery code: %d left, used %v", spent.RecoveryCodesLeft(), spent.RecoveryUsed)
	}
	if used.RecoveryUsed[2] || m.RecoveryCodesLeft() != 10 {
		t.Fatal("spending a recovery code changed an earlier state")
	}

	// A new set voids the old one: the new codes are all unused, the old
	// hashes gone.
	fresh := EvolveMFA(spent, MFARecoveryCodesGenerated{UserID: uid, Hashes: recoveryHashes("new-"), At: later})
	if fresh.RecoveryCodesLeft() != 10 || !reflect.DeepEqual(fresh.RecoveryHashes, recoveryHashes("new-")) {
		t.Fatalf("after a new set: %d left, hashes %v", fresh.RecoveryCodesLeft(), fresh.RecoveryHashes)
	}
	if !spent.RecoveryUsed[2] || spent.RecoveryHashes[0] != "old-a" {
		t.Fatal("a new set changed an earlier state")
	}

	// Passkeys: used (sign count, last use), deleted.
	k := EvolveMFA(fresh, mfaWithKey)
	if got := k.Factors(); !reflect.DeepEqual(got, []string{FactorTOTP, FactorWebAuthn, FactorRecoveryCode}) || !k.IsSpent("reg-1") {
		t.Fatalf("with a passkey: factors %v, spent %v", got, k.Spent)
	}
	k2 := EvolveMFA(k, MFAPasskeyUsed{UserID: uid, CredentialID: "cred-1", SignCount: 9, At: later})
	if p, _ := k2.Passkey("cred-1"); p.SignCount != 9 || !p.LastUsedAt.Equal(later) {
		t.Fatalf("after a use: %+v", p)
	}
	if p, _ := k.Passkey("cred-1"); p.SignCount != 0 {
		t.Fatal("a passkey use changed an earlier state")
	}
	k3 := EvolveMFA(k2, MFAPasskeyDeleted{UserID: uid, CredentialID: "cred-1"})
	if _, ok := k3.Passkey("cred-1"); ok || len(k2.Passkeys) != 1 {
		t.Fatal("deletion: the passkey is still there, or an earlier state lost it")
	}

	// The reset: no factor, no codes, no pending secret; the replay guard
	// and the spent tokens stay.
	r := EvolveMFA(k3, MFAReset{UserID: uid, Reason: "lost phone"})
	if r.HasFactor() || r.HasTOTP() || r.RecoveryCodesLeft() != 0 || len(r.Passkeys) != 0 || len(r.Factors()) != 0 {
		t.Fatalf("after the reset: %+v", r)
	}
	if r.LastTOTPStep != 105 || !r.IsSpent("mfa-1") || r.UserID != uid || r.Version != k3.Version+1 {
		t.Fatalf("the reset dropped the replay guard: %+v", r)
	}
	again := EvolveMFA(EvolveMFA(r, MFATOTPEnrolled{UserID: uid, SecretSealed: "sealed:s2", At: later}),
		MFATOTPConfirmed{UserID: uid, Step: 106, At: later})
	if _, err := DecideMFA(again, UseTOTP{Step: 105, Now: later}); err != ErrMFACodeUsed {
		t.Fatalf("a step used before the reset: %v, want ErrMFACodeUsed", err)
	}

	// Spent tokens are forgotten once expired (at the next spend).
	s := EvolveMFA(givenMFA(mfaEnrolled, mfaConfirmed), MFACodeUsed{UserID: uid, Step: 101, TokenID: "old", TokenExpires: t0.Add(time.Minute), At: t0})
	s = EvolveMFA(s, MFACodeUsed{UserID: uid, Step: 102, TokenID: "new", TokenExpires: t0.Add(time.Hour), At: t0.Add(2 * time.Minute)})
	if s.IsSpent("old") || !s.IsSpent("new") {
		t.Fatalf("spent tokens: %v", s.Spent)
	}

	// Other aggregates' events change nothing, not even the version.
	if o := EvolveMFA(m, userCreated()); !reflect.DeepEqual(o, m) {
		t.Fatal("a user event changed the MFA state")
	}
}

// TestDecideMFAFailure: a wrong second factor is an mfa.failed that counts
// like a failed login, refused as the lockout once the account is locked.
func TestDecideMFAFailure(t *testing.T) {
	throttle := LoginThrottle{MaxFailures: 3, LockoutFor: 15 * time.Minute}
	u := givenUser(userCreated())
	got, err := DecideMFAFailure(u, FactorTOTP, "invalid_code", t0, throttle)
	want := events(MFAFailed{UserID: uid, Factor: FactorTOTP, Reason: "invalid_code", At: t0})
	outcome{events: want}.check(t, got, err)
	for i := 0; i < 3; i++ {
		u = EvolveUser(u, MFAFailed{UserID: uid, Factor: FactorTOTP, Reason: "invalid_code", At: t0})
	}
	if u.FailedLogins != 3 {
		t.Fatalf("failed logins %d, want 3", u.FailedLogins)
	}
	_, err = DecideMFAFailure(u, FactorTOTP, "invalid_code", t0.Add(time.Minute), throttle)
	outcome{err: ErrThrottled}.check(t, nil, err)
	got, err = DecideMFAFailure(u, FactorWebAuthn, "invalid_assertion", t0.Add(16*time.Minute), throttle)
	outcome{events: events(MFAFailed{UserID: uid, Factor: FactorWebAuthn, Reason: "invalid_assertion", At: t0.Add(16 * time.Minute)})}.check(t, got, err)
	_, err = DecideMFAFailure(User{}, FactorTOTP, "invalid_code", t0, throttle)
	outcome{err: ErrNotFound}.check(t, nil, err)
}

func TestSetMFAPolicy(t *testing.T) {
	on := MFAPolicySet{Scope: "acme", Required: true}
	tests := []struct {
		name     string
		given    []Event
		scope    string
		required bool
		then     outcome
	}{
		{name: "require in a tenant", scope: "acme", required: true, then: outcome{events: events(on)}},
		{name: "the platform", scope: MFAPolicyPlatform, required: true, then: outcome{events: events(MFAPolicySet{Scope: MFAPolicyPlatform, Required: true})}},
		{name: "not required, as by default: nothing", scope: "acme", required: false, then: outcome{}},
		{name: "required again: nothing", given: events(on), scope: "acme", required: true, then: outcome{}},
		{name: "lifted", given: events(on), scope: "acme", required: false, then: outcome{events: events(MFAPolicySet{Scope: "acme"})}},
		{name: "not a tenant", scope: "Not A Tenant!", required: true, then: outcome{field: "tenant"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p MFAPolicy
			for _, e := range tc.given {
				p = EvolveMFAPolicy(p, e)
			}
			got, err := SetMFAPolicy(p, tc.scope, tc.required)
			tc.then.check(t, got, err)
		})
	}
}

func TestValidPasskeyName(t *testing.T) {
	for name, ok := range map[string]bool{
		"Laptop": true, "Clé USB 🔑": true, strings.Repeat("é", MaxPasskeyName): true,
		"": false, "   ": false, strings.Repeat("a", MaxPasskeyName+1): false, "tab\there": false,
		"del\x7f": false, "\xff\xfe": false,
	} {
		if err := ValidPasskeyName(name); (err == nil) != ok {
			t.Errorf("ValidPasskeyName(%q) = %v, want ok %v", name, err, ok)
		}
	}
}
