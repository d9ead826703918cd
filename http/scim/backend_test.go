package scim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/infracast/auth/http/scim/scimtest"
)

// memBackend is an in-memory Backend: a fake, for this package's tests
// only (the end-to-end tests run the service's own).
type memBackend struct {
	mu        sync.Mutex
	users     map[string]User
	groups    map[string]Group
	passwords map[string]string
	order     []string
	next      int
	updates   int // UpdateUser and UpdateGroup calls
	lastUser  UserUpdate
	lastGroup GroupUpdate
	lookups   []Equality // what ListUsers found to index on
	conflicts int        // the next UpdateUser/UpdateGroup calls to answer ErrConflict
}

func newMem() *memBackend {
	return &memBackend{users: map[string]User{}, groups: map[string]Group{}, passwords: map[string]string{}}
}

var t0 = time.Date(2026, 3, 27, 19, 59, 26, 0, time.UTC)

func (b *memBackend) id(prefix string) string {
	b.next++
	return fmt.Sprintf("%s-%04d", prefix, b.next)
}

func (b *memBackend) withGroups(u User) User {
	u.Groups = nil
	for _, id := range b.order {
		g, ok := b.groups[id]
		if ok && slices.ContainsFunc(g.Members, func(m Member) bool { return m.Value == u.ID }) {
			u.Groups = append(u.Groups, GroupRef{Value: g.ID, Display: g.DisplayName})
		}
	}
	u.Password = ""
	return u
}

func (b *memBackend) CreateUser(_ context.Context, _ Conn, u User) (User, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, o := range b.users {
		if strings.EqualFold(o.UserName, u.UserName) {
			return User{}, ErrUniqueness
		}
	}
	u.ID = b.id("user")
	u.Meta = Meta{Created: t0, LastModified: t0, Version: "1"}
	if u.Password != "" {
		b.passwords[u.ID] = u.Password
	}
	u.Password = ""
	b.users[u.ID] = u
	b.order = append(b.order, u.ID)
	return b.withGroups(u), nil
}

func (b *memBackend) GetUser(_ context.Context, _ Conn, id string) (User, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, ok := b.users[id]
	if !ok {
		return User{}, fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	return b.withGroups(u), nil
}

func (b *memBackend) ListUsers(_ context.Context, _ Conn, q Query) (Page[User], error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var all []User
	eq, indexed := q.Filter.Equality()
	if indexed {
		b.lookups = append(b.lookups, eq)
	}
	for _, id := range b.order {
		u, ok := b.users[id]
		if !ok {
			continue
		}
		if indexed && eq.Attr == "userName" && !strings.EqualFold(u.UserName, eq.Value) {
			continue // what an index on the lower-cased name does
		}
		all = append(all, b.withGroups(u))
	}
	return Paginate(all, q, q.Filter.MatchUser), nil
}

func (b *memBackend) UpdateUser(_ context.Context, _ Conn, up UserUpdate) (User, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.startUpdate(); err != nil {
		return User{}, err
	}
	b.lastUser = up
	u, ok := b.users[up.ID]
	if !ok {
		return User{}, ErrNotFound
	}
	if up.Has(AttrUserName) {
		for id, o := range b.users {
			if id != up.ID && strings.EqualFold(o.UserName, up.Result.UserName) {
				return User{}, ErrUniqueness
			}
		}
	}
	if up.Has(AttrPassword) {
		b.passwords[up.ID] = up.Result.Password
	}
	n := up.Result
	n.ID, n.Password, n.Meta = u.ID, "", u.Meta
	n.Meta.LastModified = t0.Add(time.Hour)
	b.users[up.ID] = n
	return b.withGroups(n), nil
}

// startUpdate counts an UpdateUser or UpdateGroup call, or answers
// ErrConflict while conflicts are asked for. b.mu is held.
func (b *memBackend) startUpdate() error {
	if b.conflicts > 0 {
		b.conflicts--
		return ErrConflict
	}
	b.updates++
	return nil
}

func (b *memBackend) DeleteUser(_ context.Context, _ Conn, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.users[id]; !ok {
		return ErrNotFound
	}
	delete(b.users, id)
	return nil
}

func (b *memBackend) CreateGroup(_ context.Context, _ Conn, g Group) (Group, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, o := range b.groups {
		if strings.EqualFold(o.DisplayName, g.DisplayName) {
			return Group{}, ErrUniqueness
		}
	}
	if err := b.checkMembers(g.Members); err != nil {
		return Group{}, err
	}
	g.ID = b.id("group")
	g.Meta = Meta{Created: t0, LastModified: t0}
	b.groups[g.ID] = g
	b.order = append(b.order, g.ID)
	return b.display(g), nil
}

func (b *memBackend) checkMembers(ms []Member) error {
	for _, m := range ms {
		if _, ok := b.users[m.Value]; !ok {
			return Errorf(http.StatusBadRequest, InvalidValue, "member %q is not a user", m.Value)
		}
	}
	return nil
}

func (b *memBackend) display(g Group) Group {
	out := g
	out.Members = nil
	for _, m := range g.Members {
		m.Display, m.Type = b.users[m.Value].UserName, "User"
		out.Members = append(out.Members, m)
	}
	return out
}

func (b *memBackend) GetGroup(_ context.Context, _ Conn, id string) (Group, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	g, ok := b.groups[id]
	if !ok {
		return Group{}, ErrNotFound
	}
	return b.display(g), nil
}

func (b *memBackend) ListGroups(_ context.Context, _ Conn, q Query) (Page[Group], error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var all []Group
	for _, id := range b.order {
		if g, ok := b.groups[id]; ok {
			all = append(all, b.display(g))
		}
	}
	return Paginate(all, q, q.Filter.MatchGroup), nil
}

func (b *memBackend) UpdateGroup(_ context.Context, _ Conn, up GroupUpdate) (Group, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.startUpdate(); err != nil {
		return Group{}, err
	}
	b.lastGroup = up
	g, ok := b.groups[up.ID]
	if !ok {
		return Group{}, ErrNotFound
	}
	if err := b.checkMembers(up.Added); err != nil {
		return Group{}, err
	}
	// Applied to the group as it is now, as the contract suggests.
	g.DisplayName, g.ExternalID = up.Result.DisplayName, up.Result.ExternalID
	g.Members = slices.DeleteFunc(g.Members, func(m Member) bool {
		return slices.ContainsFunc(up.Removed, func(r Member) bool { return r.Value == m.Value })
	})
	for _, m := range up.Added {
		g.Members = append(g.Members, Member{Value: m.Value})
	}
	b.groups[up.ID] = g
	return b.display(g), nil
}

func (b *memBackend) DeleteGroup(_ context.Context, _ Conn, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.groups[id]; !ok {
		return ErrNotFound
	}
	delete(b.groups, id)
	return nil
}

// server is the handlers mounted under /scim/v2 behind a stand-in for the
// token check: "Authorization: Bearer good" is the connection conn-1.
type server struct {
	t   *testing.T
	app *fiber.App
	mem *memBackend
}

func newServer(t *testing.T, opts Options) *server {
	t.Helper()
	mem := newMem()
	app := fiber.New()
	g := app.Group("/scim/v2", func(c *fiber.Ctx) error {
		if c.Get(fiber.HeaderAuthorization) != "Bearer good" {
			return WriteError(c, ErrUnauthorized)
		}
		SetConn(c, Conn{ID: "conn-1", Tenants: []string{"prod"}})
		return c.Next()
	})
	New(mem, opts).Register(g)
	return &server{t: t, app: app, mem: mem}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends a request; body is sent as given (verbatim requests stay
// verbatim), with the Content-Type ct unless ct is "".
func (s *server) do(method, target, ct, body string) response {
	s.t.Helper()
	return s.doWith(method, target, ct, body, nil)
}

// doWith is do with more headers, set after the token (an Authorization
// among them replaces it).
func (s *server) doWith(method, target, ct, body string, header map[string]string) response {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.Header.Set("Authorization", "Bearer good")
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return s.send(req)
}

// endpoint is the server as scimtest's sequences see it.
func (s *server) endpoint() scimtest.Endpoint {
	return scimtest.Endpoint{Base: "http://example.com/scim/v2", Do: func(r scimtest.Request) scimtest.Response {
		res := s.doWith(r.Method, "/scim/v2"+r.Path, r.ContentType, r.Body, r.Header)
		return scimtest.Response{Status: res.status, Header: res.header, Raw: res.raw, Body: res.body}
	}}
}

func (s *server) send(req *http.Request) response {
	s.t.Helper()
	res, err := s.app.Test(req, -1)
	if err != nil {
		s.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	r := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			s.t.Fatalf("%s %s: body is not a JSON object: %v\n%s", req.Method, req.URL, err, raw)
		}
		if ct := res.Header.Get("Content-Type"); ct != contentTypeSCIM {
			s.t.Fatalf("%s %s: Content-Type %q", req.Method, req.URL, ct)
		}
	}
	return r
}

func (r response) want(t *testing.T, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

// wantError checks a SCIM error: status (as a string) and scimType.
func (r response) wantError(t *testing.T, status int, scimType string) {
	t.Helper()
	r.want(t, status)
	if r.body["status"] != fmt.Sprint(status) || r.body["scimType"] != nilIfEmpty(scimType) ||
		!slices.Contains(scimtest.Strings(r.body["schemas"]), ErrorSchema) || r.body["detail"] == "" {
		t.Fatalf("error body %s, want status %q scimType %q", r.raw, fmt.Sprint(status), scimType)
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// get walks a decoded body: get(body, "emails", 0, "value").
func get(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func (s *server) user(id string) User {
	s.t.Helper()
	u, err := s.mem.GetUser(context.Background(), Conn{}, id)
	if err != nil {
		s.t.Fatal(err)
	}
	return u
}
