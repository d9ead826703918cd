package scim

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Options tune the handlers.
type Options struct {
	// BaseURL is the absolute URL the handlers are mounted at
	// ("https://auth.example.com/scim/v2"), for meta.location and
	// Location. Empty: taken from the request (scheme, Host and the
	// mount prefix), which is right unless a proxy rewrites them.
	BaseURL string
	// MaxResults caps count on lists (filter.maxResults in
	// /ServiceProviderConfig); default 100, also the default count.
	MaxResults int
	// AcceptPasswords: a password sent on a user (Okta's password push)
	// is passed to the Backend, and changePassword is supported. Without
	// it a password is refused (400 invalidValue), never dropped silently.
	AcceptPasswords bool
	// DocumentationURI, if set, is announced in /ServiceProviderConfig.
	DocumentationURI string
	// Log receives the 500s, with the connection's ID and the route
	// (never a body). Default: slog.Default().
	Log *slog.Logger
}

// Handler serves SCIM 2.0 (RFC 7643, RFC 7644) over a Backend.
type Handler struct {
	b    Backend
	opts Options
	log  *slog.Logger
}

// New returns the handlers for a Backend.
func New(b Backend, opts Options) *Handler {
	if opts.MaxResults <= 0 {
		opts.MaxResults = 100
	}
	opts.BaseURL = strings.TrimSuffix(opts.BaseURL, "/")
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	return &Handler{b: b, opts: opts, log: log}
}

const localConn = "scim.conn"

// SetConn records the authenticated connection of a request; the
// authentication middleware in front of the handlers calls it. A request
// without one is answered 401 in the SCIM error schema.
func SetConn(c *fiber.Ctx, conn Conn) { c.Locals(localConn, conn) }

// The routes, relative to the mount point; the base URL is what precedes
// them in the matched route.
const (
	routeSPC          = "/ServiceProviderConfig"
	routeTypes        = "/ResourceTypes"
	routeType         = "/ResourceTypes/:name"
	routeSchemas      = "/Schemas"
	routeSchema       = "/Schemas/:id"
	routeUsers        = "/Users"
	routeUser         = "/Users/:id"
	routeGroups       = "/Groups"
	routeGroup        = "/Groups/:id"
	contentTypeSCIM   = "application/scim+json"
	maxConflictRounds = 4
)

// Register mounts the handlers on r, which is the SCIM base (for example
// app.Group("/scim/v2", authenticate)). Every answer, errors included, is
// application/scim+json; a route or method it does not serve under r is
// answered 404 or 405 in the SCIM error schema.
func (h *Handler) Register(r fiber.Router) {
	r.Get(routeSPC, h.wrap(routeSPC, h.serviceProviderConfig))
	r.Get(routeTypes, h.wrap(routeTypes, h.resourceTypes))
	r.Get(routeType, h.wrap(routeType, h.resourceType))
	r.Get(routeSchemas, h.wrap(routeSchemas, h.schemas))
	r.Get(routeSchema, h.wrap(routeSchema, h.schema))

	serve(h, r, users)
	serve(h, r, groups)

	notAllowed := func(c *fiber.Ctx) error {
		return WriteError(c, Errorf(http.StatusMethodNotAllowed, "", "method %s is not allowed here", c.Method()))
	}
	for _, p := range []string{routeSPC, routeTypes, routeType, routeSchemas, routeSchema, routeUsers, routeUser, routeGroups, routeGroup} {
		r.All(p, notAllowed)
	}
	r.All("/*", func(c *fiber.Ctx) error {
		return WriteError(c, Errorf(http.StatusNotFound, "", "no such SCIM endpoint"))
	})
}

// request is what a handler gets: the connection and the base URL.
type request struct {
	*fiber.Ctx
	conn Conn
	base string
}

func (h *Handler) wrap(route string, fn func(r *request) error) fiber.Handler {
	return func(c *fiber.Ctx) error {
		conn, ok := c.Locals(localConn).(Conn)
		if !ok {
			return WriteError(c, ErrUnauthorized)
		}
		r := &request{Ctx: c, conn: conn, base: h.baseURL(c, route)}
		if err := fn(r); err != nil {
			var se *Error
			if !errors.As(err, &se) || se.Status >= 500 {
				h.log.Error("scim request failed", "connection", conn.ID, "method", c.Method(), "route", route, "err", err)
			}
			return WriteError(c, err)
		}
		return nil
	}
}

func (h *Handler) baseURL(c *fiber.Ctx, route string) string {
	if h.opts.BaseURL != "" {
		return h.opts.BaseURL
	}
	return c.BaseURL() + strings.TrimSuffix(c.Route().Path, route)
}

func writeJSON(c *fiber.Ctx, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.Status(status)
	c.Set(fiber.HeaderContentType, contentTypeSCIM)
	return c.Send(b)
}

// body returns the request body after checking its media type:
// application/scim+json or application/json (or none: Okta's documented
// requests show none). The body is taken as it arrived, never decompressed
// (Fiber's Body() decodes every listed Content-Encoding without a limit:
// outside check 14d); one with a content coding other than identity is
// refused.
func (r *request) body() ([]byte, error) {
	if ct := r.Get(fiber.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != contentTypeSCIM && mt != fiber.MIMEApplicationJSON) {
			return nil, Errorf(http.StatusUnsupportedMediaType, "", "Content-Type must be application/scim+json or application/json")
		}
	}
	encoded := false
	r.Request().Header.VisitAll(func(k, v []byte) {
		if !strings.EqualFold(string(k), fiber.HeaderContentEncoding) {
			return
		}
		for _, coding := range strings.Split(string(v), ",") {
			if c := strings.TrimSpace(coding); c != "" && !strings.EqualFold(c, "identity") {
				encoded = true
			}
		}
	})
	if encoded {
		return nil, Errorf(http.StatusUnsupportedMediaType, "", "Content-Encoding is not supported: send the request body uncompressed")
	}
	return r.Request().Body(), nil
}

func (r *request) id() (string, error) {
	id, err := url.PathUnescape(r.param("id"))
	if err != nil || id == "" {
		return "", ErrNotFound
	}
	return id, nil
}

// param and query copy what Fiber returns: its strings point into a
// buffer that is reused after the request, and a Backend may keep an ID.
func (r *request) param(name string) string { return strings.Clone(r.Params(name)) }

func (r *request) query(name string) string { return strings.Clone(r.Query(name)) }

func (r *request) ctx() context.Context { return r.UserContext() }

// Discovery.

func (h *Handler) serviceProviderConfig(r *request) error {
	doc := map[string]any{
		"schemas":        []string{spcSchema},
		"patch":          map[string]any{"supported": true},
		"bulk":           map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":         map[string]any{"supported": true, "maxResults": h.opts.MaxResults},
		"changePassword": map[string]any{"supported": h.opts.AcceptPasswords},
		"sort":           map[string]any{"supported": false},
		"etag":           map[string]any{"supported": false},
		"authenticationSchemes": []any{map[string]any{
			"type":        "oauthbearertoken",
			"name":        "OAuth Bearer Token",
			"description": "The SCIM connection's bearer token, in the Authorization header: Bearer <token>",
			"specUri":     "https://www.rfc-editor.org/info/rfc6750",
			"primary":     true,
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": r.base + routeSPC},
	}
	if h.opts.DocumentationURI != "" {
		doc["documentationUri"] = h.opts.DocumentationURI
	}
	return writeJSON(r.Ctx, http.StatusOK, doc)
}

// listOf is a list of every resource there is, on one page.
func listOf(docs []any) map[string]any {
	return listResponse(Query{StartIndex: 1}, len(docs), docs)
}

func (h *Handler) resourceTypes(r *request) error {
	return writeJSON(r.Ctx, http.StatusOK, listOf([]any{userRT.document(r.base), groupRT.document(r.base)}))
}

func (h *Handler) resourceType(r *request) error {
	return writeNamed(r, "name", []*resourceType{userRT, groupRT},
		func(rt *resourceType) string { return rt.Name },
		func(rt *resourceType) map[string]any { return rt.document(r.base) })
}

// writeNamed answers the one of list whose name (any case) is the path
// parameter param, or 404.
func writeNamed[T any](r *request, param string, list []T, name func(T) string, doc func(T) map[string]any) error {
	want, err := url.PathUnescape(r.param(param))
	if err != nil {
		return ErrNotFound
	}
	for _, v := range list {
		if strings.EqualFold(name(v), want) {
			return writeJSON(r.Ctx, http.StatusOK, doc(v))
		}
	}
	return ErrNotFound
}

func (h *Handler) schemaDocs(base string) []any {
	return []any{
		userRT.Core.document(base, h.opts.AcceptPasswords),
		enterpriseSchema.document(base, h.opts.AcceptPasswords),
		groupRT.Core.document(base, h.opts.AcceptPasswords),
	}
}

func (h *Handler) schemas(r *request) error {
	return writeJSON(r.Ctx, http.StatusOK, listOf(h.schemaDocs(r.base)))
}

func (h *Handler) schema(r *request) error {
	return writeNamed(r, "id", []*schema{userRT.Core, enterpriseSchema, groupRT.Core},
		func(s *schema) string { return s.ID },
		func(s *schema) map[string]any { return s.document(r.base, h.opts.AcceptPasswords) })
}

// Lists.

func (h *Handler) query(r *request, rt *resourceType) (Query, error) {
	q := Query{StartIndex: 1, Count: h.opts.MaxResults}
	if s := r.query("startIndex"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return q, badValue("startIndex must be an integer")
		}
		q.StartIndex = max(n, 1) // RFC 7644 3.4.2.4: less than 1 is 1
	}
	if s := r.query("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return q, badValue("count must be an integer")
		}
		q.Count = min(max(n, 0), h.opts.MaxResults)
	}
	if s := r.query("sortBy"); s != "" {
		return q, Errorf(http.StatusBadRequest, InvalidValue, "sorting is not supported")
	}
	if s := strings.TrimSpace(r.query("filter")); s != "" {
		f, err := parseFor(s, rt)
		if err != nil {
			return q, err
		}
		q.Filter = f
	}
	return q, nil
}

func listResponse(q Query, total int, docs []any) map[string]any {
	if docs == nil {
		docs = []any{}
	}
	return map[string]any{
		"schemas":      []string{ListSchema},
		"totalResults": total,
		"startIndex":   q.StartIndex,
		"itemsPerPage": len(docs),
		"Resources":    docs,
	}
}

// Users and groups go through the same create, get, list, replace, patch
// and delete; a kind says what differs between them.

// kind is one resource type as the handlers see it.
type kind[T any] struct {
	rt        *resourceType
	coll, one string // the routes: the collection and one resource
	toMap     func(T) map[string]any
	fromMap   func(map[string]any) T
	// fromInput reads a POST (base nil) or PUT body: what an absent
	// attribute means there.
	fromInput func(m map[string]any, base *T) T
	id        func(T) string
	validate  func(T) error
	// render adds what a kind's answer holds beyond its map: its schemas
	// and the $ref of the resources it names.
	render func(r *request, m map[string]any)
	// check is run on an input map and on a PATCH's result (nil: none).
	check func(h *Handler, m map[string]any) error
	// patchNoContent: a PATCH is answered 204 unless attributes= is given.
	patchNoContent bool

	create func(Backend, context.Context, Conn, T) (T, error)
	get    func(Backend, context.Context, Conn, string) (T, error)
	list   func(Backend, context.Context, Conn, Query) (Page[T], error)
	del    func(Backend, context.Context, Conn, string) error
	// update carries result's read-only attributes over from base and
	// calls the Backend with what changed, if anything did; it returns
	// what is stored.
	update func(b Backend, ctx context.Context, conn Conn, id, method string, base, result T) (T, error)
}

var users = &kind[User]{
	rt: userRT, coll: routeUsers, one: routeUser,
	toMap: userMap, fromMap: mapToUser,
	fromInput: func(m map[string]any, base *User) User {
		u := mapToUser(m)
		if _, ok := m["active"]; !ok {
			u.Active = base == nil || base.Active // POST: active; PUT: left as it is
		}
		return u
	},
	id:       func(u User) string { return u.ID },
	validate: validateUser,
	render: func(r *request, m map[string]any) {
		schemas := []string{UserSchema}
		if _, ok := m[EnterpriseSchema]; ok {
			schemas = append(schemas, EnterpriseSchema)
		}
		m["schemas"] = schemas
		for _, g := range asList(m["groups"]) {
			gm := g.(map[string]any)
			gm["$ref"] = r.location(routeGroups, getStr(gm, "value"))
		}
	},
	check:  (*Handler).checkPassword,
	create: Backend.CreateUser, get: Backend.GetUser, list: Backend.ListUsers, del: Backend.DeleteUser,
	update: func(b Backend, ctx context.Context, conn Conn, id, method string, base, result User) (User, error) {
		result.ID, result.Groups, result.Meta = base.ID, base.Groups, base.Meta
		up := UserUpdate{ID: id, Method: method, Base: base, Result: result, Changed: userChanges(base, result)}
		if len(up.Changed) == 0 {
			return base, nil
		}
		return b.UpdateUser(ctx, conn, up)
	},
}

var groups = &kind[Group]{
	rt: groupRT, coll: routeGroups, one: routeGroup,
	toMap: groupMap, fromMap: mapToGroup,
	fromInput: func(m map[string]any, _ *Group) Group { return mapToGroup(m) },
	id:        func(g Group) string { return g.ID },
	validate:  validateGroup,
	render: func(r *request, m map[string]any) {
		m["schemas"] = []string{GroupSchema}
		for _, el := range asList(m["members"]) {
			mm := el.(map[string]any)
			route := routeUsers
			if getStr(mm, "type") == "Group" {
				route = routeGroups
			}
			mm["$ref"] = r.location(route, getStr(mm, "value"))
		}
	},
	// Microsoft asks for 204: a group's members can be many.
	patchNoContent: true,
	create:         Backend.CreateGroup, get: Backend.GetGroup, list: Backend.ListGroups, del: Backend.DeleteGroup,
	update: func(b Backend, ctx context.Context, conn Conn, id, method string, base, result Group) (Group, error) {
		result.ID, result.Meta = base.ID, base.Meta
		up := GroupUpdate{ID: id, Method: method, Base: base, Result: result}
		up.Changed, up.Added, up.Removed = groupChanges(base, result)
		if len(up.Changed) == 0 {
			return base, nil
		}
		return b.UpdateGroup(ctx, conn, up)
	},
}

// serve mounts a kind's six routes.
func serve[T any](h *Handler, r fiber.Router, k *kind[T]) {
	on := func(route string, fn func(*Handler, *kind[T], *request) error) fiber.Handler {
		return h.wrap(route, func(req *request) error { return fn(h, k, req) })
	}
	r.Post(k.coll, on(k.coll, createResource[T]))
	r.Get(k.coll, on(k.coll, listResources[T]))
	r.Get(k.one, on(k.one, getResource[T]))
	r.Put(k.one, on(k.one, replaceResource[T]))
	r.Patch(k.one, on(k.one, patchResource[T]))
	r.Delete(k.one, on(k.one, deleteResource[T]))
}

// location is the URL of a resource under route.
func (r *request) location(route, id string) string {
	return r.base + route + "/" + url.PathEscape(id)
}

func renderResource[T any](k *kind[T], r *request, v T, proj projection) map[string]any {
	m := k.toMap(v)
	m["meta"].(map[string]any)["location"] = r.location(k.coll, k.id(v))
	k.render(r, m)
	proj.apply(m)
	return m
}

func (h *Handler) checkPassword(m map[string]any) error {
	if _, ok := m["password"]; ok && !h.opts.AcceptPasswords {
		return badValue("this service provider does not accept passwords")
	}
	return nil
}

// readInput reads a POST or PUT body into a canonical map.
func readInput[T any](h *Handler, k *kind[T], r *request) (map[string]any, error) {
	body, err := r.body()
	if err != nil {
		return nil, err
	}
	obj, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	m, err := normalizeResource(k.rt, obj)
	if err != nil {
		return nil, err
	}
	if k.check != nil {
		if err := k.check(h, m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func createResource[T any](h *Handler, k *kind[T], r *request) error {
	m, err := readInput(h, k, r)
	if err != nil {
		return err
	}
	v := k.fromInput(m, nil)
	if err := k.validate(v); err != nil {
		return err
	}
	proj, err := projectionOf(r, k.rt)
	if err != nil {
		return err
	}
	created, err := k.create(h.b, r.ctx(), r.conn, v)
	if err != nil {
		return err
	}
	doc := renderResource(k, r, created, proj)
	r.Set(fiber.HeaderLocation, r.location(k.coll, k.id(created)))
	return writeJSON(r.Ctx, http.StatusCreated, doc)
}

func getResource[T any](h *Handler, k *kind[T], r *request) error {
	id, err := r.id()
	if err != nil {
		return err
	}
	proj, err := projectionOf(r, k.rt)
	if err != nil {
		return err
	}
	v, err := k.get(h.b, r.ctx(), r.conn, id)
	if err != nil {
		return err
	}
	return writeJSON(r.Ctx, http.StatusOK, renderResource(k, r, v, proj))
}

func listResources[T any](h *Handler, k *kind[T], r *request) error {
	q, err := h.query(r, k.rt)
	if err != nil {
		return err
	}
	proj, err := projectionOf(r, k.rt)
	if err != nil {
		return err
	}
	page, err := k.list(h.b, r.ctx(), r.conn, q)
	if err != nil {
		return err
	}
	docs := make([]any, 0, len(page.Resources))
	for _, v := range page.Resources {
		docs = append(docs, renderResource(k, r, v, proj))
	}
	return writeJSON(r.Ctx, http.StatusOK, listResponse(q, page.TotalResults, docs))
}

func deleteResource[T any](h *Handler, k *kind[T], r *request) error {
	id, err := r.id()
	if err != nil {
		return err
	}
	if err := k.del(h.b, r.ctx(), r.conn, id); err != nil {
		return err
	}
	return r.SendStatus(http.StatusNoContent)
}

func replaceResource[T any](h *Handler, k *kind[T], r *request) error {
	id, err := r.id()
	if err != nil {
		return err
	}
	m, err := readInput(h, k, r)
	if err != nil {
		return err
	}
	proj, err := projectionOf(r, k.rt)
	if err != nil {
		return err
	}
	return updateResource(h, k, r, id, "PUT", proj, func(base T) (T, error) { return k.fromInput(m, &base), nil })
}

func patchResource[T any](h *Handler, k *kind[T], r *request) error {
	id, err := r.id()
	if err != nil {
		return err
	}
	body, err := r.body()
	if err != nil {
		return err
	}
	ops, err := parsePatch(body)
	if err != nil {
		return err
	}
	proj, err := projectionOf(r, k.rt)
	if err != nil {
		return err
	}
	return updateResource(h, k, r, id, "PATCH", proj, func(base T) (T, error) {
		var zero T
		p := &patcher{rt: k.rt, m: k.toMap(base)}
		if err := p.applyAll(ops); err != nil {
			return zero, err
		}
		if k.check != nil {
			if err := k.check(h, p.m); err != nil {
				return zero, err
			}
		}
		return k.fromMap(p.m), nil
	})
}

// updateResource reads the resource, resolves the request against it and calls
// the Backend once; on ErrConflict it starts again from a fresh read.
func updateResource[T any](h *Handler, k *kind[T], r *request, id, method string, proj projection, resolve func(T) (T, error)) error {
	for round := 1; ; round++ {
		base, err := k.get(h.b, r.ctx(), r.conn, id)
		if err != nil {
			return err
		}
		result, err := resolve(base)
		if err != nil {
			return err
		}
		if err := k.validate(result); err != nil {
			return err
		}
		stored, err := k.update(h.b, r.ctx(), r.conn, id, method, base, result)
		if errors.Is(err, ErrConflict) && round < maxConflictRounds {
			continue
		}
		if err != nil {
			return err
		}
		if method == "PATCH" && k.patchNoContent && proj.include == nil {
			return r.SendStatus(http.StatusNoContent)
		}
		return writeJSON(r.Ctx, http.StatusOK, renderResource(k, r, stored, proj))
	}
}

// projection is ?attributes= and ?excludedAttributes= (RFC 7644 3.4.2.5):
// canonical top-level names (an extension's URN for its attributes), each
// with the sub-attributes named (none: the whole attribute).
type projection struct {
	include, exclude map[string]map[string]bool
}

func projectionOf(r *request, rt *resourceType) (projection, error) {
	var p projection
	var err error
	if s := r.query("attributes"); s != "" {
		if p.include, err = projectionSet(s, rt); err != nil {
			return p, err
		}
	}
	if s := r.query("excludedAttributes"); s != "" {
		if p.exclude, err = projectionSet(s, rt); err != nil {
			return p, err
		}
	}
	return p, nil
}

func projectionSet(s string, rt *resourceType) (map[string]map[string]bool, error) {
	set := map[string]map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if ext := rt.extension(name); ext != nil {
			set[ext.ID] = map[string]bool{}
			continue
		}
		p, err := parseAttrPath(name)
		if err != nil {
			return nil, badValue("attributes: %q is not an attribute path", truncate(name))
		}
		a, ext, ignored, ok := rt.lookup(p.URI, p.Name)
		if !ok || ignored {
			continue // unknown or never returned: nothing to include or exclude
		}
		top, sub := a.Name, ""
		if ext != nil {
			top, sub = ext.ID, a.Name
		} else if p.Sub != "" {
			if s, _, ok := a.sub(p.Sub); ok && s != nil {
				sub = s.Name
			}
		}
		subs, seen := set[top]
		if !seen {
			subs = map[string]bool{}
			set[top] = subs
		}
		if sub == "" || (seen && len(subs) == 0) {
			clear(subs) // the whole attribute
			continue
		}
		subs[sub] = true
	}
	return set, nil
}

// alwaysReturned are never removed by a projection.
var alwaysReturned = map[string]bool{"id": true, "schemas": true}

func (p projection) apply(m map[string]any) {
	if p.include != nil {
		for k, v := range m {
			if alwaysReturned[k] {
				continue
			}
			subs, ok := p.include[k]
			if !ok {
				delete(m, k)
				continue
			}
			if len(subs) > 0 {
				keepSubs(v, subs)
			}
		}
	}
	for k, subs := range p.exclude {
		if alwaysReturned[k] {
			continue
		}
		if len(subs) == 0 {
			delete(m, k)
			continue
		}
		for sub := range subs {
			dropSub(m[k], sub)
		}
	}
}

func keepSubs(v any, subs map[string]bool) {
	eachObject(v, func(em map[string]any) {
		for k := range em {
			if !subs[k] {
				delete(em, k)
			}
		}
	})
}

func dropSub(v any, sub string) {
	eachObject(v, func(em map[string]any) { delete(em, sub) })
}
