package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// Field name bound into sealed SSO client secrets.
const sealClientSecret = "client_secret"

// ErrAssertionReplayed: a SAML assertion, or an OpenID Connect login's
// flow, was presented a second time.
var ErrAssertionReplayed = errors.New("commands: SSO assertion already consumed")

// SSOProviderInput is a provider configuration as requested; ClientSecret is
// plain here and sealed before it enters an event.
type SSOProviderInput struct {
	Name           string
	Type           domain.SSOType
	Issuer         string
	Domain         string
	TenantID       string
	AllowedTenants []string
	ClientID       string
	ClientSecret   string
	EntityID       string
	SSOURL         string
	Certificate    string
	GroupsClaim    string
	RoleMappings   []domain.RoleMapping
	LinkByEmail    bool
	// TrustIdPMFA: the provider's own second factor (amr/acr) counts as
	// one here (OpenID Connect providers).
	TrustIdPMFA bool
	// Check, when set, is given the configuration as it would be stored,
	// before anything is appended: an error refuses it (the HTTP layer runs
	// OIDC discovery there, and refuses what can never work).
	Check func(ctx context.Context, p domain.SSOProvider) error
}

// ConfigureSSOProvider creates or replaces a provider's configuration. It
// reports whether the provider was created (rather than replaced).
func (s *Service) ConfigureSSOProvider(ctx context.Context, meta events.Meta, in SSOProviderInput) (domain.SSOProvider, bool, error) {
	cmd := domain.ConfigureSSOProvider{
		Name: in.Name, Type: in.Type, Issuer: in.Issuer, Domain: in.Domain, TenantID: in.TenantID,
		AllowedTenants: in.AllowedTenants, ClientID: in.ClientID, EntityID: in.EntityID,
		SSOURL: in.SSOURL, Certificate: in.Certificate, GroupsClaim: in.GroupsClaim,
		RoleMappings: in.RoleMappings, LinkByEmail: in.LinkByEmail, TrustIdPMFA: in.TrustIdPMFA, Now: s.cfg.Now(),
	}
	if secret := strings.TrimSpace(in.ClientSecret); in.Type.IsOIDC() && (secret == "" || secret == domain.RedactedClientSecret) {
		// An edit without the secret (every answer redacts it) keeps the
		// stored one, if the provider stays the same client at the same
		// issuer: decided against the stored state (domain). So does the
		// placeholder the answers show, for a configuration posted back as
		// it was read: sealed as a secret, every login through the
		// provider failed at the IdP (re-check 20r6).
		cmd.KeepClientSecret = true
		cmd.ClientSecretRedacted = secret != ""
	} else if in.Type.IsOIDC() {
		if len(in.ClientSecret) > 4096 {
			return domain.SSOProvider{}, false, domain.Invalid("client_secret", "at most 4096 bytes")
		}
		sealed, err := s.sealer.Seal(sealClientSecret, in.ClientSecret)
		if err != nil {
			return domain.SSOProvider{}, false, err
		}
		cmd.ClientSecretSealed = sealed
	}
	if in.Check != nil {
		// The decision depends on the stored state only for a secret kept
		// from it, which the check does not read; the write loop decides
		// again against the state it appends after.
		stored, _, _ := s.state.SSOProvider(in.Name)
		evs, err := domain.DecideSSOProvider(stored, cmd)
		if err != nil {
			return domain.SSOProvider{}, false, err
		}
		if err := in.Check(ctx, domain.EvolveSSOProvider(domain.SSOProvider{}, evs[0])); err != nil {
			return domain.SSOProvider{}, false, err
		}
	}
	created := false
	out, err := execute(ctx, s, meta, write[domain.SSOProvider]{
		on: s.ssoProviderAggregate(in.Name),
		decide: func(p domain.SSOProvider) ([]domain.Event, error) {
			created = !p.Exists()
			return domain.DecideSSOProvider(p, cmd)
		},
	})
	return out, created, err
}

// DeleteSSOProvider removes a provider's configuration.
func (s *Service) DeleteSSOProvider(ctx context.Context, meta events.Meta, name string) error {
	_, err := execute(ctx, s, meta, write[domain.SSOProvider]{
		on: s.ssoProviderAggregate(name),
		decide: func(p domain.SSOProvider) ([]domain.Event, error) {
			return domain.DecideSSOProvider(p, domain.DeleteSSOProvider{})
		},
	})
	return err
}

// ssoProviderAggregate is the configuration of the provider name as the
// write loop reads it. Its ID is the name: a provider not configured yet is
// decided against the zero state.
func (s *Service) ssoProviderAggregate(name string) aggregate[domain.SSOProvider] {
	return aggregate[domain.SSOProvider]{
		ref:     ref{domain.AggregateSSO, name},
		load:    func() (domain.SSOProvider, uint64, bool) { return s.state.SSOProvider(name) },
		version: func(p domain.SSOProvider) uint64 { return p.Version },
	}
}

// SSOClientSecret unseals a provider's client secret.
func (s *Service) SSOClientSecret(p domain.SSOProvider) (string, error) {
	return s.sealer.Open(sealClientSecret, p.ClientSecretSealed)
}

// ConsumeSSOAssertion records that an assertion was used, on a subject that
// must be new: a second use, on any replica, is ErrAssertionReplayed. A
// SAML assertion is named by its ID; an OpenID Connect login by its flow's
// nonce (OIDCFlowAssertionID), so that a callback replayed with a copy of
// the flow cookie signs no one in twice, even through an IdP that accepts
// a code twice.
func (s *Service) ConsumeSSOAssertion(ctx context.Context, meta events.Meta, provider, assertionID string, expiresAt time.Time) error {
	if assertionID == "" {
		return ErrAssertionReplayed
	}
	_, err := s.appendEvents(ctx, meta, NewID("cmd"), []pending{{
		aggregate: domain.AggregateSSOAssertion, id: SSOAssertionKey(provider, assertionID),
		event: domain.SSOAssertionConsumed{Provider: provider, AssertionID: assertionID, ExpiresAt: expiresAt.UTC()},
	}})
	if errors.Is(err, events.ErrConflict) {
		return ErrAssertionReplayed
	}
	return err
}

// OIDCFlowAssertionID names an OpenID Connect login for ConsumeSSOAssertion:
// a hash of its flow's nonce (random, one per login, bound into the ID
// token), so that the event carries nothing of the flow itself.
func OIDCFlowAssertionID(nonce string) string {
	sum := sha256.Sum256([]byte("oidc-nonce\x00" + nonce))
	return "oidc-nonce:" + hex.EncodeToString(sum[:16])
}

// SSOLogin signs in the user behind an identity the provider asserted (already
// verified by the caller) and starts a session with method "sso:<provider>".
// The identity is (issuer, subject), never the e-mail alone nor the
// provider's name (a provider re-pointed to another IdP does not inherit the
// old IdP's users): a linked
// identity logs its user in; an unknown one is linked to the one active user
// with that e-mail when the provider links by verified e-mail and the
// provider says the address is verified; otherwise a user is provisioned,
// with a random password nobody knows. Group claims grant the tenant roles
// the provider maps them to (never revoking roles granted otherwise).
func (s *Service) SSOLogin(ctx context.Context, meta events.Meta, in domain.SSOLogin) (LoginResult, error) {
	if err := in.Validate(); err != nil {
		return LoginResult{}, err
	}
	p, _, ok := s.state.SSOProvider(in.Provider)
	if !ok || !p.Exists() {
		return LoginResult{}, domain.ErrNotFound
	}
	if in.Issuer != p.IdentityIssuer() {
		// The provider was re-pointed while the login was under way.
		return LoginResult{}, domain.Invalid("issuer", "the provider's configuration changed during the login")
	}
	// What another replica changed a moment ago — an MFA policy now in
	// force, the user's roles — is read here as a password login reads it:
	// after catching up with the event store's head (best effort, counted,
	// as there; the user's factors are caught up with in mfaGate).
	caughtUp := s.loginCatchUp(ctx)
	if unscoped := p.UnscopedMappedGroups(in.Groups); len(unscoped) > 0 {
		// Mappings stored before they named a directory grant nothing
		// through a multi-directory provider (domain.RoleMappingScoped):
		// said once per login, and counted, until the operator configures
		// the provider again with each mapping's directory.
		s.unscopedMappingLogins.Add(1)
		s.cfg.Log.Warn("sso login: role mappings of a multi-directory Azure AD provider name no directory and grant nothing (configure the provider again, naming each mapping's directory)",
			"provider", p.Name, "directory", in.TenantID, "groups", unscoped, "request_id", meta.Request.RequestID)
	}
	userID, err := s.ssoUser(ctx, meta, p, in)
	if err != nil {
		return LoginResult{}, err
	}
	u, _, ok := s.state.User(userID)
	if !ok {
		return LoginResult{}, domain.ErrInvalidCredentials
	}
	if !u.Active {
		return LoginResult{}, domain.ErrUserInactive
	}
	for _, tr := range p.TenantRolesFor(in.Groups, in.TenantID) {
		// Only added, never a step down: judged on the user each decision
		// is made on — a grant of a stronger role by an admin at the same
		// moment makes this append conflict, and the decision taken again
		// sees it (an outside check, 16a: the login's lesser role replaced
		// the admin's, both answered 200).
		_, err := s.ExecuteUserAs(ctx, meta, userID, domain.GrantRole{Tenant: tr.Tenant, Role: string(tr.Role)}, func(cur domain.User) error {
			if held := cur.Tenants[tr.Tenant]; held == tr.Role || rank(held) > rank(tr.Role) {
				return errRoleHeld
			}
			return nil
		})
		if err != nil && !errors.Is(err, errRoleHeld) {
			return LoginResult{}, err
		}
	}
	// The gate reads the user as the grants left it: a role the mapping
	// granted just now in a tenant whose policy requires a second factor
	// asks for enrolment at this sign-in, not the next one (an outside
	// check, 17b: a user added to a group mapped to an admin role signed
	// in without a factor, and refreshed that session for a week). The
	// grants are applied here (execute waits for its own writes).
	if u, _, ok = s.state.User(userID); !ok {
		return LoginResult{}, domain.ErrInvalidCredentials
	}
	if err := s.mfaGate(ctx, caughtUp, u, "", "sso:"+p.Name, "", in.MFA); err != nil { // mfa.go
		return LoginResult{}, err
	}
	return s.startSession(ctx, meta, userID, "", "sso:"+p.Name, "")
}

// errRoleHeld: the user holds the mapped role, or a stronger one (SSOLogin
// grants nothing then).
var errRoleHeld = errors.New("commands: the role or a stronger one is held")

func rank(r domain.Role) int {
	switch r {
	case domain.RoleViewer:
		return 1
	case domain.RoleEditor:
		return 2
	case domain.RoleAdmin:
		return 3
	}
	return 0
}

// ssoUser finds, links or provisions the user of an identity.
func (s *Service) ssoUser(ctx context.Context, meta events.Meta, p domain.SSOProvider, in domain.SSOLogin) (string, error) {
	for attempt := 0; attempt < 3; attempt++ {
		if id, ok := s.state.SSOIdentity(in.Issuer, in.Subject); ok {
			return id, nil
		}
		// An Azure AD provider switched between one directory and several
		// finds the links its other form made (an outside check, 14a: every
		// returning user became a new account, without roles or factors).
		for _, iss := range p.OtherFormIssuers(in.TenantID) {
			if id, ok := s.state.SSOIdentity(iss, in.Subject); ok {
				return id, nil
			}
		}
		key := SSOIdentityKey(in.Issuer, in.Subject)
		link := pending{
			// Expecting the identity's last (un)link: none, or the unlink
			// that made this login a first one again.
			aggregate: domain.AggregateSSOIdentity, id: key, expect: s.state.SSOIdentityLinkSeq(key),
			event: domain.SSOIdentityLinked{Provider: p.Name, Issuer: in.Issuer, Subject: in.Subject, LinkedAt: s.cfg.Now().UTC()},
		}
		var err error
		if existing, ok := s.linkableUser(p, in); ok {
			// Links by e-mail to one user contend on its sso_adoption
			// subject: read through the stream's leader, caught up with
			// (the whole write of a link another replica made), the user
			// checked again, and the subject expected unchanged in this
			// write. Of two identities linking to one user at once through
			// two replicas, one append conflicts, and deciding again finds
			// the other's link (linkableUser: the user holds another
			// subject of the issuer). Before, both were stored (an outside
			// check, 16a: two IdP subjects signed in to one account).
			claim, cerr := s.caughtUpWithWrite(ctx, events.Subject(domain.AggregateSSOAdoption, existing))
			if cerr != nil {
				return "", cerr
			}
			if again, ok := s.linkableUser(p, in); !ok || again != existing {
				continue // what the decision read has changed: decide again
			}
			ev := link.event.(domain.SSOIdentityLinked)
			ev.UserID, ev.Method = existing, domain.LinkVerifiedEmail
			link.event = ev
			_, err = s.appendEvents(ctx, meta, NewID("cmd"), []pending{link, {
				aggregate: domain.AggregateSSOAdoption, id: existing, expect: claim,
				event: domain.SSOUserAdopted{UserID: existing, Provider: p.Name},
			}})
			if err == nil {
				return existing, nil
			}
		} else {
			var id string
			id, err = s.provisionSSOUser(ctx, meta, p, in, link)
			if err == nil {
				return id, nil
			}
		}
		if !errors.Is(err, events.ErrConflict) && !errors.Is(err, ErrUsernameTaken) {
			return "", err
		}
		// Another replica linked the identity (or took the name) meanwhile:
		// read what it wrote and try again.
		last, lerr := s.log.LastSequence(ctx, events.Subject(domain.AggregateSSOIdentity, link.id))
		if lerr == nil && last > 0 {
			if werr := s.proj.WaitFor(ctx, last); werr != nil {
				return "", werr
			}
		}
	}
	return "", ErrTooManyConflicts
}

// UnlinkSSOIdentity cuts the identity subject of the provider (as its issuer
// is configured now) off its user: its next login is a first one again. For
// a platform admin repairing a link that should not be — one a tenant SCIM
// connection made before they could no longer, or an address that changed
// hands. domain.ErrNotFound if the provider does not exist or the identity
// is not linked.
func (s *Service) UnlinkSSOIdentity(ctx context.Context, meta events.Meta, provider, subject string) (string, error) {
	p, _, ok := s.state.SSOProvider(provider)
	if !ok || !p.Exists() || subject == "" {
		return "", domain.ErrNotFound
	}
	issuer := p.IdentityIssuer()
	userID, linked := s.state.SSOIdentity(issuer, subject)
	if !linked {
		// A link of the provider's other form (Azure AD: one directory or
		// several), which its logins find (ssoUser).
		for _, iss := range otherFormIssuers(p) {
			if userID, linked = s.state.SSOIdentity(iss, subject); linked {
				issuer = iss
				break
			}
		}
	}
	if !linked {
		return "", domain.ErrNotFound
	}
	key := SSOIdentityKey(issuer, subject)
	_, err := s.appendEvents(ctx, meta, NewID("cmd"), []pending{{
		aggregate: domain.AggregateSSOIdentity, id: key, expect: s.state.SSOIdentityLinkSeq(key),
		event: domain.SSOIdentityUnlinked{Provider: p.Name, Issuer: issuer, Subject: subject, UserID: userID},
	}})
	if errors.Is(err, events.ErrConflict) {
		// Linked or unlinked meanwhile: the caller may look again.
		return "", ErrTooManyConflicts
	}
	return userID, err
}

// otherFormIssuers is every issuer SSOProvider.OtherFormIssuers names for
// p's logins: a multi-tenant provider's for each allowed directory.
func otherFormIssuers(p domain.SSOProvider) []string {
	if !p.AzureMultiTenant() {
		return p.OtherFormIssuers("")
	}
	var out []string
	for _, t := range p.AllowedTenants {
		out = append(out, p.OtherFormIssuers(t)...)
		if l := strings.ToLower(t); l != t {
			out = append(out, p.OtherFormIssuers(l)...)
		}
	}
	return out
}

// linkableUser returns the one active user with the identity's e-mail — an
// account a platform admin, a platform SCIM connection or an identity
// provider vouched for (not domain.User.Unvouched) — when the
// provider links this login by e-mail (SSOProvider.LinksByEmail). A user
// who already holds another subject of the same issuer is not that one: the
// issuer knows that person under that subject, and the address it now vouches
// for another subject was handed on (the stored address is the one of the
// user's first login: an outside check, 14a, had a second person's first
// login land on the first one's account with its roles). The login then
// provisions a user of its own, as any first login that links to no one.
func (s *Service) linkableUser(p domain.SSOProvider, in domain.SSOLogin) (string, bool) {
	if !p.LinksByEmail(in) {
		return "", false
	}
	var found []domain.User
	for _, u := range s.state.UsersByEmail(in.Email) {
		// An address nobody vouched for (a tenant admin set it) links
		// nothing, nor does it hide the one that was.
		if u.Active && !u.Unvouched {
			found = append(found, u)
		}
	}
	if len(found) != 1 || s.state.SSOIdentityAtIssuer(found[0].ID, in.Issuer, in.Subject) {
		return "", false
	}
	return found[0].ID, true
}

// provisionFallback is the hash in "<provider>-<hash>", the username a
// provisioned user gets when its e-mail and preferred username are taken
// or not vouched for: the identity's first link takes its key's; a link
// after an unlink (link.expect, the unlink's sequence, not 0) one of the key
// and that sequence — else every relink after the third found its names
// taken for good (an outside check: 409 at every login).
func provisionFallback(link pending) string {
	if link.expect == 0 {
		return link.id[:12]
	}
	sum := sha256.Sum256([]byte(link.id + "\x00" + strconv.FormatUint(link.expect, 10)))
	return hex.EncodeToString(sum[:6])
}

// provisionSSOUser creates the user of a new identity and links it, in one
// atomic batch: username reservation, user.created, sso.identity_linked.
func (s *Service) provisionSSOUser(ctx context.Context, meta events.Meta, p domain.SSOProvider, in domain.SSOLogin, link pending) (string, error) {
	sealed, err := s.hashAndSeal(ctx, Claimant{Address: meta.Request.IP}, newSecret()) // a password nobody knows
	if err != nil {
		return "", err
	}
	userID := NewID("user")
	ev := link.event.(domain.SSOIdentityLinked)
	ev.UserID, ev.Method = userID, domain.LinkProvisioned
	link.event = ev
	var lastErr error
	vouched := p.VouchesForEmail(in)
	for _, name := range in.ProvisionUsernames(provisionFallback(link), vouched, p.VouchesForUsername(in)) {
		if _, _, taken := s.state.UserByName(name); taken {
			lastErr = ErrUsernameTaken
			continue
		}
		evs, err := domain.DecideUser(domain.User{}, domain.CreateUser{
			UserID: userID, Username: name, Email: in.ProvisionEmail(vouched), PasswordHashSealed: sealed,
			Tenants: p.TenantRolesFor(in.Groups, in.TenantID), Now: s.cfg.Now(),
		})
		if err != nil {
			return "", err
		}
		reservation := pending{
			aggregate: domain.AggregateUsername, id: usernameKey(name),
			event: domain.UsernameReserved{Username: name, UserID: userID},
		}
		all := append([]pending{reservation, link}, onAggregate(ref{domain.AggregateUser, userID}, 0, 0, evs)...)
		_, err = s.appendEvents(ctx, meta, NewID("cmd"), all)
		if err == nil {
			return userID, nil
		}
		if !errors.Is(err, events.ErrConflict) {
			return "", err
		}
		// Someone else took the name or linked the identity: catch up with
		// both subjects, then tell which.
		for _, subj := range []string{events.Subject(reservation.aggregate, reservation.id), events.Subject(link.aggregate, link.id)} {
			if last, lerr := s.log.LastSequence(ctx, subj); lerr == nil && last > 0 {
				if werr := s.proj.WaitFor(ctx, last); werr != nil {
					return "", werr
				}
			}
		}
		if _, linked := s.state.SSOIdentity(in.Issuer, in.Subject); linked {
			return "", err // the identity was linked elsewhere: the caller rereads it
		}
		lastErr = ErrUsernameTaken
	}
	return "", lastErr
}
