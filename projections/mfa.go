package projections

import (
	"sort"

	"github.com/infracast/auth/domain"
)

// mfaModel is the MFA read model: a side table of the users that ever had
// a factor enrolled (most users never do, and the compact user records stay
// as they are), and the MFA policies. A wrong second factor (mfa.failed)
// lives on the user's subject and is folded into the user's record, as a
// failed login is.
type mfaModel struct {
	users    map[string]*mfaEntry       // user ID -> MFA state
	policies map[string]*mfaPolicyEntry // domain.MFAPolicyPlatform or tenant ID -> policy
	// required counts the scopes whose policy requires MFA, so that the
	// login path asks no further when none does.
	required int
}

type mfaEntry struct {
	seq   uint64
	state domain.MFA
}

type mfaPolicyEntry struct {
	seq   uint64
	state domain.MFAPolicy
}

type snapMFA struct {
	Empty emptyFields
	State domain.MFA
	Seq   uint64
}

type snapMFAPolicy struct {
	State domain.MFAPolicy
	Seq   uint64
}

// applyMFA folds an event of the MFA aggregate id (a user ID) into the model.
func (m *Model) applyMFA(id string, seq uint64, e domain.Event) {
	mm := &m.mfa
	if mm.users == nil {
		mm.users = make(map[string]*mfaEntry)
	}
	en := mm.users[id]
	if en == nil {
		en = &mfaEntry{}
		mm.users[id] = en
	}
	en.state = domain.EvolveMFA(en.state, e)
	en.seq = seq
}

// applyMFAPolicy folds a policy event of scope id into the model.
func (m *Model) applyMFAPolicy(id string, seq uint64, e domain.Event) {
	mm := &m.mfa
	if mm.policies == nil {
		mm.policies = make(map[string]*mfaPolicyEntry)
	}
	en := mm.policies[id]
	if en == nil {
		en = &mfaPolicyEntry{}
		mm.policies[id] = en
	}
	if en.state.Required {
		mm.required--
	}
	en.state = domain.EvolveMFAPolicy(en.state, e)
	en.seq = seq
	if en.state.Required {
		mm.required++
	}
}

// MFA returns a user's MFA state (the zero state when nothing was ever
// enrolled) and the stream sequence of its last event (0: none).
func (m *Model) MFA(userID string) (domain.MFA, uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if en := m.mfa.users[userID]; en != nil {
		return en.state, en.seq
	}
	return domain.MFA{}, 0
}

// MFAPolicy returns the MFA policy of a scope (domain.MFAPolicyPlatform or
// a tenant ID) and the stream sequence of its last event.
func (m *Model) MFAPolicy(scope string) (domain.MFAPolicy, uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if en := m.mfa.policies[scope]; en != nil {
		return en.state, en.seq
	}
	return domain.MFAPolicy{Scope: scope}, 0
}

// MFAPolicies lists the scopes whose policy requires MFA, ordered.
func (m *Model) MFAPolicies() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []string{}
	for scope, en := range m.mfa.policies {
		if en.state.Required {
			out = append(out, scope)
		}
	}
	sort.Strings(out)
	return out
}

// UserCutOff is the stream sequence of user id's last cut-off (a password
// change or a deactivation), 0 for none.
func (m *Model) UserCutOff(id string) uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.users.find(id)
	if !ok {
		return 0
	}
	cut, _ := m.users.keep(r)
	return cut
}

// MFARequired reports whether a policy requires u to have a second factor:
// the platform's, or that of a tenant where u holds a role.
func (m *Model) MFARequired(u domain.User) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.mfa.required == 0 {
		return false
	}
	if en := m.mfa.policies[domain.MFAPolicyPlatform]; en != nil && en.state.Required {
		return true
	}
	for t := range u.Tenants {
		if en := m.mfa.policies[t]; en != nil && en.state.Required {
			return true
		}
	}
	return false
}

// snapshot copies the MFA read model for a snapshot (or Dump), ordered by
// sequence; called with the read lock held. States are values whose slices
// EvolveMFA never writes in place, so they are shared.
func (mm *mfaModel) snapshot() (users []snapMFA, policies []snapMFAPolicy) {
	users = make([]snapMFA, 0, len(mm.users))
	for _, en := range mm.users {
		users = append(users, snapMFA{Empty: markEmpty(&en.state), State: en.state, Seq: en.seq})
	}
	policies = make([]snapMFAPolicy, 0, len(mm.policies))
	for _, en := range mm.policies {
		policies = append(policies, snapMFAPolicy{State: en.state, Seq: en.seq})
	}
	sort.Slice(users, func(i, j int) bool { return users[i].Seq < users[j].Seq })
	sort.Slice(policies, func(i, j int) bool { return policies[i].Seq < policies[j].Seq })
	return users, policies
}

// restoreMFA rebuilds the MFA read model from a snapshot.
func restoreMFA(users []snapMFA, policies []snapMFAPolicy) mfaModel {
	var mm mfaModel
	if len(users) > 0 {
		mm.users = make(map[string]*mfaEntry, len(users))
		for _, u := range users {
			u.Empty.restore(&u.State)
			mm.users[u.State.UserID] = &mfaEntry{state: u.State, seq: u.Seq}
		}
	}
	if len(policies) > 0 {
		mm.policies = make(map[string]*mfaPolicyEntry, len(policies))
		for _, p := range policies {
			mm.policies[p.State.Scope] = &mfaPolicyEntry{state: p.State, seq: p.Seq}
			if p.State.Required {
				mm.required++
			}
		}
	}
	return mm
}
