package http

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/projections"
)

// POST /api/v1/audit/credential-check: was this access token, refresh token
// or API key usable at a moment, and if not, why and since when. The answer
// comes from the access history (users, keys), the session's own events
// read from the stream, and the signing keys this deployment knows (retired
// ones too). The credential itself never appears in an answer, a log or an
// error: only what it names (its user, session, key) does.

type credentialCheckRequest struct {
	Token string `json:"token,omitempty"`
	Key   string `json:"key,omitempty"`
	At    string `json:"at,omitempty"`
}

// sinceJSON is the moment a credential stopped being usable and, when an
// event stopped it, that event.
type sinceJSON struct {
	Sequence uint64     `json:"sequence,omitempty"`
	Time     string     `json:"time"`
	Type     string     `json:"type,omitempty"`
	Actor    *actorJSON `json:"actor,omitempty"`
}

type credentialCheckJSON struct {
	Kind      string     `json:"kind"`
	Usable    bool       `json:"usable"`
	Reason    string     `json:"reason,omitempty"`
	Since     *sinceJSON `json:"since,omitempty"`
	Subject   *actorJSON `json:"subject,omitempty"`
	SessionID string     `json:"session_id,omitempty"`
	Tenant    string     `json:"tenant,omitempty"`
	At        string     `json:"at"`
	IssuedAt  string     `json:"issued_at,omitempty"`
	ExpiresAt string     `json:"expires_at,omitempty"`
	Notes     []string   `json:"notes"`
}

// Credential kinds.
const (
	kindAccessToken  = "access_token"
	kindRefreshToken = "refresh_token"
	kindAPIKey       = "api_key"
)

// Reasons a credential was not usable.
const (
	reasonNotOurs           = "not_issued_by_us"
	reasonNotYetIssued      = "not_yet_issued"
	reasonExpired           = "expired"
	reasonRevoked           = "revoked"
	reasonRotated           = "rotated"
	reasonSpent             = "spent"
	reasonUserDeactivated   = "user_deactivated"
	reasonPasswordChanged   = "password_changed"
	reasonOwnerDeactivated  = "owner_deactivated"
	reasonRoleRevoked       = "role_revoked"
	reasonSigningKeyRetired = "signing_key_retired"
	// reasonUnknown: a refresh token of the form this deployment issues
	// that no session it remembers has or had: never issued here, or its
	// session forgotten (noteUnknownRefreshToken).
	reasonUnknown = "unknown"
)

// noteClientAddress is on every answer.
const noteClientAddress = "A request's client address is not known here: an API key's IP allowlist (allowed_ips) cannot be judged from a moment alone."

// credCheck is a check in progress: the answer, and who the credential
// belongs to (for the caller's scope).
type credCheck struct {
	out      credentialCheckJSON
	userID   string    // the user it acts as (an API key: its owner then)
	keyID    string    // an API key's ID
	scopedTo string    // the tenant a token's session was scoped to at login ("": none)
	issued   time.Time // when it was issued
	// issuedUpTo: the latest moment it may have been issued when issued is
	// known to the second only (an access token's iat); else zero.
	issuedUpTo time.Time
	// leeway: how long before issued enforcement accepts it already (an
	// access token's iat/nbf, which the token verifier allows the clock
	// skew on: a replica behind the issuing one's clock accepts it); else
	// zero.
	leeway   time.Duration
	blockers []blocker // what stopped it, in any order
	recorded time.Time // the deciding blocker's recorded (decide)
}

// blocker is one thing that made a credential unusable from a moment on.
type blocker struct {
	reason string
	since  sinceJSON
	at     time.Time
	// recorded: the event's own time when it is before the credential's
	// issue and at is the issue instead (blockAfterIssue); else zero.
	recorded time.Time
}

func (ck *credCheck) notOurs(note string) {
	ck.out.Reason = reasonNotOurs
	if note != "" {
		ck.out.Notes = append(ck.out.Notes, note)
	}
}

func (ck *credCheck) block(reason string, at time.Time, since sinceJSON) {
	if since.Time == "" {
		since.Time = rfc3339Nano(at)
	}
	ck.blockers = append(ck.blockers, blocker{reason: reason, since: since, at: at})
}

// blockAfterIssue blocks from an event that came after the credential's
// issue — a revocation of its session, or of the token itself. Its time is
// the clock of the replica that wrote it; one behind the issuing replica's
// dated it before issued_at, and the answer's since was then before the
// token's issue (an outside check, 19b): since is issued_at then, with a
// note naming the event's own time.
func (ck *credCheck) blockAfterIssue(reason string, at time.Time, since sinceJSON) {
	if !at.Before(ck.issued) {
		ck.block(reason, at, since)
		return
	}
	since.Time = rfc3339Nano(ck.issued)
	ck.blockers = append(ck.blockers, blocker{reason: reason, since: since, at: ck.issued, recorded: at})
}

// blockRef blocks from an event of the access history.
func (ck *credCheck) blockRef(reason string, r projections.EventRef) {
	ck.block(reason, r.Time, sinceRef(r))
}

func sinceRef(r projections.EventRef) sinceJSON {
	return sinceJSON{Sequence: r.Seq, Time: rfc3339Nano(r.Time), Type: r.Type, Actor: &actorJSON{Type: r.ActorType, ID: r.ActorID}}
}

// decide settles the answer at `at`: not yet issued, else the earliest
// blocker at or before `at` (of two at the same instant, the event first in
// the stream: a deactivation before the key revocations appended with it),
// else usable.
func (ck *credCheck) decide(at time.Time) {
	if ck.out.Reason != "" { // not ours
		return
	}
	if at.Before(ck.issued.Add(-ck.leeway)) {
		ck.out.Reason = reasonNotYetIssued
		ck.out.Since = nil
		return
	}
	if at.Before(ck.issued) {
		// Enforcement accepts it then: the check must not say otherwise
		// (an outside check, 19b: a replica 5 s behind the issuing one
		// accepted the token and answered not_yet_issued for it).
		ck.out.Notes = append(ck.out.Notes, fmt.Sprintf("The moment asked is before its issued_at, by less than the %s of clock skew the service tolerates on iat and nbf: a replica whose clock was that much behind the issuing one's accepted it then.", ck.leeway))
	}
	var first *blocker
	for i := range ck.blockers {
		b := &ck.blockers[i]
		if b.at.After(at) {
			continue
		}
		if first == nil || b.at.Before(first.at) ||
			b.at.Equal(first.at) && b.since.Sequence != 0 && first.since.Sequence != 0 && b.since.Sequence < first.since.Sequence {
			first = b
		}
	}
	if first == nil {
		ck.out.Usable = true
		return
	}
	ck.out.Reason = first.reason
	since := first.since
	ck.out.Since = &since
	ck.recorded = first.recorded
}

// credentialCheck: POST /api/v1/audit/credential-check.
func (s *Server) credentialCheck(c *fiber.Ctx) error {
	sc, err := s.auditReader(c)
	if err != nil {
		return err
	}
	var req credentialCheckRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if (req.Token == "") == (req.Key == "") {
		return validation("token: give exactly one of token or key")
	}
	at, err := s.moment("at", req.At)
	if err != nil {
		return err
	}
	if _, start, complete := s.deps.History.HistoryStart(); !complete && (start.IsZero() || at.Before(start)) {
		return s.historyNotKept()
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	raw := strings.TrimSpace(req.Token + req.Key)
	var ck credCheck
	switch {
	case domain.LooksLikeSCIMToken(raw):
		// Issued here, but no caller's credential: it is the identity
		// provider's, and is live while its connection is.
		return validation("token: a SCIM connection's token; this check covers access tokens, refresh tokens and API keys (see the connection: GET /api/v1/admin/scim)")
	case req.Token != "" && commands.LooksLikeMFAToken(raw):
		// Issued here too, but it grants nothing by itself: a refresh
		// token's "not issued by us" said the wrong thing (an outside
		// check, 13d).
		return validation("token: an MFA token (the second step of a login, or an enrolment: one use, minutes long, no access by itself); this check covers access tokens, refresh tokens and API keys")
	case domain.LooksLikeAPIKey(raw):
		ck, err = s.checkAPIKey(ctx, raw)
	case req.Key != "":
		ck = credCheck{out: credentialCheckJSON{Kind: kindAPIKey}}
		ck.notOurs("Not an Infracast API key (they start with ic_).")
	case strings.Count(raw, ".") == 2:
		ck, err = s.checkAccessToken(ctx, raw, at)
	default:
		ck, err = s.checkRefreshToken(ctx, raw, at)
	}
	if err != nil {
		return err
	}
	if !sc.all && !s.credentialInScope(ck, at, sc) {
		// Whether it exists is not the caller's to know.
		return errNotFound
	}
	outside, err := s.outsideCallersTenants(ctx, &ck, sc, at)
	if err != nil {
		return err
	}
	ck.decide(at)
	hidden := false // the answer's since is an event the caller does not read
	if since := ck.out.Since; since != nil && since.Sequence != 0 && !sc.all {
		// The event that ended it is the caller's to see only if it
		// concerns a tenant they may read, as in the audit log: a token
		// issued while its user was in the caller's tenant, revoked by
		// another tenant's admin after the user left, showed that admin,
		// the moment and the event (an outside check, 16j).
		visible, err := s.auditVisible(since.Sequence, since.Type, sc)
		if err != nil {
			return err
		}
		hidden = !visible
	}
	switch {
	case outside != nil && (ck.out.Usable || hidden):
		// At `at` its user held no role in a tenant the caller reads: for
		// them it is not usable, since the last of those roles went, and
		// what another tenant's admin did to it decides nothing — else
		// whether it was usable flipped at that event's moment, which a
		// bisection on `at` found (re-checks 16r2, 16r3).
		ck.out.Usable, ck.out.Reason, ck.out.Since = false, reasonRoleRevoked, outside.since
		if outside.since == nil {
			ck.out.Notes = append(ck.out.Notes, "Its user held no role in a tenant you may read at that moment.")
		}
	case hidden:
		ck.out.Since = nil
		ck.out.Notes = append(ck.out.Notes, "What ended it is an event that concerns no tenant you may read: it is not shown.")
	}
	if ck.out.Since != nil && !ck.recorded.IsZero() {
		ck.out.Notes = append(ck.out.Notes, fmt.Sprintf("The event that ended it is dated %s, %s before its issued_at: the clock of the replica that wrote it was behind the issuing one's by that much at least (docs/operations.md, Clocks). It was usable until that event; since gives its issued_at.",
			rfc3339Nano(ck.recorded), ck.issued.Sub(ck.recorded)))
	}
	if ck.out.Usable && ck.keyID != "" {
		if a, found, err := s.deps.History.KeyAccess(ck.keyID, at); err == nil && found && len(a.Grants) == 0 {
			ck.out.Notes = append(ck.out.Notes, "Usable, but it held no permission in any tenant at that moment (a key holds no more than its owner).")
		}
	}
	out := ck.out
	out.At = rfc3339Nano(at)
	if out.Notes == nil {
		out.Notes = []string{}
	}
	out.Notes = append(out.Notes, noteClientAddress)
	return c.JSON(out)
}

// outsideCall is a user's token seen by a caller who reads some tenants
// only, at a moment its user held no role in any of them: since is the
// last of those roles' revocation (at or before that moment, after the
// token was issued), nil when there is none.
type outsideCall struct{ since *sinceJSON }

// outsideCallersTenants reports, for a caller who reads some tenants only
// and a user's token not scoped to a tenant, whether at `at` its user held
// no role in any of them (nil when they held one, or when the caller reads
// everything). An inactive user is judged by the deactivation instead.
func (s *Server) outsideCallersTenants(ctx context.Context, ck *credCheck, sc auditScope, at time.Time) (*outsideCall, error) {
	if sc.all || sc.anyTenant || ck.userID == "" || ck.keyID != "" || ck.scopedTo != "" || ck.out.Reason != "" {
		return nil, nil
	}
	a, found, err := s.deps.History.UserAccess(ck.userID, at)
	if err != nil || !found || (grantFilter{sc: sc}).inScope(a) {
		return nil, err
	}
	var last sinceJSON
	var when time.Time
	for t := range sc.tenants {
		since, w := s.findEvent(ctx, projections.AuditQuery{Subject: ck.userID, Tenant: t, Type: domain.TypeUserRoleRevoked, NewestFirst: true}, at)
		if since.Sequence > last.Sequence {
			last, when = since, w
		}
	}
	if last.Sequence != 0 && when.After(ck.issued) {
		return &outsideCall{since: &last}, nil
	}
	return &outsideCall{}, nil
}

// auditVisible reports whether the caller of scope sc reads the event of
// type typ at stream sequence seq in the audit log (it concerns a tenant
// they may read).
func (s *Server) auditVisible(seq uint64, typ string, sc auditScope) (bool, error) {
	hits, _, err := s.deps.History.AuditEvents(projections.AuditQuery{
		Scope: sc.list(), AnyTenant: sc.anyTenant, Type: typ, After: seq - 1, Limit: 1,
	})
	if err != nil {
		return false, err
	}
	return len(hits) == 1 && hits[0].Seq == seq, nil
}

// credentialInScope: for a token of a session scoped to a tenant, the
// caller may read that tenant — as the audit log shows such a session's
// events (session.*) to that tenant's readers only, whatever else its user
// holds; else the credential's user (for a key: the key) held a role (a
// grant) in a tenant the caller may read, now, at the moment asked, or when
// the credential was issued. A credential that is not ours is in no scope.
func (s *Server) credentialInScope(ck credCheck, at time.Time, sc auditScope) bool {
	if ck.scopedTo != "" {
		return sc.covers(ck.scopedTo)
	}
	moments := []time.Time{at}
	if !ck.issued.IsZero() && !ck.issued.Equal(at) {
		moments = append(moments, ck.issued)
	}
	if !ck.issuedUpTo.IsZero() && ck.issuedUpTo.Before(at) {
		// An access token's iat is in whole seconds: a user made in the
		// same second and signed in at once held no role yet at iat, and
		// the token was out of their tenant's scope (an outside check,
		// 16r2).
		moments = append(moments, ck.issuedUpTo)
	}
	inScope := func(a projections.Access, found bool, err error) bool {
		return err == nil && found && (grantFilter{sc: sc}).inScope(a)
	}
	switch {
	case ck.keyID != "":
		if k, _, ok := s.deps.Model.APIKey(ck.keyID); ok {
			for _, t := range k.Tenants {
				if sc.covers(t) {
					return true
				}
			}
		}
		for _, m := range moments {
			if inScope(s.deps.History.KeyAccess(ck.keyID, m)) {
				return true
			}
		}
	case ck.userID != "":
		if u, _, ok := s.deps.Model.User(ck.userID); ok {
			for t := range u.Tenants {
				if sc.covers(t) {
					return true
				}
			}
		}
		for _, m := range moments {
			if inScope(s.deps.History.UserAccess(ck.userID, m)) {
				return true
			}
		}
	}
	return false
}

// ---------------------------------------------------------------- access tokens

// checkAccessToken: the signature with any key this deployment knows
// (retired ones too), then the token's own times, its session's events, its
// user's life and, for a tenant-scoped token, the user's role there.
func (s *Server) checkAccessToken(ctx context.Context, raw string, at time.Time) (credCheck, error) {
	ck := credCheck{out: credentialCheckJSON{Kind: kindAccessToken}}
	claims, key, err := s.verifyKnown(raw)
	if err != nil {
		ck.notOurs("Its signature does not verify with any signing key this deployment knows (or it is not an access token).")
		return ck, nil
	}
	cfg := s.tokens.cfg
	if claims.Issuer != cfg.Issuer || !audienceHas(claims.Audience, cfg.Audience) || claims.Subject == "" ||
		claims.SessionID == "" || claims.ID == "" || claims.ExpiresAt == nil || claims.IssuedAt == nil {
		ck.notOurs("Signed with a key of this deployment, but not for its issuer and audience, or without the claims its access tokens carry.")
		return ck, nil
	}
	uh, ok, err := s.deps.History.UserHistory(claims.Subject)
	if err != nil {
		return ck, err
	}
	if !ok {
		ck.notOurs("Signed with a key of this deployment, but for a user it does not know.")
		return ck, nil
	}
	sess, err := s.sessionEvents(ctx, claims.SessionID)
	if err != nil {
		return ck, err
	}
	if sess.started == nil || sess.userID != claims.Subject {
		ck.notOurs("Signed with a key of this deployment, but for a session its event log does not hold.")
		return ck, nil
	}
	ck.userID = claims.Subject
	ck.out.Subject = &actorJSON{Type: "user", ID: claims.Subject}
	ck.out.SessionID, ck.out.Tenant = claims.SessionID, claims.Tenant
	ck.scopedTo = sess.tenant
	ck.issued = claims.IssuedAt.Time
	if claims.NotBefore != nil && claims.NotBefore.After(ck.issued) {
		ck.issued = claims.NotBefore.Time
	}
	ck.issuedUpTo = ck.issued.Add(time.Second - time.Nanosecond)
	ck.leeway = cfg.Leeway
	exp := claims.ExpiresAt.Time
	ck.out.IssuedAt, ck.out.ExpiresAt = rfc3339Nano(ck.issued), rfc3339Nano(exp)
	ck.block(reasonExpired, exp, sinceJSON{})
	if !at.Before(exp) && at.Before(exp.Add(cfg.Leeway)) {
		ck.out.Notes = append(ck.out.Notes, fmt.Sprintf("The service tolerates %s of clock skew: a request this soon after the token's expiry was still accepted.", cfg.Leeway))
	}
	if key.retired != nil {
		since, _ := s.findEvent(ctx, projections.AuditQuery{Subject: key.id, Type: domain.TypeSigningKeyRetired}, time.Time{})
		ck.block(reasonSigningKeyRetired, key.retiredAt, since)
	}
	for _, ev := range sess.events {
		switch {
		case ev.Type == domain.TypeSessionTokenRevoked && ev.TokenID == claims.ID,
			ev.Type == domain.TypeSessionRevoked:
			ck.blockAfterIssue(reasonRevoked, ev.at, ev.since)
		}
	}
	if !sess.expiresAt.IsZero() {
		ck.block(reasonExpired, sess.expiresAt, sinceJSON{})
	}
	s.userBlockers(&ck, uh, sess)
	if err := s.scopedRoleBlocker(ctx, &ck, uh, claims.Subject, claims.Tenant, at); err != nil {
		return ck, err
	}
	return ck, nil
}

// scopedRoleBlocker blocks a credential scoped to tenant ("": none) whose
// user held no role there at `at` (role_revoked). For a user inactive at
// `at`, the role is judged just before the deactivation that made them so:
// a role removed before the deactivation stays the earlier reason, as the
// earliest wins (an outside check, 15h, had the later deactivation answer
// instead, since the role was judged only for an active user).
func (s *Server) scopedRoleBlocker(ctx context.Context, ck *credCheck, uh projections.UserHistory, userID, tenant string, at time.Time) error {
	if tenant == "" || uh.PlatformAdmin {
		return nil
	}
	when := at
	if !activeAt(uh, at) {
		d, ok := lastChangeBy(uh.Deactivations, at)
		if !ok {
			return nil
		}
		// Granted again since its last removal, by `at`: the user holds
		// the role (deactivated, which is the reason then: re-check 15r4).
		granted, _ := s.findEvent(ctx, projections.AuditQuery{Subject: userID, Tenant: tenant, Type: domain.TypeUserRoleGranted, NewestFirst: true}, at)
		revoked, _ := s.findEvent(ctx, projections.AuditQuery{Subject: userID, Tenant: tenant, Type: domain.TypeUserRoleRevoked, NewestFirst: true}, at)
		if granted.Sequence > revoked.Sequence {
			return nil
		}
		when = d.Time.Add(-time.Nanosecond)
	}
	role, _, _, err := s.deps.History.RoleAt(userID, tenant, when)
	if err != nil {
		return err
	}
	if role == "" {
		s.roleRevoked(ctx, ck, userID, tenant, when)
	}
	return nil
}

// lastChangeBy returns the ref of refs last in the stream among those at or
// before at.
func lastChangeBy(refs []projections.EventRef, at time.Time) (projections.EventRef, bool) {
	var last projections.EventRef
	for _, r := range refs {
		if !r.Time.After(at) && r.Seq > last.Seq {
			last = r
		}
	}
	return last, last.Seq != 0
}

// userBlockers: each deactivation of the user after the session started
// (a cut-off: an activation later brings the session back no more than a
// password change would), and each password change that cut the session
// off.
func (s *Server) userBlockers(ck *credCheck, uh projections.UserHistory, sess sessionLife) {
	for _, d := range uh.Deactivations {
		if d.Seq > sess.startSeq {
			ck.blockRef(reasonUserDeactivated, d)
		}
	}
	for _, pc := range uh.PasswordChanges {
		if pc.Event.Seq > sess.startSeq && pc.KeptSessionID != sess.id {
			ck.blockRef(reasonPasswordChanged, pc.Event)
		}
	}
}

// roleRevoked blocks a tenant-scoped token from the removal of its user's
// role in the tenant (the latest one at or before at).
func (s *Server) roleRevoked(ctx context.Context, ck *credCheck, userID, tenant string, at time.Time) {
	q := projections.AuditQuery{Subject: userID, Tenant: tenant, Type: domain.TypeUserRoleRevoked, NewestFirst: true}
	since, when := s.findEvent(ctx, q, at)
	if since.Sequence == 0 {
		ck.out.Notes = append(ck.out.Notes, "Its user held no role in the token's tenant at that moment.")
		when = at
	}
	ck.block(reasonRoleRevoked, when, since)
}

// findEvent returns the first journal entry of q (in q's order) whose body
// confirms its subject and, when notAfter is set, that happened at or before
// it; a zero sinceJSON when there is none.
func (s *Server) findEvent(ctx context.Context, q projections.AuditQuery, notAfter time.Time) (sinceJSON, time.Time) {
	if !notAfter.IsZero() {
		q.Until = notAfter.Add(time.Nanosecond) // the journal may include entries just past it: checked below
	}
	q.Limit = 20
	hits, _, err := s.deps.History.AuditEvents(q)
	if err != nil {
		s.log.Warn("credential check: the audit journal could not be read", "err", err)
		return sinceJSON{}, time.Time{}
	}
	if len(hits) == 0 {
		return sinceJSON{}, time.Time{}
	}
	seqs := make([]uint64, len(hits))
	for i, h := range hits {
		seqs[i] = h.Seq
	}
	recs, err := s.deps.Events.ReadSeqs(ctx, seqs)
	if err != nil {
		s.log.Warn("credential check: events could not be read", "err", err)
		return sinceJSON{}, time.Time{}
	}
	for _, r := range recs {
		var env events.Envelope
		if json.Unmarshal(r.Data, &env) != nil || env.AggregateID != q.Subject || env.Type != q.Type {
			continue
		}
		if !notAfter.IsZero() && env.OccurredAt.After(notAfter) {
			continue
		}
		return envSince(r.StreamSeq, env), env.OccurredAt
	}
	return sinceJSON{}, time.Time{}
}

func envSince(seq uint64, env events.Envelope) sinceJSON {
	return sinceJSON{Sequence: seq, Time: rfc3339Nano(env.OccurredAt), Type: env.Type, Actor: &actorJSON{Type: env.Actor.Type, ID: env.Actor.ID}}
}

func audienceHas(aud jwt.ClaimStrings, want string) bool {
	for _, a := range aud {
		if a == want {
			return true
		}
	}
	return false
}

// knownKey is a signing key this deployment knows, retired or not.
type knownKey struct {
	*signingKey
	retired   *domain.SigningKey
	retiredAt time.Time
}

// verifyKnown checks an access token's signature, algorithm (the key's),
// type and kid against every signing key this deployment knows — the
// configured ones and those added at run time, retired ones included — but
// none of its times: those are judged at the moment asked.
func (s *Server) verifyKnown(raw string) (*Claims, knownKey, error) {
	keys := map[string]knownKey{}
	for _, k := range s.tokens.static {
		keys[k.id] = knownKey{signingKey: k}
	}
	if s.tokens.cfg.Unseal != nil && s.deps.SigningKeyModel != nil {
		for _, rk := range s.deps.SigningKeyModel.SigningKeys() {
			k, err := s.tokens.open(rk)
			if err != nil {
				continue // a key this deployment cannot open verified nothing
			}
			kk := knownKey{signingKey: k}
			if rk.Retired {
				kk.retired, kk.retiredAt = &rk, rk.RetiredAt
			}
			keys[k.id] = kk
		}
	}
	var used knownKey
	var c Claims
	parser := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg(), jwt.SigningMethodEdDSA.Alg()}), jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())
	_, err := parser.ParseWithClaims(raw, &c, func(tok *jwt.Token) (any, error) {
		if typ, _ := tok.Header["typ"].(string); !isAccessTokenType(typ) {
			return nil, ErrInvalidToken
		}
		kid, _ := tok.Header["kid"].(string)
		k, ok := keys[kid]
		if !ok || tok.Method.Alg() != k.alg {
			return nil, ErrInvalidToken
		}
		used = k
		return k.verify, nil
	})
	if err != nil {
		return nil, knownKey{}, ErrInvalidToken
	}
	return &c, used, nil
}

// ---------------------------------------------------------------- sessions

// sessionLife is what a session's events say.
type sessionLife struct {
	id        string
	started   *sessionEvent
	startSeq  uint64
	userID    string
	tenant    string
	expiresAt time.Time
	events    []sessionEvent
}

// sessionEvent is one event of a session, with the fields of every session
// event type (docs/events.md).
type sessionEvent struct {
	Type                 string `json:"-"`
	seq                  uint64
	at                   time.Time
	since                sinceJSON
	UserID               string    `json:"user_id"`
	Tenant               string    `json:"tenant"`
	RefreshTokenHash     string    `json:"refresh_token_hash"`
	RefreshTokenReissued bool      `json:"refresh_token_reissued"`
	TokenID              string    `json:"token_id"`
	Reason               string    `json:"reason"`
	ExpiresAt            time.Time `json:"expires_at"`
}

// sessionEvents reads a session's events from the stream.
func (s *Server) sessionEvents(ctx context.Context, sid string) (sessionLife, error) {
	life := sessionLife{id: sid}
	if !validAggregateID(sid) {
		return life, nil
	}
	_, upTo, _ := s.deps.History.Session(sid)
	recs, err := s.deps.Events.ReadSubject(ctx, events.Subject(domain.AggregateSession, sid), upTo)
	if err != nil {
		return life, err
	}
	for _, r := range recs {
		var env events.Envelope
		if err := json.Unmarshal(r.Data, &env); err != nil {
			s.log.Warn("credential check: a session event could not be read", "stream_seq", r.StreamSeq, "err", err)
			continue
		}
		ev := sessionEvent{Type: env.Type, seq: r.StreamSeq, at: env.OccurredAt, since: envSince(r.StreamSeq, env)}
		if len(env.Data) > 0 {
			if err := json.Unmarshal(env.Data, &ev); err != nil {
				s.log.Warn("credential check: a session event could not be read", "stream_seq", r.StreamSeq, "err", err)
				continue
			}
		}
		ev.Type = env.Type
		life.events = append(life.events, ev)
		if ev.Type == domain.TypeSessionStarted && life.started == nil {
			e := ev
			life.started, life.startSeq = &e, ev.seq
			life.userID, life.tenant, life.expiresAt = ev.UserID, ev.Tenant, ev.ExpiresAt
		}
	}
	return life, nil
}

// validAggregateID: an ID that can be the last token of a subject.
func validAggregateID(id string) bool {
	return id != "" && len(id) <= 128 && !strings.ContainsAny(id, ".*> \t\r\n")
}

// ---------------------------------------------------------------- refresh tokens

// checkRefreshToken: the session that issued it (by its SHA-256), and in its
// events when it became the session's refresh token and what ended it.
func (s *Server) checkRefreshToken(ctx context.Context, raw string, at time.Time) (credCheck, error) {
	ck := credCheck{out: credentialCheckJSON{Kind: kindRefreshToken}}
	hash := commands.HashToken(raw)
	sid, ok := s.deps.History.SessionByRefreshHash(hash)
	if !ok && !commands.LooksLikeRefreshToken(raw) {
		ck.notOurs("No session of this deployment issued it: it is not of the form of its refresh tokens.")
		return ck, nil
	}
	if !ok {
		// The read models forget a session past its absolute expiry, and
		// a revoked one once its access tokens have expired (Prune); the
		// hash → session index goes with it, and nothing else finds a
		// session by its refresh token (the stream's subjects name
		// sessions by ID). "Not issued by us" was then wrong for a token
		// that was, and had been revoked minutes before (re-check 20r1).
		ck.out.Reason = reasonUnknown
		ck.out.Notes = append(ck.out.Notes, s.noteUnknownRefreshToken())
		return ck, nil
	}
	sess, err := s.sessionEvents(ctx, sid)
	if err != nil {
		return ck, err
	}
	if sess.started == nil {
		ck.notOurs("No session of this deployment issued it.")
		return ck, nil
	}
	var issued *sessionEvent
	for i := range sess.events {
		ev := &sess.events[i]
		switch {
		case issued == nil && ev.RefreshTokenHash == hash && (ev.Type == domain.TypeSessionStarted || ev.Type == domain.TypeSessionRefreshed):
			issued = ev
		case issued != nil && ev.Type == domain.TypeSessionRefreshed && ev.RefreshTokenHash != "" && ev.RefreshTokenHash != hash:
			ck.block(reasonSpent, ev.at, ev.since)
		case ev.Type == domain.TypeSessionRevoked:
			ck.block(reasonRevoked, ev.at, ev.since)
		}
	}
	if issued == nil {
		ck.notOurs("No session of this deployment issued it.")
		return ck, nil
	}
	ck.userID = sess.userID
	ck.out.Subject = &actorJSON{Type: "user", ID: sess.userID}
	ck.out.SessionID, ck.out.Tenant = sid, sess.tenant
	ck.scopedTo = sess.tenant
	ck.issued = issued.at
	ck.out.IssuedAt = rfc3339Nano(issued.at)
	if !sess.expiresAt.IsZero() {
		ck.out.ExpiresAt = rfc3339Nano(sess.expiresAt)
		ck.block(reasonExpired, sess.expiresAt, sinceJSON{})
	}
	uh, ok, err := s.deps.History.UserHistory(sess.userID)
	if err != nil {
		return ck, err
	}
	if ok {
		s.userBlockers(&ck, uh, sess)
		// The service refuses a scoped session's refresh while its user
		// holds no role in its tenant (an outside check, 15h: the check
		// answered usable then).
		if err := s.scopedRoleBlocker(ctx, &ck, uh, sess.userID, sess.tenant, at); err != nil {
			return ck, err
		}
	}
	ck.out.Notes = append(ck.out.Notes,
		"The session's idle lifetime (INFRACAST_REFRESH_IDLE_TTL, when set) is not judged here.",
		"With rotation and a reuse interval, the refresh token spent last is accepted again for that interval after its rotation (INFRACAST_REFRESH_REUSE_INTERVAL).")
	return ck, nil
}

// noteUnknownRefreshToken says what an unknown refresh token may be.
func (s *Server) noteUnknownRefreshToken() string {
	revoked := "a revoked session is forgotten once its access tokens have expired"
	if g := s.cfg.RevokedSessionGrace; g > 0 {
		revoked = fmt.Sprintf("a revoked session is forgotten %s after its last use (its start or last refresh), once its access tokens have expired", g)
	}
	return "No session this deployment remembers has or had this refresh token: it was never issued here, or its session was forgotten — past its absolute expiry, or revoked (" + revoked + "). Which cannot be told, nor whether it was usable at an earlier moment; it is not usable now: a refresh with it is refused. For a session known by its ID, check one of its access tokens, or read its events (GET /api/v1/audit/events)."
}

// ---------------------------------------------------------------- API keys

// checkAPIKey: the key whose secret it is or was (by its SHA-256), then when
// that secret became the key's, what replaced it, the key's revocation and
// expiry, and its owner's deactivation.
func (s *Server) checkAPIKey(ctx context.Context, raw string) (credCheck, error) {
	ck := credCheck{out: credentialCheckJSON{Kind: kindAPIKey}}
	env, err := domain.ParseAPIKey(raw)
	if err != nil {
		ck.notOurs("Not a well-formed Infracast API key (its checksum does not match).")
		return ck, nil
	}
	if env != s.cfg.KeyEnv {
		ck.notOurs(fmt.Sprintf("A key of the %q environment; this deployment issues and accepts %q keys.", env, s.cfg.KeyEnv))
		return ck, nil
	}
	hash := commands.HashToken(raw)
	kh, idx, ok, err := s.keyBySecret(hash)
	if err != nil {
		return ck, err
	}
	if !ok {
		ck.notOurs("No API key of this deployment has or had this secret.")
		return ck, nil
	}
	ck.keyID = kh.ID
	ck.out.Subject = &actorJSON{Type: "apikey", ID: kh.ID}
	sec := kh.Secrets[idx]
	ck.issued = sec.Since.Time
	ck.out.IssuedAt = rfc3339Nano(sec.Since.Time)
	if idx+1 < len(kh.Secrets) {
		ck.blockRef(reasonRotated, kh.Secrets[idx+1].Since)
	}
	if kh.Revoked != nil {
		ck.blockRef(reasonRevoked, *kh.Revoked)
	}
	if !kh.ExpiresAt.IsZero() {
		ck.out.ExpiresAt = rfc3339Nano(kh.ExpiresAt)
		ck.block(reasonExpired, kh.ExpiresAt, sinceJSON{})
	}
	owner, err := s.keyOwner(ctx, kh, idx)
	if err != nil {
		return ck, err
	}
	ck.userID = owner
	uh, ok, err := s.deps.History.UserHistory(owner)
	if err != nil {
		return ck, err
	}
	if ok {
		// Each deactivation of its owner after the secret was issued: it
		// revoked the key (or, before user.activated existed, stopped it
		// for as long as the owner stayed deactivated, which was for good).
		for _, d := range uh.Deactivations {
			if d.Seq > sec.Since.Seq {
				ck.blockRef(reasonOwnerDeactivated, d)
			}
		}
	}
	return ck, nil
}

// activeAt reports whether the user was active at the moment: not between
// a deactivation and the activation after it (the boundary rule: at the
// instant of a deactivation it no longer was, at an activation's it was
// again).
func activeAt(uh projections.UserHistory, at time.Time) bool {
	off, _ := lastChangeBy(uh.Deactivations, at)
	on, _ := lastChangeBy(uh.Activations, at)
	return off.Seq <= on.Seq
}

// keyBySecret finds the key whose current or earlier secret has hash, and
// that secret's index in its history. The current secret of a live key is
// an index lookup; an earlier one, or a revoked key's (the index holds live
// keys only), is looked for among the keys that were rotated or revoked.
func (s *Server) keyBySecret(hash string) (projections.KeyHistory, int, bool, error) {
	find := func(id string) (projections.KeyHistory, int, bool, error) {
		if !s.deps.History.KeyHadSecret(id, hash) {
			return projections.KeyHistory{}, 0, false, nil // without reading its history
		}
		kh, ok, err := s.deps.History.KeyHistory(id)
		if err != nil || !ok {
			return kh, 0, false, err
		}
		for i, sec := range kh.Secrets {
			if sec.Hash == hash {
				return kh, i, true, nil
			}
		}
		return kh, 0, false, nil
	}
	if k, ok := s.deps.Model.KeyBySecretHash(hash); ok {
		if kh, i, ok, err := find(k.ID); ok || err != nil {
			return kh, i, ok, err
		}
	}
	for _, k := range s.deps.Model.APIKeys() {
		if k.RotatedAt.IsZero() && !k.Revoked {
			continue // live and never rotated: its one secret is indexed
		}
		if kh, i, ok, err := find(k.ID); ok || err != nil {
			return kh, i, ok, err
		}
	}
	return projections.KeyHistory{}, 0, false, nil
}

// keyOwner is the owner of key kh while its secret idx was current: the
// owner named by the event that made that secret (a creation, or a rotation
// that named one), else by the latest one before it.
func (s *Server) keyOwner(ctx context.Context, kh projections.KeyHistory, idx int) (string, error) {
	seqs := make([]uint64, 0, idx+1)
	for i := idx; i >= 0; i-- {
		seqs = append(seqs, kh.Secrets[i].Since.Seq)
	}
	recs, err := s.deps.Events.ReadSeqs(ctx, seqs)
	if err != nil {
		return "", err
	}
	for _, r := range recs { // newest first
		var env struct {
			Data struct {
				OwnerID string `json:"owner_id"`
			} `json:"data"`
		}
		if json.Unmarshal(r.Data, &env) == nil && env.Data.OwnerID != "" {
			return env.Data.OwnerID, nil
		}
	}
	if k, _, ok := s.deps.Model.APIKey(kh.ID); ok {
		return k.OwnerID, nil
	}
	return "", nil
}
