package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// newID is an identifier shaped like the service's: prefix-ULID.
func newID(prefix string) string { return prefix + "-" + ulid.Make().String() }

// hashToken is the hex SHA-256 the service keeps of a refresh token.
func hashToken(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// slotOf is the slot of a user (and of all of the user's sessions): FNV-1a
// of the user ID, modulo the slot count. Sessions follow their user so that
// a deactivation or a password change concerns one partition only.
func slotOf(userID string, slots int) int {
	return int(fnv64a([]byte(userID)) % uint64(slots))
}

// fnv64a is FNV-1a, 64 bits (hash/fnv's, without its allocation).
func fnv64a(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// The metadata of the generated events, as a request through the API leaves.
var meta = events.Meta{
	Actor: events.Actor{Type: "user", ID: "user-01JSCALESIMADMIN000000000"},
	Request: events.RequestInfo{
		IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) infracast-scalesim/1.0",
		RequestID: "req-01JSCALESIMREQUEST00000000",
	},
}

// population generates users and their sessions as the service stores them:
// per user one user.created (two tenant roles, a sealed password hash), then
// per session one session.started and one session.refreshed (the default:
// no rotation). emit receives each encoded event with its aggregate, ID and
// the user's slot.
func population(sessions, perUser, slots int, emit func(aggregate, id string, slot int, data []byte) error) error {
	now := time.Now().UTC()
	enc := func(agg, id string, seq uint64, e domain.Event) ([]byte, error) {
		return events.Encode(newID("evt"), agg, id, seq, now, meta, e)
	}
	for u := 0; u < sessions/perUser; u++ {
		uid := newID("user")
		slot := slotOf(uid, slots)
		name := fmt.Sprintf("user-%d", u)
		data, err := enc(domain.AggregateUser, uid, 1, domain.UserCreated{
			UserID: uid, Username: name, Email: name + "@example.com", PasswordHashSealed: strings.Repeat("s", 180),
			Tenants:   []domain.TenantRole{{Tenant: "prod", Role: domain.RoleEditor}, {Tenant: "staging", Role: domain.RoleViewer}},
			CreatedAt: now,
		})
		if err != nil {
			return err
		}
		if err := emit(domain.AggregateUser, uid, slot, data); err != nil {
			return err
		}
		for s := 0; s < perUser; s++ {
			sid := newID("sess")
			data, err := enc(domain.AggregateSession, sid, 1, domain.SessionStarted{
				SessionID: sid, UserID: uid, RefreshTokenHash: hashToken(sid), Method: "password",
				StartedAt: now, ExpiresAt: now.Add(7 * 24 * time.Hour),
			})
			if err != nil {
				return err
			}
			if err := emit(domain.AggregateSession, sid, slot, data); err != nil {
				return err
			}
			data, err = enc(domain.AggregateSession, sid, 2, domain.SessionRefreshed{SessionID: sid, TokenID: newID("tok"), At: now})
			if err != nil {
				return err
			}
			if err := emit(domain.AggregateSession, sid, slot, data); err != nil {
				return err
			}
		}
	}
	return nil
}

// simModel is the user and session part of the service's read model, in the
// shape projections.Model had before issue 15's compaction (the simulation
// does not import it): users by ID and by name, sessions by ID and by
// refresh-token hash, each entry the domain state evolved by the domain's own
// functions. The service's model now packs them into smaller records; the
// bench measures its size per user and per session (docs/scale.md).
type simModel struct {
	mu        sync.Mutex
	users     map[string]*simUser
	byName    map[string]string
	sessions  map[string]*simSession
	byRefresh map[string]string
}

type simUser struct {
	state     domain.User
	seq       uint64
	cutoffSeq uint64
	keep      string
}

type simSession struct {
	state    domain.Session
	seq      uint64
	startSeq uint64
}

func newSimModel() *simModel {
	return &simModel{users: map[string]*simUser{}, byName: map[string]string{},
		sessions: map[string]*simSession{}, byRefresh: map[string]string{}}
}

func (m *simModel) apply(seq uint64, env events.Envelope, ev domain.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch e := ev.(type) {
	case domain.UserCreated:
		m.users[e.UserID] = &simUser{state: domain.EvolveUser(domain.User{}, e), seq: seq}
		m.byName[domain.NormalizeUsername(e.Username)] = e.UserID
	case domain.SessionStarted:
		m.sessions[e.SessionID] = &simSession{state: domain.EvolveSession(domain.Session{}, e), seq: seq, startSeq: seq}
		m.byRefresh[e.RefreshTokenHash] = e.SessionID
	case domain.SessionRefreshed, domain.SessionRevoked, domain.SessionTokenRevoked:
		if s := m.sessions[env.AggregateID]; s != nil {
			s.state = domain.EvolveSession(s.state, e)
			s.seq = seq
		}
	}
}

func (m *simModel) counts() (users, sessions int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.users), len(m.sessions)
}

// coldSession is what a replica needs of a session it does not hold: what
// Authorize and a refresh check, packed. It is the value of the session's key
// in the KV bucket (key: the session ID).
type coldSession struct {
	UserID      string
	Tenant      string
	RefreshHash [32]byte
	StartSeq    uint64 // stream sequence of session.started: the password-change cut-off compares it
	Seq         uint64 // stream sequence of the last event folded in: a writer puts only newer states
	StartedAt   int64  // Unix seconds
	ExpiresAt   int64
	LastUsedAt  int64
	RotatedAt   int64
	Refreshes   uint32
	Revoked     bool
}

const coldFormat = 1

func (c *coldSession) marshal() []byte {
	b := make([]byte, 0, 128)
	flags := byte(0)
	if c.Revoked {
		flags |= 1
	}
	b = append(b, coldFormat, flags)
	b = binary.AppendUvarint(b, uint64(len(c.UserID)))
	b = append(b, c.UserID...)
	b = binary.AppendUvarint(b, uint64(len(c.Tenant)))
	b = append(b, c.Tenant...)
	b = append(b, c.RefreshHash[:]...)
	for _, v := range []uint64{c.StartSeq, c.Seq, uint64(c.Refreshes)} {
		b = binary.AppendUvarint(b, v)
	}
	for _, v := range []int64{c.StartedAt, c.ExpiresAt, c.LastUsedAt, c.RotatedAt} {
		b = binary.AppendVarint(b, v)
	}
	return b
}

var errCold = errors.New("malformed cold session")

func unmarshalCold(b []byte) (coldSession, error) {
	var c coldSession
	if len(b) < 2 || b[0] != coldFormat {
		return c, errCold
	}
	c.Revoked = b[1]&1 != 0
	b = b[2:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return "", false
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, true
	}
	var ok bool
	if c.UserID, ok = str(); !ok {
		return c, errCold
	}
	if c.Tenant, ok = str(); !ok {
		return c, errCold
	}
	if len(b) < 32 {
		return c, errCold
	}
	copy(c.RefreshHash[:], b)
	b = b[32:]
	for _, p := range []*uint64{&c.StartSeq, &c.Seq} {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return c, errCold
		}
		*p, b = v, b[k:]
	}
	v, k := binary.Uvarint(b)
	if k <= 0 {
		return c, errCold
	}
	c.Refreshes, b = uint32(v), b[k:]
	for _, p := range []*int64{&c.StartedAt, &c.ExpiresAt, &c.LastUsedAt, &c.RotatedAt} {
		v, k := binary.Varint(b)
		if k <= 0 {
			return c, errCold
		}
		*p, b = v, b[k:]
	}
	return c, nil
}

// coldFor is the cold state of generated session i.
func coldFor(i int, userID string, now time.Time) coldSession {
	c := coldSession{
		UserID: userID, StartSeq: uint64(3 * i), Seq: uint64(3*i + 1),
		StartedAt: now.Unix(), ExpiresAt: now.Add(7 * 24 * time.Hour).Unix(), LastUsedAt: now.Unix(), Refreshes: 1,
	}
	c.RefreshHash = sha256.Sum256([]byte(userID + fmt.Sprint(i)))
	if i%4 == 0 {
		c.Tenant = "prod"
	}
	return c
}
