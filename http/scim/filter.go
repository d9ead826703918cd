package scim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The comparison operators of RFC 7644 3.4.2.2.
const (
	OpEq = "eq"
	OpNe = "ne"
	OpCo = "co"
	OpSw = "sw"
	OpEw = "ew"
	OpGt = "gt"
	OpGe = "ge"
	OpLt = "lt"
	OpLe = "le"
	OpPr = "pr"
)

// Limits on what the parser takes, so a request cannot make it work hard.
const (
	maxFilterLen   = 4096
	maxFilterDepth = 32
)

// Filter is a parsed SCIM filter (RFC 7644 3.4.2.2). Once the handler has
// checked it against a resource type, every AttrPath in it holds the
// attribute's canonical name, and URI is empty for core attributes and the
// extension's URN for extension attributes.
type Filter struct {
	Expr Expr
	rt   *resourceType // set once checked against a resource type
}

// Expr is a node of a filter: *Compare, *And, *Or, *Not or *ValuePath.
type Expr interface{ isExpr() }

// AttrPath names an attribute: [URI:]Name[.Sub].
type AttrPath struct {
	URI, Name, Sub string
}

func (p AttrPath) String() string {
	s := p.Name
	if p.URI != "" {
		s = p.URI + ":" + s
	}
	if p.Sub != "" {
		s += "." + p.Sub
	}
	return s
}

// Compare is `attrPath op value`, or `attrPath pr` (Value nil). Value is a
// string, a bool, a float64 or nil (null).
type Compare struct {
	Path  AttrPath
	Op    string
	Value any
}

// And is `Left and Right`.
type And struct{ Left, Right Expr }

// Or is `Left or Right`.
type Or struct{ Left, Right Expr }

// Not is `not (X)`.
type Not struct{ X Expr }

// ValuePath is `attr[filter]`: some value of the multi-valued attribute
// Path matches Filter, whose paths name sub-attributes. The form
// `emails[type eq "work"].value eq "x"` parses as
// `emails[type eq "work" and value eq "x"]`, which means the same.
type ValuePath struct {
	Path   AttrPath
	Filter Expr
}

func (*Compare) isExpr()   {}
func (*And) isExpr()       {}
func (*Or) isExpr()        {}
func (*Not) isExpr()       {}
func (*ValuePath) isExpr() {}

func (f *Filter) String() string {
	if f == nil || f.Expr == nil {
		return ""
	}
	return exprString(f.Expr)
}

func exprString(e Expr) string {
	switch e := e.(type) {
	case *Compare:
		if e.Op == OpPr {
			return e.Path.String() + " pr"
		}
		var v string
		switch x := e.Value.(type) {
		case string:
			b, err := json.Marshal(x)
			if err != nil { // a string always marshals
				return e.Path.String()
			}
			v = string(b)
		case nil:
			v = "null"
		case float64:
			v = strconv.FormatFloat(x, 'g', -1, 64)
		default:
			v = fmt.Sprint(x)
		}
		return e.Path.String() + " " + e.Op + " " + v
	case *And:
		return group(e.Left, true) + " and " + group(e.Right, true)
	case *Or:
		return exprString(e.Left) + " or " + exprString(e.Right)
	case *Not:
		return "not (" + exprString(e.X) + ")"
	case *ValuePath:
		return e.Path.String() + "[" + exprString(e.Filter) + "]"
	}
	return ""
}

func group(e Expr, inAnd bool) string {
	if _, ok := e.(*Or); ok && inAnd {
		return "(" + exprString(e) + ")"
	}
	return exprString(e)
}

// ParseFilter parses a filter. Operators and the keywords and, or, not,
// true, false, null are matched without regard to case; strings are JSON
// strings. Two leniencies, for what identity providers send: a value may
// be a bare word (`externalId eq jyoung`, as in Microsoft's documentation),
// and `attr[filter].sub op value` is accepted. Errors are *Error with
// scimType invalidFilter.
func ParseFilter(s string) (*Filter, error) {
	if len(s) > maxFilterLen {
		return nil, badFilter("filter is longer than %d bytes", maxFilterLen)
	}
	p, err := newParser(s)
	if err != nil {
		return nil, badFilter("%s", err.Error())
	}
	e, err := p.or(0, false)
	if err != nil {
		return nil, badFilter("%s", err.Error())
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, badFilter("unexpected %s at offset %d", t, t.pos)
	}
	return &Filter{Expr: e}, nil
}

// Path is a parsed PATCH path (RFC 7644 3.5.2): an attribute, optionally
// with a value filter and a sub-attribute after it.
type Path struct {
	Attr   AttrPath
	Filter Expr   // nil without [ ]
	Sub    string // the sub-attribute after [ ], if any
}

func (p Path) String() string {
	s := p.Attr.String()
	if p.Filter != nil {
		s += "[" + exprString(p.Filter) + "]"
	}
	if p.Sub != "" {
		s += "." + p.Sub
	}
	return s
}

// ParsePath parses a PATCH path. Errors are *Error with scimType
// invalidPath.
func ParsePath(s string) (Path, error) {
	if len(s) > maxFilterLen {
		return Path{}, badPath("path is longer than %d bytes", maxFilterLen)
	}
	p, err := newParser(s)
	if err != nil {
		return Path{}, badPath("%s", err.Error())
	}
	t := p.next()
	if t.kind != tWord {
		return Path{}, badPath("a path starts with an attribute name")
	}
	ap, err := parseAttrPath(t.text)
	if err != nil {
		return Path{}, badPath("%s", err.Error())
	}
	out := Path{Attr: ap}
	if p.peek().kind == tLBrack {
		if ap.Sub != "" {
			return Path{}, badPath("a value filter follows a multi-valued attribute, not %q", ap.String())
		}
		p.next()
		f, err := p.or(1, true)
		if err != nil {
			return Path{}, badPath("%s", err.Error())
		}
		if t := p.next(); t.kind != tRBrack {
			return Path{}, badPath("expected ] at offset %d", t.pos)
		}
		out.Filter = f
		if t := p.peek(); t.kind == tWord && strings.HasPrefix(t.text, ".") {
			p.next()
			if !validName(t.text[1:]) {
				return Path{}, badPath("invalid sub-attribute %q", t.text[1:])
			}
			out.Sub = t.text[1:]
		}
	}
	if t := p.peek(); t.kind != tEOF {
		return Path{}, badPath("unexpected %s at offset %d", t, t.pos)
	}
	return out, nil
}

type tokenKind int

const (
	tEOF tokenKind = iota
	tWord
	tString
	tLParen
	tRParen
	tLBrack
	tRBrack
)

// punctuation is the tokens tLParen to tRBrack, in the order of their kinds.
const punctuation = "()[]"

type token struct {
	kind tokenKind
	text string // the word, or the decoded string
	pos  int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tString:
		return "string"
	case tWord:
		if len(t.text) > 40 {
			return fmt.Sprintf("%q", t.text[:40]+"…")
		}
		return fmt.Sprintf("%q", t.text)
	}
	return fmt.Sprintf("%q", punctuation[t.kind-tLParen])
}

type parser struct {
	toks []token
	i    int
}

func newParser(s string) (*parser, error) {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.IndexByte(punctuation, c) >= 0: // ( ) [ ]: tLParen … tRBrack, in that order
			toks = append(toks, token{tLParen + tokenKind(strings.IndexByte(punctuation, c)), s[i : i+1], i})
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at offset %d", i)
			}
			var v string
			if err := json.Unmarshal([]byte(s[i:j+1]), &v); err != nil {
				return nil, fmt.Errorf("invalid string at offset %d", i)
			}
			toks = append(toks, token{tString, v, i})
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()[]\"", rune(s[j])) {
				j++
			}
			toks = append(toks, token{tWord, s[i:j], i})
			i = j
		}
	}
	toks = append(toks, token{tEOF, "", len(s)})
	return &parser{toks: toks}, nil
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) keyword(kw string) bool {
	t := p.peek()
	return t.kind == tWord && strings.EqualFold(t.text, kw)
}

// or parses `and-expr *("or" and-expr)`. inValue: inside [ ], where a
// value filter may not hold another [ ].
func (p *parser) or(depth int, inValue bool) (Expr, error) {
	if depth > maxFilterDepth {
		return nil, fmt.Errorf("filter is nested deeper than %d", maxFilterDepth)
	}
	return p.chain("or", depth, inValue, p.and, func(l, r Expr) Expr { return &Or{l, r} })
}

func (p *parser) and(depth int, inValue bool) (Expr, error) {
	return p.chain("and", depth, inValue, p.unary, func(l, r Expr) Expr { return &And{l, r} })
}

// chain parses `operand *(kw operand)`, joined from the left.
func (p *parser) chain(kw string, depth int, inValue bool, operand func(int, bool) (Expr, error), join func(l, r Expr) Expr) (Expr, error) {
	l, err := operand(depth, inValue)
	if err != nil {
		return nil, err
	}
	for p.keyword(kw) {
		p.next()
		r, err := operand(depth, inValue)
		if err != nil {
			return nil, err
		}
		l = join(l, r)
	}
	return l, nil
}

func (p *parser) unary(depth int, inValue bool) (Expr, error) {
	t := p.peek()
	switch {
	case t.kind == tWord && strings.EqualFold(t.text, "not") && p.toks[p.i+1].kind == tLParen:
		p.next()
		p.next()
		e, err := p.parenthesized(depth, inValue)
		if err != nil {
			return nil, err
		}
		return &Not{e}, nil
	case t.kind == tLParen:
		p.next()
		return p.parenthesized(depth, inValue)
	case t.kind == tWord:
		return p.attrExp(depth, inValue)
	}
	return nil, fmt.Errorf("expected an attribute, ( or not at offset %d, got %s", t.pos, t)
}

// parenthesized parses `filter ")"`, after a "(".
func (p *parser) parenthesized(depth int, inValue bool) (Expr, error) {
	e, err := p.or(depth+1, inValue)
	if err != nil {
		return nil, err
	}
	if t := p.next(); t.kind != tRParen {
		return nil, fmt.Errorf("expected ) at offset %d, got %s", t.pos, t)
	}
	return e, nil
}

func (p *parser) attrExp(depth int, inValue bool) (Expr, error) {
	t := p.next()
	path, err := parseAttrPath(t.text)
	if err != nil {
		return nil, fmt.Errorf("offset %d: %v", t.pos, err)
	}
	if p.peek().kind == tLBrack {
		if inValue {
			return nil, fmt.Errorf("offset %d: a value filter cannot hold another [ ]", p.peek().pos)
		}
		if path.Sub != "" {
			return nil, fmt.Errorf("offset %d: [ ] follows a multi-valued attribute, not %q", p.peek().pos, path.String())
		}
		p.next()
		f, err := p.or(depth+1, true)
		if err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != tRBrack {
			return nil, fmt.Errorf("expected ] at offset %d, got %s", t.pos, t)
		}
		vp := &ValuePath{Path: path, Filter: f}
		if t := p.peek(); t.kind == tWord && strings.HasPrefix(t.text, ".") {
			p.next()
			sub := t.text[1:]
			if !validName(sub) {
				return nil, fmt.Errorf("offset %d: invalid sub-attribute %q", t.pos+1, sub)
			}
			cmp, err := p.comparison(AttrPath{Name: sub})
			if err != nil {
				return nil, err
			}
			vp.Filter = &And{f, cmp}
		}
		return vp, nil
	}
	return p.comparison(path)
}

func (p *parser) comparison(path AttrPath) (Expr, error) {
	t := p.next()
	if t.kind != tWord {
		return nil, fmt.Errorf("expected an operator after %q at offset %d, got %s", path.String(), t.pos, t)
	}
	op := strings.ToLower(t.text)
	switch op {
	case OpPr:
		return &Compare{Path: path, Op: OpPr}, nil
	case OpEq, OpNe, OpCo, OpSw, OpEw, OpGt, OpGe, OpLt, OpLe:
	default:
		return nil, fmt.Errorf("unknown operator %s at offset %d", t, t.pos)
	}
	v := p.next()
	switch v.kind {
	case tString:
		return &Compare{Path: path, Op: op, Value: v.text}, nil
	case tWord:
		switch strings.ToLower(v.text) {
		case "true":
			return &Compare{Path: path, Op: op, Value: true}, nil
		case "false":
			return &Compare{Path: path, Op: op, Value: false}, nil
		case "null":
			return &Compare{Path: path, Op: op, Value: nil}, nil
		case "and", "or", "not":
			return nil, fmt.Errorf("expected a value after %q %s at offset %d", path.String(), op, v.pos)
		}
		if isJSONNumber(v.text) {
			f, err := strconv.ParseFloat(v.text, 64)
			if err == nil {
				return &Compare{Path: path, Op: op, Value: f}, nil
			}
		}
		// A bare word: a string, as Microsoft's documentation writes
		// `externalId eq jyoung`; only of the characters of names, IDs
		// and addresses.
		if bareWord(v.text) {
			return &Compare{Path: path, Op: op, Value: v.text}, nil
		}
		return nil, fmt.Errorf("invalid value %s at offset %d: strings are written in double quotes", v, v.pos)
	}
	return nil, fmt.Errorf("expected a value after %q %s at offset %d, got %s", path.String(), op, v.pos, v)
}

func bareWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !(c >= '0' && c <= '9') && !strings.ContainsRune("-_.@+", rune(c)) {
			return false
		}
	}
	return s != ""
}

func isJSONNumber(s string) bool {
	var n json.Number
	return json.Unmarshal([]byte(s), &n) == nil
}

// parseAttrPath parses `[URI ":"] name ["." sub]`.
func parseAttrPath(s string) (AttrPath, error) {
	var p AttrPath
	rest := s
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		p.URI, rest = s[:i], s[i+1:]
		if p.URI == "" {
			return AttrPath{}, fmt.Errorf("invalid attribute %q", s)
		}
	}
	name, sub, hasSub := strings.Cut(rest, ".")
	if !validName(name) || (hasSub && !validName(sub)) {
		return AttrPath{}, fmt.Errorf("invalid attribute %q", truncate(s))
	}
	p.Name, p.Sub = name, sub
	return p, nil
}

// validName: ATTRNAME = ALPHA *(nameChar), and "$ref".
func validName(s string) bool {
	if s == "$ref" {
		return true
	}
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !(c >= '0' && c <= '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
