package projections

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// stamped is one event as the runner would apply it.
type stamped struct {
	seq uint64
	env events.Envelope
	ev  domain.Event
}

// history returns events of every kind the model folds, in a plausible order,
// so that every part of the model ends up non-empty.
func history() []stamped {
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	var out []stamped
	add := func(aggregateID, ip string, ev domain.Event) {
		out = append(out, stamped{
			seq: uint64(len(out) + 1),
			env: events.Envelope{AggregateID: aggregateID, Request: events.RequestInfo{IP: ip}},
			ev:  ev,
		})
	}
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	for u := range 6 {
		uid := fmt.Sprintf("user-%d", u)
		roles := []domain.GlobalRole{} // empty, not nil: as decoded from "roles": []
		if u == 0 {
			roles = []domain.GlobalRole{domain.GlobalAdmin}
		}
		add(uid, "", domain.UserCreated{UserID: uid, Username: fmt.Sprintf("User%d", u), Email: uid + "@example.com",
			PasswordHashSealed: "sealed-" + uid, Roles: roles,
			Tenants: []domain.TenantRole{{Tenant: "prod", Role: domain.RoleEditor}}, CreatedAt: at(u)})
		add(uid, "10.0.0.1", domain.UserLoginFailed{UserID: uid, Username: fmt.Sprintf("User%d", u), Reason: "invalid_credentials", At: at(u)})
		for s := range 3 {
			sid := fmt.Sprintf("sess-%d-%d", u, s)
			tenant := ""
			if s == 1 {
				tenant = "prod" // a session scoped to a tenant
			}
			add(sid, "", domain.SessionStarted{SessionID: sid, UserID: uid, Tenant: tenant, RefreshTokenHash: sid + "-r0", Method: "password",
				StartedAt: at(u + s), ExpiresAt: at(u + s).Add(time.Hour)})
			add(uid, "", domain.UserLoginSucceeded{UserID: uid, SessionID: sid, Method: "password"})
			add(sid, "", domain.SessionRefreshed{SessionID: sid, TokenID: sid + "-t1", RefreshTokenHash: sid + "-r1", At: at(u + s + 1)})
			if s == 1 {
				add(sid, "", domain.SessionTokenRevoked{SessionID: sid, TokenID: sid + "-t1", ExpiresAt: at(u + s + 60)})
			}
			if s == 2 {
				add(sid, "", domain.SessionRefreshReused{SessionID: sid, RefreshTokenHash: sid + "-r0"})
				add(sid, "", domain.SessionRevoked{SessionID: sid, Reason: domain.RevokeReasonReuse})
			}
		}
		kid := fmt.Sprintf("key-%d", u)
		add(kid, "", domain.APIKeyCreated{KeyID: kid, Name: "ci", OwnerID: uid, Tenants: []string{"prod"},
			Permissions: []domain.Permission{"nodes:read"}, AllowedIPs: []string{"10.0.0.0/8"}, SecretHash: kid + "-h0", CreatedAt: at(u)})
		add(kid, "", domain.APIKeyUsed{KeyID: kid, UsedAt: at(u + 2)})
		switch u % 3 {
		case 1:
			add(kid, "", domain.APIKeyRotated{KeyID: kid, SecretHash: kid + "-h1", RotatedAt: at(u + 3), OwnerID: uid})
		case 2:
			add(kid, "", domain.APIKeyRevoked{KeyID: kid, Reason: "revoked"})
		}
	}
	add("user-1", "", domain.UserRoleGranted{UserID: "user-1", Tenant: "staging", Role: domain.RoleAdmin})
	add("user-2", "", domain.UserRoleRevoked{UserID: "user-2", Tenant: "prod"}) // leaves an empty tenant map
	add("user-3", "", domain.UserDeactivated{UserID: "user-3", Reason: "left"})
	add("user-4", "", domain.UserPasswordChanged{UserID: "user-4", PasswordHashSealed: "sealed-new", KeptSessionID: "sess-4-0"})
	// Failed logins, then an admin's reset: the count goes back to 0.
	add("user-5", "10.0.0.5", domain.UserLoginFailed{UserID: "user-5", Username: "User5", Reason: "invalid_credentials", At: at(32)})
	add("user-5", "10.0.0.5", domain.UserLoginFailed{UserID: "user-5", Username: "User5", Reason: "invalid_credentials", At: at(33)})
	add("user-5", "", domain.UserPasswordChanged{UserID: "user-5", PasswordHashSealed: "sealed-reset"})
	add("login-abc", "192.0.2.7", domain.UserLoginFailed{Reason: "invalid_credentials", At: at(30)})
	add("login-abc", "192.0.2.7", domain.UserLoginFailed{Reason: "invalid_credentials", At: at(31)})
	add("okta", "", domain.SSOProviderConfigured{Provider: "okta", Type: domain.SSOType("okta"), Issuer: "https://example.okta.com",
		Domain: "example.okta.com", ClientID: "cid", ClientSecretSealed: "sealed", AllowedTenants: []string{},
		RoleMappings: []domain.RoleMapping{{Group: "ops", Tenant: "prod", Role: domain.RoleAdmin}}, ConfiguredAt: at(40)})
	add("gone", "", domain.SSOProviderConfigured{Provider: "gone", Type: domain.SSOType("oidc"), Issuer: "https://idp.example", ConfiguredAt: at(41)})
	add("entra", "", domain.SSOProviderConfigured{Provider: "entra", Type: domain.SSOAzure, Issuer: "https://login.microsoftonline.com/organizations/v2.0",
		TenantID: "organizations", AllowedTenants: []string{"11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"},
		ClientID: "cid", ClientSecretSealed: "sealed", GroupsClaim: "roles",
		RoleMappings: []domain.RoleMapping{{Group: "Infra.Admin", Tenant: "prod", Role: domain.RoleAdmin, Directory: "11111111-1111-1111-1111-111111111111"}}, ConfiguredAt: at(41)})
	add("gone", "", domain.SSOProviderDeleted{Provider: "gone"})
	add("ident-1", "", domain.SSOIdentityLinked{Provider: "okta", Subject: "00u1", UserID: "user-5", Method: "verified_email", LinkedAt: at(42)})
	add("ident-2", "", domain.SSOIdentityLinked{Provider: "okta", Issuer: "https://example.okta.com", Subject: "00u2", UserID: "user-4", Method: "scim", LinkedAt: at(42)})
	add("ident-2", "", domain.SSOIdentityUnlinked{Provider: "okta", Issuer: "https://example.okta.com", Subject: "00u2", UserID: "user-4"})
	add("ident-3", "", domain.SSOIdentityLinked{Provider: "okta", Issuer: "https://example.okta.com", Subject: "00u3", UserID: "user-1", Method: "scim", LinkedAt: at(42)})
	add("ident-3", "", domain.SSOIdentityUnlinked{Provider: "okta", Issuer: "https://example.okta.com", Subject: "00u3", UserID: "user-1"})
	add("ident-3", "", domain.SSOIdentityLinked{Provider: "okta", Issuer: "https://example.okta.com", Subject: "00u3", UserID: "user-2", Method: "verified_email", LinkedAt: at(43)})
	add("assert-1", "", domain.SSOAssertionConsumed{Provider: "saml", AssertionID: "a1", ExpiresAt: at(50)})
	add("sk-1", "", domain.SigningKeyAdded{KeyID: "sk-1", Algorithm: "HS256", SecretSealed: "sealed", AddedAt: at(43)})
	add("sk-2", "", domain.SigningKeyAdded{KeyID: "sk-2", Algorithm: "EdDSA", SecretSealed: "sealed", PublicKey: "pub", AddedAt: at(44)})
	add("sk-1", "", domain.SigningKeyRetired{KeyID: "sk-1", RetiredAt: at(45)})
	add("sk-3", "", domain.SigningKeyAdded{KeyID: "sk-3", Algorithm: "EdDSA", SecretSealed: "sealed", PublicKey: "pub3", Pending: true, AddedAt: at(45)})
	add("sk-3", "", domain.SigningKeyActivated{KeyID: "sk-3", ActivatedAt: at(46)})
	add("sk-4", "", domain.SigningKeyAdded{KeyID: "sk-4", Algorithm: "EdDSA", SecretSealed: "sealed", PublicKey: "pub4", Pending: true, AddedAt: at(46)})
	// SCIM: two connections (one rotated and updated, one deleted), groups
	// (one renamed with members changed, one deleted), links (one unlinked).
	add("scim-1", "", domain.SCIMConnectionCreated{ConnectionID: "scim-1", Provider: "okta", Tenants: []string{"prod"},
		GroupMappings: []domain.RoleMapping{}, TokenHash: strings.Repeat("1", 64), CreatedAt: at(46)})
	add("scim-1", "", domain.SCIMTokenRotated{ConnectionID: "scim-1", TokenHash: strings.Repeat("2", 64), RotatedAt: at(47)})
	add("scim-1", "", domain.SCIMConnectionUpdated{ConnectionID: "scim-1", Tenants: []string{"prod", "staging"},
		GroupMappings: []domain.RoleMapping{{Group: "ops", Tenant: "prod", Role: domain.RoleAdmin}}, UpdatedAt: at(48)})
	add("scim-2", "", domain.SCIMConnectionCreated{ConnectionID: "scim-2", Provider: "okta", Tenants: []string{"dev"},
		GroupMappings: []domain.RoleMapping{}, TokenHash: strings.Repeat("3", 64), CreatedAt: at(49)})
	add("scim-2", "", domain.SCIMConnectionDeleted{ConnectionID: "scim-2"})
	add("l-1", "", domain.SCIMUserLinked{ConnectionID: "scim-1", UserID: "user-5", Method: domain.SCIMLinkCreated, LinkedAt: at(50),
		Profile: domain.SCIMProfile{UserName: "User5", Emails: []domain.SCIMEmail{{Value: "u5@example.com", Type: "work", Primary: true}}}})
	add("l-1", "", domain.SCIMUserUpdated{ConnectionID: "scim-1", UserID: "user-5", UpdatedAt: at(51), Profile: domain.SCIMProfile{UserName: "User5", GivenName: "Five"}})
	add("l-2", "", domain.SCIMUserLinked{ConnectionID: "scim-1", UserID: "user-4", Method: domain.SCIMLinkUsername, LinkedAt: at(50),
		Profile: domain.SCIMProfile{UserName: "User4"}})
	add("l-2", "", domain.SCIMUserUnlinked{ConnectionID: "scim-1", UserID: "user-4"})
	add("group-1", "", domain.SCIMGroupCreated{GroupID: "group-1", ConnectionID: "scim-1", DisplayName: "ops", Members: []string{"user-5"}, CreatedAt: at(52)})
	add("group-1", "", domain.SCIMGroupMembersChanged{GroupID: "group-1", Added: []string{"user-1"}, ChangedAt: at(53)})
	add("group-1", "", domain.SCIMGroupRenamed{GroupID: "group-1", DisplayName: "Ops", ExternalID: "g1", RenamedAt: at(54)})
	add("group-2", "", domain.SCIMGroupCreated{GroupID: "group-2", ConnectionID: "scim-1", DisplayName: "old", CreatedAt: at(55)})
	add("group-2", "", domain.SCIMGroupDeleted{GroupID: "group-2"})
	// Second factors (mfa.go): a user's TOTP, recovery codes, passkeys;
	// another's reset; a wrong code on the user's subject; the policies.
	add("user-2", "", domain.MFATOTPEnrolled{UserID: "user-2", SecretSealed: "aesgcm1:c2VjcmV0", At: at(56)})
	add("user-2", "", domain.MFATOTPConfirmed{UserID: "user-2", Step: 100, At: at(57)})
	add("user-2", "", domain.MFARecoveryCodesGenerated{UserID: "user-2", Hashes: []string{"h0", "h1", "h2"}, At: at(57)})
	add("user-2", "", domain.MFACodeUsed{UserID: "user-2", Step: 101, TokenID: "mfa-1", TokenExpires: at(70), At: at(58)})
	add("user-2", "", domain.MFARecoveryCodeUsed{UserID: "user-2", Index: 1, TokenID: "mfa-2", TokenExpires: at(70), At: at(59)})
	add("user-2", "", domain.MFAPasskeyRegistered{UserID: "user-2", Passkey: domain.Passkey{ID: "cred-1", Name: "laptop", PublicKey: []byte{1, 2, 3},
		SignCount: 1, Transports: []string{"internal"}, CreatedAt: at(60)}, TokenID: "mfa-3", TokenExpires: at(70)})
	add("user-2", "", domain.MFAPasskeyUsed{UserID: "user-2", CredentialID: "cred-1", SignCount: 2, TokenID: "mfa-4", TokenExpires: at(70), At: at(61)})
	add("user-2", "10.0.0.9", domain.MFAFailed{UserID: "user-2", Factor: "totp", Reason: "invalid_code", At: at(62)})
	add("user-3", "", domain.MFATOTPEnrolled{UserID: "user-3", SecretSealed: "aesgcm1:b3RoZXI", At: at(63)})
	add("user-3", "", domain.MFAReset{UserID: "user-3", Reason: "lost phone"})
	add("prod", "", domain.MFAPolicySet{Scope: "prod", Required: true})
	add("platform", "", domain.MFAPolicySet{Scope: "platform", Required: true})
	add("platform", "", domain.MFAPolicySet{Scope: "platform", Required: false})
	return out
}

func applyAll(m *Model, evs []stamped) {
	for _, e := range evs {
		m.Apply(e.seq, e.env, e.ev)
	}
}

// canonical is the model's Dump.
func canonical(t *testing.T, m *Model) []byte {
	t.Helper()
	b, err := m.Dump()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSnapshotRestoreThenReplayEqualsFullReplay: for every cut point of the
// history, a snapshot taken there, restored into a new model and followed by
// the rest of the stream (with some events already in the snapshot delivered
// again) gives exactly the model a full replay gives.
func TestSnapshotRestoreThenReplayEqualsFullReplay(t *testing.T) {
	evs := history()
	full := NewModel()
	applyAll(full, evs)
	want := canonical(t, full)

	for cut := 0; cut <= len(evs); cut++ {
		part := NewModel()
		applyAll(part, evs[:cut])
		data, seq, err := part.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if seq != uint64(cut) {
			t.Fatalf("cut %d: snapshot at sequence %d", cut, seq)
		}
		restored := NewModel()
		got, err := restored.Restore(data)
		if err != nil || got != seq {
			t.Fatalf("cut %d: restore: %d %v", cut, got, err)
		}
		applyAll(restored, evs[max(cut-3, 0):]) // a consumer may deliver a few again
		if have := canonical(t, restored); !bytes.Equal(have, want) {
			t.Fatalf("cut %d: restored + replayed differs from a full replay:\nhave %s\nwant %s", cut, have, want)
		}
	}
	// The restored model answers like the replayed one.
	restored := NewModel()
	data, _, _ := full.Snapshot()
	if _, err := restored.Restore(data); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 3, 1, 10, 30, 0, 0, time.UTC)
	for _, sid := range []string{"sess-0-0", "sess-1-1", "sess-2-2", "sess-3-0", "sess-4-0", "sess-4-1"} {
		_, v1 := full.Authorize(sid, sid+"-t1", now)
		_, v2 := restored.Authorize(sid, sid+"-t1", now)
		if v1 != v2 {
			t.Errorf("Authorize(%s): replayed %v, restored %v", sid, v1, v2)
		}
	}
	if u, _, _ := restored.User("user-1"); u.Roles == nil {
		t.Error("an empty role list came back nil (it renders as null)")
	}
	if full.SigningKeysVersion() == 0 || restored.SigningKeysVersion() == 0 {
		t.Error("restoring must move the signing keys version, so verifiers reload")
	}
}

// TestSnapshotCoversEveryField fails when the model gains state that
// snapshot.go does not carry: add it to Frozen, WriteTo and RestoreFrom, and
// bump SnapshotFormat.
func TestSnapshotCoversEveryField(t *testing.T) {
	known := map[reflect.Type][]string{
		reflect.TypeFor[Model](): {"AddressWindow", "RevokedTokenGrace", "RevokedSessionGrace", "NoHistory", "JournalDir", "OnJournalError", "OnJournalDamage", "mu", "users", "sessions", "revokedTokens",
			"logins", "addrFailures", "keys", "sso", "scim", "mfa", "signing", "journal", "access", "applied", "skipped", "cow", "snapshotting", "listHeld"},
		reflect.TypeFor[userStore](): {"recs", "extras", "text", "hashes", "byID", "byName", "sets", "lists",
			"oddText", "oddHash", "oddGlobal", "keepText", "times", "staleNames"},
		reflect.TypeFor[userRec]():     {"seq", "created", "text", "phs", "version", "roles", "extra", "phsPool", "flags"},
		reflect.TypeFor[userExtra]():   {"lastFail", "cutoff", "failed", "keep", "global", "keepKind", "byTenant"},
		reflect.TypeFor[roleSets]():    {"sets", "ids", "free"},
		reflect.TypeFor[roleSet]():     {"m", "key", "refs"},
		reflect.TypeFor[globalLists](): {"lists", "ids"},
		reflect.TypeFor[sessStore](): {"recs", "spent", "byID", "byHash", "tenants", "reasons",
			"oddID", "oddHash", "oddUser", "oddReason", "oddSpent", "times", "staleHashes", "byUser", "userNext", "pruned"},
		reflect.TypeFor[sessRec](): {"id", "hash", "seq", "startSeq", "started", "expires", "lastUsed", "rotated",
			"user", "tenant", "spent", "refreshes", "version", "reason", "flags"},
		reflect.TypeFor[arena]():          {"slabs"},
		reflect.TypeFor[slotPools]():      {"pools"},
		reflect.TypeFor[slotPool]():       {"size", "slabs", "n", "free", "held"},
		reflect.TypeFor[spentNode]():      {"hash", "prev", "sess"},
		reflect.TypeFor[ssoModel]():       {"providers", "identities", "linkSeq"},
		reflect.TypeFor[scimModel]():      {"conns", "byHash", "groups", "links", "connGroups", "connUsers", "connFormers", "groupOrder", "linkOrder"},
		reflect.TypeFor[scimConnEntry]():  {"state", "seq"},
		reflect.TypeFor[scimGroupEntry](): {"state", "seq"},
		reflect.TypeFor[scimLinkEntry]():  {"state", "seq"},
		reflect.TypeFor[signingModel]():   {"keys", "version"},
		reflect.TypeFor[loginEntry]():     {"seq", "state"},
		reflect.TypeFor[addrFailures]():   {"count", "last"},
		reflect.TypeFor[keyModel]():       {"byID", "byHash", "odd", "tenantLists", "byOwner", "revoked"},
		reflect.TypeFor[keyEntry](): {"id", "name", "owner", "tenants", "allowed", "secs", "nanos", "hash",
			"version", "ownerRec", "hist", "seq", "next", "perms", "flags",
			"slot"}, // derived: its place in byOwner, rebuilt on restore
		reflect.TypeFor[ssoProviderEntry](): {"state", "seq"},
		reflect.TypeFor[signingEntry]():     {"state", "seq"},
		reflect.TypeFor[journal](): {"model", "slots", "n", "runs", "first", "start", "file", "pending", "encBuf", "types", "typeIDs", "oddTypes",
			"actors", "actorIDs", "actorTypes", "recent", "recentNext", "tenants", "sets", "oddTimes", "roleCache", "sessCache", "oneCache",
			"keyCache", "typeCache", "scratch"},
		reflect.TypeFor[jchunk]():     {"at", "subj", "actor", "tset", "typ"},
		reflect.TypeFor[jslot]():      {"mem", "file", "off", "size", "widths", "lo", "hi"},
		reflect.TypeFor[tenantSets](): {"slots", "used", "off", "members"},
		reflect.TypeFor[accessModel](): {"users", "userSide", "changes", "keys", "keyRefs", "keySide", "owners", "secrets", "sets", "roles",
			"admins", "tenantUsers", "tenantKeys", "wideKeys", "kept", "oddOwners", "oddSecrets", "keyIDs", "pairs"},
		reflect.TypeFor[refSeq]():       {"base", "delta", "esc", "over", "prev"},
		reflect.TypeFor[idList]():       {"b", "last", "n"},
		reflect.TypeFor[userSide]():     {"log", "init"},
		reflect.TypeFor[userChange]():   {"ref", "prev", "arg", "role", "kind"},
		reflect.TypeFor[keySide]():      {"revoked", "owner", "secret", "since"},
		reflect.TypeFor[keyOwner]():     {"ref", "prev", "user"},
		reflect.TypeFor[keySecret]():    {"hash", "since", "prev"},
		reflect.TypeFor[roleSetTable](): {"ids", "off", "pairs", "key"},
		reflect.TypeFor[asideState](): {"OddGlobal", "KeepText", "UserTimes", "OddID", "OddHash", "OddUser", "OddReason", "OddSpent", "SessTimes",
			"StaleNames", "StaleHashes"},
	}
	for typ, names := range known {
		var have []string
		for i := range typ.NumField() {
			have = append(have, typ.Field(i).Name)
		}
		slices.Sort(have)
		slices.Sort(names)
		if !slices.Equal(have, names) {
			t.Errorf("%s has fields %v; snapshot.go knows %v — carry the new state in snapshots and bump SnapshotFormat",
				typ, have, names)
		}
	}
	// And the history above exercises all of it.
	m := NewModel()
	applyAll(m, history())
	f := m.Freeze()
	defer f.Release()
	for name, n := range map[string]int{"users": int(f.users.recs.n), "user extras": int(f.users.extras.n), "role sets": len(f.users.sets.sets),
		"global role lists": len(f.users.lists.lists), "sessions": int(f.sessions.recs.n), "spent hashes": int(f.sessions.spent.n),
		"reasons": len(f.sessions.reasons.strs), "tenants": len(f.sessions.tenants.strs)} {
		if n == 0 {
			t.Errorf("history() leaves no %s: the equality test would not cover them", name)
		}
	}
	v := reflect.ValueOf(f.rest)
	for i := range v.NumField() {
		if name := v.Type().Field(i).Name; name != "KeyByHash" && v.Field(i).Len() == 0 {
			t.Errorf("history() leaves %s empty: the equality test would not cover it", name)
		}
	}
}

func TestRestoreRefusesForeignSnapshots(t *testing.T) {
	m := NewModel()
	if _, err := m.Restore([]byte("not a snapshot")); err == nil {
		t.Fatal("garbage restored")
	}
	applyAll(m, history())
	data, _, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Another format number.
	other := bytes.Clone(data)
	other[len(snapshotMagic)] = SnapshotFormat + 1
	if _, err := NewModel().Restore(other); !errors.Is(err, ErrSnapshotFormat) {
		t.Fatalf("snapshot of another format: %v", err)
	}
	// Format 3 was gob.
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(struct{ Format int }{3}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewModel().Restore(buf.Bytes()); !errors.Is(err, ErrSnapshotFormat) {
		t.Fatalf("snapshot of format 3: %v", err)
	}
	// Cut short anywhere, or followed by more: refused, and the model is
	// left as it was.
	fresh := NewModel()
	for _, cut := range []int{len(snapshotMagic) + 1, len(snapshotMagic) + 5, len(data) / 2, len(data) - 1} {
		if _, err := fresh.Restore(data[:cut]); err == nil {
			t.Fatalf("a snapshot cut at %d of %d restored", cut, len(data))
		}
	}
	if _, err := fresh.Restore(append(bytes.Clone(data), 0)); err == nil {
		t.Fatal("a snapshot with a byte after its end restored")
	}
	if fresh.Applied() != 0 {
		t.Fatalf("a refused snapshot changed the model (applied %d)", fresh.Applied())
	}
}

// TestRestoreRefusesALossyWritersSnapshot: a snapshot whose writer skipped
// events it could not decode is restored by a build with the same event
// vocabulary (it would skip them too), refused (ErrSnapshotFormat: the
// stream is replayed instead) by one that knows other events — which might
// decode them, as after a rollback to an older build and back. A writer
// that skipped nothing is restored whatever its vocabulary.
func TestRestoreRefusesALossyWritersSnapshot(t *testing.T) {
	own := vocabulary
	defer func() { vocabulary = own }()
	snapshot := func(skip bool, vocab uint64) []byte {
		vocabulary = vocab
		defer func() { vocabulary = own }()
		m := NewModel()
		evs := history()
		applyAll(m, evs)
		if skip {
			m.Skip(uint64(len(evs) + 1)) // an event this writer could not decode
		}
		data, _, err := m.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	for _, c := range []struct {
		name     string
		skip     bool
		vocab    uint64
		restored bool
	}{
		{"skipped, same vocabulary", true, own, true},
		{"skipped, another vocabulary", true, own ^ 1, false},
		{"nothing skipped, another vocabulary", false, own ^ 1, true},
	} {
		m := NewModel()
		_, err := m.Restore(snapshot(c.skip, c.vocab))
		switch {
		case c.restored && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case !c.restored && !errors.Is(err, ErrSnapshotFormat):
			t.Errorf("%s: restored (%v), want ErrSnapshotFormat", c.name, err)
		case !c.restored && m.Applied() != 0:
			t.Errorf("%s: the refused snapshot changed the model", c.name)
		}
	}
}

// TestPasswordHashAt: the sealed hash of the user a key picks, in the
// order of creation — the same after a snapshot is restored, as on every
// replica —, whether the hash is kept packed or (not in the form the
// service seals) as text; "" with no users. Every user is picked by some
// keys; a new user takes over some keys' picks and leaves the others where
// they were (with k mod n, a creation moved most of them).
func TestPasswordHashAt(t *testing.T) {
	m := NewModel()
	if h := m.PasswordHashAt(7); h != "" {
		t.Fatalf("no users: %q", h)
	}
	env := events.Envelope{}
	hashes := []string{"aesgcm1:AAAAbWFkZSB1cA", "not-in-the-sealed-form", "aesgcm1:bmV3IG9uZQ"}
	for i, h := range hashes {
		id := fmt.Sprintf("user-%d", i)
		m.Apply(uint64(i+1), env, domain.UserCreated{UserID: id, Username: id, PasswordHashSealed: h})
	}
	data, _, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored := NewModel()
	if _, err := restored.Restore(data); err != nil {
		t.Fatal(err)
	}
	const keys = 3000
	picked := make([]string, keys)
	count := map[string]int{}
	for i := range keys {
		k := uint64(i) * 0x9e3779b97f4a7c15
		picked[i] = m.PasswordHashAt(k)
		if got := restored.PasswordHashAt(k); got != picked[i] {
			t.Fatalf("key %d: %q, restored %q", k, picked[i], got)
		}
		count[picked[i]]++
	}
	for _, h := range hashes {
		if count[h] < keys/3/2 {
			t.Errorf("%q picked by %d keys of %d", h, count[h], keys)
		}
	}
	if len(count) != len(hashes) {
		t.Fatalf("picked %v", count)
	}
	m.Apply(4, env, domain.UserCreated{UserID: "user-3", Username: "user-3", PasswordHashSealed: "aesgcm1:Zm91cnRo"})
	moved := 0
	for i := range keys {
		switch got := m.PasswordHashAt(uint64(i) * 0x9e3779b97f4a7c15); got {
		case picked[i]:
		case "aesgcm1:Zm91cnRo":
			moved++
		default:
			t.Fatalf("key %d moved from %q to %q, not to the new user", i, picked[i], got)
		}
	}
	if moved < keys/4/2 || moved > keys/4*2 {
		t.Errorf("the fourth user took over %d keys of %d, want about a quarter", moved, keys)
	}
}
