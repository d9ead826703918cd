package projections

import (
	"sort"

	"github.com/infracast/auth/domain"
)

// ssoModel is the single sign-on read model: provider configurations and
// linked identities. Its zero value is ready to use (maps are made on first
// write); it lives inside Model and is guarded by Model.mu.
type ssoModel struct {
	providers  map[string]*ssoProviderEntry // provider name -> configuration
	identities map[string]string            // identityKey(issuer, subject) -> user ID
	linkSeq    map[string]uint64            // sso_identity aggregate ID -> stream sequence
}

type ssoProviderEntry struct {
	state domain.SSOProvider
	seq   uint64
}

func identityKey(issuer, subject string) string { return issuer + "\x00" + subject }

// applySSO folds an SSO event; called with the write lock held.
func (m *Model) applySSO(aggregateID string, seq uint64, e domain.Event) {
	s := &m.sso
	switch ev := e.(type) {
	case domain.SSOProviderConfigured, domain.SSOProviderDeleted:
		if s.providers == nil {
			s.providers = make(map[string]*ssoProviderEntry)
		}
		p := s.providers[aggregateID]
		if p == nil {
			if _, ok := e.(domain.SSOProviderConfigured); !ok {
				return
			}
			p = &ssoProviderEntry{}
			s.providers[aggregateID] = p
		}
		p.state = domain.EvolveSSOProvider(p.state, e)
		p.seq = seq
	case domain.SSOIdentityLinked:
		if s.identities == nil {
			s.identities = make(map[string]string)
			s.linkSeq = make(map[string]uint64)
		}
		if ev.Issuer == "" {
			// Written before identities were keyed by issuer: the issuer is
			// that of the provider it was linked through, as configured at
			// this point of the stream (the link followed that
			// configuration).
			var p domain.SSOProvider
			if e := s.providers[ev.Provider]; e != nil {
				p = e.state
			}
			ev = domain.UpcastIdentityLinked(ev, p)
		}
		s.identities[identityKey(ev.Issuer, ev.Subject)] = ev.UserID
		s.linkSeq[aggregateID] = seq
	case domain.SSOIdentityUnlinked:
		delete(s.identities, identityKey(ev.Issuer, ev.Subject))
		if s.linkSeq == nil {
			s.linkSeq = make(map[string]uint64)
		}
		s.linkSeq[aggregateID] = seq // the next link expects it
	case domain.SSOAssertionConsumed:
		// The reservation subject itself refuses replays (appended with
		// "must be new"); nothing to keep in memory.
	}
}

// SSOProvider returns a provider's configuration (also a deleted one: check
// Exists) and the stream sequence of its last event.
func (m *Model) SSOProvider(name string) (domain.SSOProvider, uint64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p := m.sso.providers[name]
	if p == nil {
		return domain.SSOProvider{}, 0, false
	}
	return p.state, p.seq, true
}

// SSOProviders returns every configured (not deleted) provider by name.
func (m *Model) SSOProviders() []domain.SSOProvider {
	m.mu.RLock()
	out := make([]domain.SSOProvider, 0, len(m.sso.providers))
	for _, p := range m.sso.providers {
		if p.state.Exists() {
			out = append(out, p.state)
		}
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SSOIdentity returns the user linked to the identity (issuer, subject).
func (m *Model) SSOIdentity(issuer, subject string) (string, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.sso.identities[identityKey(issuer, subject)]
	return id, ok
}

// SSOIdentityLinkSeq returns the stream sequence of the last link or unlink
// of an identity, by its aggregate ID (commands.SSOIdentityKey); 0: never
// linked. A (re)link is appended expecting it.
func (m *Model) SSOIdentityLinkSeq(aggregateID string) uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.sso.linkSeq[aggregateID]
}

// SSOIdentityAtIssuer reports whether userID holds an identity at issuer
// with another subject than except. It scans every identity: it serves SSO
// logins that link by e-mail, not the request path.
func (m *Model) SSOIdentityAtIssuer(userID, issuer, except string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	prefix := issuer + "\x00"
	for k, u := range m.sso.identities {
		if u == userID && len(k) > len(prefix) && k[:len(prefix)] == prefix && k[len(prefix):] != except {
			return true
		}
	}
	return false
}

// SSOIdentityOtherThan reports whether userID holds an identity other than
// (issuer, subject), at any issuer. It scans every identity: it serves
// SCIM creates that find a user by its username, not the request path.
func (m *Model) SSOIdentityOtherThan(userID, issuer, subject string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	except := identityKey(issuer, subject)
	for k, u := range m.sso.identities {
		if u == userID && k != except {
			return true
		}
	}
	return false
}

// UsersByEmail returns the users whose e-mail is email (domain.SameEmail:
// the letter case of A-Z aside, every other byte exact).
// It scans every user: it serves SSO logins that link by e-mail, not the
// request path.
func (m *Model) UsersByEmail(email string) []domain.User {
	if email == "" {
		return nil
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []domain.User
	for r := range m.users.recs.n {
		if domain.SameEmail(m.users.email(r), email) {
			out = append(out, m.users.state(r, true))
		}
	}
	return out
}
