package projections

import (
	"net/netip"
	"sort"
	"time"

	"github.com/infracast/auth/domain"
)

type keyEntry struct {
	state domain.APIKey
	seq   uint64
}

// applyKey folds an API key event; called with the write lock held.
func (m *Model) applyKey(id string, seq uint64, e domain.Event) {
	k := m.keys[id]
	if k == nil {
		if _, ok := e.(domain.APIKeyCreated); !ok {
			return
		}
		k = &keyEntry{}
		m.keys[id] = k
	}
	old := k.state.SecretHash
	k.state = domain.EvolveAPIKey(k.state, e)
	k.seq = seq
	if k.state.SecretHash != old {
		delete(m.keyByHash, old) // a rotated-out secret stops at once
		m.keyByHash[k.state.SecretHash] = id
	}
	if k.state.Revoked {
		delete(m.keyByHash, k.state.SecretHash)
	}
}

// APIKey returns a key's state and the stream sequence of its last event.
func (m *Model) APIKey(id string) (domain.APIKey, uint64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	k := m.keys[id]
	if k == nil {
		return domain.APIKey{}, 0, false
	}
	return k.state, k.seq, true
}

// APIKeys returns every key, oldest first.
func (m *Model) APIKeys() []domain.APIKey {
	m.mu.RLock()
	out := make([]domain.APIKey, 0, len(m.keys))
	for _, k := range m.keys {
		out = append(out, k.state)
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// KeyPrincipal is what the request path knows about an API key's holder.
type KeyPrincipal struct {
	Key   domain.APIKey
	Owner domain.User
}

// Verdicts of AuthorizeKey beside Valid.
const (
	UnknownKey Verdict = iota + 16
	KeyRevoked
	KeyExpired
	KeyIPDenied
	KeyOwnerInactive
)

// AuthorizeKey finds the key whose secret hashes to secretHash and checks,
// under one read lock, that it is not revoked or expired, that addr is on its
// allowlist and that its owner is active. The hash lookup is a map lookup on a
// SHA-256 of a 256-bit secret: it reveals nothing by timing that a constant-time
// comparison would hide.
func (m *Model) AuthorizeKey(secretHash string, addr netip.Addr, now time.Time) (KeyPrincipal, Verdict) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.keyByHash[secretHash]
	if !ok {
		return KeyPrincipal{}, UnknownKey
	}
	k := m.keys[id]
	switch {
	case k.state.Revoked:
		return KeyPrincipal{}, KeyRevoked
	case k.state.Expired(now):
		return KeyPrincipal{}, KeyExpired
	case !k.state.AllowsIP(addr):
		return KeyPrincipal{}, KeyIPDenied
	}
	owner := m.users[k.state.OwnerID]
	if owner == nil || !owner.state.Active {
		return KeyPrincipal{}, KeyOwnerInactive
	}
	return KeyPrincipal{Key: k.state, Owner: owner.state}, Valid
}

// KeyBySecretHash finds the live key whose current secret hashes to secretHash.
func (m *Model) KeyBySecretHash(secretHash string) (domain.APIKey, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.keyByHash[secretHash]
	if !ok {
		return domain.APIKey{}, false
	}
	return m.keys[id].state, true
}

var verdictNames = map[Verdict]string{
	Valid: "valid", UnknownSession: "unknown_session", SessionRevoked: "session_revoked",
	TokenRevoked: "token_revoked", UserInactive: "user_inactive", SessionExpired: "session_expired",
	UnknownKey: "unknown_key", KeyRevoked: "key_revoked", KeyExpired: "key_expired",
	KeyIPDenied: "key_ip_denied", KeyOwnerInactive: "key_owner_inactive",
}

// String names the verdict (a metrics label).
func (v Verdict) String() string {
	if n, ok := verdictNames[v]; ok {
		return n
	}
	return "unknown"
}
