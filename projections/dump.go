package projections

import (
	"cmp"
	"encoding/json"
	"slices"
)

// Dump returns the model's whole state as canonical JSON: every entry sorted
// by key, map keys sorted, an empty list distinct from none. Two models that
// answer alike dump alike, whichever way they were built (a full replay, or a
// snapshot and the events after it); tests and debugging compare dumps.
func (m *Model) Dump() ([]byte, error) {
	s := m.copyState()
	slices.SortFunc(s.Users, func(a, b snapUser) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Sessions, func(a, b snapSession) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Logins, func(a, b snapLogin) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.AddrFailures, func(a, b snapAddr) int { return cmp.Compare(a.Addr, b.Addr) })
	slices.SortFunc(s.Keys, func(a, b snapKey) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.SSOProviders, func(a, b snapSSOProvider) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(s.SigningKeys, func(a, b snapSigningKey) int { return cmp.Compare(a.ID, b.ID) })
	return json.MarshalIndent(s, "", " ")
}
