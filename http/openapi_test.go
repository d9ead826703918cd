package http

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gofiber/fiber/v2"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The OpenAPI document (openapi.json) is written by hand; these tests keep it
// true to the code. TestOpenAPIRoutes fails when a route is registered but
// not documented, or documented but not registered; TestOpenAPIRequestBodies
// and TestOpenAPIResponseBodies when a JSON field of a request or response
// type is renamed, added or removed without the document following. The
// end-to-end test (tests/openapi_test.go) validates real answers against it.

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	return doc
}

// TestOpenAPIValid: the document is valid OpenAPI 3 (kin-openapi's
// validation, which also checks every example against its schema).
func TestOpenAPIValid(t *testing.T) {
	doc := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not valid OpenAPI: %v", err)
	}
	declared := map[string]bool{}
	for _, tag := range doc.Tags {
		declared[tag.Name] = true
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			if op.OperationID == "" || op.Summary == "" || len(op.Tags) == 0 {
				t.Errorf("%s: needs an operationId, a summary and a tag", where)
			}
			for _, tag := range op.Tags {
				if !declared[tag] {
					t.Errorf("%s: tag %q is not declared", where, tag)
				}
			}
			if op.Security == nil {
				t.Errorf("%s: say which security applies (an empty list for none)", where)
			}
			has := func(status string) bool { return op.Responses.Value(status) != nil }
			if !has("500") {
				t.Errorf("%s: no 500 response", where)
			}
			if strings.HasPrefix(path, "/api/v1/") && !has("503") {
				t.Errorf("%s: every /api/v1 route answers 503 while the read models catch up", where)
			}
			if op.Security != nil && len(*op.Security) > 0 && !has("401") {
				t.Errorf("%s: authenticated, but no 401 response", where)
			}
			if op.RequestBody != nil && (!has("413") || (jsonBody(op) != nil && !has("400"))) {
				t.Errorf("%s: takes a body, so it answers 413 (and 400 for JSON)", where)
			}
		}
	}
}

// TestOpenAPIStrict: the document is valid by the OpenAPI Initiative's own
// JSON Schema for OpenAPI 3.0 (testdata/openapi-3.0-schema.json), which
// strict validators and code generators apply: kin-openapi's validation
// accepts, for instance, an empty "required" list, which JSON Schema draft-04
// (and so OpenAPI 3.0) forbids (outside check 13a).
func TestOpenAPIStrict(t *testing.T) {
	f, err := os.Open("testdata/openapi-3.0-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	meta, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("openapi-3.0-schema.json", meta); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("openapi-3.0-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(openAPIDocument))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(doc); err != nil {
		t.Fatalf("openapi.json is not valid by the OpenAPI 3.0 schema: %v", err)
	}
}

// TestOpenAPIAnyRequestStatuses: the answers the server gives before any
// route runs, or whatever the route (the router's and fasthttp's: an unknown
// path or method, a body or headers over the limit, a compressed body, a
// request it cannot parse, the read timeout), are listed in info.description with their codes,
// since no operation lists them (outside check 13a found 431 missing).
func TestOpenAPIAnyRequestStatuses(t *testing.T) {
	doc := loadOpenAPI(t)
	errs := []error{errMethodUnknown, errEncodedBody}
	for _, status := range []int{
		fiber.StatusBadRequest, fiber.StatusNotFound, fiber.StatusMethodNotAllowed, fiber.StatusRequestTimeout,
		fiber.StatusRequestEntityTooLarge, fiber.StatusRequestHeaderFieldsTooLarge, fiber.StatusInternalServerError,
	} {
		errs = append(errs, fiber.NewError(status))
	}
	for _, err := range errs {
		e, _ := toAPIError(err)
		if want := strconv.Itoa(e.Status) + " `" + e.Code + "`"; !strings.Contains(doc.Info.Description, want) {
			t.Errorf("info.description does not list %s (the answer to %v)", want, err)
		}
	}
}

// TestOpenAPIPathMatching: the router ignores a trailing slash and the
// letter case of a path (Fiber's StrictRouting and CaseSensitive are off, so
// /api/v1/users/ and /HEALTH answer as documented without): the document
// says so, since clients see such paths answered that no path of it names
// (outside check 13a).
func TestOpenAPIPathMatching(t *testing.T) {
	doc := loadOpenAPI(t)
	s := newRouteListingServer()
	for _, path := range []string{"/health/", "/HEALTH"} {
		res, err := s.App().Test(httptest.NewRequest("GET", path, nil))
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != fiber.StatusOK {
			t.Errorf("GET %s: %d, want /health's 200", path, res.StatusCode)
		}
	}
	cfg := s.App().Config()
	for _, c := range []struct {
		off    bool
		phrase string
	}{{!cfg.StrictRouting, "a trailing slash"}, {!cfg.CaseSensitive, "letter case"}} {
		if c.off && !strings.Contains(doc.Info.Description, c.phrase) {
			t.Errorf("info.description does not say that the router ignores %s", c.phrase)
		}
	}
}

// TestOpenAPIServed: GET /openapi.json answers the embedded document.
func TestOpenAPIServed(t *testing.T) {
	s := newRouteListingServer()
	res, err := s.App().Test(httptest.NewRequest("GET", "/openapi.json", nil))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != fiber.MIMEApplicationJSON || string(body) != string(openAPIDocument) {
		t.Fatalf("GET /openapi.json: %d %q, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(body))
	}
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil || v["openapi"] == nil {
		t.Fatalf("not an OpenAPI document: %v", err)
	}
}

// newRouteListingServer builds a server with every optional route switched
// on. Nothing is served, so collaborators the routes do not need at
// registration stay nil.
func newRouteListingServer() *Server {
	return New(Config{}, Deps{Metrics: NewMetrics()})
}

var (
	fiberParam = regexp.MustCompile(`:([A-Za-z0-9_]+)\??`)
	anyParam   = regexp.MustCompile(`\{[^}/]+\}`)
)

// openAPIPath turns a Fiber route into an OpenAPI path: ":param" becomes
// "{param}" and the "*" wildcard "{path}".
func openAPIPath(fiberPath string) string {
	p := fiberParam.ReplaceAllString(fiberPath, "{$1}")
	return strings.ReplaceAll(p, "*", "{path}")
}

// routeKey identifies a route by method and path shape: parameter names do
// not matter to clients (and OpenAPI forbids two paths that differ only in
// them, as POST /admin/sso/:type and GET /admin/sso/:provider would).
func routeKey(method, path string) string {
	return strings.ToUpper(method) + " " + anyParam.ReplaceAllString(path, "{}")
}

func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	documented := map[string]string{} // key -> "METHOD /path" as documented
	documentedPaths := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[routeKey(method, path)] = method + " " + path
		}
		documentedPaths[routeKey("", path)] = true
	}

	registered := map[string]string{}
	byPath := map[string]map[string]bool{}
	for _, r := range newRouteListingServer().App().GetRoutes(true) {
		if r.Method == "USE" { // middleware (GetRoutes(true) filters most)
			continue
		}
		p := openAPIPath(r.Path)
		if byPath[p] == nil {
			byPath[p] = map[string]bool{}
		}
		byPath[p][r.Method] = true
	}
	for p, methods := range byPath {
		for m := range methods {
			switch {
			case m == fiber.MethodHead && methods[fiber.MethodGet]:
				// Fiber registers HEAD with every GET; GET documents both.
			case m == fiber.MethodConnect:
				// OpenAPI has no CONNECT operation; the All() routes that
				// take it say so in their descriptions.
				if !documentedPaths[routeKey("", p)] {
					t.Errorf("registered but not in http/openapi.json: CONNECT %s (its path, at least)", p)
				}
			default:
				registered[routeKey(m, p)] = m + " " + p
			}
		}
	}
	if len(registered) < 40 {
		t.Fatalf("only %d routes found: is the route listing broken?", len(registered))
	}

	var missing, stale []string
	for k, r := range registered {
		if _, ok := documented[k]; !ok {
			missing = append(missing, r)
		}
	}
	for k, d := range documented {
		if _, ok := registered[k]; !ok {
			stale = append(stale, d)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	for _, r := range missing {
		t.Errorf("registered but not in http/openapi.json: %s", r)
	}
	for _, d := range stale {
		t.Errorf("in http/openapi.json but not registered: %s", d)
	}

	// Path parameters: the documented ones are those of the template.
	for path, item := range doc.Paths.Map() {
		want := anyParam.FindAllString(path, -1)
		for method, op := range item.Operations() {
			var got []string
			for _, pr := range append(slices.Clone(item.Parameters), op.Parameters...) {
				if pr.Value.In == openapi3.ParameterInPath {
					got = append(got, "{"+pr.Value.Name+"}")
				}
			}
			sort.Strings(want)
			sort.Strings(got)
			if !slices.Equal(want, got) {
				t.Errorf("%s %s: path parameters %v, template has %v", method, path, got, want)
			}
		}
	}
}

// requestTypes maps each operation taking a JSON body to the Go type(s) its
// handler decodes it into: for a oneOf body, one type per alternative, in
// order.
var requestTypes = map[string][]any{
	"login":                {loginRequest{}},
	"refresh":              {refreshRequest{}},
	"revoke":               {revokeRequest{}},
	"createUser":           {createUserRequest{}},
	"grantTenantRole":      {grantRoleRequest{}},
	"changePassword":       {passwordRequest{}},
	"createAPIKey":         {createKeyRequest{}},
	"configureSSOProvider": {oktaRequest{}, azureRequest{}, samlRequest{}, oidcRequest{}},
	"addSigningKey":        {addSigningKeyRequest{}},
	"retireSigningKey":     {retireSigningKeyRequest{}},
	"activateSigningKey":   {activateSigningKeyRequest{}},
	"checkCredential":      {credentialCheckRequest{}},
	"createSCIMConnection": {scimConnectionRequest{}},
	"updateSCIMConnection": {scimConnectionUpdateRequest{}},
	// MFA (mfa.go).
	"loginMFA":           {mfaTokenRequest{}},
	"loginPasskey":       {passkeyTokenRequest{}},
	"confirmTOTP":        {codeRequest{}},
	"registerPasskey":    {passkeyRegisterRequest{}},
	"setMFAPolicy":       {policyRequest{}},
	"setMFAPolicyTenant": {policyRequest{}},
}

// defaultedFields are request fields without omitempty that are optional all
// the same: their handler fills in a default. Every other request field
// without omitempty must be documented as required, and the others not.
var defaultedFields = map[string]bool{
	"addSigningKeyRequest.algorithm": true,
	"addSigningKeyRequest.signing":   true,
}

// responseTypes maps component schemas to the Go types the handlers encode.
var responseTypes = map[string]any{
	"Error":           errorBody{},
	"User":            userJSON{},
	"TenantRole":      tenantRoleJSON{},
	"LoginResponse":   loginResponse{},
	"RefreshResponse": refreshResponse{},
	"MeUser":          meResponse{},
	"MeTenant":        meTenantJSON{},
	"MeAPIKey":        keyMe{},
	"MeKeyTenant":     keyMeTenant{},
	"APIKey":          keyJSON{},
	"RoleMapping":     ssoRoleMappingJSON{},
	"SSOProvider":     ssoProviderJSON{},
	"SSOCertificate":  certJSON{},
	"SigningKey":      signingKeyJSON{},
	"JWK":             JWK{},
	// The audit API's (AuditEvent's data is any JSON object: checked end to
	// end, tests/audit_api_test.go).
	"Actor":           actorJSON{},
	"RequestInfo":     requestJSON{},
	"EventRef":        eventRefJSON{},
	"OwnerGrant":      ownerGrantJSON{},
	"Grant":           grantJSON{},
	"Principal":       principalJSON{},
	"TenantAccess":    tenantAccessJSON{},
	"PrincipalTenant": principalTenantJSON{},
	"PrincipalAccess": principalAccessJSON{},
	"Since":           sinceJSON{},
	"CredentialCheck": credentialCheckJSON{},
	// SCIM connections (the /scim/v2 answers are SCIM's own: checked end
	// to end, tests/scim_*_test.go).
	"SCIMConnection":     scimConnectionJSON{},
	"SCIMConnectionList": scimConnectionListJSON{},
	"SCIMGroupMapping":   roleMappingJSON{},
	// The sessions API's and the pages of lists.
	"Session":     sessionJSON{},
	"SessionPage": sessionsPageJSON{},
	"UserList":    usersPageJSON{},
	// MFA (mfa.go).
	"MFAStatus": mfaStatusJSON{},
	"Passkey":   passkeyJSON{},
	"MFAPolicy": policyJSON{},
}

func jsonBody(op *openapi3.Operation) *openapi3.SchemaRef {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return nil
	}
	mt := op.RequestBody.Value.Content.Get(fiber.MIMEApplicationJSON)
	if mt == nil {
		return nil
	}
	return mt.Schema
}

func TestOpenAPIRequestBodies(t *testing.T) {
	doc := loadOpenAPI(t)
	seen := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			schema := jsonBody(op)
			if schema == nil {
				continue
			}
			where := method + " " + path + " (" + op.OperationID + ")"
			types, ok := requestTypes[op.OperationID]
			if !ok {
				t.Errorf("%s takes a JSON body: add its Go request type to requestTypes", where)
				continue
			}
			seen[op.OperationID] = true
			alts := openapi3.SchemaRefs{schema}
			if len(schema.Value.OneOf) > 0 {
				alts = schema.Value.OneOf
			}
			if len(alts) != len(types) {
				t.Errorf("%s: %d schemas, %d Go types", where, len(alts), len(types))
				continue
			}
			for i, alt := range alts {
				compareSchema(t, where, alt.Value, reflect.TypeOf(types[i]), true)
			}
		}
	}
	for id := range requestTypes {
		if !seen[id] {
			t.Errorf("requestTypes: no operation %q with a JSON body", id)
		}
	}
}

func TestOpenAPIResponseBodies(t *testing.T) {
	doc := loadOpenAPI(t)
	for name, v := range responseTypes {
		ref := doc.Components.Schemas[name]
		if ref == nil {
			t.Errorf("components.schemas.%s is missing", name)
			continue
		}
		compareSchema(t, "components.schemas."+name, ref.Value, reflect.TypeOf(v), false)
	}
}

type jsonField struct {
	typ       reflect.Type
	omitempty bool
}

// jsonFields lists the JSON fields of a struct as encoding/json sees them
// (embedded structs without a tag are flattened).
func jsonFields(t reflect.Type) map[string]jsonField {
	out := map[string]jsonField{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = jsonField{typ: f.Type, omitempty: strings.Contains(","+opts+",", ",omitempty,")}
	}
	return out
}

// compareSchema checks that schema describes Go type typ: an object has
// exactly the struct's JSON fields, requires those without omitempty, and
// rejects other properties; arrays and nested objects are compared in turn.
// In an answer (request false), a field that is a pointer without omitempty
// is nullable: it is encoded as null when unset. In a request, such a
// pointer only tells an absent field from a zero one, and the handler
// refuses null as it refuses absence (setMFAPolicy's "required"): never
// nullable there (outside check 13a found {"required": null} documented
// but answered 400).
func compareSchema(t *testing.T, where string, schema *openapi3.Schema, typ reflect.Type, request bool) {
	t.Helper()
	schema = resolveAllOf(schema)
	if typ == reflect.TypeFor[json.RawMessage]() { // passed on as it is: any JSON object (a WebAuthn credential)
		if schema.Type == nil || !schema.Type.Is("object") || schema.AdditionalProperties.Has == nil || !*schema.AdditionalProperties.Has {
			t.Errorf("%s: json.RawMessage wants an object schema with additionalProperties true", where)
		}
		return
	}
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	want := map[reflect.Kind]string{
		reflect.String: "string", reflect.Bool: "boolean", reflect.Slice: "array", reflect.Struct: "object",
		reflect.Int: "integer", reflect.Int64: "integer", reflect.Uint64: "integer",
	}[typ.Kind()]
	if want == "" {
		t.Errorf("%s: Go kind %s not handled", where, typ.Kind())
		return
	}
	if schema.Type == nil || !schema.Type.Is(want) {
		t.Errorf("%s: type %v, Go type %s wants %s", where, schema.Type, typ, want)
		return
	}
	switch typ.Kind() {
	case reflect.Slice:
		if schema.Items == nil {
			t.Errorf("%s: array without items", where)
			return
		}
		compareSchema(t, where+"[]", schema.Items.Value, typ.Elem(), request)
	case reflect.Struct:
		fields := jsonFields(typ)
		var goNames, docNames, goRequired []string
		for name, f := range fields {
			goNames = append(goNames, name)
			if !f.omitempty && !defaultedFields[typ.Name()+"."+name] {
				goRequired = append(goRequired, name)
			}
		}
		for name := range schema.Properties {
			docNames = append(docNames, name)
		}
		docRequired := slices.Clone(schema.Required)
		for _, l := range [][]string{goNames, docNames, goRequired, docRequired} {
			sort.Strings(l)
		}
		if !slices.Equal(goNames, docNames) {
			t.Errorf("%s: properties %v, but %s has the JSON fields %v", where, docNames, typ, goNames)
		}
		if !slices.Equal(goRequired, docRequired) {
			t.Errorf("%s: required %v, but the fields of %s without omitempty are %v", where, docRequired, typ, goRequired)
		}
		if ap := schema.AdditionalProperties.Has; ap == nil || *ap {
			t.Errorf("%s: additionalProperties must be false (the server decodes with DisallowUnknownFields and answers no other fields)", where)
		}
		for name, f := range fields {
			prop := schema.Properties[name]
			if prop == nil {
				continue
			}
			nullable := !request && f.typ.Kind() == reflect.Pointer && !f.omitempty
			if nullable != resolveAllOf(prop.Value).Nullable {
				t.Errorf("%s.%s: nullable %v, want %v (Go %s, omitempty %v)", where, name, prop.Value.Nullable, nullable, f.typ, f.omitempty)
			}
			compareSchema(t, where+"."+name, prop.Value, f.typ, request)
		}
	}
}

// resolveAllOf returns the one schema behind {"allOf": [$ref]} (a $ref with a
// description of its own), else schema.
func resolveAllOf(s *openapi3.Schema) *openapi3.Schema {
	if s.Type == nil && len(s.AllOf) == 1 {
		return s.AllOf[0].Value
	}
	return s
}

// TestOpenAPISeedExamples: the product documentation's examples are in the
// document: requests as written, responses with at least the fields and
// values it shows (the service answers more fields than the seed lists).
func TestOpenAPISeedExamples(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	seedUser := `{"id": "user-123", "username": "your-username", "email": "you@company.com", "roles": ["admin"]}`
	tests := []struct {
		keys  []string // into the document
		seed  string
		exact bool
	}{
		{[]string{"paths", "/api/v1/auth/token", "post", "requestBody", "content", "application/json", "examples", "seed", "value"},
			`{"username": "your-username", "password": "your-password"}`, true},
		{[]string{"paths", "/api/v1/auth/token", "post", "responses", "200", "content", "application/json", "example"},
			`{"token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...", "expires_at": "2024-03-16T10:00:00Z",
			  "refresh_token": "dGhpcyBpcyBhIHJlZnJlc2ggdG9rZW4...", "user": ` + seedUser + `}`, false},
		{[]string{"paths", "/api/v1/auth/refresh", "post", "requestBody", "content", "application/json", "example"},
			`{"refresh_token": "dGhpcyBpcyBhIHJlZnJlc2ggdG9rZW4..."}`, true},
		{[]string{"paths", "/api/v1/auth/refresh", "post", "responses", "200", "content", "application/json", "example"},
			`{"token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...", "expires_at": "2024-03-16T11:00:00Z"}`, true},
		{[]string{"paths", "/api/v1/api-keys", "post", "requestBody", "content", "application/json", "examples", "seed", "value"},
			`{"name": "ci-cd-integration", "tenants": ["my-tenant"], "permissions": ["nodes:read", "findings:read"],
			  "expires_at": "2025-03-16T00:00:00Z"}`, true},
		{[]string{"paths", "/api/v1/api-keys", "post", "requestBody", "content", "application/json", "examples", "ipAllowlist", "value"},
			`{"name": "restricted-key", "allowed_ips": ["10.0.0.0/8", "192.168.1.100"]}`, true},
		{[]string{"paths", "/api/v1/api-keys", "post", "responses", "201", "content", "application/json", "example"},
			`{"id": "key-abc123", "name": "ci-cd-integration", "key": "ic_live_abc123xyz789...",
			  "created_at": "2024-03-16T00:00:00Z", "expires_at": "2025-03-16T00:00:00Z"}`, false},
		{[]string{"components", "responses", "Unauthorized", "content", "application/json", "examples", "token", "value"},
			`{"error": {"code": "UNAUTHORIZED", "message": "Invalid or expired token"}}`, true},
		{[]string{"components", "responses", "Forbidden", "content", "application/json", "examples", "permission", "value"},
			`{"error": {"code": "FORBIDDEN", "message": "Insufficient permissions"}}`, true},
		{[]string{"paths", "/api/v1/admin/sso/{provider}", "post", "requestBody", "content", "application/json", "examples", "okta", "value"},
			`{"domain": "your-company.okta.com", "client_id": "0oaxxxxxxxxxxxxx", "client_secret": "xxxxxxxxxxxxxxxxxxxxxxxx"}`, true},
		{[]string{"paths", "/api/v1/admin/sso/{provider}", "post", "requestBody", "content", "application/json", "examples", "azure", "value"},
			`{"tenant_id": "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", "client_id": "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
			  "client_secret": "xxxxxxxxxxxxxxxxxxxxxxxx"}`, true},
		{[]string{"paths", "/api/v1/admin/sso/{provider}", "post", "requestBody", "content", "application/json", "examples", "saml", "value"},
			`{"entity_id": "https://idp.company.com", "sso_url": "https://idp.company.com/saml/sso",
			  "certificate": "-----BEGIN CERTIFICATE-----\n..."}`, true},
	}
	for _, tc := range tests {
		where := strings.Join(tc.keys, " ")
		got, ok := lookup(doc, tc.keys...)
		if !ok {
			t.Errorf("%s: no example there", where)
			continue
		}
		var want any
		if err := json.Unmarshal([]byte(tc.seed), &want); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if tc.exact && !reflect.DeepEqual(got, want) || !tc.exact && !containsJSON(got, want) {
			g, _ := json.Marshal(got)
			t.Errorf("%s: example %s, the product documentation's is %s", where, g, tc.seed)
		}
	}
}

// lookup follows keys into a decoded JSON document.
func lookup(doc any, keys ...string) (any, bool) {
	for _, k := range keys {
		m, ok := doc.(map[string]any)
		if !ok {
			return nil, false
		}
		if doc, ok = m[k]; !ok {
			return nil, false
		}
	}
	return doc, true
}

// containsJSON reports whether got has every field of want with its value.
func containsJSON(got, want any) bool {
	wm, ok := want.(map[string]any)
	if !ok {
		return reflect.DeepEqual(got, want)
	}
	gm, ok := got.(map[string]any)
	if !ok {
		return false
	}
	for k, v := range wm {
		if !containsJSON(gm[k], v) {
			return false
		}
	}
	return true
}
