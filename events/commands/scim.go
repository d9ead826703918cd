package commands

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// SCIM provisioning (docs/scim.md): connections, and what a connection's
// identity provider pushes — users (the service's own users, found or
// created by the match rule below) and groups, whose membership sets the
// members' roles in the tenants the connection's group mappings name.
//
// The match rule of a user the identity provider creates, first match wins:
//
//  1. the SSO identity (issuer of the connection's SSO provider, externalId):
//     the user that identity signs in as (Okta sends its user ID as
//     externalId, which is the subject of its tokens); else the user the
//     connection's own record says it provisioned with that externalId and
//     deleted since (a rehire, also by a tenant connection, which links no
//     identity);
//  2. the user whose username is the userName, without regard to case —
//     if active and linked to no SSO identity other than (issuer,
//     externalId): a name changes hands, and an identity that did is never
//     taken over (ErrSCIMInactiveByName, ErrSCIMOtherIdentity);
//  3. else a new user with the userName as its username.
//
// A user found (1, 2) is adopted only if everything it holds is inside the
// connection's tenants (domain.SCIMConnection.Within), and by userName only
// if it holds a role in one of them — and, for a platform connection, by
// either only if not made, named or addressed by a tenant admin or a tenant
// connection (domain.User.Unvouched), which may know its password or have
// linked an identity to it; otherwise the userName counts as taken.
// Nor is it adopted when another live connection provisions it: adoptions
// of a user append domain.SCIMUserAdopted on its scim_adoption subject,
// expecting it unchanged, so that of two at once one conflicts and, deciding
// again, finds the other's record.
// When the externalId is not linked yet, the identity (issuer, externalId)
// is linked to the user (sso.identity_linked, method "scim"), so that the
// person's first SSO login signs in as the user the IdP provisioned.
// An adopted user takes the userName as its username and the address as
// its e-mail in the adoption's write, as an update gives them (a name
// another user has or had is ErrUsernameTaken).

// SCIMState reads SCIM connections, groups and users.
type SCIMState interface {
	SCIMConnection(id string) (domain.SCIMConnection, uint64, bool)
	SCIMGroup(id string) (domain.SCIMGroup, uint64, bool)
	SCIMGroups(connID string) []domain.SCIMGroup
	SCIMLink(connID, userID string) (domain.SCIMLink, uint64, bool)
	SCIMLinks(connID string) []domain.SCIMLink
	SCIMLinkByUserName(connID, name string) (domain.SCIMLink, bool)
	// SCIMLinkByExternalID: the user the connection provisions with that
	// externalId.
	SCIMLinkByExternalID(connID, externalID string) (domain.SCIMLink, bool)
	// SCIMFormerLinkByExternalID: the connection's latest record of a user
	// it provisioned with that externalId and no longer provisions.
	SCIMFormerLinkByExternalID(connID, externalID string) (domain.SCIMLink, bool)
	// SCIMConnections: the live connections.
	SCIMConnections() []domain.SCIMConnection
}

// Errors of SCIM provisioning.
var (
	// ErrSCIMStale: the user changed since the update was resolved; resolve
	// it again on the user as it is now.
	ErrSCIMStale = errors.New("commands: SCIM resource changed since it was read")
	// ErrSCIMNameTaken: a group of the connection has that displayName.
	ErrSCIMNameTaken = errors.New("commands: SCIM group name taken")
	// ErrSCIMOtherIdentity: the user a create finds by its userName signs
	// in with another SSO identity than the create's (another externalId,
	// another issuer): another person's account, never adopted.
	ErrSCIMOtherIdentity = fmt.Errorf("%w: the user of that name holds another SSO identity", ErrUsernameTaken)
	// ErrSCIMInactiveByName: the user a create finds by its userName is
	// deactivated — a departed holder of the name, maybe: never adopted
	// (and so activated again) by name.
	ErrSCIMInactiveByName = fmt.Errorf("%w: the user of that name is deactivated", ErrUsernameTaken)
	// ErrSCIMOtherPerson: an update gives a deactivated user of the
	// connection another externalId: the identity provider now says the
	// account is another person's (Okta gives a departed person's resource,
	// found by its userName, to the new hire of that name), never handed
	// over with the old one's password, factors and roles.
	ErrSCIMOtherPerson = fmt.Errorf("%w: a deactivated user's externalId changed", ErrUsernameTaken)
	// ErrSCIMOutside: the user holds roles outside the connection's tenants
	// (or is a platform admin); the connection may not change it as a whole.
	ErrSCIMOutside = errors.New("commands: the user holds roles outside the SCIM connection's tenants")
)

// errSCIMPassword: a tenant admin's connection sets no password
// (domain.SCIMConnection.Platform).
var errSCIMPassword = domain.Invalid("password", "this SCIM connection was made by a tenant admin and sets no passwords: "+
	"its users sign in through single sign-on (turn off the identity provider's password push, "+
	"or ask a platform admin for a platform connection)")

// scimBatchEvents bounds the role events appended in one atomic batch
// beside the SCIM events that cause them; the rest follow in further
// batches.
const scimBatchEvents = 200

// NewSCIMToken returns a fresh SCIM bearer token (256 bits from crypto/rand).
func NewSCIMToken() string {
	var r [32]byte
	if _, err := rand.Read(r[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return domain.FormatSCIMToken(r)
}

func (s *Service) scim() SCIMState { return s.state }

// scimConnAggregate is connection id as the write loop reads it.
func (s *Service) scimConnAggregate(id string) aggregate[domain.SCIMConnection] {
	return aggregate[domain.SCIMConnection]{
		ref:     ref{domain.AggregateSCIM, id},
		load:    func() (domain.SCIMConnection, uint64, bool) { return s.scim().SCIMConnection(id) },
		version: func(c domain.SCIMConnection) uint64 { return c.Version },
	}
}

// ---------------------------------------------------------------- connections

// SCIMConnectionInput is a connection as requested.
type SCIMConnectionInput struct {
	// Name is optional; given, it must be free among the owner's live
	// connections (ErrSCIMConnectionNameTaken).
	Name          string
	Provider      string
	Tenants       []string
	GroupMappings []domain.RoleMapping
	Platform      bool // a platform admin's connection (domain.SCIMConnection.Platform)
	// OwnerID, OwnerKeyID: who makes it (domain.SCIMConnection.OwnerID).
	OwnerID, OwnerKeyID string
}

// MaxSCIMConnectionsPerOwner bounds the live connections one user owns:
// an identity provider needs one or two, and a deactivation retires each
// owned connection's token in an append of its own (a stolen session made
// a thousand in three seconds, and twelve thousand kept a deactivation
// past its request timeout).
const MaxSCIMConnectionsPerOwner = 100

// CreateSCIMConnection creates a connection and returns it with its bearer
// token (shown once; only its SHA-256 is stored). An owner with
// MaxSCIMConnectionsPerOwner live connections is refused (a bound, not
// exact under concurrent creations).
func (s *Service) CreateSCIMConnection(ctx context.Context, meta events.Meta, in SCIMConnectionInput) (domain.SCIMConnection, string, error) {
	if in.OwnerID != "" {
		n := 0
		for _, c := range s.scim().SCIMConnections() {
			if c.OwnerID == in.OwnerID {
				n++
			}
		}
		if n >= MaxSCIMConnectionsPerOwner {
			return domain.SCIMConnection{}, "", domain.Invalid("connections", "this user owns %d SCIM connections already (at most %d); delete one first", n, MaxSCIMConnectionsPerOwner)
		}
	}
	token := NewSCIMToken()
	p, _, ok := s.state.SSOProvider(in.Provider)
	cmd := domain.CreateSCIMConnection{
		ConnectionID: NewID("scim"), Name: in.Name, Provider: in.Provider, ProviderExists: ok && p.Exists(),
		Tenants: in.Tenants, GroupMappings: in.GroupMappings, TokenHash: HashToken(token), Platform: in.Platform,
		OwnerID: in.OwnerID, OwnerKeyID: in.OwnerKeyID, Now: s.cfg.Now(),
	}
	evs, err := domain.DecideSCIMConnection(domain.SCIMConnection{}, cmd)
	if err != nil {
		return domain.SCIMConnection{}, "", err
	}
	conn := onAggregate(ref{domain.AggregateSCIM, cmd.ConnectionID}, 0, 0, evs)
	name := evs[0].(domain.SCIMConnectionCreated).Name // trimmed
	if name == "" {
		_, err = s.appendEvents(ctx, meta, NewID("cmd"), conn)
	} else {
		// A named connection is made once: a client that retries a create
		// whose answer it lost — or sends it twice at once, through two
		// replicas — gets 409 instead of a second connection with a live
		// token nobody holds. As for API key names (CreateAPIKey): the
		// name's reservation subject is read through the stream's leader,
		// this replica catches up with it, and the reservation is appended
		// expecting it unchanged, in the same atomic batch as the
		// connection.
		nameKey := SCIMNameKey(in.OwnerID, name)
		subject := events.Subject(domain.AggregateSCIMName, nameKey)
		err = s.writeBatch(ctx, meta, func() ([]pending, error) {
			last, err := s.caughtUpWithWrite(ctx, subject)
			if err != nil {
				return nil, err
			}
			if s.liveSCIMConnectionNamed(in.OwnerID, name) {
				return nil, ErrSCIMConnectionNameTaken
			}
			reservation := pending{
				aggregate: domain.AggregateSCIMName, id: nameKey, expect: last,
				event: domain.SCIMNameReserved{OwnerID: in.OwnerID, Name: name, ConnectionID: cmd.ConnectionID},
			}
			return append([]pending{reservation}, conn...), nil
		})
	}
	if err != nil {
		return domain.SCIMConnection{}, "", err
	}
	c, _, _ := s.scim().SCIMConnection(cmd.ConnectionID)
	return c, token, nil
}

// ErrSCIMConnectionNameTaken: a live connection of the same owner has that
// name.
var ErrSCIMConnectionNameTaken = fmt.Errorf("%w: SCIM connection name taken", domain.ErrAlreadyExists)

// liveSCIMConnectionNamed reports whether one of owner's live connections is
// named name, without regard to case.
func (s *Service) liveSCIMConnectionNamed(owner, name string) bool {
	for _, c := range s.scim().SCIMConnections() {
		if c.OwnerID == owner && strings.EqualFold(c.Name, name) {
			return true
		}
	}
	return false
}

// executeSCIMConnection decides cmd against connection id, once may (the
// caller's permission, checked on the state decided against) allows it.
func (s *Service) executeSCIMConnection(ctx context.Context, meta events.Meta, id string, may func(domain.SCIMConnection) error,
	cmd domain.SCIMConnectionCommand, seen func(domain.SCIMConnection)) (domain.SCIMConnection, error) {
	return execute(ctx, s, meta, write[domain.SCIMConnection]{
		on: s.scimConnAggregate(id), missing: domain.ErrNotFound,
		decide: func(c domain.SCIMConnection) ([]domain.Event, error) {
			if !c.Exists() {
				return nil, domain.ErrNotFound
			}
			if may != nil {
				if err := may(c); err != nil {
					return nil, err
				}
			}
			if seen != nil {
				seen(c)
			}
			return domain.DecideSCIMConnection(c, cmd)
		},
	})
}

// UpdateSCIMConnection replaces a connection's tenants (when not nil),
// group mappings (when not nil) and platform flag (when not nil), then
// brings the roles of every user it provisions, in the tenants the mappings
// named before or name now, to what the new mappings give (a mapping
// removed takes its roles with it).
//
// A connection becoming a platform one gets a new token (returned; "" when
// it was not rotated), owned by ownerID (through ownerKeyID): the old one,
// which a tenant admin may hold, stops in the same append.
func (s *Service) UpdateSCIMConnection(ctx context.Context, meta events.Meta, id string, tenants []string, mappings []domain.RoleMapping,
	platform *bool, ownerID, ownerKeyID string, may func(domain.SCIMConnection) error) (domain.SCIMConnection, string, error) {
	var before []string
	cmd := domain.UpdateSCIMConnection{Tenants: tenants, GroupMappings: mappings, Platform: platform, Now: s.cfg.Now()}
	token := ""
	if platform != nil && *platform {
		token = NewSCIMToken()
		cmd.TokenHash, cmd.OwnerID, cmd.OwnerKeyID = HashToken(token), ownerID, ownerKeyID
	}
	c, err := s.executeSCIMConnection(ctx, meta, id, may, cmd, func(old domain.SCIMConnection) { before = old.GovernedTenants() })
	if err != nil {
		return c, "", err
	}
	if c.TokenHash != cmd.TokenHash {
		token = "" // already a platform connection: its token stays
	}
	var users []string
	for _, l := range s.linksOf(id) {
		users = append(users, l.UserID)
	}
	// The connection is stored: a failure to bring the roles along is
	// retried in the background, not the answer (followUpSCIMRoles).
	s.followUpSCIMRoles(ctx, meta, id, users, before)
	// The connection as the read model has it now (its last event applied);
	// gone meanwhile (deleted by another request): as it was updated.
	if now, _, ok := s.scim().SCIMConnection(id); ok {
		c = now
	}
	return c, token, nil
}

// RotateSCIMToken gives a connection a new token (returned once); the old
// one stops, and the rotating user (ownerKeyID: through that API key) owns
// the connection from then on. The token replaced is the one this request
// found: when another rotation replaced it meanwhile (rotations at once),
// the answer is domain.ErrSCIMTokenRotated — only the token in force is
// ever shown.
func (s *Service) RotateSCIMToken(ctx context.Context, meta events.Meta, id, ownerID, ownerKeyID string, may func(domain.SCIMConnection) error) (domain.SCIMConnection, string, error) {
	seen, _, _ := s.scim().SCIMConnection(id) // unknown: the decision says so
	return s.RotateSCIMTokenReplacing(ctx, meta, id, seen.TokenHash, ownerID, ownerKeyID, may)
}

// RotateSCIMTokenReplacing is RotateSCIMToken of the token whose hash is
// replaces, as the caller found it — before it claimed the connection
// (Replacing), so that a rotation that overtook it meanwhile refuses it
// rather than be replaced after its answer was made (re-check 15r4).
func (s *Service) RotateSCIMTokenReplacing(ctx context.Context, meta events.Meta, id, replaces, ownerID, ownerKeyID string, may func(domain.SCIMConnection) error) (domain.SCIMConnection, string, error) {
	token := NewSCIMToken()
	c, err := s.executeSCIMConnection(ctx, meta, id, may,
		domain.RotateSCIMToken{Replaces: replaces, TokenHash: HashToken(token), OwnerID: ownerID, OwnerKeyID: ownerKeyID, Now: s.cfg.Now()}, nil)
	if err != nil {
		return c, "", err
	}
	// As RotateAPIKey: a token replaced before this answer goes out is not
	// shown.
	if s.replacedMeanwhile(ctx, domain.AggregateSCIM, id, func() bool {
		now, _, _ := s.scim().SCIMConnection(id)
		return now.TokenHash != HashToken(token)
	}) {
		return c, "", domain.ErrSCIMTokenRotated
	}
	return c, token, nil
}

// DeleteSCIMConnection stops a connection and its token. Its users keep
// what they hold.
func (s *Service) DeleteSCIMConnection(ctx context.Context, meta events.Meta, id string, may func(domain.SCIMConnection) error) error {
	_, err := s.executeSCIMConnection(ctx, meta, id, may, domain.DeleteSCIMConnection{}, nil)
	return err
}

// ---------------------------------------------------------------- reading

// CatchUpHead waits until the local read models have applied everything
// the event store held when asked: a SCIM request then sees every write
// made before it, on any replica (identity providers expect to read a user
// back right after creating it, whichever replica answers).
func (s *Service) CatchUpHead(ctx context.Context) error {
	head, err := s.log.Head(ctx)
	if err != nil {
		return err
	}
	return s.proj.WaitFor(ctx, head)
}

// linksOf lists a connection's linked users.
func (s *Service) linksOf(connID string) []domain.SCIMLink { return s.scim().SCIMLinks(connID) }

// liveConn returns connection id if it exists.
func (s *Service) liveConn(id string) (domain.SCIMConnection, error) {
	c, _, ok := s.scim().SCIMConnection(id)
	if !ok || !c.Exists() {
		return domain.SCIMConnection{}, domain.ErrNotFound
	}
	return c, nil
}

// linkedUser returns the user id as connection connID provisions it.
func (s *Service) linkedUser(connID, id string) (domain.SCIMLink, uint64, domain.User, error) {
	l, seq, ok := s.scim().SCIMLink(connID, id)
	if !ok || !l.Linked {
		return domain.SCIMLink{}, 0, domain.User{}, domain.ErrNotFound
	}
	u, _, ok := s.state.User(id)
	if !ok {
		return domain.SCIMLink{}, 0, domain.User{}, domain.ErrNotFound
	}
	return l, seq, u, nil
}

// ---------------------------------------------------------------- users

// SCIMUserInput is a user an identity provider creates.
type SCIMUserInput struct {
	Profile domain.SCIMProfile
	// Password, when the identity provider sent one (Okta's password push):
	// checked by the password policy, hashed and sealed. Without one, a new
	// user gets a random password nobody knows (they sign in through SSO).
	Password string
	Active   bool
}

// SCIMEmailOf is the address a user provisioned with profile p is created
// with: the primary one, else the work one, else the first; "" when that is
// not a plain address.
func SCIMEmailOf(p domain.SCIMProfile) string {
	pick := ""
	for _, e := range p.Emails {
		if e.Primary {
			pick = e.Value
			break
		}
	}
	if pick == "" {
		for _, e := range p.Emails {
			if strings.EqualFold(e.Type, "work") {
				pick = e.Value
				break
			}
		}
	}
	if pick == "" && len(p.Emails) > 0 {
		pick = p.Emails[0].Value
	}
	a, err := mail.ParseAddress(pick)
	if err != nil || a.Address != pick {
		return ""
	}
	return pick
}

// scimIssuer is the identity issuer of the connection's SSO provider ("":
// the provider is not configured now, and no identity is linked).
func (s *Service) scimIssuer(c domain.SCIMConnection) string {
	p, _, ok := s.state.SSOProvider(c.Provider)
	if !ok || !p.Exists() {
		return ""
	}
	return p.IdentityIssuer()
}

// SCIMCreateUser provisions a user for connection connID by the match rule
// (above) and returns its ID. A userName the connection already shows,
// that is taken by a user the connection may not adopt, or that another
// user had (for a new user) or has or had (for a user adopted under another
// name), is ErrUsernameTaken.
func (s *Service) SCIMCreateUser(ctx context.Context, meta events.Meta, connID string, in SCIMUserInput) (string, error) {
	conn, err := s.liveConn(connID)
	if err != nil {
		return "", err
	}
	if err := domain.CheckSCIMProfile(in.Profile); err != nil {
		return "", err
	}
	if in.Password != "" && !conn.Platform {
		return "", errSCIMPassword
	}
	email := SCIMEmailOf(in.Profile)
	password := in.Password
	if password != "" {
		if err := s.passwords.Check(password, PasswordContext{Username: in.Profile.UserName, Email: email}); err != nil {
			return "", err
		}
	} else {
		password = newSecret() // a password nobody knows
	}
	sealed, err := s.hashAndSeal(ctx, Claimant{Address: meta.Request.IP}, password)
	if err != nil {
		return "", err
	}
	var userID string
	adopted, passwordSet := false, false
	err = s.commitSCIM(ctx, meta, connID, func(c domain.SCIMConnection) (scimTx, error) {
		userID, adopted, passwordSet = "", false, false
		if _, taken := s.scim().SCIMLinkByUserName(connID, in.Profile.UserName); taken {
			return scimTx{}, ErrUsernameTaken
		}
		if _, taken := s.scim().SCIMLinkByExternalID(connID, in.Profile.ExternalID); taken {
			// An externalId the connection provisions already, under
			// another userName: 409, as a platform connection's create
			// finds that user by its identity (rule 1) and answers; a
			// tenant connection, which links no identity, made a second
			// user with the same externalId (re-check 19r2).
			return scimTx{}, ErrUsernameTaken
		}
		issuer := s.scimIssuer(c)
		var pend []pending
		link := domain.LinkSCIMUser{ConnectionID: connID, Profile: in.Profile, Now: s.cfg.Now()}
		var found domain.User
		var fseq uint64
		ok := false
		// The identity's link is read once per attempt, and all of this
		// attempt decides on that reading: its link sequence first, then
		// whether it is linked (a link applied in between shows as linked,
		// never as unlinked at the link's own sequence). Read again later
		// — after the round trips below — another connection's link of
		// the identity, applied meanwhile, would show this attempt's user
		// (made or adopted by name) as needing no link, and its write
		// would touch nothing that link touched: both stored, two users
		// for one externalId (an outside check, 13r6). Unlinked here, the
		// link is appended expecting this sequence: another link makes
		// the write conflict, and the next attempt finds that link's user
		// by identity.
		var identityKey string
		var identitySeq uint64
		identityLinked := false
		if issuer != "" && in.Profile.ExternalID != "" {
			identityKey = SSOIdentityKey(issuer, in.Profile.ExternalID)
			identitySeq = s.state.SSOIdentityLinkSeq(identityKey)
			var id string
			if id, identityLinked = s.state.SSOIdentity(issuer, in.Profile.ExternalID); identityLinked {
				found, fseq, ok = s.state.User(id)
				link.Method = domain.SCIMLinkIdentity
				if ok && !c.Platform && len(found.Tenants) == 0 {
					// As by username (below): a tenant connection adopts
					// only a user of one of its tenants. A user in none —
					// an SSO login's, with no role yet — is no tenant's to
					// take (a re-check: a tenant connection naming their
					// identity renamed, re-addressed and deactivated them).
					return scimTx{}, ErrUsernameTaken
				}
			}
		}
		if !ok {
			// A rehire the identity did not find — a tenant connection's
			// user, whose identity it never linked, or a connection whose
			// provider is gone: the connection's own record of the user it
			// provisioned with this externalId, deleted since, says who it
			// is (by name it was refused: the delete left it inactive and in
			// none of the connection's tenants, and the provider's retries
			// got 409 for good — an outside check, 19e). Only this
			// connection's record: it names a user this connection created
			// or adopted, nobody else's.
			if former, was := s.scim().SCIMFormerLinkByExternalID(connID, in.Profile.ExternalID); was {
				if found, fseq, ok = s.state.User(former.UserID); ok {
					link.Method = domain.SCIMLinkRehire
				}
			}
		}
		if !ok {
			if found, fseq, ok = s.state.UserByName(in.Profile.UserName); ok {
				link.Method = domain.SCIMLinkUsername
				// A name can change hands — the IdP gives a departed
				// person's address to a new hire, a user of another
				// provider took a plain name first — and an identity that
				// changed hands is never taken over (as SSO's linking by
				// e-mail, sso.md): a user who signs in with an identity
				// other than the one this create names (another
				// externalId of the issuer, another issuer) is another
				// person's account, and one deactivated is a departed
				// person's, whose adoption would activate it again with
				// their password and factors (an outside check, 19e).
				// Which of the two it is, a tenant connection learns only
				// of a user of its tenants (one who holds a role in one of
				// them, and none elsewhere) or one it provisioned itself
				// (and deleted: it knows that user is deactivated): of
				// another tenant's user, or of one in no tenant at all
				// (Within alone is true of those), no more than that the
				// name is taken (re-check 19r2). A platform connection is
				// a platform admin's.
				other := s.state.SSOIdentityOtherThan(found.ID, issuer, in.Profile.ExternalID)
				_, _, itsOwn := s.scim().SCIMLink(connID, found.ID)
				shown := c.Platform || c.Within(found) && (c.Shares(found) || itsOwn)
				switch {
				case (other || !found.Active) && !shown:
					return scimTx{}, ErrUsernameTaken
				case other:
					return scimTx{}, ErrSCIMOtherIdentity
				case !found.Active:
					return scimTx{}, ErrSCIMInactiveByName
				}
				if len(found.Tenants) == 0 {
					return scimTx{}, ErrUsernameTaken // in none of the connection's tenants
				}
			}
		}
		if ok && c.Platform && found.Unvouched {
			// Made, named or addressed by a tenant admin or its
			// connection, which may know its password or have linked an
			// identity to it: a platform connection would hand it the
			// person's SSO identity (found by name) or the roles their
			// groups give elsewhere (found by identity). The name counts
			// as taken (no API renames or removes a user: the IdP gives
			// the person another userName).
			return scimTx{}, ErrUsernameTaken
		}
		if ok {
			// Adoptions of the user contend on its scim_adoption subject:
			// read through the stream's leader, caught up with, and
			// expected unchanged in this write. Another connection adopting
			// the user at the same moment — whose write may change nothing
			// else this one expects — makes this append conflict, and
			// deciding again finds its record (provisionedElsewhere).
			claim := events.Subject(domain.AggregateSCIMAdoption, found.ID)
			last, err := s.caughtUpWithWrite(ctx, claim)
			if err != nil {
				return scimTx{}, err
			}
			if !c.Within(found) || s.provisionedElsewhere(connID, found.ID) {
				return scimTx{}, ErrUsernameTaken
			}
			userID, adopted = found.ID, true
			pend = append(pend, pending{
				aggregate: domain.AggregateSCIMAdoption, id: found.ID, expect: last,
				event: domain.SCIMUserAdopted{UserID: found.ID, ConnectionID: connID},
			})
			// The adopted user becomes what the identity provider says,
			// in this write, as an update would make it (SCIMUpdateUser):
			// the userName its username — reserved, so a name another
			// user has or had is ErrUsernameTaken and nothing changes (a
			// rehire found by identity and sent as "admin" must not show
			// the connection's user under the platform admin's name) — and
			// the address its e-mail. Else the connection's record and the
			// user would disagree, and the record would keep the name from
			// every uniqueness check.
			profile, err := scimProfileChange(found, in.Profile, !c.Platform)
			if err != nil {
				return scimTx{}, err
			}
			if in.Password != "" && found.Active {
				// The pushed password in the adoption's own write, before
				// the deactivation it may carry (active: false): set after
				// it, the change was refused — a password is not changed
				// for an inactive user — and every such create answered
				// 503 (re-check 16r4).
				pw, err := domain.DecideUser(fold(found, profile, domain.EvolveUser), domain.ChangePassword{PasswordHashSealed: sealed})
				if err != nil {
					return scimTx{}, err
				}
				profile, passwordSet = append(slices.Clone(profile), pw...), true
			}
			if len(profile) > 0 {
				more, err := s.profilePending(ctx, found, fseq, profile)
				if err != nil {
					return scimTx{}, err
				}
				pend = append(pend, more...)
			}
		} else {
			userID, link.Method = NewID("user"), domain.SCIMLinkCreated
			evs, err := domain.DecideUser(domain.User{}, domain.CreateUser{
				UserID: userID, Username: in.Profile.UserName, Email: email, PasswordHashSealed: sealed,
				Unvouched: !c.Platform, Now: s.cfg.Now(),
			})
			if err != nil {
				var ve *domain.ValidationError
				if errors.As(err, &ve) && ve.Field == "username" {
					return scimTx{}, domain.Invalid("userName", "a new user's userName %s", ve.Message)
				}
				return scimTx{}, err
			}
			if !in.Active {
				// Created inactive in the same atomic append: a replica
				// stopped between two appends would leave the user active,
				// and the identity provider's retry gets 409 (the
				// connection shows the user) and corrects nothing.
				u := fold(domain.User{}, evs, domain.EvolveUser)
				deact, err := domain.DecideUser(u, domain.Deactivate{Reason: scimDeprovisioned(connID)})
				if err != nil {
					return scimTx{}, err
				}
				evs = append(evs, deact...)
			}
			// A name once used stays reserved (a user renamed away from
			// it still holds it): taken. The reservation is appended
			// expecting the name new; a conflict on it — a creator racing
			// this one took it — builds again, and finds it here.
			last, err := s.log.LastSequence(ctx, events.Subject(domain.AggregateUsername, usernameKey(in.Profile.UserName)))
			if err != nil {
				return scimTx{}, err
			}
			if last != 0 {
				return scimTx{}, ErrUsernameTaken
			}
			pend = append(pend, pending{
				aggregate: domain.AggregateUsername, id: usernameKey(in.Profile.UserName),
				event: domain.UsernameReserved{Username: in.Profile.UserName, UserID: userID},
			})
			pend = append(pend, onAggregate(ref{domain.AggregateUser, userID}, 0, 0, evs)...)
		}
		if identityKey != "" && !identityLinked && c.Platform {
			// A tenant admin's connection links no identity: not to a user
			// it did not create (whose password it may know), nor to one it
			// creates — the identity provider is the platform's, and the
			// connection could name anyone's identity (another tenant's
			// user, a platform admin), whose SSO login would then land on
			// an account of its making. Unlinked when this attempt began,
			// it is linked expecting the sequence read then (above).
			pend = append(pend, pending{
				aggregate: domain.AggregateSSOIdentity, id: identityKey, expect: identitySeq,
				event: domain.SSOIdentityLinked{
					Provider: c.Provider, Issuer: issuer, Subject: in.Profile.ExternalID, UserID: userID,
					Method: domain.LinkSCIM, LinkedAt: s.cfg.Now().UTC(),
				},
			})
		}
		link.UserID = userID
		l, seq, _ := s.scim().SCIMLink(connID, userID)
		evs, err := domain.DecideSCIMLink(l, link)
		if err != nil {
			if errors.Is(err, domain.ErrAlreadyExists) {
				return scimTx{}, ErrUsernameTaken
			}
			return scimTx{}, err
		}
		pend = append(pend, onAggregate(ref{domain.AggregateSCIMUser, domain.SCIMLinkKey(connID, userID)}, l.Version, seq, evs)...)
		tx := scimTx{pend: pend}
		if adopted {
			// An adopted user's roles in the governed tenants become what
			// the connection's groups give (none yet: no group has it as a
			// member), in the same write: an admin role there must not
			// outlive the adoption until some later reconciliation.
			tx.users = []string{userID}
			if !in.Active {
				// And it is deactivated in that write too (not in a second
				// append a stopped replica would never make: the provider's
				// retry gets 409 and corrects nothing).
				tx.deactivate, tx.reason = []string{userID}, scimDeprovisioned(connID)
			}
		}
		return tx, nil
	})
	if err != nil {
		return "", err
	}
	// The adoption is stored: a failure of what follows it — the user
	// activated, its password set, the tokens of connections it owns
	// retired with a deactivation (the user itself was deactivated in the
	// write) — is ErrIncomplete, not "nothing was changed" (outside check
	// 16e). Not retried in the background: a retry replays a command
	// decided for this request, and undid what came after it — the user
	// deactivated or deleted meanwhile was activated again, a password set
	// since was replaced (re-check 16r3). The identity provider finds the
	// user it created (its lookup by userName) and sends the change again.
	if adopted && in.Active {
		if _, err := s.scimActivate(ctx, meta, connID, userID); err != nil {
			return userID, incomplete(err)
		}
	}
	switch {
	case adopted && in.Password != "" && !passwordSet && in.Active:
		// An inactive user adopted active: the password once activated.
		if _, err := s.ExecuteUser(ctx, meta, userID, domain.ChangePassword{PasswordHashSealed: sealed}); err != nil {
			return userID, incomplete(err)
		}
	case adopted && in.Password != "" && !passwordSet:
		// An inactive user adopted inactive: no password is set for an
		// inactive user; the provider's activation, with a password,
		// sets one.
		s.cfg.Log.Warn("SCIM: the password pushed with an inactive user's adoption was not set (the user is inactive)",
			"connection_id", connID, "user_id", userID)
	}
	if adopted && !in.Active {
		if _, err := s.scimDeactivate(ctx, meta, connID, userID); err != nil {
			return userID, incomplete(err)
		}
	}
	return userID, nil
}

// errSCIMPasswordRefused: a password, not the user's, for a user who stays
// inactive — counted as a failed login (domain.ErrUserInactive to the
// identity provider).
var errSCIMPasswordRefused = fmt.Errorf("%w: a new password for a user who stays inactive", domain.ErrUserInactive)

// SCIMUserUpdate is a change an identity provider makes to a user.
type SCIMUserUpdate struct {
	// Version is the stream sequence of the connection's record of the user
	// that the update was resolved on (0: not checked): another is
	// ErrSCIMStale.
	Version uint64
	// Profile, when set, replaces the SCIM attributes the connection keeps.
	Profile *domain.SCIMProfile
	// Password, when set, becomes the user's password.
	Password string
	// Active, when set, activates or deactivates the user.
	Active *bool
}

// SCIMUpdateUser applies an identity provider's change to a user of
// connection connID. A changed userName becomes the user's username, and a
// changed e-mail (SCIMEmailOf) the user's e-mail: user.profile_changed, in
// the same atomic append as the connection's record (and the new name's
// reservation: a name taken, or ever used, is ErrUsernameTaken). What
// changes the user as a whole — activation, deactivation, a password, a
// new username or e-mail — needs a user that holds nothing outside the
// connection's tenants (else ErrSCIMOutside). A new (or removed) externalId
// for a deactivated user is ErrSCIMOtherPerson, and nothing changes.
//
// The same update sent twice at once (an identity provider's retry after a
// timeout, through two replicas) is answered as the first was: a refusal
// that another write racing this one can cause — its rename taking the
// name first, its deactivation landing before this password — is decided
// once more on the store as it then is, where the same change finds
// nothing left to do (re-check 17r2: one of two identical PUTs answered
// 409 uniqueness for the user's own new name, or 400 for its own password).
func (s *Service) SCIMUpdateUser(ctx context.Context, meta events.Meta, connID, userID string, up SCIMUserUpdate) error {
	err := s.scimUpdateUser(ctx, meta, connID, userID, up)
	if errors.Is(err, errSCIMPasswordRefused) ||
		!errors.Is(err, ErrUsernameTaken) && !errors.Is(err, ErrSCIMStale) && !errors.Is(err, domain.ErrUserInactive) {
		return err // errSCIMPasswordRefused was decided on the store, and counted
	}
	if cerr := s.CatchUpHead(ctx); cerr != nil {
		return err
	}
	return s.scimUpdateUser(ctx, meta, connID, userID, up)
}

// scimUpdateUser is SCIMUpdateUser decided once.
func (s *Service) scimUpdateUser(ctx context.Context, meta events.Meta, connID, userID string, up SCIMUserUpdate) error {
	c, err := s.liveConn(connID)
	if err != nil {
		return err
	}
	l, seq, _, err := s.linkedUser(connID, userID)
	if err != nil {
		return err
	}
	if up.Version != 0 && up.Version != seq {
		return ErrSCIMStale
	}
	u, useq, ok := s.state.User(userID)
	if !ok {
		return domain.ErrNotFound
	}
	// Compared with the user as it is (not the connection's record: the
	// user is what a login and the API see).
	renamed := up.Profile != nil && !strings.EqualFold(up.Profile.UserName, u.Username)
	activeChange := up.Active != nil && *up.Active != u.Active
	var profile []domain.Event // the user's new username or e-mail
	if up.Profile != nil {
		if err := domain.CheckSCIMProfile(*up.Profile); err != nil {
			return err
		}
		if profile, err = scimProfileChange(u, *up.Profile, !c.Platform); err != nil {
			return err
		}
	}
	if (activeChange || up.Password != "" || renamed || len(profile) > 0) && !c.Within(u) {
		return ErrSCIMOutside
	}
	if up.Profile != nil && up.Profile.ExternalID != l.Profile.ExternalID && !u.Active &&
		(l.Profile.ExternalID != "" || s.state.SSOIdentityOtherThan(u.ID, s.scimIssuer(c), up.Profile.ExternalID)) {
		// A new externalId for a deactivated user — whether this update
		// activates it or a later one would — is the identity provider
		// saying this account is someone else now: Okta deactivates a
		// departed person and never deletes them, finds that resource by
		// its userName when a new hire gets the name, and sends its
		// externalId with active: true. Taken, the new person had the
		// departed one's account, old password and factors, its identity
		// still linked (re-check 19r2: the create refused exactly this
		// since 19e, the update did not). Refused, and nothing changes,
		// when the record had an externalId before, or the user signs in
		// with an identity other than the new one. Of an active user, a
		// new externalId is the same person's new key (Entra ID switched
		// from mailNickname to objectId, as scim.md asks): the account is
		// in use, and nothing shows it changed hands.
		return ErrSCIMOtherPerson
	}
	if up.Password != "" && !c.Platform {
		return errSCIMPassword
	}
	if up.Password != "" && !u.Active && (up.Active == nil || !*up.Active) {
		// The password the user has already changes nothing: the same
		// request sent again after it set that password and deactivated
		// the user (an identity provider's retry of its PUT, or the
		// "send the same request again" of ErrIncomplete) goes on, and
		// completes what it may have left undone (outside check 17c: it
		// was refused, and the provider recorded a failure).
		// Checking it is a guess of the password, which the answer tells:
		// throttled and counted as a login's (re-check 17r4: a token of
		// the connection learned an inactive user's password unthrottled)
		// — the user's count, not the address's: the address is the
		// identity provider's, whose other users' requests and whose
		// people's logins it would lock (re-check 17r5). So the failure
		// is recorded without the request's address.
		now := s.cfg.Now()
		if err := s.throttled(u, true, u.Username, "", now); err != nil {
			return err
		}
		check := meta
		check.Request.IP = ""
		same, err := s.passwordMatches(ctx, Claimant{Address: meta.Request.IP, Account: u.ID}, u, true, u.Username, up.Password, func() error {
			u, _, _ := s.state.User(u.ID)
			return s.throttled(u, true, u.Username, "", now)
		})
		if err != nil {
			return err
		}
		if !same {
			if err := s.recordLoginFailure(ctx, check, u, true, u.Username, "scim_password", now); err != nil {
				return err
			}
			// No new password for a user who stays inactive: refused
			// before a new userName in the same request is stored
			// (re-check 16r6: the rename stored, the password refused
			// after it, and the answer "send the same request again",
			// which was refused then).
			return errSCIMPasswordRefused
		}
		up.Password = ""
	}
	var sealed string
	stored := false // a write of this request is stored
	if up.Password != "" {
		if err := s.passwords.Check(up.Password, PasswordContext{Username: u.Username, Email: u.Email}); err != nil {
			return err
		}
		if sealed, err = s.hashAndSeal(ctx, Claimant{Address: meta.Request.IP, Account: userID}, up.Password); err != nil {
			return err
		}
	}
	if up.Profile != nil {
		if renamed {
			if other, _, ok := s.state.UserByName(up.Profile.UserName); ok && other.ID != userID {
				return ErrUsernameTaken
			}
			if other, ok := s.scim().SCIMLinkByUserName(connID, up.Profile.UserName); ok && other.UserID != userID {
				return ErrUsernameTaken
			}
		}
		evs, err := domain.DecideSCIMLink(l, domain.UpdateSCIMUser{Profile: *up.Profile, Now: s.cfg.Now()})
		if err != nil {
			return err
		}
		pend := onAggregate(ref{domain.AggregateSCIMUser, domain.SCIMLinkKey(connID, userID)}, l.Version, seq, evs)
		if len(profile) > 0 {
			more, err := s.profilePending(ctx, u, useq, profile)
			if err != nil {
				return err
			}
			pend = append(pend, more...)
		}
		if len(pend) > 0 {
			_, err := s.appendEvents(ctx, meta, NewID("cmd"), pend)
			if errors.Is(err, events.ErrConflict) {
				if taken, terr := s.reservedAgain(ctx, u, profile); terr != nil || taken {
					return cmpErr(terr, ErrUsernameTaken)
				}
				return ErrSCIMStale
			}
			if err != nil {
				return err
			}
			stored = true
		}
	}
	// Each step below is a write of its own: once one is stored, a failure
	// of the next is ErrIncomplete, not "nothing was changed" (outside
	// check 16r2: a new userName stored, the password's append failing,
	// answered 503 "nothing was changed"). The same request again
	// completes it.
	// A step tells whether it stored anything: an activation of a user
	// active already (a replica behind another) stores nothing (re-check
	// 16r5: ErrIncomplete with nothing stored).
	step := func(wrote bool, err error) error {
		if stored && storeFailed(err) {
			err = incomplete(err) // a refusal stays one
		}
		stored = stored || wrote
		return err
	}
	if activeChange && *up.Active {
		if err := step(s.scimActivate(ctx, meta, connID, userID)); err != nil {
			return err
		}
	}
	if sealed != "" {
		_, err := s.ExecuteUser(ctx, meta, userID, domain.ChangePassword{PasswordHashSealed: sealed})
		if err = step(err == nil, err); err != nil {
			return err
		}
	}
	if up.Active != nil && !*up.Active && (activeChange || c.Within(u)) {
		// Also when the user is inactive already: the same request again
		// completes a deactivation whose retirement of the SCIM tokens the
		// user owns failed (ErrIncomplete).
		return step(s.scimDeactivate(ctx, meta, connID, userID))
	}
	return nil
}

// scimProfileChange decides the user.profile_changed that brings user u to
// the identity provider's profile p: p's userName as the username if it
// differs from u's, p's e-mail (SCIMEmailOf) if it is a plain address and
// differs from u's. Compared with the user, not with the connection's
// record of it: the user is what a login and the API see, and the two
// must agree (an adoption, whose record starts at p, renames the user
// too). unverified (a tenant admin's connection) marks the account as one
// nobody vouches for (domain.User.Unvouched). A userName the username
// rules refuse is a *domain.ValidationError on "userName".
func scimProfileChange(u domain.User, p domain.SCIMProfile, unverified bool) ([]domain.Event, error) {
	cmd := domain.ChangeProfile{Username: p.UserName, Email: SCIMEmailOf(p), Unvouched: unverified}
	evs, err := domain.DecideUser(u, cmd)
	var ve *domain.ValidationError
	if errors.As(err, &ve) && ve.Field == "username" {
		return nil, domain.Invalid("userName", "the new userName %s", ve.Message)
	}
	return evs, err
}

// cmpErr is err if not nil, else otherwise.
func cmpErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// SCIMDeleteUser deprovisions a user of connection connID: the user is
// deactivated (everything issued to them stops), leaves the connection's
// groups (and with them the roles they gave) and is no longer shown by the
// connection. A user holding anything outside the connection's tenants is
// ErrSCIMOutside, and nothing changes.
func (s *Service) SCIMDeleteUser(ctx context.Context, meta events.Meta, connID, userID string) error {
	c, err := s.liveConn(connID)
	if err != nil {
		return err
	}
	_, _, u, err := s.linkedUser(connID, userID)
	if err != nil {
		return err
	}
	if !c.Within(u) {
		return ErrSCIMOutside
	}
	wrote, err := s.scimDeactivate(ctx, meta, connID, userID)
	if err != nil {
		return err
	}
	// When the deactivation stored anything (the user's, a token retired),
	// a failure of what follows is ErrIncomplete (outside check 16r2), and
	// the same request again completes it. With nothing stored (a user
	// inactive already), the error as it is (re-checks 16r3, 16r5: judged
	// on the user as read before, it was wrong both ways).
	after := func(err error) error {
		if wrote {
			return incomplete(err)
		}
		return err
	}
	return after(s.commitSCIM(ctx, meta, connID, func(domain.SCIMConnection) (scimTx, error) {
		l, seq, ok := s.scim().SCIMLink(connID, userID)
		if !ok || !l.Linked {
			return scimTx{}, nil // deleted meanwhile
		}
		tx := scimTx{groups: map[string]domain.SCIMGroup{}, users: []string{userID}}
		for _, g := range s.scim().SCIMGroups(connID) {
			if !g.HasMember(userID) {
				continue
			}
			_, gseq, _ := s.scim().SCIMGroup(g.ID)
			evs, err := domain.DecideSCIMGroup(g, domain.ChangeSCIMGroupMembers{Remove: []string{userID}, Now: s.cfg.Now()})
			if err != nil {
				return scimTx{}, err
			}
			tx.pend = append(tx.pend, onAggregate(ref{domain.AggregateSCIMGroup, g.ID}, g.Version, gseq, evs)...)
			tx.groups[g.ID] = fold(g, evs, domain.EvolveSCIMGroup)
		}
		evs, err := domain.DecideSCIMLink(l, domain.UnlinkSCIMUser{})
		if err != nil {
			return scimTx{}, err
		}
		tx.pend = append(tx.pend, onAggregate(ref{domain.AggregateSCIMUser, domain.SCIMLinkKey(connID, userID)}, l.Version, seq, evs)...)
		return tx, nil
	}))
}

// scimDeactivate deactivates a user on behalf of connection connID (a user
// already inactive is left as it is).
func (s *Service) scimDeactivate(ctx context.Context, meta events.Meta, connID, userID string) (stored bool, err error) {
	_, stored, err = s.lifecycleWrote(ctx, meta, userID, domain.Deactivate{Reason: scimDeprovisioned(connID)}, nil)
	return stored, err
}

// provisionedElsewhere reports whether another live connection provisions
// user userID: a connection adopting it would take over the roles the
// other's groups give in a tenant both govern, and its state (they would
// overwrite each other, the last to act winning), so it is not adopted.
func (s *Service) provisionedElsewhere(connID, userID string) bool {
	for _, c := range s.scim().SCIMConnections() {
		if c.ID == connID {
			continue
		}
		if l, _, ok := s.scim().SCIMLink(c.ID, userID); ok && l.Linked {
			return true
		}
	}
	return false
}

// scimDeprovisioned is the reason of a deactivation by connection connID.
func scimDeprovisioned(connID string) string { return "deprovisioned by SCIM connection " + connID }

// scimActivate activates a user on behalf of connection connID (a user
// already active is left as it is).
func (s *Service) scimActivate(ctx context.Context, meta events.Meta, connID, userID string) (stored bool, err error) {
	_, stored, err = s.lifecycleWrote(ctx, meta, userID, domain.Activate{Reason: "provisioned by SCIM connection " + connID}, nil)
	if errors.Is(err, domain.ErrUserActive) {
		return false, nil
	}
	return stored, err
}

// ---------------------------------------------------------------- groups

// SCIMGroupInput is a group an identity provider creates.
type SCIMGroupInput struct {
	DisplayName, ExternalID string
	Members                 []string
}

// checkSCIMMembers refuses members that are not users of the connection.
func (s *Service) checkSCIMMembers(connID string, ids []string) error {
	for _, id := range ids {
		if l, _, ok := s.scim().SCIMLink(connID, id); !ok || !l.Linked {
			return domain.Invalid("members", "%q is not a user of this connection", id)
		}
	}
	return nil
}

// groupNameTaken reports whether another live group of the connection has
// the displayName (without regard to case).
func (s *Service) groupNameTaken(connID, groupID, name string) bool {
	for _, g := range s.scim().SCIMGroups(connID) {
		if g.ID != groupID && strings.EqualFold(g.DisplayName, strings.TrimSpace(name)) {
			return true
		}
	}
	return false
}

// groupNameReservation claims name (trimmed) among connection connID's
// groups for group groupID, as CreateSCIMConnection claims a connection's
// name: the name's reservation subject is read through the stream's leader,
// this replica catches up with it, no other live group of the connection
// may have the name (ErrSCIMNameTaken), and the reservation returned is to
// be appended in the group's own batch, expecting that subject unchanged.
// Of two creations or renames to one name at once — through one replica or
// two — one append conflicts, and deciding again finds the other's group.
// Before, each write expected only its own group's subject, and five
// creates of "Eng" at once made five groups (an outside check, 16e).
func (s *Service) groupNameReservation(ctx context.Context, connID, groupID, name string) (pending, error) {
	key := SCIMGroupNameKey(connID, name)
	last, err := s.caughtUpWithWrite(ctx, events.Subject(domain.AggregateSCIMGroupName, key))
	if err != nil {
		return pending{}, err
	}
	if s.groupNameTaken(connID, groupID, name) {
		return pending{}, ErrSCIMNameTaken
	}
	return pending{
		aggregate: domain.AggregateSCIMGroupName, id: key, expect: last,
		event: domain.SCIMGroupNameReserved{ConnectionID: connID, Name: name, GroupID: groupID},
	}, nil
}

// SCIMCreateGroup creates a group of connection connID, with its members'
// roles, and returns its ID. Its name is reserved in the same atomic batch
// (groupNameReservation).
func (s *Service) SCIMCreateGroup(ctx context.Context, meta events.Meta, connID string, in SCIMGroupInput) (string, error) {
	groupID := NewID("group")
	err := s.commitSCIM(ctx, meta, connID, func(domain.SCIMConnection) (scimTx, error) {
		if s.groupNameTaken(connID, "", in.DisplayName) {
			return scimTx{}, ErrSCIMNameTaken
		}
		if err := s.checkSCIMMembers(connID, in.Members); err != nil {
			return scimTx{}, err
		}
		evs, err := domain.DecideSCIMGroup(domain.SCIMGroup{}, domain.CreateSCIMGroup{
			GroupID: groupID, ConnectionID: connID, DisplayName: in.DisplayName, ExternalID: in.ExternalID,
			Members: in.Members, Now: s.cfg.Now(),
		})
		if err != nil {
			return scimTx{}, err
		}
		g := fold(domain.SCIMGroup{}, evs, domain.EvolveSCIMGroup)
		reservation, err := s.groupNameReservation(ctx, connID, groupID, g.DisplayName)
		if err != nil {
			return scimTx{}, err
		}
		return scimTx{
			pend:   append([]pending{reservation}, onAggregate(ref{domain.AggregateSCIMGroup, groupID}, 0, 0, evs)...),
			groups: map[string]domain.SCIMGroup{groupID: g}, users: g.Members,
		}, nil
	})
	return groupID, err
}

// SCIMGroupUpdate is a change an identity provider makes to a group: a new
// displayName and externalId (Rename), members added and removed (applied
// to the group as it is now).
type SCIMGroupUpdate struct {
	Rename      bool
	DisplayName string
	ExternalID  string
	Add, Remove []string
}

// SCIMUpdateGroup applies a change to a group of connection connID, with
// the role changes it causes: for the members added and removed, and for
// every member when the group's name changes (mappings name groups).
func (s *Service) SCIMUpdateGroup(ctx context.Context, meta events.Meta, connID, groupID string, up SCIMGroupUpdate) error {
	if up.Rename && s.groupNameTaken(connID, groupID, up.DisplayName) {
		return ErrSCIMNameTaken
	}
	if err := s.checkSCIMMembers(connID, up.Add); err != nil {
		return err
	}
	return s.commitSCIM(ctx, meta, connID, func(domain.SCIMConnection) (scimTx, error) {
		g, seq, ok := s.scim().SCIMGroup(groupID)
		if !ok || !g.Exists() || g.ConnectionID != connID {
			return scimTx{}, domain.ErrNotFound
		}
		var evs []domain.Event
		if up.Rename {
			if s.groupNameTaken(connID, groupID, up.DisplayName) {
				return scimTx{}, ErrSCIMNameTaken
			}
			e, err := domain.DecideSCIMGroup(g, domain.RenameSCIMGroup{DisplayName: up.DisplayName, ExternalID: up.ExternalID, Now: s.cfg.Now()})
			if err != nil {
				return scimTx{}, err
			}
			evs = append(evs, e...)
		}
		if len(up.Add) > 0 || len(up.Remove) > 0 {
			if err := s.checkSCIMMembers(connID, up.Add); err != nil {
				return scimTx{}, err
			}
			e, err := domain.DecideSCIMGroup(fold(g, evs, domain.EvolveSCIMGroup), domain.ChangeSCIMGroupMembers{Add: up.Add, Remove: up.Remove, Now: s.cfg.Now()})
			if err != nil {
				return scimTx{}, err
			}
			evs = append(evs, e...)
		}
		after := fold(g, evs, domain.EvolveSCIMGroup)
		users := slices.Concat(up.Add, up.Remove)
		pend := onAggregate(ref{domain.AggregateSCIMGroup, groupID}, g.Version, seq, evs)
		if after.DisplayName != g.DisplayName {
			users = append(users, g.Members...)
			if foldName(after.DisplayName) != foldName(g.DisplayName) {
				// A new name is reserved as a creation's is; a change of
				// case only keeps the group's own.
				reservation, err := s.groupNameReservation(ctx, connID, groupID, after.DisplayName)
				if err != nil {
					return scimTx{}, err
				}
				pend = append([]pending{reservation}, pend...)
			}
		}
		return scimTx{
			pend:   pend,
			groups: map[string]domain.SCIMGroup{groupID: after}, users: users,
		}, nil
	})
}

// SCIMDeleteGroup deletes a group of connection connID; its members lose
// the roles it gave them.
func (s *Service) SCIMDeleteGroup(ctx context.Context, meta events.Meta, connID, groupID string) error {
	return s.commitSCIM(ctx, meta, connID, func(domain.SCIMConnection) (scimTx, error) {
		g, seq, ok := s.scim().SCIMGroup(groupID)
		if !ok || !g.Exists() || g.ConnectionID != connID {
			return scimTx{}, domain.ErrNotFound
		}
		evs, err := domain.DecideSCIMGroup(g, domain.DeleteSCIMGroup{})
		if err != nil {
			return scimTx{}, err
		}
		return scimTx{
			pend:   onAggregate(ref{domain.AggregateSCIMGroup, groupID}, g.Version, seq, evs),
			groups: map[string]domain.SCIMGroup{groupID: fold(g, evs, domain.EvolveSCIMGroup)}, users: g.Members,
		}, nil
	})
}

// ---------------------------------------------------------------- writing

// scimTx is one atomic write of SCIM events (each with its expectation)
// and the users whose roles it may change: groups holds the states of the
// groups it changes, as they are once it is stored.
type scimTx struct {
	pend   []pending
	groups map[string]domain.SCIMGroup
	users  []string
	// deactivate: users deactivated (for reason) in the same batch, after
	// their role events.
	deactivate []string
	reason     string
}

// commitSCIM writes what build decides, against connection connID as it is
// once the read models have caught up with the stream's head: build's
// events and the role events they cause, in one atomic batch (role events
// beyond scimBatchEvents follow in further batches). A conflict — someone
// wrote to one of the subjects meanwhile — catches up and builds again.
// Then the users' roles are checked once more against the head (see
// reconcileSCIMRoles) — also when build has nothing to write; a failure
// there is not the answer, the batch being stored (followUpSCIMRoles).
func (s *Service) commitSCIM(ctx context.Context, meta events.Meta, connID string, build func(domain.SCIMConnection) (scimTx, error)) error {
	for i := 0; i < s.cfg.MaxAttempts; i++ {
		if err := s.CatchUpHead(ctx); err != nil {
			return err
		}
		c, err := s.liveConn(connID)
		if err != nil {
			return err
		}
		tx, err := build(c)
		if err != nil {
			return err
		}
		if len(tx.pend) == 0 {
			// Nothing to write: the same request again, maybe, after a
			// follow-up failed. Its users are reconciled all the same, so
			// that the identity provider's retry heals what is left.
			s.followUpSCIMRoles(ctx, meta, connID, tx.users, nil)
			return nil
		}
		ahead := userEvents(tx.pend)
		roles, err := s.scimRoleEvents(c, tx.groups, tx.users, nil, ahead, scimBatchEvents)
		if err != nil {
			return err
		}
		deact, err := s.scimDeactivations(tx.deactivate, tx.reason, ahead, roles)
		if err != nil {
			return err
		}
		_, err = s.appendEvents(ctx, meta, NewID("cmd"), slices.Concat(tx.pend, roles, deact))
		if errors.Is(err, events.ErrConflict) {
			s.conflicts.Add(1)
			continue
		}
		if err != nil {
			return err
		}
		// Stored: what follows cannot make the answer a failure (see
		// followup.go).
		s.followUpSCIMRoles(ctx, meta, connID, tx.users, nil)
		return nil
	}
	return ErrTooManyConflicts
}

// userEvents collects the user events among pend, by user ID: events
// decided for the same write follow them.
func userEvents(pend []pending) map[string][]domain.Event {
	out := map[string][]domain.Event{}
	for _, p := range pend {
		if p.aggregate == domain.AggregateUser {
			out[p.id] = append(out[p.id], p.event)
		}
	}
	return out
}

// scimDeactivations decides the deactivation of each of users, after the
// user's events in ahead and the role events of roles (decided on the same
// state) that are theirs.
func (s *Service) scimDeactivations(users []string, reason string, ahead map[string][]domain.Event, roles []pending) ([]pending, error) {
	var out []pending
	for _, id := range users {
		u, seq, ok := s.state.User(id)
		if !ok {
			return nil, domain.ErrNotFound
		}
		before := slices.Clone(ahead[id])
		for _, p := range roles {
			if p.aggregate == domain.AggregateUser && p.id == id {
				before = append(before, p.event)
			}
		}
		evs, err := domain.DecideUser(fold(u, before, domain.EvolveUser), domain.Deactivate{Reason: reason})
		if err != nil {
			return nil, err
		}
		out = append(out, onAggregate(ref{domain.AggregateUser, id}, u.Version+uint64(len(before)), seq, evs)...)
	}
	return out, nil
}

// reconcileSCIMRoles brings the roles of users, in the tenants the
// connection's mappings govern (and in the tenants in extra, which they
// governed before a change of the mappings), to what the connection's
// groups give them, deciding on the read models caught up with the
// stream's head; it repeats until nothing is left to change. A decision is
// thus always checked against every group change stored before it: two
// changes of different groups with the same member, on two replicas at
// once, cannot leave the member with the role of a membership that the
// other ended.
func (s *Service) reconcileSCIMRoles(ctx context.Context, meta events.Meta, connID string, users, extra []string) error {
	if len(users) == 0 {
		return nil
	}
	for i := 0; i < s.cfg.MaxAttempts; i++ {
		if err := s.CatchUpHead(ctx); err != nil {
			return err
		}
		c, _, ok := s.scim().SCIMConnection(connID)
		if !ok {
			return nil
		}
		roles, err := s.scimRoleEvents(c, nil, users, extra, nil, 0)
		if err != nil {
			return err
		}
		if len(roles) == 0 {
			return nil
		}
		// Either way (stored, or conflicting with a write meanwhile) the
		// next round decides again on the head.
		for _, batch := range batches(roles, scimBatchEvents) {
			_, err := s.appendEvents(ctx, meta, NewID("cmd"), batch)
			if errors.Is(err, events.ErrConflict) {
				s.conflicts.Add(1)
				continue
			}
			if err != nil {
				return err
			}
		}
	}
	return ErrTooManyConflicts
}

// scimRoleEvents decides the role events that bring users' roles in the
// governed tenants (and extra) to what connection c's groups — as the read
// models have them, but for the states in override — give them, after the
// users' events in ahead (appended before them in the same write). With
// limit > 0, it stops before exceeding limit events (a user's events are
// never split).
func (s *Service) scimRoleEvents(c domain.SCIMConnection, override map[string]domain.SCIMGroup, users, extra []string,
	ahead map[string][]domain.Event, limit int) ([]pending, error) {
	governed := c.GovernedTenants()
	for _, t := range extra {
		if !slices.Contains(governed, t) {
			governed = append(governed, t)
		}
	}
	if len(governed) == 0 || len(users) == 0 {
		return nil, nil
	}
	groups := s.scim().SCIMGroups(c.ID)
	for id, g := range override {
		i := slices.IndexFunc(groups, func(o domain.SCIMGroup) bool { return o.ID == id })
		switch {
		case i >= 0 && g.Exists():
			groups[i] = g
		case i >= 0:
			groups = slices.Delete(groups, i, i+1)
		case g.Exists():
			groups = append(groups, g)
		}
	}
	// Only the groups a mapping names give roles: each of users (up to a
	// group's 100,000 members at a change) is looked up in those, not in
	// every group of the connection.
	mapped := map[string]bool{}
	for _, m := range c.GroupMappings {
		mapped[m.Group] = true
	}
	groups = slices.DeleteFunc(groups, func(g domain.SCIMGroup) bool { return !mapped[g.DisplayName] })
	var out []pending
	seen := map[string]bool{}
	for _, id := range users {
		if seen[id] {
			continue
		}
		seen[id] = true
		u, seq, ok := s.state.User(id)
		if !ok {
			continue
		}
		u = fold(u, ahead[id], domain.EvolveUser)
		var names []string
		for _, g := range groups {
			if g.HasMember(id) {
				names = append(names, g.DisplayName)
			}
		}
		var evs []domain.Event
		st := u
		for _, cmd := range domain.SCIMRoleChanges(u, governed, c.RolesFor(names)) {
			e, err := domain.DecideUser(st, cmd)
			if err != nil {
				return nil, err
			}
			evs = append(evs, e...)
			st = fold(st, e, domain.EvolveUser)
		}
		if len(evs) == 0 {
			continue
		}
		if limit > 0 && len(out)+len(evs) > limit {
			break
		}
		out = append(out, onAggregate(ref{domain.AggregateUser, id}, u.Version, seq, evs)...)
	}
	return out, nil
}

// batches cuts pending events into batches of about n, never splitting the
// events of one subject.
func batches(evs []pending, n int) [][]pending {
	var out [][]pending
	for len(evs) > 0 {
		end := min(n, len(evs))
		for end < len(evs) && evs[end].aggregate == evs[end-1].aggregate && evs[end].id == evs[end-1].id {
			end++
		}
		out = append(out, evs[:end])
		evs = evs[end:]
	}
	return out
}

// fold applies events to a state with an Evolve function.
func fold[S any](st S, evs []domain.Event, evolve func(S, domain.Event) S) S {
	for _, e := range evs {
		st = evolve(st, e)
	}
	return st
}
