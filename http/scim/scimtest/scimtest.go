// Package scimtest holds the request sequences that Okta and Microsoft
// Entra ID document for a SCIM 2.0 service provider, bodies verbatim, as
// tests a SCIM endpoint is put through: http/scim's own tests replay them
// against an in-memory Backend, the end-to-end tests (tests/) against the
// running service. A sequence checks the SCIM answers; what lies behind
// them (the Backend's calls, the service's users, roles and sessions) the
// caller checks in the sequence's hooks.
//
// It imports nothing of the service (not even http/scim, whose own tests
// import it) and is meant for tests only.
package scimtest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Request is one request of a sequence.
type Request struct {
	Method string
	// Path is relative to the SCIM base: "/Users?filter=…".
	Path string
	// ContentType is sent when not empty.
	ContentType string
	// Header holds more headers, set after the connection's bearer token:
	// an Authorization here replaces it.
	Header map[string]string
	Body   string
}

// Response is an answer.
type Response struct {
	Status int
	Header http.Header
	Raw    string
	// Body is the decoded JSON body (nil when there is none).
	Body map[string]any
}

// Endpoint is the SCIM endpoint under test.
type Endpoint struct {
	// Do sends a request with the connection's bearer token (failing the
	// test if it cannot be sent).
	Do func(Request) Response
	// Base is the SCIM base URL the endpoint announces in Location and
	// meta.location ("http://example.com/scim/v2").
	Base string
}

// IDs are the resources a sequence has created so far, for its hooks.
type IDs struct {
	User  string // the user the sequence works on
	Other string // a second user, where there is one
	Group string
}

// Unchanged is called before a request that must change nothing; the
// function it returns checks, after it, that nothing changed.
type Unchanged func() (check func())

func (e Endpoint) do(method, path, ct, body string) Response {
	return e.Do(Request{Method: method, Path: path, ContentType: ct, Body: body})
}

func call(hook func(IDs), ids IDs) {
	if hook != nil {
		hook(ids)
	}
}

// Want fails unless r has the status and, for a body, the SCIM media type.
func Want(t testing.TB, what string, r Response, status int) Response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, status, r.Raw)
	}
	if r.Raw != "" && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/scim+json") {
		t.Fatalf("%s: Content-Type %q", what, r.Header.Get("Content-Type"))
	}
	return r
}

// WantError fails unless r is a SCIM error (RFC 7644 3.12) with the status
// and scimType ("" for none), and nothing else in it.
func WantError(t testing.TB, what string, r Response, status int, scimType string) {
	t.Helper()
	Want(t, what, r, status)
	var body struct {
		Schemas  []string `json:"schemas"`
		Status   string   `json:"status"`
		ScimType string   `json:"scimType"`
		Detail   string   `json:"detail"`
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(r.Raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("%s: not a SCIM error: %s (%v)", what, r.Raw, err)
	}
	if !slices.Equal(body.Schemas, []string{errorSchema}) || body.Status != strconv.Itoa(status) ||
		body.ScimType != scimType || body.Detail == "" {
		t.Fatalf("%s: SCIM error %s, want status %d scimType %q", what, r.Raw, status, scimType)
	}
}

// At returns the value at a path of object keys and list indexes in a
// decoded JSON document (nil when absent).
func At(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// Strings returns a decoded JSON list as strings ("" for an element that
// is not one; nil when v is not a list).
func Strings(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func count(v any) int {
	l, _ := v.([]any)
	return len(l)
}

const (
	listSchema       = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	errorSchema      = "urn:ietf:params:scim:api:messages:2.0:Error"
	userSchema       = "urn:ietf:params:scim:schemas:core:2.0:User"
	groupSchema      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	enterpriseSchema = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	scimJSON         = "application/scim+json"
)
