package http

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/projections"
)

// The sessions API (issue 17): a user's own sessions (GET and DELETE
// /api/v1/auth/sessions[/{id}]) and, for those who manage a user, theirs
// (/api/v1/users/{id}/sessions[/{sid}]). A session is one login's refresh-
// token family; only live ones are listed (not revoked, not cut off by a
// password change or a deactivation, not expired). The read models hold
// what a session is now; the login's method, client address and user agent
// are read from the stream, from its session.started event.

// sessionJSON is one session as the API shows it.
type sessionJSON struct {
	ID     string `json:"id"`
	UserID string `json:"user_id"`
	// Tenant: the one tenant the session's tokens are scoped to; omitted
	// when unscoped.
	Tenant    string `json:"tenant,omitempty"`
	StartedAt string `json:"started_at"`
	// LastRefreshedAt: the last refresh; null before the first.
	LastRefreshedAt *string `json:"last_refreshed_at"`
	ExpiresAt       string  `json:"expires_at"`
	// Method, IP and UserAgent are those of the login (session.started);
	// omitted when the stream no longer holds it.
	Method    string `json:"method,omitempty"`
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	// Current: the session of the token that asks.
	Current bool `json:"current"`
}

type sessionsPageJSON struct {
	Sessions   []sessionJSON `json:"sessions"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// errNoSession answers an API key on the routes of the caller's own
// sessions.
var errNoSession = validation("an API key has no session; manage keys with /api/v1/api-keys")

// mySessions: GET /api/v1/auth/sessions.
func (s *Server) mySessions(c *fiber.Ctx) error {
	cl := caller(c)
	if !cl.IsUser() {
		return errNoSession
	}
	return s.listSessions(c, cl.User.ID)
}

// revokeMySession: DELETE /api/v1/auth/sessions/{id}. A session of another
// user is 404, as an unknown one is.
func (s *Server) revokeMySession(c *fiber.Ctx) error {
	cl := caller(c)
	if !cl.IsUser() {
		return errNoSession
	}
	return s.revokeSessionOf(c, cl.User.ID, c.Params("id"), revoker{reason: domain.RevokeReasonRevoked})
}

// userSessions: GET /api/v1/users/{id}/sessions: the user itself, and who
// may manage the user (as for a deactivation); another who may see the
// user gets 403 — a session names its addresses and browsers.
func (s *Server) userSessions(c *fiber.Ctx) error {
	u, _, err := s.sessionsManaged(c, false)
	if err != nil {
		return err
	}
	return s.listSessions(c, u.ID)
}

// revokeUserSession: DELETE /api/v1/users/{id}/sessions/{sid} (who may
// manage the user, and the user itself).
func (s *Server) revokeUserSession(c *fiber.Ctx) error {
	u, by, err := s.sessionsManaged(c, false)
	if err != nil {
		return err
	}
	return s.revokeSessionOf(c, u.ID, c.Params("sid"), by)
}

// revokeUserSessions: DELETE /api/v1/users/{id}/sessions revokes every live
// session of the user and says how many: in one atomic append; for a tenant
// admin, one at a time, each while the admin may manage the user
// (commands.Service.RevokeUserSessions).
func (s *Server) revokeUserSessions(c *fiber.Ctx) error {
	u, by, err := s.sessionsManaged(c, true)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	n, err := s.deps.Sessions.RevokeUserSessions(ctx, s.meta(c), u.ID, by.reason, by.may)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"revoked": n})
}

// revoker is who revokes a user's sessions: the reason the revocations
// record, and — for a tenant administrator — the authority over the user
// that the command checks again (nil: the user itself, a platform admin).
type revoker struct {
	reason string
	may    func(domain.User) error
}

// sessionsManaged loads the user named in the path, whose sessions the
// caller may revoke: its own, or a user it manages (as for a
// deactivation). It returns who revokes them. all: every session at once,
// which a token of the user scoped to a tenant may not (sessions in other
// tenants too).
func (s *Server) sessionsManaged(c *fiber.Ctx, all bool) (domain.User, revoker, error) {
	cl := caller(c)
	u, err := s.target(c)
	if err != nil {
		return u, revoker{}, err
	}
	if cl.IsUser() && u.ID == cl.User.ID {
		if cl.Tenant != "" && all {
			return u, revoker{}, errScopedAccount
		}
		return u, revoker{reason: domain.RevokeReasonRevoked}, nil
	}
	if !cl.managesUser(u) {
		return u, revoker{}, errForbidden
	}
	if cl.IsPlatformAdmin() {
		// Manages anyone, whatever the user's state: nothing to check
		// again, and all of them in one atomic append.
		return u, revoker{reason: domain.RevokeReasonAdmin}, nil
	}
	return u, revoker{reason: domain.RevokeReasonAdmin, may: cl.mayManageUser}, nil
}

// revokeSessionOf revokes session sid of user userID: 404 when there is no
// such session of that user. A session revoked already stays so (204).
func (s *Server) revokeSessionOf(c *fiber.Ctx, userID, sid string, by revoker) error {
	var sess domain.Session
	ok, err := s.lookUp(c, sid, func() (ok bool) { sess, _, ok = s.deps.Model.Session(sid); return ok })
	if err != nil {
		return err
	}
	if cl := caller(c); !ok || sess.UserID != userID || (cl.IsUser() && cl.User.ID == userID && cl.Tenant != "" && sess.Tenant != cl.Tenant) {
		return errNotFound // a scoped token ends only its user's sessions in its tenant
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	if _, err := s.deps.Sessions.RevokeSessions(ctx, s.meta(c), []string{sid}, by.reason, by.may); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// listSessions answers a page of user id's live sessions, ordered by ID.
func (s *Server) listSessions(c *fiber.Ctx, id string) error {
	p, err := parsePage(c, "sessions", false)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	all, ok := s.deps.Model.UserSessions(id, now)
	if !ok {
		return errNotFound
	}
	if cl := caller(c); cl.IsUser() && cl.User.ID == id && cl.Tenant != "" {
		// A scoped token of the user: only the sessions in its tenant.
		scoped := all[:0:0]
		for _, us := range all {
			if us.Tenant == cl.Tenant {
				scoped = append(scoped, us)
			}
		}
		all = scoped
	}
	if idle := s.idleTTL(); idle > 0 {
		live := all[:0]
		for _, us := range all {
			if now.Before(us.LastUsedAt.Add(idle)) {
				live = append(live, us)
			}
		}
		all = live
	}
	page, next := paginate(all, func(us projections.UserSession) string { return us.ID }, p)
	ctx, cancel := s.ctx(c)
	defer cancel()
	logins, err := s.logins(ctx, page)
	if err != nil {
		return err
	}
	out := sessionsPageJSON{Sessions: make([]sessionJSON, 0, len(page)), NextCursor: next}
	cl := caller(c)
	for _, us := range page {
		j := sessionJSON{
			ID: us.ID, UserID: us.UserID, Tenant: us.Tenant, StartedAt: rfc3339(us.StartedAt),
			ExpiresAt: rfc3339(us.ExpiresAt), Current: cl.IsUser() && us.ID == cl.SessionID,
		}
		if us.Refreshes > 0 {
			j.LastRefreshedAt = optTime(us.LastUsedAt)
		}
		if l, ok := logins[us.StartSeq]; ok && l.sessionID == us.ID {
			j.Method, j.IP, j.UserAgent = l.method, l.ip, l.userAgent
		}
		out.Sessions = append(out.Sessions, j)
	}
	return c.JSON(out)
}

// idleTTL is the sessions' idle lifetime, from the session commands (0:
// none, or not known).
func (s *Server) idleTTL() time.Duration {
	if it, ok := s.deps.Sessions.(interface{ RefreshIdleTTL() time.Duration }); ok {
		return it.RefreshIdleTTL()
	}
	return 0
}

// login is what a session.started event tells of its login.
type login struct {
	sessionID, method, ip, userAgent string
}

// logins reads the session.started events of a page of sessions from the
// stream (by stream sequence, in parallel), by sequence. Without an event
// reader, or for an event the stream no longer holds, nothing.
func (s *Server) logins(ctx context.Context, page []projections.UserSession) (map[uint64]login, error) {
	out := make(map[uint64]login, len(page))
	if s.deps.Events == nil || len(page) == 0 {
		return out, nil
	}
	seqs := make([]uint64, len(page))
	for i, us := range page {
		seqs[i] = us.StartSeq
	}
	recs, err := s.deps.Events.ReadSeqs(ctx, seqs)
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		env, ev, err := events.Decode(rec.Data)
		if err != nil {
			continue // an event this build cannot read tells nothing
		}
		st, ok := domain.Deref(ev).(domain.SessionStarted)
		if !ok {
			continue
		}
		out[rec.StreamSeq] = login{sessionID: st.SessionID, method: st.Method, ip: env.Request.IP, userAgent: env.Request.UserAgent}
	}
	return out, nil
}
