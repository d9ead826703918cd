package projections

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/infracast/auth/domain"
)

// SnapshotFormat identifies what a snapshot holds and how it is encoded. Bump
// it whenever Apply folds an event differently or the Model gains state (a
// field of Model, ssoModel or signingModel; TestSnapshotCoversEveryField
// fails until snapshot.go carries it): older snapshots are then ignored and
// replicas replay the stream in full once.
const SnapshotFormat = 3 // 3: SSO identities keyed by (issuer, subject); 2: sessions carry RotatedAt

// ErrSnapshotFormat: the snapshot was written by a build with another
// SnapshotFormat.
var ErrSnapshotFormat = errors.New("projections: snapshot of another format")

// snapshot is the Model's state, as gob encodes it (gob: three times faster
// to decode than JSON, and start-up time is what snapshots are for). Entries
// carry their map key explicitly, and Empty: which slice and map fields of
// the state were empty but not nil, since gob decodes both as nil and a nil
// slice renders as null in a response where [] was before.
type snapshot struct {
	Format  int
	Applied uint64
	Skipped uint64

	Users         []snapUser
	ByName        map[string]string
	Sessions      []snapSession
	ByRefresh     map[string]string
	RevokedTokens map[string]time.Time
	Logins        []snapLogin
	AddrFailures  []snapAddr
	Keys          []snapKey
	KeyByHash     map[string]string
	SSOProviders  []snapSSOProvider
	SSOIdentities map[string]string
	SSOLinkSeq    map[string]uint64
	SigningKeys   []snapSigningKey
}

type snapUser struct {
	ID        string
	Empty     emptyFields
	State     domain.User
	Seq       uint64
	CutoffSeq uint64
	Keep      string
}

type snapSession struct {
	ID       string
	Empty    emptyFields
	State    domain.Session
	Seq      uint64
	StartSeq uint64
}

type snapLogin struct {
	ID    string
	State domain.LoginAttempts
	Seq   uint64
}

type snapAddr struct {
	Addr  string
	Count int
	Last  time.Time
}

type snapKey struct {
	ID    string
	Empty emptyFields
	State domain.APIKey
	Seq   uint64
}

type snapSSOProvider struct {
	Name  string
	Empty emptyFields
	State domain.SSOProvider
	Seq   uint64
}

type snapSigningKey struct {
	ID    string
	Empty emptyFields
	State domain.SigningKey
	Seq   uint64
}

// Snapshot encodes the model's state and returns it with the stream sequence
// it reflects: restoring it and applying the stream from that sequence + 1
// gives the same model as applying the whole stream.
//
// The state is copied under the read lock — values only, the domain states
// are never mutated in place by Evolve — and encoded after, so that applying
// events (and every request behind a waiting writer) is held up for the copy,
// not for the encoding.
func (m *Model) Snapshot() ([]byte, uint64, error) {
	s := m.copyState()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&s); err != nil {
		return nil, 0, fmt.Errorf("projections: encode snapshot: %w", err)
	}
	return buf.Bytes(), s.Applied, nil
}

func (m *Model) copyState() snapshot {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := snapshot{
		Format: SnapshotFormat, Applied: m.applied, Skipped: m.skipped,
		Users:         make([]snapUser, 0, len(m.users)),
		ByName:        cloneMap(m.byName),
		Sessions:      make([]snapSession, 0, len(m.sessions)),
		ByRefresh:     cloneMap(m.byRefresh),
		RevokedTokens: cloneMap(m.revokedTokens),
		Logins:        make([]snapLogin, 0, len(m.logins)),
		AddrFailures:  make([]snapAddr, 0, len(m.addrFailures)),
		Keys:          make([]snapKey, 0, len(m.keys.byID)),
		KeyByHash:     m.keys.hashIndex(),
		SSOProviders:  make([]snapSSOProvider, 0, len(m.sso.providers)),
		SSOIdentities: cloneMap(m.sso.identities),
		SSOLinkSeq:    cloneMap(m.sso.linkSeq),
		SigningKeys:   make([]snapSigningKey, 0, len(m.signing.keys)),
	}
	for id, u := range m.users {
		s.Users = append(s.Users, snapUser{ID: id, Empty: markEmpty(&u.state), State: u.state, Seq: u.seq, CutoffSeq: u.cutoffSeq, Keep: u.keep})
	}
	for id, e := range m.sessions {
		s.Sessions = append(s.Sessions, snapSession{ID: id, Empty: markEmpty(&e.state), State: e.state, Seq: e.seq, StartSeq: e.startSeq})
	}
	for id, l := range m.logins {
		s.Logins = append(s.Logins, snapLogin{ID: id, State: l.state, Seq: l.seq})
	}
	for addr, f := range m.addrFailures {
		s.AddrFailures = append(s.AddrFailures, snapAddr{Addr: addr, Count: f.count, Last: f.last})
	}
	for id, k := range m.keys.byID {
		st := m.keys.fullState(k)
		s.Keys = append(s.Keys, snapKey{ID: id, Empty: markEmpty(&st), State: st, Seq: k.seq})
	}
	for name, p := range m.sso.providers {
		s.SSOProviders = append(s.SSOProviders, snapSSOProvider{Name: name, Empty: markEmpty(&p.state), State: p.state, Seq: p.seq})
	}
	for id, k := range m.signing.keys {
		s.SigningKeys = append(s.SigningKeys, snapSigningKey{ID: id, Empty: markEmpty(&k.state), State: k.state, Seq: k.seq})
	}
	return s
}

// Restore replaces the model's state with a snapshot's and returns the stream
// sequence it reflects. The model is built aside and swapped in at once;
// AddressWindow (configuration, not state) stays.
func (m *Model) Restore(data []byte) (uint64, error) {
	var s snapshot
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&s); err != nil {
		return 0, fmt.Errorf("projections: decode snapshot: %w", err)
	}
	if s.Format != SnapshotFormat {
		return 0, fmt.Errorf("%w: %d, this build reads %d", ErrSnapshotFormat, s.Format, SnapshotFormat)
	}
	users := make(map[string]*userEntry, len(s.Users))
	for _, u := range s.Users {
		u.Empty.restore(&u.State)
		users[u.ID] = &userEntry{state: u.State, seq: u.Seq, cutoffSeq: u.CutoffSeq, keep: u.Keep}
	}
	sessions := make(map[string]*sessionEntry, len(s.Sessions))
	for _, e := range s.Sessions {
		e.Empty.restore(&e.State)
		sessions[e.ID] = &sessionEntry{state: e.State, seq: e.Seq, startSeq: e.StartSeq}
	}
	logins := make(map[string]loginEntry, len(s.Logins))
	for _, l := range s.Logins {
		logins[l.ID] = loginEntry{state: l.State, seq: l.Seq}
	}
	addrs := make(map[string]addrFailures, len(s.AddrFailures))
	for _, a := range s.AddrFailures {
		addrs[a.Addr] = addrFailures{count: a.Count, last: a.Last}
	}
	// The key index (KeyByHash) is rebuilt from the keys' states.
	var keys keyModel
	for _, k := range s.Keys {
		k.Empty.restore(&k.State)
		keys.restoreKey(k.ID, k.State, k.Seq, users)
	}
	var sso ssoModel
	if len(s.SSOProviders) > 0 {
		sso.providers = make(map[string]*ssoProviderEntry, len(s.SSOProviders))
		for _, p := range s.SSOProviders {
			p.Empty.restore(&p.State)
			sso.providers[p.Name] = &ssoProviderEntry{state: p.State, seq: p.Seq}
		}
	}
	if len(s.SSOIdentities) > 0 || len(s.SSOLinkSeq) > 0 {
		sso.identities, sso.linkSeq = nonNil(s.SSOIdentities), nonNil(s.SSOLinkSeq)
	}
	var signing map[string]*signingEntry
	if len(s.SigningKeys) > 0 {
		signing = make(map[string]*signingEntry, len(s.SigningKeys))
		for _, k := range s.SigningKeys {
			k.Empty.restore(&k.State)
			signing[k.ID] = &signingEntry{state: k.State, seq: k.Seq}
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	m.applied, m.skipped = s.Applied, s.Skipped
	m.users, m.byName = users, nonNil(s.ByName)
	m.sessions, m.byRefresh, m.revokedTokens = sessions, nonNil(s.ByRefresh), nonNil(s.RevokedTokens)
	m.logins, m.addrFailures = logins, addrs
	m.keys = keys
	m.sso = sso
	m.signing.keys = signing
	m.signing.version.Add(1) // token verifiers reload the keys
	return s.Applied, nil
}

func cloneMap[K comparable, V any](in map[K]V) map[K]V {
	out := make(map[K]V, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// nonNil returns m, or an empty map for nil (gob decodes an empty map as nil).
func nonNil[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return make(map[K]V)
	}
	return m
}

// emptyFields is a bit set of a struct's top-level slice and map fields (by
// field index) that are empty but not nil.
type emptyFields uint64

// collectionFields caches, per struct type, the indexes of its slice and map
// fields.
var collectionFields sync.Map // reflect.Type -> []int

func collectionsOf(t reflect.Type) []int {
	if v, ok := collectionFields.Load(t); ok {
		return v.([]int)
	}
	var idx []int
	for i := range min(t.NumField(), 64) {
		if k := t.Field(i).Type.Kind(); k == reflect.Slice || k == reflect.Map {
			idx = append(idx, i)
		}
	}
	collectionFields.Store(t, idx)
	return idx
}

// markEmpty returns the empty-but-not-nil collections of the struct *v.
func markEmpty[T any](v *T) emptyFields {
	rv := reflect.ValueOf(v).Elem()
	var m emptyFields
	for _, i := range collectionsOf(rv.Type()) {
		if f := rv.Field(i); !f.IsNil() && f.Len() == 0 {
			m |= 1 << i
		}
	}
	return m
}

// restore makes the marked fields of the struct *v empty, not nil.
func (m emptyFields) restore(v any) {
	if m == 0 {
		return
	}
	rv := reflect.ValueOf(v).Elem()
	for _, i := range collectionsOf(rv.Type()) {
		if m&(1<<i) == 0 {
			continue
		}
		switch f := rv.Field(i); f.Kind() {
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 0, 0))
		case reflect.Map:
			f.Set(reflect.MakeMap(f.Type()))
		}
	}
}
