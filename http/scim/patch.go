package scim

import (
	"errors"
	"net/http"
	"strings"
)

// patchOp is one operation of a PatchOp request (RFC 7644 3.5.2).
type patchOp struct {
	Op      string // add, replace, remove (sent in any case: Entra sends "Replace")
	Path    string
	HasPath bool
	Value   any
}

const maxPatchOps = 1000

// parsePatch reads a PatchOp body. Member names are matched without
// regard to case ("Operations", "operations").
func parsePatch(body []byte) ([]patchOp, error) {
	m, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	schemas, ok := lookupKey(m, "schemas")
	if !ok {
		return nil, badSyntax("schemas is missing: it must hold %q", PatchOpSchema)
	}
	if err := checkSchemas(schemas, PatchOpSchema); err != nil {
		return nil, err
	}
	raw, _ := lookupKey(m, "Operations")
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		return nil, badSyntax("Operations must be a non-empty list")
	}
	if len(list) > maxPatchOps {
		return nil, Errorf(http.StatusRequestEntityTooLarge, TooMany, "at most %d operations per request", maxPatchOps)
	}
	ops := make([]patchOp, 0, len(list))
	for i, el := range list {
		om, ok := el.(map[string]any)
		if !ok {
			return nil, badSyntax("Operations[%d] must be an object", i)
		}
		var op patchOp
		for k, v := range om {
			switch strings.ToLower(k) {
			case "op":
				s, _ := v.(string)
				op.Op = strings.ToLower(s)
			case "path":
				if v == nil {
					continue
				}
				s, ok := v.(string)
				if !ok {
					return nil, badPath("Operations[%d].path must be a string", i)
				}
				op.Path, op.HasPath = s, strings.TrimSpace(s) != ""
			case "value":
				op.Value = v
			default:
				// Ignored, as unknown attributes of a resource are:
				// Microsoft's SCIM reference code names its operations
				// ("name": "addMember").
			}
		}
		switch op.Op {
		case "add", "replace", "remove":
		default:
			return nil, badSyntax("Operations[%d].op must be add, replace or remove", i)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// patcher applies operations to a canonical map, a copy of the resource.
type patcher struct {
	rt *resourceType
	m  map[string]any
}

// applyAll applies ops in order. A run of operations that each remove
// one value of a multi-valued attribute by its identity — Okta's and
// Entra ID's `members[value eq "…"]`, up to 1,000 a request — is applied
// as one removal of them all (Entra's other form, {"op":"remove",
// "path":"members","value":[…]}, which removes the same values): one pass
// over the values, not one per operation (a group may have 100,000
// members: 1,000 such operations cost 42 s of CPU; an outside check, 19l).
func (p *patcher) applyAll(ops []patchOp) error {
	for i := 0; i < len(ops); {
		a, id, ok := p.removeByIdentity(ops[i])
		if !ok {
			if err := p.apply(ops[i]); err != nil {
				return err
			}
			i++
			continue
		}
		gone := []any{map[string]any{a.identity: id}}
		j := i + 1
		for ; j < len(ops); j++ {
			b, id, ok := p.removeByIdentity(ops[j])
			if !ok || b != a {
				break
			}
			gone = append(gone, map[string]any{a.identity: id})
		}
		if err := p.applyPath("remove", a.Name, gone); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// removeByIdentity: op removes the values of a writable multi-valued core
// attribute whose identity is id (`members[value eq "id"]`).
func (p *patcher) removeByIdentity(op patchOp) (*attr, string, bool) {
	if op.Op != "remove" || !op.HasPath {
		return nil, "", false
	}
	path, err := ParsePath(op.Path)
	if err != nil || path.Filter == nil || path.Sub != "" || path.Attr.Sub != "" || path.Attr.URI != "" {
		return nil, "", false
	}
	a, ext, ignored, ok := p.rt.lookup("", path.Attr.Name)
	if !ok || ignored || ext != nil || a == nil || a.readOnly() || !a.Multi || a.Type != "complex" ||
		p.rt.checkExpr(path.Filter, a) != nil {
		return nil, "", false
	}
	id, ok := identityEq(path.Filter, a)
	return a, id, ok
}

func (p *patcher) apply(op patchOp) error {
	if op.HasPath {
		return p.applyPath(op.Op, op.Path, op.Value)
	}
	if op.Op == "remove" {
		return Errorf(http.StatusBadRequest, NoTarget, "remove needs a path")
	}
	obj, ok := op.Value.(map[string]any)
	if !ok {
		return badValue("without a path, the value must be an object of attributes")
	}
	// Keys in order, so "name" comes before "name.givenName".
	for _, k := range sortedKeys(obj) {
		v := obj[k]
		if strings.EqualFold(k, "schemas") {
			continue
		}
		if ext := p.rt.extension(k); ext != nil {
			if err := p.applyExtension(op.Op, ext, v); err != nil {
				return err
			}
			continue
		}
		// Entra ID sends paths as keys: "name.givenName",
		// `emails[type eq "work"].value`, "urn:…:enterprise:2.0:User:department".
		if err := p.applyPath(op.Op, k, v); err != nil {
			return err
		}
	}
	return nil
}

func (p *patcher) applyExtension(op string, ext *schema, v any) error {
	if op == "remove" {
		delete(p.m, ext.ID)
		return nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		if v == nil && op == "replace" {
			delete(p.m, ext.ID)
			return nil
		}
		return badValue("%q must be an object", ext.ID)
	}
	for _, k := range sortedKeys(obj) {
		if err := p.applyPath(op, ext.ID+":"+k, obj[k]); err != nil {
			return err
		}
	}
	return nil
}

func (p *patcher) applyPath(op, raw string, value any) error {
	path, err := ParsePath(raw)
	if err != nil {
		return err
	}
	if path.Attr.URI != "" && path.Attr.Sub == "" && path.Filter == nil {
		if ext := p.rt.extension(path.Attr.URI + ":" + path.Attr.Name); ext != nil {
			return p.applyExtension(op, ext, value)
		}
	}
	a, ext, ignored, ok := p.rt.lookup(path.Attr.URI, path.Attr.Name)
	switch {
	case !ok:
		return badPath("unknown attribute %q", truncate(path.Attr.String()))
	case ignored:
		return nil // an RFC attribute this service does not keep
	case a.readOnly():
		// Okta renames a group with {"op":"replace","value":{"id":…,"displayName":…}}.
		if s, isStr := value.(string); isStr && a == idAttr && op != "remove" && path.Attr.Sub == "" &&
			path.Filter == nil && s == getStr(p.m, "id") {
			return nil
		}
		return readOnly(a.Name)
	case a.Mutability == "writeOnly" && op == "remove":
		return Errorf(http.StatusBadRequest, Mutability, "%q cannot be removed", a.Name)
	}
	c := p.m
	if ext != nil {
		ec, ok := p.m[ext.ID].(map[string]any)
		if !ok {
			ec = map[string]any{}
			p.m[ext.ID] = ec
		}
		c = ec
		defer func() {
			if len(ec) == 0 {
				delete(p.m, ext.ID)
			}
		}()
	}
	subName := path.Attr.Sub
	if path.Filter != nil {
		subName = path.Sub
	}
	var sub *attr
	if subName != "" {
		if a.Type != "complex" {
			return badPath("%q has no sub-attributes", a.Name)
		}
		s, ignored, ok := a.sub(subName)
		switch {
		case !ok:
			return badPath("%q has no sub-attribute %q", a.Name, truncate(subName))
		case ignored:
			return nil
		case s.readOnly():
			return readOnly(a.Name + "." + s.Name)
		}
		sub = s
	}
	var before map[string]bool
	if _, _, hasPrimary := a.sub("primary"); a.Multi && hasPrimary {
		// Not for members (no primary; up to 100,000 of them, per operation).
		before = primaries(c[a.Name])
	}
	switch {
	case path.Filter != nil:
		if !a.Multi || a.Type != "complex" {
			return badPath("%q is not multi-valued: [ ] does not apply", a.Name)
		}
		if err := p.rt.checkExpr(path.Filter, a); err != nil {
			var se *Error
			if errors.As(err, &se) {
				return badPath("%s", se.Detail)
			}
			return err
		}
		err = p.filtered(op, c, a, path.Filter, sub, value)
	case sub != nil:
		err = p.subAttr(op, c, a, sub, value)
	default:
		err = p.whole(op, c, a, value)
	}
	if err != nil {
		return err
	}
	if a.Multi {
		return onePrimary(c, a, before)
	}
	return nil
}

// whole: the path names the attribute itself.
func (p *patcher) whole(op string, c map[string]any, a *attr, value any) error {
	if op == "remove" {
		if a.Multi && value != nil {
			// Entra ID removes members with
			// {"op":"Remove","path":"members","value":[{"value":"id"}]}.
			gone, err := normalizeValue(a, value, false)
			if err != nil {
				return err
			}
			var keep []any
			drop := newValueSet(a, asList(gone))
			for _, el := range asList(c[a.Name]) {
				if !drop.has(el) {
					keep = append(keep, el)
				}
			}
			setList(c, a.Name, keep)
			return nil
		}
		delete(c, a.Name)
		return nil
	}
	nv, err := normalizeValue(a, value, false)
	if err != nil {
		return err
	}
	if nv == nil {
		if op == "add" {
			return badValue("add needs a value for %q", a.Name)
		}
		delete(c, a.Name)
		return nil
	}
	switch {
	case a.Multi && op == "add":
		list := asList(c[a.Name])
		have := newValueSet(a, list)
		for _, el := range nv.([]any) {
			if !have.has(el) {
				list = append(list, el)
				have.add(el)
			}
		}
		setList(c, a.Name, list)
	case a.Multi:
		c[a.Name] = nv
	case a.Type == "complex":
		// add and replace both set the sub-attributes given and leave the
		// others (RFC 7644 3.5.2.1, 3.5.2.3).
		cm, ok := c[a.Name].(map[string]any)
		if !ok {
			cm = map[string]any{}
		}
		for k, v := range nv.(map[string]any) {
			cm[k] = v
		}
		c[a.Name] = cm
	default:
		c[a.Name] = nv
	}
	return nil
}

// subAttr: `name.givenName`, or `emails.value` (every value of a
// multi-valued attribute).
func (p *patcher) subAttr(op string, c map[string]any, a, sub *attr, value any) error {
	var nv any
	if op != "remove" {
		var err error
		if nv, err = normalizeValue(sub, value, false); err != nil {
			return err
		}
		if nv == nil && op == "add" {
			return badValue("add needs a value for %q", a.Name+"."+sub.Name)
		}
	}
	if a.Multi {
		list := asList(c[a.Name])
		if len(list) == 0 && nv != nil {
			list = []any{map[string]any{}}
		}
		for _, el := range list {
			if em, ok := el.(map[string]any); ok {
				setOrDelete(em, sub.Name, nv)
			}
		}
		setList(c, a.Name, list)
		return nil
	}
	cm, ok := c[a.Name].(map[string]any)
	if !ok {
		cm = map[string]any{}
	}
	setOrDelete(cm, sub.Name, nv)
	if len(cm) == 0 {
		delete(c, a.Name)
	} else {
		c[a.Name] = cm
	}
	return nil
}

// filtered: `emails[type eq "work"]`, `emails[type eq "work"].value`,
// `members[value eq "…"]`.
func (p *patcher) filtered(op string, c map[string]any, a *attr, f Expr, sub *attr, value any) error {
	list := asList(c[a.Name])
	matches := func(em map[string]any) bool { return p.rt.match(f, em, a) }
	if id, ok := identityEq(f, a); ok {
		// `members[value eq "…"]`, what Okta and Entra ID send to remove a
		// member, one operation each, up to 1,000 a request: compared
		// directly, not through the filter's evaluation (a group may have
		// 100,000 members: 1,000 such operations cost 42 s; 19l).
		matches = func(em map[string]any) bool { v, _ := em[a.identity].(string); return v == id }
	}
	var matched []map[string]any
	var keep []any
	for _, el := range list {
		em, ok := el.(map[string]any)
		if ok && matches(em) {
			matched = append(matched, em)
			if op == "remove" && sub == nil {
				continue
			}
		}
		keep = append(keep, el)
	}
	if op == "remove" {
		// Removing what is not there changes nothing (Okta and Entra
		// remove members that may already be gone).
		if len(matched) == 0 {
			return nil
		}
		for _, em := range matched {
			if sub != nil {
				delete(em, sub.Name)
			}
		}
		if sub != nil {
			keep = dropEmpty(keep)
		}
		setList(c, a.Name, keep)
		return nil
	}
	var nv any
	var err error
	if sub != nil {
		nv, err = normalizeValue(sub, value, false)
	} else {
		nv, err = normalizeValue(a, value, true)
	}
	if err != nil {
		return err
	}
	if len(matched) == 0 {
		// Nothing matches: a filter of equalities says what the new value
		// is (Entra ID sets emails[type eq "work"].value on a user without
		// a work address).
		el, ok := equalities(f)
		if !ok {
			return Errorf(http.StatusBadRequest, NoTarget, "no value of %q matches the filter", a.Name)
		}
		if nv == nil {
			return nil
		}
		matched = []map[string]any{el}
		keep = append(keep, el)
	}
	for _, em := range matched {
		if sub != nil {
			setOrDelete(em, sub.Name, nv)
			continue
		}
		nm, ok := nv.(map[string]any)
		if !ok && nv != nil {
			return badValue("the value for %q must be an object", a.Name)
		}
		for k, v := range nm {
			em[k] = v
		}
	}
	setList(c, a.Name, dropEmpty(keep))
	return nil
}

// identityEq: f is `<identity> eq "<id>"` on a multi-valued attribute
// whose identity is compared exactly (members' value): what the filter
// matches is the values whose identity is id.
func identityEq(f Expr, a *attr) (string, bool) {
	c, ok := f.(*Compare)
	if !ok || c.Op != OpEq || a.identity == "" || c.Path.URI != "" || c.Path.Sub != "" {
		return "", false
	}
	leaf, _, ok := a.sub(c.Path.Name)
	id, isStr := c.Value.(string)
	if !ok || leaf == nil || leaf.Name != a.identity || !leaf.CaseExact || leaf.Type != "string" || !isStr || id == "" {
		return "", false
	}
	return id, true
}

// equalities turns `type eq "work"` (and conjunctions of such terms) into
// the value they describe.
func equalities(e Expr) (map[string]any, bool) {
	switch e := e.(type) {
	case *Compare:
		if e.Op != OpEq || e.Value == nil {
			return nil, false
		}
		switch e.Value.(type) {
		case string, bool:
			return map[string]any{e.Path.Name: e.Value}, true
		}
	case *And:
		l, ok := equalities(e.Left)
		if !ok {
			return nil, false
		}
		r, ok := equalities(e.Right)
		if !ok {
			return nil, false
		}
		for k, v := range r {
			if old, dup := l[k]; dup && old != v {
				return nil, false
			}
			l[k] = v
		}
		return l, true
	}
	return nil, false
}

func setOrDelete(m map[string]any, k string, v any) {
	if v == nil {
		delete(m, k)
	} else {
		m[k] = v
	}
}

func setList(c map[string]any, name string, list []any) {
	if len(list) == 0 {
		delete(c, name)
	} else {
		c[name] = list
	}
}

func dropEmpty(list []any) []any {
	out := list[:0]
	for _, el := range list {
		if em, ok := el.(map[string]any); ok && len(em) == 0 {
			continue
		}
		out = append(out, el)
	}
	return out
}

// valueSet holds values of a multi-valued attribute to ask whether one is
// among them (sameValue) in O(1) where the attribute has an identity (a
// group's members: up to 100,000, and a search of the list per value made
// a PATCH quadratic); other values are searched.
type valueSet struct {
	a    *attr
	ids  map[string]bool // identities that are strings
	rest []any           // the others
}

func newValueSet(a *attr, list []any) *valueSet {
	s := &valueSet{a: a}
	if a.identity != "" {
		s.ids = make(map[string]bool, len(list))
	}
	for _, el := range list {
		s.add(el)
	}
	return s
}

// identityOf: v's identity when the attribute has one and it is a string.
func (s *valueSet) identityOf(v any) (string, bool) {
	if s.ids == nil {
		return "", false
	}
	m, _ := v.(map[string]any)
	id, ok := m[s.a.identity].(string)
	return id, ok
}

func (s *valueSet) add(v any) {
	if id, ok := s.identityOf(v); ok {
		s.ids[id] = true
		return
	}
	s.rest = append(s.rest, v)
}

func (s *valueSet) has(v any) bool {
	if id, ok := s.identityOf(v); ok && s.ids[id] {
		return true
	}
	for _, el := range s.rest {
		if sameValue(s.a, el, v) {
			return true
		}
	}
	return false
}

// primaries: the values that were primary before an operation.
func primaries(v any) map[string]bool {
	out := map[string]bool{}
	for _, el := range asList(v) {
		if em, ok := el.(map[string]any); ok && em["primary"] == true {
			out[getStr(em, "value")] = true
		}
	}
	return out
}

// onePrimary: an operation that makes a value primary makes the one that
// was primary before not primary (RFC 7643 2.4: at most one).
func onePrimary(c map[string]any, a *attr, before map[string]bool) error {
	if _, _, ok := a.sub("primary"); !ok {
		return nil
	}
	list := asList(c[a.Name])
	n := 0
	for _, el := range list {
		if em, ok := el.(map[string]any); ok && em["primary"] == true {
			n++
		}
	}
	if n <= 1 {
		return nil
	}
	for _, el := range list {
		if em, ok := el.(map[string]any); ok && em["primary"] == true && before[getStr(em, "value")] && n > 1 {
			delete(em, "primary")
			n--
		}
	}
	if n > 1 {
		return badValue("%s: at most one value may be primary", a.Name)
	}
	return nil
}
