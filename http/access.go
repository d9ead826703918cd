package http

import (
	"bytes"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/projections"
)

// Access at a moment (the access history, projections/access.go): who could
// do what in a tenant, and what one user or key could do in each tenant, at
// a moment and why; the tenant's list also as CSV (the access review).

// eventRefJSON is the event that granted something: the "why".
type eventRefJSON struct {
	Sequence uint64    `json:"sequence"`
	Time     string    `json:"time"`
	Type     string    `json:"type"`
	Actor    actorJSON `json:"actor"`
}

func toEventRef(r projections.EventRef) eventRefJSON {
	return eventRefJSON{Sequence: r.Seq, Time: rfc3339Nano(r.Time), Type: r.Type, Actor: actorJSON{Type: r.ActorType, ID: r.ActorID}}
}

// ownerGrantJSON is the grant of an API key's owner that caps the key.
type ownerGrantJSON struct {
	Tenant      string       `json:"tenant"`
	Via         string       `json:"via"`
	Role        string       `json:"role,omitempty"`
	Permissions []string     `json:"permissions"`
	GrantedBy   eventRefJSON `json:"granted_by"`
}

// grantJSON is one thing a principal could do in one tenant ("*": every
// tenant, a platform admin's), and why.
type grantJSON struct {
	Tenant      string          `json:"tenant"`
	Via         string          `json:"via"`
	Role        string          `json:"role,omitempty"`
	Permissions []string        `json:"permissions"`
	GrantedBy   eventRefJSON    `json:"granted_by"`
	OwnerID     string          `json:"owner_id,omitempty"`
	OwnerGrant  *ownerGrantJSON `json:"owner_grant,omitempty"`
}

func toGrantJSON(g projections.Grant) grantJSON {
	out := grantJSON{
		Tenant: g.Tenant, Via: g.Via, Role: string(g.Role), Permissions: permStrings(g.Permissions),
		GrantedBy: toEventRef(g.Since), OwnerID: g.OwnerID,
	}
	if o := g.OwnerGrant; o != nil {
		out.OwnerGrant = &ownerGrantJSON{Tenant: o.Tenant, Via: o.Via, Role: string(o.Role),
			Permissions: permStrings(o.Permissions), GrantedBy: toEventRef(o.Since)}
	}
	return out
}

// principalJSON is one principal of a tenant's access list.
type principalJSON struct {
	Type        string      `json:"type"`
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	Permissions []string    `json:"permissions"`
	Grants      []grantJSON `json:"grants"`
}

type tenantAccessJSON struct {
	Tenant     string          `json:"tenant"`
	At         string          `json:"at"`
	Permission string          `json:"permission,omitempty"`
	Principals []principalJSON `json:"principals"`
}

// principalTenantJSON is what one principal could do in one tenant.
type principalTenantJSON struct {
	ID          string      `json:"id"`
	Permissions []string    `json:"permissions"`
	Grants      []grantJSON `json:"grants"`
}

type principalAccessJSON struct {
	Type    string                `json:"type"`
	ID      string                `json:"id"`
	Name    string                `json:"name"`
	At      string                `json:"at"`
	Tenants []principalTenantJSON `json:"tenants"`
}

// union is every permission of the grants.
func union(gs []projections.Grant) domain.PermissionSet {
	var ps domain.PermissionSet
	for _, g := range gs {
		ps |= g.Permissions
	}
	if ps.Has(domain.AdminAll) {
		return domain.SetOf(domain.AdminAll)
	}
	return ps
}

// historyErr maps the access history's errors.
func (s *Server) historyErr(err error) error {
	if errors.Is(err, projections.ErrBeforeHistory) {
		return s.historyNotKept()
	}
	return err
}

// tenantAccess: GET /api/v1/tenants/{tenant}/access: every principal with
// access to the tenant (with permission: holding it) at a moment, and why.
// Platform admins, the tenant's admins and keys with audit:read there.
func (s *Server) tenantAccess(c *fiber.Ctx) error {
	if s.deps.History == nil {
		return errUnavailable
	}
	tenant := c.Params("tenant")
	if !domain.ValidTenantID(tenant) {
		return validation("tenant: is not a valid tenant id")
	}
	if !caller(c).auditScope().covers(tenant) {
		return errForbidden
	}
	p, err := queryParams(c, "permission", "at")
	if err != nil {
		return err
	}
	var perm domain.Permission
	if v, ok := p["permission"]; ok {
		if perm, err = domain.ParsePermission(v); err != nil {
			return validation("permission: unknown permission; one of " + strings.Join(permStrings(domain.SetOf(domain.AllPermissions...)), ", "))
		}
	}
	at, err := s.moment("at", p["at"])
	if err != nil {
		return err
	}
	list, err := s.deps.History.TenantAccess(tenant, perm, at)
	if err != nil {
		return s.historyErr(err)
	}
	out := tenantAccessJSON{Tenant: tenant, At: rfc3339Nano(at), Permission: string(perm), Principals: make([]principalJSON, 0, len(list))}
	for _, a := range list {
		pj := principalJSON{Type: a.Kind, ID: a.ID, Name: a.Name, Permissions: permStrings(union(a.Grants)), Grants: make([]grantJSON, 0, len(a.Grants))}
		for _, g := range a.Grants {
			pj.Grants = append(pj.Grants, toGrantJSON(g))
		}
		out.Principals = append(out.Principals, pj)
	}
	if wantsCSV(c.Get(fiber.HeaderAccept)) {
		return sendAccessCSV(c, out, at)
	}
	return c.JSON(out)
}

const mimeCSV = "text/csv"

// wantsCSV reports whether an Accept header prefers text/csv to JSON (the
// default): media ranges compared without letter case and without their
// parameters but q (RFC 9110 §12.5.1) — "text/csv; charset=utf-8",
// "text/csv;header=present" and "Text/CSV" ask for CSV too (Fiber's Accepts
// took those for JSON, an outside check saw). The most specific range that
// matches gives each its quality; CSV wins only with a higher one, or an
// equal one given explicitly where JSON's comes from a wildcard.
func wantsCSV(accept string) bool {
	if accept == "" {
		return false
	}
	type match struct {
		spec int // 0 none, 1 */*, 2 type/*, 3 exact
		q    float64
	}
	var csv, js match
	for r := range strings.SplitSeq(accept, ",") {
		typ, params, _ := strings.Cut(r, ";")
		typ = strings.ToLower(strings.TrimSpace(typ))
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f >= 0 && f <= 1 {
					q = f
				} else {
					q = 0
				}
			}
		}
		for _, m := range []struct {
			into      *match
			mime, top string
		}{{&csv, mimeCSV, "text/*"}, {&js, fiber.MIMEApplicationJSON, "application/*"}} {
			spec := 0
			switch typ {
			case m.mime:
				spec = 3
			case m.top:
				spec = 2
			case "*/*":
				spec = 1
			}
			if spec > m.into.spec {
				*m.into = match{spec, q}
			}
		}
	}
	if csv.spec == 0 || csv.q == 0 {
		return false
	}
	return csv.q > js.q || (csv.q == js.q && csv.spec == 3 && js.spec < 3)
}

// accessCSVHeader is the access review's header row: one row follows per
// principal and grant.
var accessCSVHeader = []string{
	"tenant", "at", "principal_type", "principal_id", "principal_name", "principal_permissions",
	"grant_tenant", "via", "role", "permissions",
	"granted_by_sequence", "granted_by_time", "granted_by_type", "granted_by_actor_type", "granted_by_actor_id",
	"owner_id", "owner_grant_tenant", "owner_via", "owner_role", "owner_permissions",
	"owner_granted_by_sequence", "owner_granted_by_time", "owner_granted_by_type", "owner_granted_by_actor_type", "owner_granted_by_actor_id",
}

// sendAccessCSV answers a tenant's access list as CSV (RFC 4180, CRLF line
// ends, every cell quoted), permissions separated by spaces. A cell, or a part
// of one after a ',' or ';', that a spreadsheet would take for a formula
// (starting with = + - @, a tab or a carriage return: a key's name is free
// text) is prefixed with an apostrophe (csv.go).
func sendAccessCSV(c *fiber.Ctx, a tenantAccessJSON, at time.Time) error {
	var buf bytes.Buffer
	rows := [][]string{accessCSVHeader}
	ref := func(r eventRefJSON) []string {
		return []string{strconv.FormatUint(r.Sequence, 10), r.Time, r.Type, r.Actor.Type, r.Actor.ID}
	}
	for _, p := range a.Principals {
		for _, g := range p.Grants {
			row := []string{a.Tenant, a.At, p.Type, p.ID, p.Name, strings.Join(p.Permissions, " "),
				g.Tenant, g.Via, g.Role, strings.Join(g.Permissions, " ")}
			row = append(row, ref(g.GrantedBy)...)
			row = append(row, g.OwnerID)
			if o := g.OwnerGrant; o != nil {
				row = append(row, o.Tenant, o.Via, o.Role, strings.Join(o.Permissions, " "))
				row = append(row, ref(o.GrantedBy)...)
			} else {
				row = append(row, make([]string, 9)...)
			}
			for i, cell := range row {
				row[i] = csvSafe(cell)
			}
			rows = append(rows, row)
		}
	}
	writeCSV(&buf, rows)
	c.Set(fiber.HeaderContentType, mimeCSV+"; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="access-`+a.Tenant+"-"+at.UTC().Format("20060102T150405.999999999Z")+`.csv"`)
	return c.Send(buf.Bytes())
}

// grantFilter decides which of a principal's grants the caller may see.
type grantFilter struct {
	full bool // platform admin, or the principal itself (its owner, for a key)
	sc   auditScope
}

func (f grantFilter) shows(g projections.Grant) bool {
	return f.full || g.Tenant == domain.AllTenants || f.sc.covers(g.Tenant)
}

// inScope reports whether a grant of the principal is in a tenant the
// caller may read (which makes the principal visible to it); a grant in
// every tenant ("*", a platform-wide key's) is in each of them.
func (f grantFilter) inScope(a projections.Access) bool {
	readsSome := f.sc.all || f.sc.anyTenant || len(f.sc.tenants) > 0
	for _, g := range a.Grants {
		if f.sc.covers(g.Tenant) || (g.Tenant == domain.AllTenants && readsSome) {
			return true
		}
	}
	return false
}

// principalAccess renders one principal's access, tenant by tenant, with
// the grants the caller may see.
func principalAccess(kind string, a projections.Access, name string, at time.Time, f grantFilter) principalAccessJSON {
	out := principalAccessJSON{Type: kind, ID: a.ID, Name: name, At: rfc3339Nano(at), Tenants: []principalTenantJSON{}}
	if a.Name != "" {
		out.Name = a.Name
	}
	byTenant := map[string][]projections.Grant{}
	for _, g := range a.Grants {
		if f.shows(g) {
			byTenant[g.Tenant] = append(byTenant[g.Tenant], g)
		}
	}
	tenants := make([]string, 0, len(byTenant))
	for t := range byTenant {
		tenants = append(tenants, t)
	}
	sort.Strings(tenants) // "*" first
	for _, t := range tenants {
		gs := byTenant[t]
		pt := principalTenantJSON{ID: t, Permissions: permStrings(union(gs)), Grants: make([]grantJSON, 0, len(gs))}
		for _, g := range gs {
			pt.Grants = append(pt.Grants, toGrantJSON(g))
		}
		out.Tenants = append(out.Tenants, pt)
	}
	return out
}

// userAccess: GET /api/v1/users/{id}/access: what the user could do in each
// tenant at a moment, and why (principalAccessAt). Visible as GET
// /users/{id} is.
func (s *Server) userAccess(c *fiber.Ctx) error {
	return s.principalAccessAt(c, func(cl *Caller, id string) (accessTarget, bool) {
		u, _, ok := s.deps.Model.User(id)
		return accessTarget{kind: projections.PrincipalUser, id: u.ID, name: u.Username,
			own: cl.IsUser() && u.ID == cl.User.ID, visible: cl.sees(u), access: s.deps.History.UserAccess}, ok
	})
}

// keyAccess: GET /api/v1/api-keys/{id}/access: what the key could do in
// each tenant at a moment (capped by its owner's permissions then), and why
// (principalAccessAt). Visible as GET /api-keys/{id} is.
func (s *Server) keyAccess(c *fiber.Ctx) error {
	return s.principalAccessAt(c, func(cl *Caller, id string) (accessTarget, bool) {
		k, _, ok := s.deps.Model.APIKey(id)
		return accessTarget{kind: projections.PrincipalAPIKey, id: k.ID, name: k.Name,
			own: cl.ownsKey(k), visible: cl.seesKey(k), access: s.deps.History.KeyAccess}, ok
	})
}

// accessTarget is the user or key of a GET …/{id}/access, as the caller
// sees it.
type accessTarget struct {
	kind, id, name string
	// own: the caller is the user, or the key's owner (with a token scoped
	// to a tenant: only that tenant's grants).
	own bool
	// visible: the caller may read the user or key itself.
	visible bool
	// access is the access history's answer for it.
	access func(id string, at time.Time) (projections.Access, bool, error)
}

// principalAccessAt answers what the principal that find looks up (false:
// 404) could do in each tenant at ?at=, and why. It is visible to whoever
// may read it, and also to a reader of a tenant where it held a grant at
// that moment; a caller other than a platform admin or the principal (the
// key's owner) sees the grants in the tenants whose history it may read.
func (s *Server) principalAccessAt(c *fiber.Ctx, find func(cl *Caller, id string) (accessTarget, bool)) error {
	if s.deps.History == nil {
		return errUnavailable
	}
	cl := caller(c)
	p, err := queryParams(c, "at")
	if err != nil {
		return err
	}
	at, err := s.moment("at", p["at"])
	if err != nil {
		return err
	}
	t, ok := find(cl, c.Params("id"))
	if !ok {
		return errNotFound
	}
	f := grantFilter{full: cl.IsPlatformAdmin() || (t.own && cl.Tenant == ""), sc: cl.auditScope()}
	if t.own && cl.Tenant != "" {
		// A scoped token of the principal: its own grants in its tenant.
		f.sc = auditScope{tenants: map[string]bool{cl.Tenant: true}}
	}
	a, _, err := t.access(t.id, at)
	if err != nil {
		if !f.full && !t.visible {
			return errNotFound
		}
		return s.historyErr(err)
	}
	if !f.full && !t.visible && !f.inScope(a) {
		return errNotFound
	}
	a.ID = t.id
	return c.JSON(principalAccess(t.kind, a, t.name, at, f))
}
