package scim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/infracast/auth/http/internal/jsonnames"
)

// The resources travel inside the package as canonical maps: keys are the
// attributes' canonical names (an extension's attributes under its URN),
// strings are strings, booleans bool, complex values map[string]any,
// multi-valued ones []any, and an unassigned attribute is absent. Filters
// are evaluated and PATCH operations applied on them.

func userMap(u User) map[string]any {
	m := map[string]any{"active": u.Active}
	setStr(m, "id", u.ID)
	setStr(m, "externalId", u.ExternalID)
	setStr(m, "userName", u.UserName)
	name := map[string]any{}
	setStr(name, "formatted", u.Name.Formatted)
	setStr(name, "familyName", u.Name.FamilyName)
	setStr(name, "givenName", u.Name.GivenName)
	if len(name) > 0 {
		m["name"] = name
	}
	setStr(m, "displayName", u.DisplayName)
	setObjects(m, "emails", u.Emails, func(e Email, em map[string]any) {
		setStr(em, "value", e.Value)
		setStr(em, "type", e.Type)
		if e.Primary {
			em["primary"] = true
		}
	})
	setObjects(m, "groups", u.Groups, func(g GroupRef, gm map[string]any) {
		setStr(gm, "value", g.Value)
		setStr(gm, "display", g.Display)
	})
	ent := map[string]any{}
	setStr(ent, "employeeNumber", u.Enterprise.EmployeeNumber)
	setStr(ent, "department", u.Enterprise.Department)
	if len(ent) > 0 {
		m[EnterpriseSchema] = ent
	}
	m["meta"] = metaMap("User", u.Meta)
	return m
}

func groupMap(g Group) map[string]any {
	m := map[string]any{}
	setStr(m, "id", g.ID)
	setStr(m, "externalId", g.ExternalID)
	setStr(m, "displayName", g.DisplayName)
	setObjects(m, "members", g.Members, func(mb Member, mm map[string]any) {
		setStr(mm, "value", mb.Value)
		setStr(mm, "display", mb.Display)
		setStr(mm, "type", mb.Type)
	})
	m["meta"] = metaMap("Group", g.Meta)
	return m
}

func metaMap(rt string, meta Meta) map[string]any {
	m := map[string]any{"resourceType": rt}
	if !meta.Created.IsZero() {
		m["created"] = meta.Created.UTC().Format(time.RFC3339Nano)
	}
	if !meta.LastModified.IsZero() {
		m["lastModified"] = meta.LastModified.UTC().Format(time.RFC3339Nano)
	}
	return m
}

// setObjects stores list under k, one object per element that fill fills
// in; an empty list is unassigned.
func setObjects[T any](m map[string]any, k string, list []T, fill func(T, map[string]any)) {
	if len(list) == 0 {
		return
	}
	out := make([]any, 0, len(list))
	for _, v := range list {
		em := map[string]any{}
		fill(v, em)
		out = append(out, em)
	}
	m[k] = out
}

// eachObject calls fn with each value of a multi-valued attribute that is
// an object.
func eachObject(v any, fn func(map[string]any)) {
	for _, el := range asList(v) {
		if em, ok := el.(map[string]any); ok {
			fn(em)
		}
	}
}

func setStr(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

func getStr(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func getMap(m map[string]any, k string) map[string]any {
	c, _ := m[k].(map[string]any)
	if c == nil {
		return map[string]any{}
	}
	return c
}

// mapToUser reads the attributes a client may set from a canonical map
// (id, meta and groups are the caller's to fill in). active is false when
// absent: the caller decides what absent means.
func mapToUser(m map[string]any) User {
	u := User{
		ExternalID:  getStr(m, "externalId"),
		UserName:    getStr(m, "userName"),
		DisplayName: getStr(m, "displayName"),
		Password:    getStr(m, "password"),
	}
	u.Active, _ = m["active"].(bool)
	name := getMap(m, "name")
	u.Name = Name{Formatted: getStr(name, "formatted"), GivenName: getStr(name, "givenName"), FamilyName: getStr(name, "familyName")}
	eachObject(m["emails"], func(em map[string]any) {
		primary, _ := em["primary"].(bool)
		u.Emails = append(u.Emails, Email{Value: getStr(em, "value"), Type: getStr(em, "type"), Primary: primary})
	})
	ent := getMap(m, EnterpriseSchema)
	u.Enterprise = Enterprise{EmployeeNumber: getStr(ent, "employeeNumber"), Department: getStr(ent, "department")}
	return u
}

func mapToGroup(m map[string]any) Group {
	g := Group{ExternalID: getStr(m, "externalId"), DisplayName: getStr(m, "displayName")}
	eachObject(m["members"], func(mm map[string]any) {
		g.Members = append(g.Members, Member{Value: getStr(mm, "value"), Display: getStr(mm, "display"), Type: getStr(mm, "type")})
	})
	return g
}

// decodeObject decodes a request body: one JSON object, numbers kept as
// json.Number.
func decodeObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, badSyntax("the request body is empty")
		}
		return nil, badSyntax("the request body is not valid JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badSyntax("the request body must hold a single JSON object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, badSyntax("the request body must be a JSON object")
	}
	if err := noDuplicateNames(body); err != nil {
		return nil, err
	}
	return m, nil
}

// noDuplicateNames refuses a body in which an object holds a member name
// twice, in the same or another letter case: SCIM matches names without
// regard to case, and decoded into a map the two would be picked from at
// random (lookupKey, a PATCH without a path, an operation's "op"): outside
// check 14d got 400 or 201 at random for {"SCHEMAS":…,"schemas":…}, and a
// PATCH taking one of {"userName":…,"USERNAME":…} where POST refused them.
// Called on a body that decoded, so every token reads.
func noDuplicateNames(body []byte) error {
	name, found, _ := jsonnames.FoldedDuplicate(body) // it decoded: it reads
	if found {
		return badSyntax("attribute %q is given twice (names are matched without regard to case)", truncate(name))
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkSchemas: the body's "schemas" must list the resource type's core
// schema. Other URNs are tolerated (Entra lists one of its own on groups).
func checkSchemas(v any, want string) error {
	list, ok := v.([]any)
	if !ok {
		return badSyntax("schemas must be a list holding %q", want)
	}
	for _, s := range list {
		if str, ok := s.(string); ok && strings.EqualFold(str, want) {
			return nil
		}
	}
	return badSyntax("schemas must hold %q", want)
}

// normalizeResource turns a POST or PUT body into a canonical map:
// attribute names matched without regard to case, booleans sent as
// "True"/"False" strings taken as booleans, read-only attributes (id,
// meta, groups, members.display) and the RFC attributes this service does
// not keep dropped, anything else unknown refused.
func normalizeResource(rt *resourceType, body map[string]any) (map[string]any, error) {
	schemas, found := lookupKey(body, "schemas")
	if !found {
		return nil, badSyntax("schemas is missing: it must hold %q", rt.Core.ID)
	}
	if err := checkSchemas(schemas, rt.Core.ID); err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, k := range sortedKeys(body) {
		v := body[k]
		if strings.EqualFold(k, "schemas") {
			continue
		}
		if ext := rt.extension(k); ext != nil {
			obj, ok := v.(map[string]any)
			if v != nil && !ok {
				return nil, badValue("%q must be an object", ext.ID)
			}
			em := map[string]any{}
			for _, sk := range sortedKeys(obj) {
				a, ignored, ok := findAttr(ext, sk)
				if !ok {
					return nil, badValue("unknown attribute %q in %s", truncate(sk), ext.ID)
				}
				if ignored {
					continue
				}
				if err := put(em, a, obj[sk]); err != nil {
					return nil, err
				}
			}
			if len(em) > 0 {
				out[ext.ID] = em
			}
			continue
		}
		p, err := parseAttrPath(k)
		if err != nil || p.Sub != "" {
			return nil, badValue("unknown attribute %q", truncate(k))
		}
		a, ext, ignored, ok := rt.lookup(p.URI, p.Name)
		switch {
		case !ok:
			return nil, badValue("unknown attribute %q", truncate(k))
		case ignored, a.readOnly():
			continue
		}
		c := out
		if ext != nil {
			if c, ok = out[ext.ID].(map[string]any); !ok {
				c = map[string]any{}
				out[ext.ID] = c
			}
		}
		if err := put(c, a, v); err != nil {
			return nil, err
		}
		if ext != nil && len(c) == 0 {
			delete(out, ext.ID)
		}
	}
	return out, nil
}

func lookupKey(m map[string]any, key string) (any, bool) {
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// put normalises v for a and stores it in c (unassigned: nothing stored).
func put(c map[string]any, a *attr, v any) error {
	if _, dup := c[a.Name]; dup {
		return badSyntax("attribute %q is given twice", a.Name)
	}
	n, err := normalizeValue(a, v, false)
	if err != nil {
		return err
	}
	if n != nil {
		c[a.Name] = n
	}
	return nil
}

// normalizeValue checks a value against its attribute and returns it in
// canonical form; nil means unassigned (null, "", [], {}). element: v is
// one value of a multi-valued attribute.
func normalizeValue(a *attr, v any, element bool) (any, error) {
	if v == nil {
		return nil, nil
	}
	if a.Multi && !element {
		list, ok := v.([]any)
		if !ok {
			list = []any{v} // a single value where a list belongs
		}
		var out []any
		for _, el := range list {
			n, err := normalizeValue(a, el, true)
			if err != nil {
				return nil, err
			}
			if n != nil {
				out = append(out, n)
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	}
	switch a.Type {
	case "complex":
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, badValue("%q must be an object", a.Name)
		}
		out := map[string]any{}
		for _, k := range sortedKeys(obj) {
			s, ignored, ok := a.sub(k)
			if !ok {
				return nil, badValue("%q has no sub-attribute %q", a.Name, truncate(k))
			}
			if ignored || s.readOnly() {
				continue
			}
			if err := put(out, s, obj[k]); err != nil {
				return nil, err
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	case "boolean":
		switch b := v.(type) {
		case bool:
			return b, nil
		case string:
			// Entra ID sends "True" and "False".
			switch strings.ToLower(b) {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		}
		return nil, badValue("%q must be a boolean", a.Name)
	default:
		s, ok := v.(string)
		if !ok {
			return nil, badValue("%q must be a string", a.Name)
		}
		if s == "" {
			return nil, nil
		}
		return s, nil
	}
}

// sameValue: two values of a multi-valued attribute are the same value.
func sameValue(a *attr, x, y any) bool {
	if a.identity != "" {
		xm, _ := x.(map[string]any)
		ym, _ := y.(map[string]any)
		return xm != nil && ym != nil && xm[a.identity] == ym[a.identity]
	}
	return reflect.DeepEqual(x, y)
}

func validateUser(u User) error {
	if strings.TrimSpace(u.UserName) == "" {
		return badValue("userName is required")
	}
	primaries := 0
	for _, e := range u.Emails {
		if e.Value == "" {
			return badValue("emails: every address needs a value")
		}
		if e.Primary {
			primaries++
		}
	}
	if primaries > 1 {
		return badValue("emails: at most one address may be primary")
	}
	return nil
}

func validateGroup(g Group) error {
	if strings.TrimSpace(g.DisplayName) == "" {
		return badValue("displayName is required")
	}
	for _, m := range g.Members {
		if m.Value == "" {
			return badValue("members: every member needs a value")
		}
	}
	return nil
}

var userChangeable = []string{AttrUserName, AttrName, AttrDisplayName, AttrEmails, AttrActive, AttrExternalID, AttrEnterprise}

func userChanges(base, result User) []string {
	bm, rm := userMap(base), userMap(result)
	var changed []string
	for _, k := range userChangeable {
		if !reflect.DeepEqual(bm[k], rm[k]) {
			changed = append(changed, k)
		}
	}
	if result.Password != "" {
		changed = append(changed, AttrPassword)
	}
	return changed
}

func groupChanges(base, result Group) (changed []string, added, removed []Member) {
	if base.DisplayName != result.DisplayName {
		changed = append(changed, AttrDisplayName)
	}
	if base.ExternalID != result.ExternalID {
		changed = append(changed, AttrExternalID)
	}
	// Sets of values, not a search of the other list per member: a group
	// may have 100,000 members, and a search per member made one PATCH
	// cost seconds (an outside check, 19l: 6.8 s at 40,000). Order kept:
	// added as in result, removed as in base, each value once.
	inBase := memberSet(base.Members)
	inResult := memberSet(result.Members)
	seen := make(map[string]bool)
	for _, m := range result.Members {
		if !inBase[m.Value] && !seen[m.Value] {
			seen[m.Value] = true
			added = append(added, m)
		}
	}
	clear(seen)
	for _, m := range base.Members {
		if !inResult[m.Value] && !seen[m.Value] {
			seen[m.Value] = true
			removed = append(removed, m)
		}
	}
	if len(added) > 0 || len(removed) > 0 {
		changed = append(changed, AttrMembers)
	}
	return changed, added, removed
}

// memberSet: the values of members.
func memberSet(members []Member) map[string]bool {
	set := make(map[string]bool, len(members))
	for _, m := range members {
		set[m.Value] = true
	}
	return set
}
