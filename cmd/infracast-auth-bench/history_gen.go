package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// historyEvent is one generated event, as the service would have written it.
type historyEvent struct {
	agg, id string
	seq     uint64 // within its aggregate
	at      time.Time
	meta    events.Meta
	ev      domain.Event
}

// historyGen generates a year of an organisation's history (the audit
// case): users joining and leaving tenants, API keys made, rotated, used and
// revoked, sessions started, refreshed and revoked, failed logins. Every
// event is one the read models accept (a role revoked is held, a session
// refreshed exists, ...). It is deterministic for a seed.
type historyGen struct {
	rng      *rand.Rand
	start    time.Time
	step     time.Duration
	at       time.Time
	tenants  []string
	users    []genUser
	admins   []int // platform admins, by index in users
	keys     []genKey
	sessions []genSession // live ones (a ring: the oldest are forgotten)
	aggSeq   map[string]uint64
	counts   map[string]int
	n        int // events emitted
	// nUsers and nKeys: how many users and keys the history creates
	// (genUsers and genKeys per million events).
	nUsers, nKeys int
}

type genUser struct {
	id, name string
	roles    map[string]domain.Role
	active   bool
}

type genKey struct {
	id      string
	owner   int
	revoked bool
}

type genSession struct {
	id   string
	user int
}

func newHistoryGen(seed uint64, total int, end time.Time) *historyGen {
	g := &historyGen{
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), start: end.Add(-365 * 24 * time.Hour),
		aggSeq: map[string]uint64{}, counts: map[string]int{},
	}
	total = max(total, 1000)
	g.nUsers, g.nKeys = max(total/(1_000_000/genUsers), 100), total/(1_000_000/genKeys)
	g.step = 365 * 24 * time.Hour / time.Duration(total)
	g.at = g.start
	for i := range 500 {
		g.tenants = append(g.tenants, fmt.Sprintf("t%03d", i))
	}
	return g
}

// The shape of the generated history, for 1M events: 10k users (the first
// 50 platform admins), 100k API keys; the rest sessions, logins, grants,
// revocations. A shorter history keeps the proportions.
const (
	genUsers = 10_000
	genKeys  = 100_000
)

func (g *historyGen) emit(out func(historyEvent) error, agg, id string, actor events.Actor, e domain.Event) error {
	g.aggSeq[id]++
	g.counts[e.EventType()]++
	g.n++
	return out(historyEvent{agg: agg, id: id, seq: g.aggSeq[id], at: g.at, ev: e, meta: events.Meta{
		Actor:   actor,
		Request: events.RequestInfo{IP: fmt.Sprintf("198.51.100.%d", g.rng.IntN(250)+1), UserAgent: "infracast-bench/1.0", RequestID: commands.NewID("req")},
	}})
}

func (g *historyGen) userActor(i int) events.Actor {
	return events.Actor{Type: "user", ID: g.users[i].id}
}

func (g *historyGen) adminActor() events.Actor {
	if len(g.admins) == 0 {
		return events.System
	}
	return g.userActor(g.admins[g.rng.IntN(len(g.admins))])
}

// run generates total events (or one more) in time order, calling out for each.
func (g *historyGen) run(total int, out func(historyEvent) error) error {
	for g.n < total {
		n := g.n
		g.at = g.at.Add(g.step/2 + time.Duration(g.rng.Int64N(int64(g.step))))
		var err error
		switch {
		// Users arrive through the year (faster at first); keys follow them.
		case len(g.users) < g.nUsers && (len(g.users) < 50 || g.rng.IntN(max(total/g.nUsers, 1)) == 0 || total-n <= g.nUsers-len(g.users)+g.nKeys-len(g.keys)):
			err = g.createUser(out)
		case len(g.keys) < g.nKeys && (g.rng.IntN(max(total/max(g.nKeys, 1), 1)) == 0 || total-n <= g.nKeys-len(g.keys)):
			err = g.createKey(out)
		default:
			err = g.other(out)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (g *historyGen) createUser(out func(historyEvent) error) error {
	i := len(g.users)
	u := genUser{id: commands.NewID("user"), name: fmt.Sprintf("user-%05d", i), roles: map[string]domain.Role{}, active: true}
	var tr []domain.TenantRole
	var roles []domain.GlobalRole
	if i < 50 {
		roles = []domain.GlobalRole{domain.GlobalAdmin}
		g.admins = append(g.admins, i)
	} else {
		for range 1 + g.rng.IntN(3) {
			t := g.tenants[g.rng.IntN(len(g.tenants))]
			if _, dup := u.roles[t]; !dup {
				r := []domain.Role{domain.RoleViewer, domain.RoleEditor, domain.RoleAdmin}[g.rng.IntN(3)]
				u.roles[t] = r
				tr = append(tr, domain.TenantRole{Tenant: t, Role: r})
			}
		}
		domain.SortTenantRoles(tr)
	}
	g.users = append(g.users, u)
	return g.emit(out, domain.AggregateUser, u.id, g.adminActor(), domain.UserCreated{
		UserID: u.id, Username: u.name, Email: u.name + "@example.com", PasswordHashSealed: "aesgcm1:" + fmt.Sprintf("%0160d", i),
		Roles: roles, Tenants: tr, CreatedAt: g.at,
	})
}

func (g *historyGen) activeUser() (int, bool) {
	for range 8 {
		i := g.rng.IntN(len(g.users))
		if g.users[i].active {
			return i, true
		}
	}
	return 0, false
}

func (g *historyGen) createKey(out func(historyEvent) error) error {
	o, ok := g.activeUser()
	if !ok {
		return g.other(out)
	}
	u := g.users[o]
	var tenants []string
	switch {
	case o < 50 && g.rng.IntN(100) == 0:
		tenants = []string{domain.AllTenants}
	case o < 50:
		tenants = []string{g.tenants[g.rng.IntN(len(g.tenants))]}
	default:
		for t := range u.roles {
			tenants = append(tenants, t)
			break
		}
	}
	if len(tenants) == 0 {
		return g.other(out)
	}
	perms := [][]domain.Permission{{domain.NodesRead, domain.FindingsRead}, {domain.FindingsRead, domain.FindingsWrite}, {domain.JobsRead, domain.JobsWrite}, {domain.ReportsRead}}[g.rng.IntN(4)]
	k := genKey{id: commands.NewID("key"), owner: o}
	g.keys = append(g.keys, k)
	var exp *time.Time
	if g.rng.IntN(2) == 0 {
		e := g.at.Add(time.Duration(30+g.rng.IntN(300)) * 24 * time.Hour)
		exp = &e
	}
	return g.emit(out, domain.AggregateAPIKey, k.id, g.userActor(o), domain.APIKeyCreated{
		KeyID: k.id, Name: fmt.Sprintf("svc-%06d", len(g.keys)), OwnerID: u.id, Tenants: tenants, Permissions: perms,
		SecretHash: commands.HashToken(k.id), CreatedAt: g.at, ExpiresAt: exp,
	})
}

// other is everything after creation, by weight.
func (g *historyGen) other(out func(historyEvent) error) error {
	w := g.rng.IntN(1000)
	switch {
	case w < 35: // role granted
		i, ok := g.activeUser()
		if !ok || i < 50 {
			return g.login(out)
		}
		t := g.tenants[g.rng.IntN(len(g.tenants))]
		r := []domain.Role{domain.RoleViewer, domain.RoleEditor, domain.RoleAdmin}[g.rng.IntN(3)]
		g.users[i].roles[t] = r
		return g.emit(out, domain.AggregateUser, g.users[i].id, g.adminActor(), domain.UserRoleGranted{UserID: g.users[i].id, Tenant: t, Role: r})
	case w < 55: // role revoked
		i, ok := g.activeUser()
		if !ok || len(g.users[i].roles) == 0 {
			return g.login(out)
		}
		for t := range g.users[i].roles {
			delete(g.users[i].roles, t)
			return g.emit(out, domain.AggregateUser, g.users[i].id, g.adminActor(), domain.UserRoleRevoked{UserID: g.users[i].id, Tenant: t})
		}
	case w < 57: // deactivated
		i, ok := g.activeUser()
		if !ok || i < 50 {
			return g.login(out)
		}
		g.users[i].active = false
		return g.emit(out, domain.AggregateUser, g.users[i].id, g.adminActor(), domain.UserDeactivated{UserID: g.users[i].id, Reason: "left"})
	case w < 62: // password changed
		i, ok := g.activeUser()
		if !ok {
			return g.login(out)
		}
		return g.emit(out, domain.AggregateUser, g.users[i].id, g.userActor(i), domain.UserPasswordChanged{UserID: g.users[i].id, PasswordHashSealed: "aesgcm1:" + fmt.Sprintf("%0160d", w)})
	case w < 80 && len(g.keys) > 0: // key revoked / rotated
		k := &g.keys[g.rng.IntN(len(g.keys))]
		if k.revoked || !g.users[k.owner].active {
			return g.login(out)
		}
		if w < 72 {
			k.revoked = true
			return g.emit(out, domain.AggregateAPIKey, k.id, g.userActor(k.owner), domain.APIKeyRevoked{KeyID: k.id, Reason: "retired"})
		}
		return g.emit(out, domain.AggregateAPIKey, k.id, g.userActor(k.owner), domain.APIKeyRotated{KeyID: k.id, SecretHash: commands.HashToken(k.id + g.at.String()), RotatedAt: g.at})
	case w < 180 && len(g.keys) > 0: // key used
		k := g.keys[g.rng.IntN(len(g.keys))]
		return g.emit(out, domain.AggregateAPIKey, k.id, events.System, domain.APIKeyUsed{KeyID: k.id, UsedAt: g.at})
	case w < 220: // failed login
		i := g.rng.IntN(len(g.users))
		return g.emit(out, domain.AggregateUser, g.users[i].id, events.Actor{Type: "anonymous"}, domain.UserLoginFailed{UserID: g.users[i].id, Reason: "invalid_credentials", At: g.at})
	case w < 240 && len(g.sessions) > 0: // session revoked
		j := g.rng.IntN(len(g.sessions))
		s := g.sessions[j]
		g.sessions[j] = g.sessions[len(g.sessions)-1]
		g.sessions = g.sessions[:len(g.sessions)-1]
		return g.emit(out, domain.AggregateSession, s.id, g.userActor(s.user), domain.SessionRevoked{SessionID: s.id, Reason: "logout"})
	case w < 250 && len(g.sessions) > 0: // access token revoked
		s := g.sessions[g.rng.IntN(len(g.sessions))]
		return g.emit(out, domain.AggregateSession, s.id, events.Actor{Type: "anonymous"}, domain.SessionTokenRevoked{SessionID: s.id, TokenID: commands.NewID("tok"), ExpiresAt: g.at.Add(time.Hour)})
	case w < 700 && len(g.sessions) > 0: // refreshed
		s := g.sessions[g.rng.IntN(len(g.sessions))]
		return g.emit(out, domain.AggregateSession, s.id, events.Actor{Type: "anonymous"}, domain.SessionRefreshed{SessionID: s.id, TokenID: commands.NewID("tok"), At: g.at})
	}
	return g.login(out)
}

// login: session.started (the decision) then user.login_succeeded, as the
// service writes them; counted as one step of the generator.
func (g *historyGen) login(out func(historyEvent) error) error {
	i, ok := g.activeUser()
	if !ok {
		return nil
	}
	sid := commands.NewID("sess")
	var tenant string
	if g.rng.IntN(4) == 0 {
		for t := range g.users[i].roles {
			tenant = t
			break
		}
	}
	anon := events.Actor{Type: "anonymous"}
	if err := g.emit(out, domain.AggregateSession, sid, anon, domain.SessionStarted{
		SessionID: sid, UserID: g.users[i].id, Tenant: tenant, RefreshTokenHash: commands.HashToken(sid), Method: "password",
		StartedAt: g.at, ExpiresAt: g.at.Add(7 * 24 * time.Hour),
	}); err != nil {
		return err
	}
	g.sessions = append(g.sessions, genSession{id: sid, user: i})
	if len(g.sessions) > 20_000 { // the oldest have expired by now
		g.sessions = g.sessions[len(g.sessions)-15_000:]
	}
	return g.emit(out, domain.AggregateUser, g.users[i].id, anon, domain.UserLoginSucceeded{UserID: g.users[i].id, SessionID: sid, Method: "password"})
}
