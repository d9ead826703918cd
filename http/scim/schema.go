package scim

import (
	"strings"
)

// attr describes an attribute (RFC 7643 section 7). The table below drives
// the /Schemas documents, the decoding of bodies, PATCH paths and filters.
type attr struct {
	Name       string
	Type       string // string, boolean, complex, dateTime, reference
	Multi      bool
	Desc       string
	Required   bool
	CaseExact  bool
	Mutability string // readWrite, readOnly, writeOnly, immutable
	Returned   string // always, never, default
	Uniqueness string // none, server
	Canonical  []string
	RefTypes   []string
	Sub        []*attr
	// asciiFold: compared (when not CaseExact) by ASCII letter case only,
	// as the service compares usernames and e-mail addresses: a Unicode
	// lookalike (İ, the Kelvin sign) that strings.ToLower maps onto an
	// ASCII letter matches nothing (a re-check, 14r1, found filters other
	// than a lone userName eq matching alice for "alİce").
	asciiFold   bool
	ignoredSubs []string // sub-attributes accepted and ignored: RFC 7643's not kept, names IdPs send
	// identity is the sub-attribute that tells two values apart (members
	// and groups: "value"); "" compares whole values.
	identity string
}

// schema is a schema (core or extension) with its attributes; ignored lists
// the attributes RFC 7643 defines for it that this service does not keep:
// accepted on input and dropped (they are not in /Schemas).
type schema struct {
	ID, Name, Desc string
	Attrs          []*attr
	ignored        []string
}

type resourceType struct {
	Name, Endpoint, Desc string
	Core                 *schema
	Exts                 []*schema
}

func str(name, desc string, caseExact bool) *attr {
	return &attr{Name: name, Type: "string", Desc: desc, CaseExact: caseExact,
		Mutability: "readWrite", Returned: "default", Uniqueness: "none"}
}

func boolean(name, desc string) *attr {
	return &attr{Name: name, Type: "boolean", Desc: desc,
		Mutability: "readWrite", Returned: "default", Uniqueness: "none"}
}

func complexAttr(name, desc string, multi bool, subs ...*attr) *attr {
	return &attr{Name: name, Type: "complex", Multi: multi, Desc: desc, Sub: subs,
		Mutability: "readWrite", Returned: "default", Uniqueness: "none"}
}

func with(a *attr, f func(*attr)) *attr { f(a); return a }

// The common attributes (RFC 7643 3.1), of every resource type.
var (
	idAttr = with(str("id", "Unique identifier of the resource, assigned by the service provider.", true), func(a *attr) {
		a.Mutability, a.Returned, a.Uniqueness = "readOnly", "always", "server"
	})
	externalIDAttr = str("externalId", "Identifier of the resource as defined by the provisioning client.", true)
	metaAttr       = with(complexAttr("meta", "Resource metadata.", false,
		with(str("resourceType", "The name of the resource type.", true), ro),
		with(&attr{Name: "created", Type: "dateTime", Desc: "When the resource was added."}, ro),
		with(&attr{Name: "lastModified", Type: "dateTime", Desc: "When the resource was last changed."}, ro),
		with(&attr{Name: "location", Type: "reference", Desc: "The URI of the resource.", RefTypes: []string{"uri"}}, ro),
		with(str("version", "Not supported (no ETags).", true), ro),
	), ro)
	commonAttrs = []*attr{idAttr, externalIDAttr, metaAttr}
)

func ro(a *attr) {
	a.Mutability = "readOnly"
	if a.Returned == "" {
		a.Returned = "default"
	}
	if a.Uniqueness == "" {
		a.Uniqueness = "none"
	}
}

func userSchema() *schema {
	return &schema{ID: UserSchema, Name: "User", Desc: "User Account",
		Attrs: []*attr{
			with(str("userName", "Unique identifier for the User, the Infracast username. Compared without regard to case.", false), func(a *attr) {
				a.Required, a.Uniqueness, a.asciiFold = true, "server", true
			}),
			with(complexAttr("name", "The components of the user's name.", false,
				str("formatted", "The full name.", false),
				str("familyName", "The family name.", false),
				str("givenName", "The given name.", false),
			), func(a *attr) { a.ignoredSubs = []string{"middleName", "honorificPrefix", "honorificSuffix"} }),
			str("displayName", "The name of the user, suitable for display.", false),
			boolean("active", "Whether the user may sign in. false deactivates the user and revokes their sessions, tokens and API keys."),
			with(complexAttr("emails", "Email addresses of the user.", true,
				with(str("value", "Email address.", false), func(a *attr) { a.asciiFold = true }),
				with(str("type", "A label: work, home, other.", false), func(a *attr) { a.Canonical = []string{"work", "home", "other"} }),
				boolean("primary", "The primary address; at most one."),
			), func(a *attr) { a.ignoredSubs = []string{"display"} }),
			with(complexAttr("groups", "The groups the user belongs to; change them through the groups.", true,
				with(str("value", "The group's id.", true), ro),
				with(&attr{Name: "$ref", Type: "reference", Desc: "The URI of the group.", RefTypes: []string{"Group"}}, ro),
				with(str("display", "The group's displayName.", false), ro),
			), func(a *attr) { ro(a); a.identity = "value"; a.ignoredSubs = []string{"type"} }),
			// Without Options.AcceptPasswords, left out of /Schemas and
			// refused on input.
			with(str("password", "The user's password: write-only, never returned; checked against the password rules.", true),
				func(a *attr) { a.Mutability, a.Returned = "writeOnly", "never" }),
		},
		ignored: []string{"nickName", "profileUrl", "title", "userType", "preferredLanguage", "locale",
			"timezone", "phoneNumbers", "ims", "photos", "addresses", "entitlements", "roles", "x509Certificates"},
	}
}

var enterpriseSchema = &schema{ID: EnterpriseSchema, Name: "EnterpriseUser", Desc: "Enterprise User",
	Attrs: []*attr{
		str("employeeNumber", "Identifier assigned to the person by the organization.", false),
		str("department", "Name of a department.", false),
	},
	ignored: []string{"costCenter", "organization", "division", "manager"},
}

var groupSchema = &schema{ID: GroupSchema, Name: "Group", Desc: "Group: mapped to tenant roles by the connection's group mappings.",
	Attrs: []*attr{
		with(str("displayName", "A human-readable name for the Group; the name group mappings refer to.", false), func(a *attr) {
			a.Required = true
		}),
		with(complexAttr("members", "The members of the group.", true,
			with(str("value", "The member's id.", true), func(a *attr) { a.Mutability = "immutable" }),
			with(&attr{Name: "$ref", Type: "reference", Desc: "The URI of the member.", RefTypes: []string{"User", "Group"}}, ro),
			with(str("display", "The member's display name.", false), ro),
			with(str("type", "User or Group.", false), func(a *attr) {
				a.Mutability = "immutable"
				a.Canonical = []string{"User", "Group"}
			}),
		), func(a *attr) {
			a.identity = "value"
			// Microsoft's SCIM reference code names a member's display
			// name "displayName" (RFC 7643: "display", read-only here).
			a.ignoredSubs = []string{"displayName"}
		}),
	},
}

// The two resource types.
var (
	userRT = &resourceType{Name: "User", Endpoint: "/Users", Desc: "User Account",
		Core: userSchema(), Exts: []*schema{enterpriseSchema}}
	groupRT = &resourceType{Name: "Group", Endpoint: "/Groups", Desc: "Group", Core: groupSchema}
)

// lookup finds a top-level attribute: uri "" or the core schema's URN
// looks among the common and core attributes, an extension's URN among
// the extension's. ext is the extension (nil for core); ignored reports an
// RFC attribute that is accepted and dropped.
func (rt *resourceType) lookup(uri, name string) (a *attr, ext *schema, ignored bool, ok bool) {
	if uri == "" || strings.EqualFold(uri, rt.Core.ID) {
		for _, c := range commonAttrs {
			if strings.EqualFold(c.Name, name) {
				return c, nil, false, true
			}
		}
		a, ignored, ok = findAttr(rt.Core, name)
		return a, nil, ignored, ok
	}
	if e := rt.extension(uri); e != nil {
		a, ignored, ok = findAttr(e, name)
		return a, e, ignored, ok
	}
	return nil, nil, false, false
}

func (rt *resourceType) extension(urn string) *schema {
	for _, e := range rt.Exts {
		if strings.EqualFold(e.ID, urn) {
			return e
		}
	}
	return nil
}

func findAttr(s *schema, name string) (*attr, bool, bool) {
	return findIn(s.Attrs, s.ignored, name)
}

// sub finds a sub-attribute; ignored as in lookup.
func (a *attr) sub(name string) (s *attr, ignored bool, ok bool) {
	return findIn(a.Sub, a.ignoredSubs, name)
}

// findIn finds name (any case) among attrs, or among the ignored names.
func findIn(attrs []*attr, ignoredNames []string, name string) (a *attr, ignored bool, ok bool) {
	for _, x := range attrs {
		if strings.EqualFold(x.Name, name) {
			return x, false, true
		}
	}
	for _, n := range ignoredNames {
		if strings.EqualFold(n, name) {
			return nil, true, true
		}
	}
	return nil, false, false
}

func (a *attr) readOnly() bool { return a.Mutability == "readOnly" }

// document renders an attribute for /Schemas.
func (a *attr) document() map[string]any {
	d := map[string]any{
		"name":        a.Name,
		"type":        a.Type,
		"multiValued": a.Multi,
		"description": a.Desc,
		"required":    a.Required,
		"mutability":  orDefault(a.Mutability, "readWrite"),
		"returned":    orDefault(a.Returned, "default"),
	}
	if a.Type == "string" || a.Type == "reference" {
		d["caseExact"] = a.CaseExact
	}
	if a.Type != "complex" {
		d["uniqueness"] = orDefault(a.Uniqueness, "none")
	}
	if len(a.Canonical) > 0 {
		d["canonicalValues"] = a.Canonical
	}
	if len(a.RefTypes) > 0 {
		d["referenceTypes"] = a.RefTypes
	}
	if len(a.Sub) > 0 {
		subs := make([]any, len(a.Sub))
		for i, s := range a.Sub {
			subs[i] = s.document()
		}
		d["subAttributes"] = subs
	}
	return d
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (s *schema) document(base string, passwords bool) map[string]any {
	attrs := make([]any, 0, len(s.Attrs))
	for _, a := range s.Attrs {
		if a.Mutability == "writeOnly" && !passwords {
			continue
		}
		attrs = append(attrs, a.document())
	}
	return map[string]any{
		"schemas":     []string{schemaURN},
		"id":          s.ID,
		"name":        s.Name,
		"description": s.Desc,
		"attributes":  attrs,
		"meta": map[string]any{
			"resourceType": "Schema",
			"location":     base + "/Schemas/" + s.ID,
		},
	}
}

func (rt *resourceType) document(base string) map[string]any {
	d := map[string]any{
		"schemas":     []string{resourceTypeURN},
		"id":          rt.Name,
		"name":        rt.Name,
		"endpoint":    rt.Endpoint,
		"description": rt.Desc,
		"schema":      rt.Core.ID,
		"meta": map[string]any{
			"resourceType": "ResourceType",
			"location":     base + "/ResourceTypes/" + rt.Name,
		},
	}
	if len(rt.Exts) > 0 {
		exts := make([]any, len(rt.Exts))
		for i, e := range rt.Exts {
			exts[i] = map[string]any{"schema": e.ID, "required": false}
		}
		d["schemaExtensions"] = exts
	}
	return d
}
