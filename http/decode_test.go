package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// legacyDecodeBody is decodeBody as it was before outside check 18s: plain
// encoding/json, which takes the last of two members of one name and
// matches names in any letter case and with Unicode folding. The reference
// for what the strict decoder must still do alike.
func legacyDecodeBody(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return validation(legacyDescribeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return validation("request body must hold a single JSON object")
	}
	return nil
}

func legacyDescribeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "request body is empty"
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("%s: must be %s", typ.Field, typ.Type.String())
		}
		return "request body must be a JSON object"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ") + " is not allowed"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of input"
	}
	return "malformed JSON"
}

// bodyTypes are the types decodeJSON decodes, each as a new zero value:
// those of requestTypes (the OpenAPI test's table, which must hold every
// JSON body), once each. Every way their fields are built (embedded
// ssoOptions, pointers, slices of structs, json.RawMessage, omitempty) is
// among them.
var bodyTypes = func() []func() any {
	seen := map[reflect.Type]bool{}
	var out []func() any
	for _, op := range slices.Sorted(maps.Keys(requestTypes)) {
		for _, v := range requestTypes[op] {
			if t := reflect.TypeOf(v); !seen[t] {
				seen[t] = true
				out = append(out, func() any { return reflect.New(t).Interface() })
			}
		}
	}
	return out
}()

// TestDecodeBodyRefusesAmbiguousNames: a member named twice in one object,
// or named other than exactly as its field (letter case, U+017F "ſ" for
// "s", U+212A "K" for "k"), is refused naming it, at any depth: encoding/json
// took the last one and any case, so a proxy reading the first or the exact
// key saw another request (outside check 18s).
func TestDecodeBodyRefusesAmbiguousNames(t *testing.T) {
	const user = `"username":"fay","email":"fay@example.com","password":"correct-horse-battery"`
	for _, c := range []struct {
		what string
		dst  func() any
		body string
		want string
	}{
		{"role twice", func() any { return new(grantRoleRequest) }, `{"role":"viewer","role":"admin"}`, `"role" is given twice`},
		{"role twice, once escaped", func() any { return new(grantRoleRequest) }, `{"role":"viewer","r\u006fle":"admin"}`, `"role" is given twice`},
		{"ROLE after role", func() any { return new(grantRoleRequest) }, `{"role":"viewer","ROLE":"editor"}`, `unknown field "ROLE" is not allowed`},
		{"Role alone", func() any { return new(grantRoleRequest) }, `{"Role":"editor"}`, `unknown field "Role" is not allowed`},
		{"roles with a long s", func() any { return new(createUserRequest) }, `{` + user + `,"role\u017f":["admin"]}`, `unknown field "roleſ" is not allowed`},
		{"link_by_email with a Kelvin sign", func() any { return new(oidcRequest) }, `{"name":"corp","issuer":"https://idp","client_id":"c","client_secret":"s","lin\u212a_by_email":true}`, "unknown field \"lin\u212a_by_email\" is not allowed"},
		{"allowed_ips then null", func() any { return new(createKeyRequest) }, `{"name":"k1","tenants":["prod"],"permissions":["nodes:read"],"allowed_ips":["10.9.9.9/32"],"allowed_ips":null}`, `"allowed_ips" is given twice`},
		{"username twice", func() any { return new(loginRequest) }, `{"username":"nobody","username":"alice","password":"x"}`, `"username" is given twice`},
		{"USERNAME after username", func() any { return new(loginRequest) }, `{"username":"nobody","USERNAME":"alice","password":"x"}`, `unknown field "USERNAME" is not allowed`},
		{"Tenant after tenant", func() any { return new(loginRequest) }, `{"username":"alice","password":"x","tenant":"prod","Tenant":""}`, `unknown field "Tenant" is not allowed`},
		{"in a tenants item", func() any { return new(createUserRequest) }, `{` + user + `,"tenants":[{"id":"prod","role":"viewer","role":"admin"}]}`, `"role" is given twice`},
		{"case in a second tenants item", func() any { return new(createUserRequest) }, `{` + user + `,"tenants":[{"id":"prod","role":"viewer"},{"ID":"staging","role":"viewer"}]}`, `unknown field "ID" is not allowed`},
		{"in a role mapping", func() any { return new(oktaRequest) }, `{"domain":"d","client_id":"c","client_secret":"s","role_mappings":[{"group":"g","tenant":"prod","role":"viewer","tenant":"staging"}]}`, `"tenant" is given twice`},
		{"embedded option twice", func() any { return new(azureRequest) }, `{"tenant_id":"t","client_id":"c","client_secret":"s","trust_idp_mfa":false,"trust_idp_mfa":true}`, `"trust_idp_mfa" is given twice`},
		{"inside a raw credential", func() any { return new(passkeyTokenRequest) }, `{"passkey_token":"p","credential":{"id":"a","id":"b"}}`, `"id" is given twice`},
		{"pointer field twice", func() any { return new(policyRequest) }, `{"required":true,"required":false}`, `"required" is given twice`},
		{"a name twice, second empty", func() any { return new(credentialCheckRequest) }, `{"token":"t","token":""}`, `"token" is given twice`},
	} {
		err := decodeBody([]byte(c.body), c.dst())
		var e *Error
		if !errors.As(err, &e) || e.Status != 400 || e.Code != "VALIDATION_ERROR" || e.Message != c.want {
			t.Errorf("%s: %v, want 400 VALIDATION_ERROR %q", c.what, err, c.want)
		}
	}
}

// TestDecodeBodyAsBefore: bodies without a name twice or in another case
// decode to what encoding/json made of them, and a refused one gets the
// message it got: malformed, empty, not an object, two values, a field of
// the wrong type (named with its path), an unknown field; invalid UTF-8 and
// a lone surrogate escape read as U+FFFD (the password policy names it).
func TestDecodeBodyAsBefore(t *testing.T) {
	for _, body := range []string{
		`{"username":"alice","password":"pw","tenant":"prod"}`, `{"username":"alice","password":"pw"}`,
		`{"username":"a","email":"a@example.com","password":"pw","roles":["admin"],"tenants":[{"id":"prod","role":"viewer"},{"id":"staging","role":"admin"}]}`,
		`{"name":"k","tenants":["prod"],"permissions":["nodes:read"],"expires_at":"2030-01-01T00:00:00Z","allowed_ips":["10.0.0.0/8"]}`,
		`{"name":"k","tenants":null,"permissions":null,"expires_at":null,"allowed_ips":null}`,
		`{"tenants":["prod"],"group_mappings":[{"group":"g","tenant":"prod","role":"viewer"}],"platform":false}`,
		`{"domain":"d","client_id":"c","client_secret":"s","issuer":"i","groups_claim":"groups","role_mappings":[{"group":"g","tenant":"prod","role":"admin"}],"link_by_email":true,"trust_idp_mfa":true}`,
		`{"tenant_id":"t","client_id":"c","client_secret":"s","allowed_tenants":["a","b"]}`,
		`{"entity_id":"e","sso_url":"https://idp/sso","certificate":"MII"}`,
		`{"mfa_token":"m","code":"123456","webauthn":{"id":"x","response":{"clientDataJSON":"eyJ9"}}}`,
		`{"passkey_token":"p","credential":{"id":"x","type":"public-key"}}`, `{"registration_token":"r","name":"n","credential":[1,2]}`,
		`{"required":true}`, `{"required":null}`, `{"algorithm":"EdDSA"}`, `{"token":"t","key":"k","at":"2030-01-01T00:00:00Z"}`,
		`{"password":"new","current_password":"old"}`, `{"refresh_token":"r"}`, `{"token":"t","token_type_hint":"refresh_token"}`,
		"{\"password\":\"zq7k-\xff-strong\"}", `{"password":"zq7k-\udc00-strong"}`, `{"code":"\u0031\u0032"}`,
		// refused alike
		``, `   `, `{`, `{"role":`, `{"role":"admin",}`, `{"role" "admin"}`, `["admin"]`, `"admin"`, `null`, `{} {}`, `{}x`,
		`{"username":1}`, `{"roles":"admin"}`, `{"roles":[1]}`, `{"tenants":[{"id":"prod","role":3}]}`, `{"tenants":{"id":"x"}}`,
		`{"required":"yes"}`, `{"platform":1}`, `{"expires_at":5}`, `{"remember_me":true}`, `{"tenants":[{"id":"prod","since":"now"}]}`,
		`{"username":1,"x":`, `{"x":1,"username":1}`, `{"webauthn":{"a":1`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	} {
		for _, newDst := range bodyTypes {
			got, want := newDst(), newDst()
			err, wantErr := decodeBody([]byte(body), got), legacyDecodeBody([]byte(body), want)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) || wantErr == nil && !reflect.DeepEqual(got, want) {
				t.Errorf("%T %.60q: %v %+v; encoding/json: %v %+v", got, body, err, got, wantErr, want)
			}
		}
	}
}

// FuzzDecodeBodyAsEncodingJSON: on a body in which no object names a member
// twice (in any case) or a field in another case, the strict decoder and
// encoding/json agree: the same value, or the same message. A body with
// such a name is never taken the way encoding/json took it.
func FuzzDecodeBodyAsEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"username":"a","password":"b"}`, `{"username":"a","username":"b"}`, `{"USERNAME":"a"}`,
		`{"username":"a","email":"e","password":"p","tenants":[{"id":"prod","role":"viewer"}],"roles":["admin"]}`,
		`{"name":"k","tenants":["prod"],"permissions":null,"allowed_ips":["10.0.0.0/8"]}`,
		`{"mfa_token":"m","webauthn":{"id":"x"}}`, `{"domain":"d","role_mappings":[{"group":"g"}],"link_by_email":true}`,
		`{"required":true}`, `{"tenants":[{"id":1}]}`, `{"role\u017f":[]}`, "{\"password\":\"\xff\"}", `{} {}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		clean := unambiguousNames(body)
		for _, newDst := range bodyTypes {
			got, want := newDst(), newDst()
			err, wantErr := decodeBody(body, got), legacyDecodeBody(body, want)
			if err != nil {
				if e, ok := err.(*Error); !ok || e.Status != 400 || e.Code != "VALIDATION_ERROR" || e.Message == "" {
					t.Fatalf("decode error %#v is not a contract 400", err)
				}
			}
			switch {
			case clean && (fmt.Sprint(err) != fmt.Sprint(wantErr) || wantErr == nil && !reflect.DeepEqual(got, want)):
				t.Fatalf("%T %q: %v %+v; encoding/json: %v %+v", got, body, err, got, wantErr, want)
			case !clean && err == nil && !reflect.DeepEqual(got, want):
				t.Fatalf("%T %q: taken as %+v, encoding/json %+v", got, body, got, want)
			}
		}
	})
}

// unambiguousNames reports whether no object of body's first value names a
// member twice, in the same or another case (as encoding/json folds them),
// and no name is a request field's name in another case.
func unambiguousNames(body []byte) bool {
	known := map[string]bool{}
	for _, newDst := range bodyTypes {
		jsonNames(reflect.TypeOf(newDst()).Elem(), known)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	type level struct {
		names  []string // nil for an array
		object bool
		isName bool
	}
	var stack []*level
	for {
		tok, err := dec.Token()
		if err != nil {
			return true // the end, or malformed: both decoders say so first
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{':
				stack = append(stack, &level{object: true, isName: true})
			case '[':
				stack = append(stack, &level{})
			default:
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					return true // the first value is read
				}
			}
			if d == '}' || d == ']' {
				if top := stack[len(stack)-1]; top.object {
					top.isName = true
				}
			}
			continue
		}
		if len(stack) == 0 {
			return true
		}
		top := stack[len(stack)-1]
		if !top.object {
			continue
		}
		if !top.isName {
			top.isName = true
			continue
		}
		name := tok.(string)
		for _, seen := range top.names {
			if strings.EqualFold(seen, name) {
				return false
			}
		}
		for k := range known {
			if strings.EqualFold(k, name) && k != name {
				return false
			}
		}
		top.names = append(top.names, name)
		top.isName = false
	}
}

// jsonNames adds the JSON names of t's fields, at any depth, to names.
func jsonNames(t reflect.Type, names map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			jsonNames(f.Type, names)
			continue
		}
		if name != "" && name != "-" {
			names[name] = true
		}
		jsonNames(f.Type, names)
	}
}
