package projections

import (
	"sort"
	"sync/atomic"

	"github.com/infracast/auth/domain"
)

// signingModel holds the run-time signing keys. version changes with every
// applied key event, so the token verifier can notice a rotation with one
// atomic load per request.
type signingModel struct {
	keys    map[string]*signingEntry
	version atomic.Uint64
}

type signingEntry struct {
	state domain.SigningKey
	seq   uint64
}

// applySigningKey folds a signing key event; called with the write lock held.
func (m *Model) applySigningKey(id string, seq uint64, e domain.Event) {
	if m.signing.keys == nil {
		m.signing.keys = map[string]*signingEntry{}
	}
	k := m.signing.keys[id]
	if k == nil {
		if _, ok := e.(domain.SigningKeyAdded); !ok {
			return
		}
		k = &signingEntry{}
		m.signing.keys[id] = k
	}
	k.state = domain.EvolveSigningKey(k.state, e)
	k.seq = seq
	m.signing.version.Add(1)
}

// SigningKeysVersion changes whenever a signing key is added or retired.
func (m *Model) SigningKeysVersion() uint64 { return m.signing.version.Load() }

// SigningKeys returns every run-time signing key, oldest first.
func (m *Model) SigningKeys() []domain.SigningKey {
	m.mu.RLock()
	out := make([]domain.SigningKey, 0, len(m.signing.keys))
	for _, k := range m.signing.keys {
		out = append(out, k.state)
	}
	m.mu.RUnlock()
	sortSigningKeys(out)
	return out
}

// SigningKeysAt returns every run-time signing key, oldest first, and the
// stream sequence of the last event of any of them (0: none), read
// together: a decision on which key signs is appended expecting that
// sequence on every signing key's subject (events.Subject(…, "*")).
func (m *Model) SigningKeysAt() ([]domain.SigningKey, uint64) {
	m.mu.RLock()
	out := make([]domain.SigningKey, 0, len(m.signing.keys))
	var last uint64
	for _, k := range m.signing.keys {
		out = append(out, k.state)
		last = max(last, k.seq)
	}
	m.mu.RUnlock()
	sortSigningKeys(out)
	return out, last
}

// sortSigningKeys orders keys oldest first (on a tie, by ID).
func sortSigningKeys(out []domain.SigningKey) {
	sort.Slice(out, func(i, j int) bool {
		if !out[i].AddedAt.Equal(out[j].AddedAt) {
			return out[i].AddedAt.Before(out[j].AddedAt)
		}
		return out[i].ID < out[j].ID
	})
}

// SigningKey returns one run-time signing key and the sequence of its last event.
func (m *Model) SigningKey(id string) (domain.SigningKey, uint64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	k := m.signing.keys[id]
	if k == nil {
		return domain.SigningKey{}, 0, false
	}
	return k.state, k.seq, true
}
