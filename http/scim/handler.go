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

	r.Post(routeUsers, h.wrap(routeUsers, h.createUser))
	r.Get(routeUsers, h.wrap(routeUsers, h.listUsers))
	r.Get(routeUser, h.wrap(routeUser, h.getUser))
	r.Put(routeUser, h.wrap(routeUser, h.replaceUser))
	r.Patch(routeUser, h.wrap(routeUser, h.patchUser))
	r.Delete(routeUser, h.wrap(routeUser, h.deleteUser))

	r.Post(routeGroups, h.wrap(routeGroups, h.createGroup))
	r.Get(routeGroups, h.wrap(routeGroups, h.listGroups))
	r.Get(routeGroup, h.wrap(routeGroup, h.getGroup))
	r.Put(routeGroup, h.wrap(routeGroup, h.replaceGroup))
	r.Patch(routeGroup, h.wrap(routeGroup, h.patchGroup))
	r.Delete(routeGroup, h.wrap(routeGroup, h.deleteGroup))

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
// requests show none).
func (r *request) body() ([]byte, error) {
	if ct := r.Get(fiber.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != contentTypeSCIM && mt != fiber.MIMEApplicationJSON) {
			return nil, Errorf(http.StatusUnsupportedMediaType, "", "Content-Type must be application/scim+json or application/json")
		}
	}
	return r.Body(), nil
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

func listOf(docs []any) map[string]any {
	return map[string]any{
		"schemas":      []string{ListSchema},
		"totalResults": len(docs),
		"startIndex":   1,
		"itemsPerPage": len(docs),
		"Resources":    docs,
	}
}

func (h *Handler) resourceTypes(r *request) error {
	return writeJSON(r.Ctx, http.StatusOK, listOf([]any{userRT.document(r.base), groupRT.document(r.base)}))
}

func (h *Handler) resourceType(r *request) error {
	name, err := url.PathUnescape(r.param("name"))
	if err != nil {
		return ErrNotFound
	}
	for _, rt := range []*resourceType{userRT, groupRT} {
		if strings.EqualFold(rt.Name, name) {
			return writeJSON(r.Ctx, http.StatusOK, rt.document(r.base))
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
	id, err := url.PathUnescape(r.param("id"))
	if err != nil {
		return ErrNotFound
	}
	for _, s := range []*schema{userRT.Core, enterpriseSchema, groupRT.Core} {
		if strings.EqualFold(s.ID, id) {
			return writeJSON(r.Ctx, http.StatusOK, s.document(r.base, h.opts.AcceptPasswords))
		}
	}
	return ErrNotFound
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

// Users.

func (h *Handler) renderUser(r *request, u User, proj projection) map[string]any {
	m := userMap(u)
	schemas := []string{UserSchema}
	if _, ok := m[EnterpriseSchema]; ok {
		schemas = append(schemas, EnterpriseSchema)
	}
	m["schemas"] = schemas
	m["meta"].(map[string]any)["location"] = r.base + routeUsers + "/" + url.PathEscape(u.ID)
	for _, g := range asList(m["groups"]) {
		gm := g.(map[string]any)
		gm["$ref"] = r.base + routeGroups + "/" + url.PathEscape(getStr(gm, "value"))
	}
	proj.apply(m)
	return m
}

func (h *Handler) userInput(r *request) (map[string]any, error) {
	body, err := r.body()
	if err != nil {
		return nil, err
	}
	obj, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	m, err := normalizeResource(userRT, obj)
	if err != nil {
		return nil, err
	}
	if err := h.checkPassword(m); err != nil {
		return nil, err
	}
	return m, nil
}

func (h *Handler) checkPassword(m map[string]any) error {
	if _, ok := m["password"]; ok && !h.opts.AcceptPasswords {
		return badValue("this service provider does not accept passwords")
	}
	return nil
}

func (h *Handler) createUser(r *request) error {
	m, err := h.userInput(r)
	if err != nil {
		return err
	}
	u := mapToUser(m)
	if _, ok := m["active"]; !ok {
		u.Active = true
	}
	if err := validateUser(u); err != nil {
		return err
	}
	proj, err := projectionOf(r, userRT)
	if err != nil {
		return err
	}
	created, err := h.b.CreateUser(r.ctx(), r.conn, u)
	if err != nil {
		return err
	}
	doc := h.renderUser(r, created, proj)
	r.Set(fiber.HeaderLocation, r.base+routeUsers+"/"+url.PathEscape(created.ID))
	return writeJSON(r.Ctx, http.StatusCreated, doc)
}

func (h *Handler) getUser(r *request) error {
	id, err := r.id()
	if err != nil {
		return err
	}
	proj, err := projectionOf(r, userRT)
	if err != nil {
		return err
	}
	u, err := h.b.GetUser(r.ctx(), r.conn, id)
	if err != nil {
		return err
	}
	return writeJSON(r.Ctx, http.StatusOK, h.renderUser(r, u, proj))
}

func (h *Handler) listUsers(r *request) error {
	q, err := h.query(r, userRT)
	if err != nil {
		return err
	}
	proj, err := projectionOf(r, userRT)
	if err != nil {
		return err
	}
	page, err := h.b.ListUsers(r.ctx(), r.conn, q)
	if err != nil {
		return err
	}
	docs := make([]any, 0, len(page.Resources))
	for _, u := range page.Resources {
		docs = append(docs, h.renderUser(r, u, proj))
	}
	return writeJSON(r.Ctx, http.StatusOK, listResponse(q, page.TotalResults, docs))
}

func (h *Handler) deleteUser(r *request) error {
	id, err := r.id()
	if err != nil {
		return err
	}
	if err := h.b.DeleteUser(r.ctx(), r.conn, id); err != nil {
		return err
	}
	return r.SendStatus(http.StatusNoContent)
}

func (h *Handler) replaceUser(r *request) error {
	id, err := r.id()
	if err != nil {
		return err
	}
	m, err := h.userInput(r)
	if err != nil {
		return err
	}
	proj, err := projectionOf(r, userRT)
	if err != nil {
		return err
	}
	return h.updateUser(r, id, "PUT", proj, func(base User) (User, error) {
		u := mapToUser(m)
		if _, ok := m["active"]; !ok {
			u.Active = base.Active // not asserted: left as it is
		}
		return u, nil
	})
}

func (h *Handler) patchUser(r *request) error {
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
	proj, err := projectionOf(r, userRT)
	if err != nil {
		return err
	}
	return h.updateUser(r, id, "PATCH", proj, func(base User) (User, error) {
		p := &patcher{rt: userRT, m: userMap(base)}
		for _, op := range ops {
			if err := p.apply(op); err != nil {
				return User{}, err
			}
		}
		if err := h.checkPassword(p.m); err != nil {
			return User{}, err
		}
		return mapToUser(p.m), nil
	})
}

// updateUser reads the user, resolves the request against it and calls
// UpdateUser once; on ErrConflict it starts again from a fresh read.
func (h *Handler) updateUser(r *request, id, method string, proj projection, resolve func(User) (User, error)) error {
	for round := 1; ; round++ {
		base, err := h.b.GetUser(r.ctx(), r.conn, id)
		if err != nil {
			return err
		}
		result, err := resolve(base)
		if err != nil {
			return err
		}
		result.ID, result.Groups, result.Meta = base.ID, base.Groups, base.Meta
		if err := validateUser(result); err != nil {
			return err
		}
		up := UserUpdate{ID: id, Method: method, Base: base, Result: result, Changed: userChanges(base, result)}
		stored := base
		if len(up.Changed) > 0 {
			stored, err = h.b.UpdateUser(r.ctx(), r.conn, up)
			if errors.Is(err, ErrConflict) && round < maxConflictRounds {
				continue
			}
			if err != nil {
				return err
			}
		}
		return writeJSON(r.Ctx, http.StatusOK, h.renderUser(r, stored, proj))
	}
}

// Groups.

func (h *Handler) renderGroup(r *request, g Group, proj projection) map[string]any {
	m := groupMap(g)
	m["schemas"] = []string{GroupSchema}
	m["meta"].(map[string]any)["location"] = r.base + routeGroups + "/" + url.PathEscape(g.ID)
	for _, el := range asList(m["members"]) {
		mm := el.(map[string]any)
		route := routeUsers
		if getStr(mm, "type") == "Group" {
			route = routeGroups
		}
		mm["$ref"] = r.base + route + "/" + url.PathEscape(getStr(mm, "value"))
	}
	proj.apply(m)
	return m
}

func groupInput(r *request) (map[string]any, error) {
	body, err := r.body()
	if err != nil {
		return nil, err
	}
	obj, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	return normalizeResource(groupRT, obj)
}

func (h *Handler) createGroup(r *request) error {
	m, err := groupInput(r)
	if err != nil {
		return err
	}
	g := mapToGroup(m)
	if err := validateGroup(g); err != nil {
		return err
	}
	proj, err := projectionOf(r, groupRT)
	if err != nil {
		return err
	}
	created, err := h.b.CreateGroup(r.ctx(), r.conn, g)
	if err != nil {
		return err
	}
	r.Set(fiber.HeaderLocation, r.base+routeGroups+"/"+url.PathEscape(created.ID))
	return writeJSON(r.Ctx, http.StatusCreated, h.renderGroup(r, created, proj))
}

func (h *Handler) getGroup(r *request) error {
	id, err := r.id()
	if err != nil {
		return err
	}
	proj, err := projectionOf(r, groupRT)
	if err != nil {
		return err
	}
	g, err := h.b.GetGroup(r.ctx(), r.conn, id)
	if err != nil {
		return err
	}
	return writeJSON(r.Ctx, http.StatusOK, h.renderGroup(r, g, proj))
}

func (h *Handler) listGroups(r *request) error {
	q, err := h.query(r, groupRT)
	if err != nil {
		return err
	}
	proj, err := projectionOf(r, groupRT)
	if err != nil {
		return err
	}
	page, err := h.b.ListGroups(r.ctx(), r.conn, q)
	if err != nil {
		return err
	}
	docs := make([]any, 0, len(page.Resources))
	for _, g := range page.Resources {
		docs = append(docs, h.renderGroup(r, g, proj))
	}
	return writeJSON(r.Ctx, http.StatusOK, listResponse(q, page.TotalResults, docs))
}

func (h *Handler) deleteGroup(r *request) error {
	id, err := r.id()
	if err != nil {
		return err
	}
	if err := h.b.DeleteGroup(r.ctx(), r.conn, id); err != nil {
		return err
	}
	return r.SendStatus(http.StatusNoContent)
}

func (h *Handler) replaceGroup(r *request) error {
	id, err := r.id()
	if err != nil {
		return err
	}
	m, err := groupInput(r)
	if err != nil {
		return err
	}
	proj, err := projectionOf(r, groupRT)
	if err != nil {
		return err
	}
	return h.updateGroup(r, id, "PUT", proj, func(Group) (Group, error) { return mapToGroup(m), nil })
}

// patchGroup answers 204 No Content, as Microsoft asks (a group's members
// can be many); 200 with the group when the request names attributes=.
func (h *Handler) patchGroup(r *request) error {
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
	proj, err := projectionOf(r, groupRT)
	if err != nil {
		return err
	}
	return h.updateGroup(r, id, "PATCH", proj, func(base Group) (Group, error) {
		p := &patcher{rt: groupRT, m: groupMap(base)}
		for _, op := range ops {
			if err := p.apply(op); err != nil {
				return Group{}, err
			}
		}
		return mapToGroup(p.m), nil
	})
}

func (h *Handler) updateGroup(r *request, id, method string, proj projection, resolve func(Group) (Group, error)) error {
	for round := 1; ; round++ {
		base, err := h.b.GetGroup(r.ctx(), r.conn, id)
		if err != nil {
			return err
		}
		result, err := resolve(base)
		if err != nil {
			return err
		}
		result.ID, result.Meta = base.ID, base.Meta
		if err := validateGroup(result); err != nil {
			return err
		}
		up := GroupUpdate{ID: id, Method: method, Base: base, Result: result}
		up.Changed, up.Added, up.Removed = groupChanges(base, result)
		stored := base
		if len(up.Changed) > 0 {
			stored, err = h.b.UpdateGroup(r.ctx(), r.conn, up)
			if errors.Is(err, ErrConflict) && round < maxConflictRounds {
				continue
			}
			if err != nil {
				return err
			}
		}
		if method == "PATCH" && proj.include == nil {
			return r.SendStatus(http.StatusNoContent)
		}
		return writeJSON(r.Ctx, http.StatusOK, h.renderGroup(r, stored, proj))
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
	for _, el := range asList(v) {
		if em, ok := el.(map[string]any); ok {
			for k := range em {
				if !subs[k] {
					delete(em, k)
				}
			}
		}
	}
}

func dropSub(v any, sub string) {
	for _, el := range asList(v) {
		if em, ok := el.(map[string]any); ok {
			delete(em, sub)
		}
	}
}
