package scim

import (
	"strings"
	"time"
)

// ParseUserFilter parses a filter and checks it against the User resource
// type (what the handler does with ?filter= on /Users): unknown or
// unsupported attributes are invalidFilter, and names become canonical.
func ParseUserFilter(s string) (*Filter, error) { return parseFor(s, userRT) }

// ParseGroupFilter is ParseUserFilter for groups.
func ParseGroupFilter(s string) (*Filter, error) { return parseFor(s, groupRT) }

func parseFor(s string, rt *resourceType) (*Filter, error) {
	f, err := ParseFilter(s)
	if err != nil {
		return nil, err
	}
	if err := rt.checkExpr(f.Expr, nil); err != nil {
		return nil, err
	}
	f.rt = rt
	return f, nil
}

// checkExpr checks every attribute path of e against the resource type
// (parent nil) or against a multi-valued attribute's sub-attributes (inside
// [ ]), and rewrites it to the canonical names.
func (rt *resourceType) checkExpr(e Expr, parent *attr) error {
	switch e := e.(type) {
	case *And:
		if err := rt.checkExpr(e.Left, parent); err != nil {
			return err
		}
		return rt.checkExpr(e.Right, parent)
	case *Or:
		if err := rt.checkExpr(e.Left, parent); err != nil {
			return err
		}
		return rt.checkExpr(e.Right, parent)
	case *Not:
		return rt.checkExpr(e.X, parent)
	case *ValuePath:
		a, err := rt.checkPath(&e.Path, nil, true)
		if err != nil {
			return err
		}
		if !a.Multi || a.Type != "complex" {
			return badFilter("%q is not a multi-valued complex attribute: [ ] does not apply", a.Name)
		}
		return rt.checkExpr(e.Filter, a)
	case *Compare:
		a, err := rt.checkPath(&e.Path, parent, false)
		if err != nil {
			return err
		}
		leaf := a
		if e.Path.Sub != "" {
			leaf, _, _ = a.sub(e.Path.Sub)
		}
		if leaf.Type == "boolean" {
			if s, ok := e.Value.(string); ok {
				switch strings.ToLower(s) {
				case "true":
					e.Value = true
				case "false":
					e.Value = false
				}
			}
			if e.Op != OpEq && e.Op != OpNe && e.Op != OpPr {
				return badFilter("%s does not apply to the boolean %q", e.Op, e.Path.String())
			}
		}
		return nil
	}
	return badFilter("empty filter")
}

// checkPath resolves an attribute path (top level, or a sub-attribute of
// parent), canonicalises it and returns the attribute it names (a
// complex one, for a path without Sub that names one; a complex attribute
// compared as a whole is compared by its "value" sub-attribute).
func (rt *resourceType) checkPath(p *AttrPath, parent *attr, wantComplex bool) (*attr, error) {
	if parent != nil {
		if p.URI != "" || p.Sub != "" {
			return nil, badFilter("inside [ ] name a sub-attribute of %q, not %q", parent.Name, p.String())
		}
		s, ignored, ok := parent.sub(p.Name)
		if !ok || ignored {
			return nil, badFilter("%q has no supported sub-attribute %q", parent.Name, p.Name)
		}
		p.Name = s.Name
		return s, nil
	}
	a, ext, ignored, ok := rt.lookup(p.URI, p.Name)
	switch {
	case !ok:
		return nil, badFilter("unknown attribute %q", truncate(p.String()))
	case ignored:
		return nil, badFilter("attribute %q is not supported by this service provider", p.String())
	case a.Returned == "never":
		return nil, badFilter("attribute %q cannot be filtered on", a.Name)
	}
	p.URI = ""
	if ext != nil {
		p.URI = ext.ID
	}
	p.Name = a.Name
	if a.Type != "complex" {
		if p.Sub != "" {
			return nil, badFilter("%q has no sub-attributes", a.Name)
		}
		return a, nil
	}
	if p.Sub == "" && !wantComplex {
		if _, _, ok := a.sub("value"); !ok {
			return nil, badFilter("name a sub-attribute of %q", a.Name)
		}
		p.Sub = "value"
	}
	if p.Sub != "" {
		s, ignored, ok := a.sub(p.Sub)
		if !ok || ignored {
			return nil, badFilter("%q has no supported sub-attribute %q", a.Name, p.Sub)
		}
		p.Sub = s.Name
	}
	return a, nil
}

// MatchUser reports whether the user matches the filter (a nil filter
// matches everything). The filter must come from the handler or
// ParseUserFilter.
func (f *Filter) MatchUser(u User) bool {
	return f.matches(userRT, func() map[string]any { return userMap(u) })
}

// MatchGroup reports whether the group matches the filter.
func (f *Filter) MatchGroup(g Group) bool {
	return f.matches(groupRT, func() map[string]any { return groupMap(g) })
}

// matches: a resource of type rt, as canonical map m, matches the filter.
func (f *Filter) matches(rt *resourceType, m func() map[string]any) bool {
	if f == nil || f.Expr == nil {
		return true
	}
	if f.rt != rt {
		return false
	}
	return rt.match(f.Expr, m(), nil)
}

// Paginate filters all with match and cuts the page q asks for: the
// simple way for a Backend to answer a list from a slice in a stable order
// (narrowed first through Filter.Equality, where it has an index).
func Paginate[T any](all []T, q Query, match func(T) bool) Page[T] {
	var page Page[T]
	start := max(q.StartIndex, 1)
	for _, r := range all {
		if !match(r) {
			continue
		}
		page.TotalResults++
		if page.TotalResults >= start && len(page.Resources) < q.Count {
			page.Resources = append(page.Resources, r)
		}
	}
	return page
}

// match evaluates a checked expression on a resource (or, with parent, on
// one value of a multi-valued attribute).
func (rt *resourceType) match(e Expr, m map[string]any, parent *attr) bool {
	switch e := e.(type) {
	case *And:
		return rt.match(e.Left, m, parent) && rt.match(e.Right, m, parent)
	case *Or:
		return rt.match(e.Left, m, parent) || rt.match(e.Right, m, parent)
	case *Not:
		return !rt.match(e.X, m, parent)
	case *ValuePath:
		a, _, _, ok := rt.lookup(e.Path.URI, e.Path.Name)
		if !ok || a == nil {
			return false
		}
		for _, el := range asList(container(m, e.Path.URI)[a.Name]) {
			if em, ok := el.(map[string]any); ok && rt.match(e.Filter, em, a) {
				return true
			}
		}
		return false
	case *Compare:
		var leaf *attr
		var vals []any
		if parent != nil {
			leaf, _, _ = parent.sub(e.Path.Name)
			vals = nonNil(m[e.Path.Name])
		} else {
			a, _, _, ok := rt.lookup(e.Path.URI, e.Path.Name)
			if !ok || a == nil {
				return false
			}
			leaf, vals = a, nil
			v := container(m, e.Path.URI)[a.Name]
			if e.Path.Sub != "" {
				leaf, _, _ = a.sub(e.Path.Sub)
				for _, el := range asList(v) {
					if em, ok := el.(map[string]any); ok {
						vals = append(vals, nonNil(em[e.Path.Sub])...)
					}
				}
			} else {
				vals = nonNil(v)
			}
		}
		if leaf == nil {
			return false
		}
		return compareAll(vals, leaf, e.Op, e.Value)
	}
	return false
}

func container(m map[string]any, uri string) map[string]any {
	if uri == "" {
		return m
	}
	c, _ := m[uri].(map[string]any)
	return c
}

// asList: a multi-valued attribute's values, or a single value as a list.
func asList(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	}
	return []any{v}
}

func nonNil(v any) []any {
	var out []any
	for _, x := range asList(v) {
		if x != nil && x != "" {
			out = append(out, x)
		}
	}
	return out
}

func compareAll(vals []any, leaf *attr, op string, want any) bool {
	switch {
	case op == OpPr:
		return len(vals) > 0
	case want == nil && op == OpEq:
		return len(vals) == 0
	case want == nil && op == OpNe:
		return len(vals) > 0
	case want == nil:
		return false
	case op == OpNe:
		return !compareAll(vals, leaf, OpEq, want)
	}
	for _, v := range vals {
		if compareOne(v, leaf, op, want) {
			return true
		}
	}
	return false
}

func compareOne(v any, leaf *attr, op string, want any) bool {
	switch v := v.(type) {
	case bool:
		w, ok := want.(bool)
		return ok && op == OpEq && v == w
	case string:
		w, ok := want.(string)
		if !ok {
			return false
		}
		if leaf.Type == "dateTime" {
			if c, ok := compareTimes(v, w); ok {
				return ordered(c, op)
			}
		}
		switch {
		case leaf.CaseExact:
		case leaf.asciiFold:
			v, w = lowerASCII(v), lowerASCII(w)
		default:
			v, w = strings.ToLower(v), strings.ToLower(w)
		}
		switch op {
		case OpEq:
			return v == w
		case OpCo:
			return strings.Contains(v, w)
		case OpSw:
			return strings.HasPrefix(v, w)
		case OpEw:
			return strings.HasSuffix(v, w)
		}
		return ordered(strings.Compare(v, w), op)
	}
	return false
}

// lowerASCII lowers A–Z and nothing else (attr.asciiFold).
func lowerASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}

func compareTimes(a, b string) (int, bool) {
	ta, err := time.Parse(time.RFC3339Nano, a)
	if err != nil {
		return 0, false
	}
	tb, err := time.Parse(time.RFC3339Nano, b)
	if err != nil {
		return 0, false
	}
	return ta.Compare(tb), true
}

func ordered(c int, op string) bool {
	switch op {
	case OpEq:
		return c == 0
	case OpGt:
		return c > 0
	case OpGe:
		return c >= 0
	case OpLt:
		return c < 0
	case OpLe:
		return c <= 0
	}
	return false
}

// Equality is a term `attr eq "value"` that every resource matching a
// filter satisfies: what an index answers. Attr is "id", "userName",
// "externalId", "displayName", an extension attribute's full name
// ("urn:…:enterprise:2.0:User:employeeNumber"), or a multi-valued one's
// sub-attribute ("emails.value", "members.value"); Type is set for
// `emails[type eq "work"].value eq "x"` (and its [ ] form). CaseExact false
// means values compare without regard to case (userName, emails.value,
// displayName). Whole: the filter is this term and nothing else, so the
// index's answer needs no further check with Match.
type Equality struct {
	Attr      string
	Type      string
	Value     string
	CaseExact bool
	Whole     bool
}

// Equality finds such a term: the filter itself, or one side of a
// top-level `and`. A backend without an index for it may ignore it.
func (f *Filter) Equality() (Equality, bool) {
	if f == nil || f.rt == nil {
		return Equality{}, false
	}
	eq, ok := f.rt.equality(f.Expr)
	if ok {
		_, isAnd := f.Expr.(*And)
		eq.Whole = !isAnd
	}
	return eq, ok
}

func (rt *resourceType) equality(e Expr) (Equality, bool) {
	switch e := e.(type) {
	case *And:
		if eq, ok := rt.equality(e.Left); ok {
			return eq, true
		}
		return rt.equality(e.Right)
	case *Compare:
		return rt.simpleEq(e.Path, e)
	case *ValuePath:
		var value, typ *Compare
		terms := []Expr{e.Filter}
		if and, ok := e.Filter.(*And); ok {
			terms = []Expr{and.Left, and.Right}
		}
		for _, t := range terms {
			c, ok := t.(*Compare)
			if !ok || c.Op != OpEq {
				return Equality{}, false
			}
			switch c.Path.Name {
			case "value":
				value = c
			case "type":
				typ = c
			default:
				return Equality{}, false
			}
		}
		if value == nil {
			return Equality{}, false
		}
		eq, ok := rt.simpleEq(AttrPath{URI: e.Path.URI, Name: e.Path.Name, Sub: "value"}, value)
		if !ok {
			return Equality{}, false
		}
		if typ != nil {
			s, isStr := typ.Value.(string)
			if !isStr {
				return Equality{}, false
			}
			eq.Type = s
		}
		return eq, true
	}
	return Equality{}, false
}

func (rt *resourceType) simpleEq(p AttrPath, c *Compare) (Equality, bool) {
	s, ok := c.Value.(string)
	if !ok || c.Op != OpEq {
		return Equality{}, false
	}
	a, _, _, found := rt.lookup(p.URI, p.Name)
	if !found || a == nil {
		return Equality{}, false
	}
	leaf := a
	name := p.String()
	if p.Sub != "" {
		if leaf, _, _ = a.sub(p.Sub); leaf == nil {
			return Equality{}, false
		}
	}
	if leaf.Type != "string" {
		return Equality{}, false
	}
	return Equality{Attr: name, Value: s, CaseExact: leaf.CaseExact}, true
}
