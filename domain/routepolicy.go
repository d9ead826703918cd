package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrInvalidPolicy is wrapped by every error of ParsePolicy and NewPolicy.
var ErrInvalidPolicy = errors.New("domain: invalid route policy")

// RouteRule maps the resources below one prefix to the permissions they need.
// Prefix is one or more path segments below /api/v1/tenants/{tenant}/
// ("nodes", "reports/exports"); it matches whole segments only, so "nodes"
// matches "nodes" and "nodes/n-1" but never "nodesx".
type RouteRule struct {
	Prefix string
	Read   Permission // GET and HEAD
	Write  Permission // every other method
}

type compiledRule struct {
	RouteRule
	segs []string
}

// Policy decides which permission a request to a tenant resource needs: the
// first rule whose prefix matches, else admin:*. It is immutable and safe for
// concurrent use. The zero Policy has no rules: everything needs admin:*.
type Policy struct {
	rules []compiledRule
}

// Fallback is what a resource that no rule matches needs.
const Fallback = AdminAll

// DefaultPolicy is the route table of the contract:
//
//	/nodes/**     GET nodes:read     | writes nodes:write
//	/findings/**  GET findings:read  | writes findings:write
//	/jobs/**      GET jobs:read      | writes jobs:write
//	/reports/**   reports:read for every method
//	anything else admin:*
func DefaultPolicy() Policy {
	p, err := NewPolicy([]RouteRule{
		{Prefix: "nodes", Read: NodesRead, Write: NodesWrite},
		{Prefix: "findings", Read: FindingsRead, Write: FindingsWrite},
		{Prefix: "jobs", Read: JobsRead, Write: JobsWrite},
		{Prefix: "reports", Read: ReportsRead, Write: ReportsRead},
	})
	if err != nil {
		panic(err) // the table above is valid
	}
	return p
}

// defaultPolicy serves RoutePermission (see policy.go).
var defaultPolicy = DefaultPolicy()

// NewPolicy validates rules (prefixes, permission names, no rule hidden by an
// earlier one) and returns the policy, reporting every problem at once.
func NewPolicy(rules []RouteRule) (Policy, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	out := Policy{rules: make([]compiledRule, 0, len(rules))}
	for i, r := range rules {
		segs, err := prefixSegments(r.Prefix)
		if err != nil {
			bad("rules[%d].prefix %q: %v", i, r.Prefix, err)
		}
		for _, f := range []struct {
			name string
			p    Permission
		}{{"read", r.Read}, {"write", r.Write}} {
			if f.p == "" {
				bad("rules[%d].%s: required", i, f.name)
			} else if _, err := ParsePermission(string(f.p)); err != nil {
				bad("rules[%d].%s: %w", i, f.name, err)
			}
		}
		if segs == nil {
			continue
		}
		for j, earlier := range out.rules {
			if earlier.segs == nil {
				continue
			}
			if hasSegmentPrefix(segs, earlier.segs) {
				bad("rules[%d].prefix %q: never matches, rules[%d] (prefix %q) comes first and matches everything below it",
					i, r.Prefix, j, earlier.Prefix)
				break
			}
			// "reports/schedules.json" or "Reports" after "reports/schedules"
			// or "reports": the earlier rule decides them first — admin:*, as
			// a format suffix or a letter case of its prefix (Permission) —
			// so the later one would never decide anything (outside check 18z).
			if matchResource(strings.Join(segs, "/"), earlier.segs) == matchFolded {
				bad("rules[%d].prefix %q: never matches, rules[%d] (prefix %q) comes first and decides it as a letter case or a format suffix of its own prefix (admin:*): put rules[%d] before it",
					i, r.Prefix, j, earlier.Prefix, i)
				break
			}
		}
		r.Prefix = strings.Join(segs, "/")
		out.rules = append(out.rules, compiledRule{RouteRule: r, segs: segs})
	}
	if len(errs) > 0 {
		return Policy{}, fmt.Errorf("%w: %w", ErrInvalidPolicy, errors.Join(errs...))
	}
	return out, nil
}

// prefixSegments splits a rule prefix: segments of unreserved URL characters
// (letters, digits, "-", ".", "_", "~"), never "." or "..", one leading or
// trailing slash tolerated.
func prefixSegments(prefix string) ([]string, error) {
	p := strings.TrimSuffix(strings.TrimPrefix(prefix, "/"), "/")
	if p == "" {
		return nil, errors.New("must name at least one path segment")
	}
	segs := strings.Split(p, "/")
	for _, s := range segs {
		switch {
		case s == "":
			return nil, errors.New("empty path segment")
		case s == "." || s == "..":
			return nil, fmt.Errorf("%q is not a path segment", s)
		}
		for _, c := range s {
			if !unreserved(c) {
				return nil, fmt.Errorf("character %q: want letters, digits, '-', '.', '_' or '~'", c)
			}
		}
	}
	return segs, nil
}

func unreserved(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// Rules returns the rules in the order they are tried.
func (p Policy) Rules() []RouteRule {
	out := make([]RouteRule, len(p.rules))
	for i, r := range p.rules {
		out[i] = r.RouteRule
	}
	return out
}

// Permission returns the permission that method needs on resource, the path
// below /api/v1/tenants/{tenant}/ ("nodes/n-1"). GET and HEAD read; every other
// method writes. Prefixes match with letter case as written; a resource that
// would match a rule's prefix only if case were ignored ("Nodes/n-1") or a
// segment's format suffix dropped ("reports/schedules.json" for the rule
// "reports/schedules") needs admin:*, since a resource service that ignores
// case, or reads a suffix as the answer's format, serves it as that rule's. The resource is expected clean (the HTTP layer decodes and
// cleans the path first); anything that is not - an empty, "." or ".." segment
// (also "..;x" and percent-encoded dots), a backslash or a control character -
// needs admin:*, so an unclean path is never authorized by a prefix it would
// not keep after cleaning. One leading and one trailing slash are tolerated.
func (p Policy) Permission(method, resource string) Permission {
	if len(p.rules) == 0 {
		return Fallback
	}
	read := method == "GET" || method == "HEAD"
	for _, r := range p.rules {
		switch matchResource(resource, r.segs) {
		case matchNone:
			continue
		case matchFolded:
			// "reports/SCHEDULES": a resource service that routes without
			// regard to case (Express, ASP.NET, Fiber by default) serves
			// reports/schedules, which an earlier, stricter rule may name.
			return Fallback
		}
		if !cleanResource(resource) {
			return Fallback
		}
		if read {
			return r.Read
		}
		return r.Write
	}
	return Fallback
}

const (
	matchNone   = iota
	matchExact  // the first segments of the resource are the rule's
	matchFolded // they are only when letter case is ignored
)

// matchResource reports whether the first segments of resource are segs,
// exactly or only when letter case is ignored or a segment's format suffix
// dropped ("schedules.json", "schedules."): Rails' "(.:format)", Django REST
// framework's format suffixes and Spring MVC's suffix pattern match serve
// such a segment as the rule's.
func matchResource(resource string, segs []string) int {
	rest := strings.TrimPrefix(resource, "/")
	m := matchExact
	for _, s := range segs {
		seg, after, found := strings.Cut(rest, "/")
		if seg != s {
			if !strings.EqualFold(seg, s) && !suffixed(seg, s) {
				return matchNone
			}
			m = matchFolded
		}
		if !found {
			rest = ""
			continue
		}
		rest = after
	}
	return m
}

// suffixed reports whether seg is s, letter case ignored, followed by a dot
// and anything.
func suffixed(seg, s string) bool {
	for i := 1; i < len(seg); i++ {
		if seg[i] == '.' && strings.EqualFold(seg[:i], s) {
			return true
		}
	}
	return false
}

// cleanResource reports whether resource is in canonical form: no empty
// segment (except one trailing slash), no dot segment in any disguise, no
// backslash and no control character.
func cleanResource(resource string) bool {
	r := strings.TrimPrefix(resource, "/")
	r = strings.TrimSuffix(r, "/")
	if r == "" {
		return true
	}
	for _, seg := range strings.Split(r, "/") {
		if seg == "" || dotSegment(seg) {
			return false
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; c < 0x20 || c == 0x7f || c == '\\' {
				return false
			}
		}
	}
	return true
}

// dotSegment reports whether seg is "." or "..", also with path parameters
// ("..;x", understood as ".." by some servers) or percent-encoded dots.
func dotSegment(seg string) bool {
	if i := strings.IndexByte(seg, ';'); i >= 0 {
		seg = seg[:i]
	}
	if strings.Contains(seg, "%") {
		seg = strings.ReplaceAll(strings.ToLower(seg), "%2e", ".")
	}
	return seg == "." || seg == ".."
}

func hasSegmentPrefix(segs, prefix []string) bool {
	if len(prefix) > len(segs) {
		return false
	}
	for i := range prefix {
		if segs[i] != prefix[i] {
			return false
		}
	}
	return true
}

// policyJSON is the file format of ParsePolicy.
type policyJSON struct {
	Description string      `json:"description,omitempty"`
	Rules       *[]ruleJSON `json:"rules"`
}

type ruleJSON struct {
	Prefix      string `json:"prefix"`
	Read        string `json:"read"`
	Write       string `json:"write"`
	Description string `json:"description,omitempty"`
}

// ParsePolicy reads a policy from JSON:
//
//	{"rules": [
//	  {"prefix": "nodes", "read": "nodes:read", "write": "nodes:write"},
//	  {"prefix": "reports", "read": "reports:read", "write": "reports:read"}
//	]}
//
// Rules are tried in order; a resource no rule matches needs admin:*. Every
// permission must be one of AllPermissions; unknown fields, a missing "rules"
// and trailing data are errors. Optional "description" fields (on the policy
// and on each rule) are for people.
func ParsePolicy(data []byte) (Policy, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var in policyJSON
	if err := dec.Decode(&in); err != nil {
		return Policy{}, fmt.Errorf("%w: %v", ErrInvalidPolicy, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Policy{}, fmt.Errorf("%w: unexpected data after the JSON object", ErrInvalidPolicy)
	}
	if in.Rules == nil {
		return Policy{}, fmt.Errorf("%w: rules: required (an array, [] for admin:* everywhere)", ErrInvalidPolicy)
	}
	rules := make([]RouteRule, len(*in.Rules))
	for i, r := range *in.Rules {
		rules[i] = RouteRule{Prefix: r.Prefix, Read: Permission(r.Read), Write: Permission(r.Write)}
	}
	return NewPolicy(rules)
}

// MarshalJSON writes the policy in the format of ParsePolicy.
func (p Policy) MarshalJSON() ([]byte, error) {
	rules := make([]ruleJSON, len(p.rules))
	for i, r := range p.rules {
		rules[i] = ruleJSON{Prefix: r.Prefix, Read: string(r.Read), Write: string(r.Write)}
	}
	return json.Marshal(policyJSON{Rules: &rules})
}
