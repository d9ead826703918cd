package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// A user's lifecycle (issue 17): deactivation, activation, and revoking a
// user's sessions. Each is one decision over several aggregates — the user
// and the API keys it owns, or a user's sessions — appended as one atomic
// batch, each event expecting its aggregate's subject to be where its state
// was read (a concurrent change to any of them decides the whole again);
// but an administrator's revocation of a user's sessions, which rests on
// the user's state, is a session.revoked at a time, each expecting the
// user's subject (revokeSessionsAs).

// batchMax bounds the events of one atomic append (JetStream refuses a
// batch of more than 1,000 messages). A decision of more is appended in
// batches of batchMax, each decided afresh from the state the ones before
// it left, the first holding the user's own event (see writeBatch).
const batchMax = 500

// DeactivateUser deactivates a user: it can no longer log in, every session
// started at or before the deactivation is cut off for good (the read
// models refuse its access and refresh tokens, also once the user is
// activated again: see the projections' cut-off), and every live API key it
// owns is revoked, in the same atomic append (apikey.revoked, reason
// domain.KeyRevokedOwnerDeactivated), so that the audit log and the access
// history say so and an activation brings none back; the token of every
// SCIM connection it owns is replaced by one nobody holds (see lifecycle). A user already
// deactivated is left as it is (a live key it still owns is revoked all the
// same). ExecuteUser with domain.Deactivate comes here.
func (s *Service) DeactivateUser(ctx context.Context, meta events.Meta, userID, reason string) (domain.User, error) {
	return s.lifecycle(ctx, meta, userID, domain.Deactivate{Reason: reason}, nil)
}

// ActivateUser lets a deactivated user log in again. Nothing the
// deactivation stopped comes back: its sessions stay cut off and its keys
// revoked. A live key the user still owns (created by a request that raced
// the deactivation, or left by a deactivation whose later batches never
// landed) is revoked in the same atomic append. An active user is refused:
// domain.ErrUserActive. ExecuteUser with domain.Activate comes here.
func (s *Service) ActivateUser(ctx context.Context, meta events.Meta, userID, reason string) (domain.User, error) {
	return s.lifecycle(ctx, meta, userID, domain.Activate{Reason: reason}, nil)
}

// lifecycle decides a deactivation or an activation with the revocation of
// the user's live API keys. A deactivation's own event goes first, so that
// if there are more keys than one batch holds the first batch stops the user
// (and so every key it owns: the read models refuse a key of an inactive
// owner) and the later ones revoke the rest; an activation's goes last, so
// that the user is active again only once every key is revoked.
//
// The SCIM connections the user owns get a token nobody holds (their own
// is refused while the user is inactive: the owner check), so that an
// activation brings none back (which also catches a connection made by a
// request that raced the deactivation). A deactivation's after its append,
// each in an append of its own: a connection rotated over and over must
// not keep its owner from being deactivated. An activation's in its atomic
// append, before user.activated (a scim.token_rotated each, expecting its
// connection's subject): stored only with it, so only where the
// activation is allowed — before, they were appended ahead of it, and an
// activation answered 403 had retired tokens all the same (outside check
// 13r2). Only admins write to a connection, so it does not hold an
// activation back.
//
// may, when not nil, is the caller's authority over the user
// (ExecuteUserAs), checked on the user as each decision reads it: the
// user's event expects its subject there, so a change of the user in
// between makes the append conflict and the decision (and the check) is
// made again.
func (s *Service) lifecycle(ctx context.Context, meta events.Meta, userID string, cmd domain.UserCommand, may func(domain.User) error) (domain.User, error) {
	u, _, err := s.lifecycleWrote(ctx, meta, userID, cmd, may)
	return u, err
}

// lifecycleWrote is lifecycle, also saying whether this call stored
// anything (the deactivation or activation, a token retired): a write that
// follows it answers ErrIncomplete only then (re-check 16r5: a user's state
// read before the call said "stored" where a replica behind had stored
// nothing, and "nothing" where a retirement was stored).
func (s *Service) lifecycleWrote(ctx context.Context, meta events.Meta, userID string, cmd domain.UserCommand, may func(domain.User) error) (_ domain.User, stored bool, _ error) {
	_, activate := cmd.(domain.Activate)
	if u, _, ok := s.state.User(userID); activate && ok && !u.Active {
		// (An active user's activation is refused below, and retires nothing.)
		// Every connection stored so far, through any replica, is swept:
		// this one may lag behind the one that stored a raced creation.
		if err := s.CatchUpHead(ctx); err != nil {
			return domain.User{}, false, err
		}
	}
	wrote := false // this request stored the deactivation (or activation)
	err := s.writeBatch(ctx, meta, func() ([]pending, error) {
		u, seq, ok := s.state.User(userID)
		if !ok {
			return nil, domain.ErrNotFound
		}
		if may != nil {
			if err := may(u); err != nil {
				return nil, err
			}
		}
		evs, err := domain.DecideUser(u, s.byAccount(cmd))
		if err != nil {
			return nil, err
		}
		user := onAggregate(ref{domain.AggregateUser, userID}, u.Version, seq, evs)
		var keys []pending
		for _, id := range s.state.APIKeysOwnedBy(userID) {
			k, kseq, ok := s.state.APIKey(id)
			if !ok {
				continue
			}
			kevs, err := domain.DecideAPIKey(k, domain.RevokeAPIKey{Reason: domain.KeyRevokedOwnerDeactivated})
			if err != nil {
				return nil, err
			}
			keys = append(keys, onAggregate(ref{domain.AggregateAPIKey, id}, k.Version, kseq, kevs)...)
		}
		if activate {
			tokens, err := s.retiredSCIMTokens(userID)
			if err != nil {
				return nil, err
			}
			return append(append(keys, tokens...), user...), nil
		}
		return append(user, keys...), nil
	}, func(pending) { wrote = true })
	if err != nil {
		return domain.User{}, wrote, err
	}
	if !activate {
		// Also for a user inactive already (nothing to write above): the
		// same request again completes a retirement that failed. Failing
		// here after something was stored — the deactivation, a token
		// retired — the answer says so (ErrIncomplete), not that nothing
		// changed; with nothing stored, it is the error as it is
		// (re-check 16r4).
		retired, err := s.retireSCIMTokens(ctx, meta, userID)
		wrote = wrote || retired > 0
		if err != nil {
			if wrote {
				return domain.User{}, true, fmt.Errorf("%w: retiring the SCIM tokens of the user's connections: %v", ErrIncomplete, err)
			}
			return domain.User{}, false, err
		}
	}
	u, _, _ := s.state.User(userID)
	return u, wrote, nil
}

// byAccount is cmd with a deactivation's ByTenantAdmin decided from its
// acting account (Deactivate.By) as the state now holds it: false for a
// platform admin however it acts — through an API key ("*" or one tenant)
// or a token scoped to a tenant, which the handler's caller does not count
// as one (re-check 20r6: those deactivations were recorded a tenant
// admin's, and any tenant admin of the user activated it). An account the
// state does not hold counts as a tenant admin's.
func (s *Service) byAccount(cmd domain.UserCommand) domain.UserCommand {
	d, ok := cmd.(domain.Deactivate)
	if !ok || d.By == "" {
		return cmd
	}
	actor, _, found := s.state.User(d.By)
	d.ByTenantAdmin = !found || !actor.IsPlatformAdmin()
	return d
}

// retireSCIMTokens gives each live SCIM connection userID owns a token
// nobody holds (scim.token_rotated), one connection per append; a
// connection another admin took over meanwhile is left alone.
func (s *Service) retireSCIMTokens(ctx context.Context, meta events.Meta, userID string) (retired int, err error) {
	for _, c := range s.scim().SCIMConnections() {
		if c.OwnerID != userID {
			continue
		}
		wrote := false
		_, err := execute(ctx, s, meta, write[domain.SCIMConnection]{
			on: s.scimConnAggregate(c.ID), missing: domain.ErrNotFound,
			decide: func(cur domain.SCIMConnection) ([]domain.Event, error) {
				if !cur.Exists() || cur.OwnerID != userID {
					return nil, nil
				}
				evs, err := domain.DecideSCIMConnection(cur, domain.RotateSCIMToken{
					Replaces: cur.TokenHash, TokenHash: HashToken(NewSCIMToken()), OwnerID: cur.OwnerID, OwnerKeyID: cur.OwnerKeyID, Now: s.cfg.Now(),
				})
				wrote = err == nil && len(evs) > 0
				return evs, err
			},
		})
		if err != nil && !errors.Is(err, domain.ErrNotFound) {
			return retired, err
		}
		if err == nil && wrote {
			retired++
		}
	}
	return retired, nil
}

// retiredSCIMTokens decides a token nobody holds (scim.token_rotated) for
// each live SCIM connection userID owns, each expecting its connection's
// subject where the read models have it.
func (s *Service) retiredSCIMTokens(userID string) ([]pending, error) {
	var out []pending
	for _, c := range s.scim().SCIMConnections() {
		if c.OwnerID != userID {
			continue
		}
		cur, seq, ok := s.scim().SCIMConnection(c.ID)
		if !ok || !cur.Exists() || cur.OwnerID != userID {
			continue
		}
		evs, err := domain.DecideSCIMConnection(cur, domain.RotateSCIMToken{
			Replaces: cur.TokenHash, TokenHash: HashToken(NewSCIMToken()), OwnerID: cur.OwnerID, OwnerKeyID: cur.OwnerKeyID, Now: s.cfg.Now(),
		})
		if err != nil {
			return nil, err
		}
		out = append(out, onAggregate(ref{domain.AggregateSCIM, c.ID}, cur.Version, seq, evs)...)
	}
	return out, nil
}

// RevokeSessions revokes the named sessions (domain.RevokeSession with
// reason): a session unknown or revoked already is left as it is. It
// returns how many it revoked. Without may, in one atomic append. may,
// when not nil, is the caller's authority over the sessions' user: each
// user's sessions are revoked as revokeSessionsAs says, one user after
// another (an error for one, after another's were revoked, is the answer
// with those counted: they stay revoked).
func (s *Service) RevokeSessions(ctx context.Context, meta events.Meta, sessionIDs []string, reason string, may func(domain.User) error) (int, error) {
	if may == nil {
		return s.revokeSessions(ctx, meta, func() []string { return sessionIDs }, reason)
	}
	var users []string
	byUser := map[string][]string{}
	for _, id := range sessionIDs {
		sess, _, ok := s.state.Session(id)
		if !ok {
			continue
		}
		if _, seen := byUser[sess.UserID]; !seen {
			users = append(users, sess.UserID)
		}
		byUser[sess.UserID] = append(byUser[sess.UserID], id)
	}
	n := 0
	for _, userID := range users {
		ids := byUser[userID]
		k, err := s.revokeSessionsAs(ctx, meta, userID, func() []string { return ids }, reason, may)
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// RevokeUserSessions revokes every session of a user that is live when it
// is decided, and returns how many: without may, a session.revoked each in
// one atomic append; with may (the caller's authority over the user), as
// revokeSessionsAs says. Unknown user: domain.ErrNotFound.
func (s *Service) RevokeUserSessions(ctx context.Context, meta events.Meta, userID, reason string, may func(domain.User) error) (int, error) {
	if _, _, ok := s.state.User(userID); !ok {
		return 0, domain.ErrNotFound
	}
	live := func() []string { return s.state.UserSessionIDs(userID, s.cfg.Now()) }
	if may == nil {
		return s.revokeSessions(ctx, meta, live, reason)
	}
	return s.revokeSessionsAs(ctx, meta, userID, live, reason, may)
}

// revokeSessions revokes the sessions ids names when asked, in one
// decision: an atomic append, each session.revoked expecting its session's
// subject.
func (s *Service) revokeSessions(ctx context.Context, meta events.Meta, ids func() []string, reason string) (int, error) {
	revoked := map[string]bool{}
	err := s.writeBatch(ctx, meta, func() ([]pending, error) {
		var out []pending
		for _, id := range ids() {
			sess, seq, ok := s.state.Session(id)
			if !ok {
				continue
			}
			evs, err := domain.DecideSession(sess, domain.RevokeSession{Reason: reason})
			if err != nil {
				return nil, err
			}
			out = append(out, onAggregate(ref{domain.AggregateSession, id}, sess.Version, seq, evs)...)
		}
		return out, nil
	}, func(p pending) { revoked[p.id] = true })
	return len(revoked), err
}

// revokeSessionsAs revokes the sessions of user userID that ids names when
// asked, for a caller whose authority over the user is may. A revocation
// writes nothing to the user, and an append that expects another subject
// holds one message: so may is checked once on the user as the stream's
// leader has it (at sequence seq), and each session.revoked is appended
// on its own, stored only if the user's subject is still at seq
// (events.Message.ExpectSubject; the session's own expectation gives way:
// a session refreshed meanwhile is revoked all the same, one revoked
// meanwhile gets a second session.revoked). When one conflicts — the user
// changed — the user is read again and may checked again before the next.
// Every revocation stored was so made while the caller held the authority
// (an outside check, 13r2, stored one after the user was granted admin of
// another tenant, when the appends expected the sessions' subjects only).
//
// The answer says what was stored: a refusal of may is the answer only
// when nothing was revoked. If the authority is lost after some were (the
// user changed between two appends), they stay revoked and their number
// is the answer, the rest left live — as if the caller had revoked them
// one by one and been refused the rest. Another error (the event store
// unavailable) after some were revoked leaves them revoked, too, and is
// ErrIncomplete, not "nothing was changed" (re-check 16r3): a retry
// revokes the rest.
func (s *Service) revokeSessionsAs(ctx context.Context, meta events.Meta, userID string, ids func() []string, reason string, may func(domain.User) error) (revoked int, err error) {
	defer func() {
		if revoked > 0 {
			err = incomplete(err)
		}
	}()
	subject := events.Subject(domain.AggregateUser, userID)
	// After a conflict (or while others of this replica do), the rounds
	// hold the user's turn among this replica's writers (see execute).
	t := turns{locks: &s.subjects}
	defer t.release()
	if s.subjects.busy(subject) {
		if err := t.cover(ctx, subject); err != nil {
			return 0, err
		}
	}
	last := uint64(0)
	for conflicts := 0; ; {
		if err := s.catchUpSubject(ctx, subject); err != nil {
			return revoked, err
		}
		u, seq, ok := s.state.User(userID)
		if !ok {
			return revoked, domain.ErrNotFound
		}
		if err := may(u); err != nil {
			if revoked > 0 {
				break
			}
			return 0, err
		}
		conflicted := false
		for _, id := range ids() {
			sess, _, ok := s.state.Session(id)
			if !ok || sess.UserID != userID {
				continue
			}
			evs, err := domain.DecideSession(sess, domain.RevokeSession{Reason: reason})
			if err != nil {
				s.barrier(ctx, last)
				return revoked, err
			}
			if len(evs) == 0 {
				continue // revoked already
			}
			p := onAggregate(ref{domain.AggregateSession, id}, sess.Version, seq, evs)
			p[0].expectOn = subject
			at, err := s.storeEvents(ctx, meta, NewID("cmd"), p)
			if errors.Is(err, events.ErrConflict) {
				conflicted = true
				break
			}
			if err != nil {
				s.barrier(ctx, last)
				return revoked, err
			}
			revoked, last = revoked+1, at
		}
		if !conflicted {
			break
		}
		if conflicts++; conflicts >= s.cfg.MaxAttempts {
			s.barrier(ctx, last)
			return revoked, ErrTooManyConflicts
		}
		s.conflicts.Add(1)
		if err := t.cover(ctx, subject); err != nil {
			s.barrier(ctx, last)
			return revoked, err
		}
	}
	s.barrier(ctx, last)
	return revoked, nil
}

// RefreshIdleTTL is the idle lifetime of sessions (0: none): a session not
// refreshed for that long can no longer refresh, so it is not listed as live.
func (s *Service) RefreshIdleTTL() time.Duration { return s.cfg.RefreshIdleTTL }

// writeBatch appends what decide decides, atomically, and waits until the
// read models have applied it. decide reads the state afresh each time it
// is called: on a conflict (another writer moved one of the subjects) the
// read models catch up with the stream and it decides again, up to
// Config.MaxAttempts times, holding the turns of the subjects the decision
// expects among this replica's writers (subjectLocks, as execute) — taken
// before the first append when another writer of this replica holds or
// waits for one of them. A decision of more than batchMax events is
// appended batchMax at a time, decide being asked again after each batch
// for what is left (so the events decide puts first go in the first). No
// events: nothing to do. stored, when given, is told of each
// event appended.
func (s *Service) writeBatch(ctx context.Context, meta events.Meta, decide func() ([]pending, error), stored ...func(pending)) (err error) {
	wrote := false // a batch is stored: a later failure is ErrIncomplete
	defer func() {
		if wrote {
			err = incomplete(err)
		}
	}()
	t := turns{locks: &s.subjects}
	defer t.release()
	for conflicts := 0; conflicts < s.cfg.MaxAttempts; {
		evs, err := decide()
		if err != nil || len(evs) == 0 {
			return err
		}
		batch := evs[:min(len(evs), batchMax)]
		if on := expected(batch); !t.covers(on) && (conflicts > 0 || s.subjects.busy(on...)) {
			// Our turn on every subject the batch expects, then decide
			// again on what the writers before us wrote.
			if err := t.cover(ctx, on...); err != nil {
				return err
			}
			if err := s.CatchUpHead(ctx); err != nil {
				return err
			}
			continue
		}
		_, err = s.appendEvents(ctx, meta, NewID("cmd"), batch)
		switch {
		case errors.Is(err, events.ErrConflict):
			conflicts++
			s.conflicts.Add(1)
			if err := t.cover(ctx, expected(batch)...); err != nil {
				return err
			}
			if err := s.CatchUpHead(ctx); err != nil {
				return err
			}
			continue
		case err != nil:
			return err
		}
		wrote = true
		for _, p := range batch {
			for _, f := range stored {
				f(p)
			}
		}
		if len(evs) <= batchMax {
			return nil
		}
	}
	return ErrTooManyConflicts
}
