package domain

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var allMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// TestDefaultPolicyTable is the route table of API.md, method by method.
func TestDefaultPolicyTable(t *testing.T) {
	p := DefaultPolicy()
	want := map[string][2]Permission{ // resource -> {GET/HEAD, other methods}
		"nodes":                    {NodesRead, NodesWrite},
		"nodes/n-1":                {NodesRead, NodesWrite},
		"nodes/n-1/agents/a-1":     {NodesRead, NodesWrite},
		"findings":                 {FindingsRead, FindingsWrite},
		"findings/f-9/accept-risk": {FindingsRead, FindingsWrite},
		"findings/f-9/resolve":     {FindingsRead, FindingsWrite},
		"jobs":                     {JobsRead, JobsWrite},
		"jobs/j-1/start":           {JobsRead, JobsWrite},
		"jobs/j-1/cancel":          {JobsRead, JobsWrite},
		"reports":                  {ReportsRead, ReportsRead},
		"reports/generate":         {ReportsRead, ReportsRead},
		"reports/r-1/download":     {ReportsRead, ReportsRead},
		"settings":                 {AdminAll, AdminAll},
		"":                         {AdminAll, AdminAll},
		"users/u-1":                {AdminAll, AdminAll},
	}
	for resource, perms := range want {
		for _, m := range allMethods {
			exp := perms[1]
			if m == "GET" || m == "HEAD" {
				exp = perms[0]
			}
			if got := p.Permission(m, resource); got != exp {
				t.Errorf("Permission(%s, %q) = %q, want %q", m, resource, got, exp)
			}
			if got := RoutePermission(m, resource); got != exp {
				t.Errorf("RoutePermission(%s, %q) = %q, want %q", m, resource, got, exp)
			}
		}
	}
}

// TestPolicyMatchesWholeCleanSegments: a prefix matches whole segments of a
// clean path only; anything else needs admin:*.
func TestPolicyMatchesWholeCleanSegments(t *testing.T) {
	p := DefaultPolicy()
	tests := []struct {
		resource string
		want     Permission
	}{
		{"nodes", NodesRead},
		{"/nodes", NodesRead},
		{"nodes/", NodesRead},
		{"/nodes/n-1/", NodesRead},
		{"nodesx", AdminAll},
		{"nodes-x/n-1", AdminAll},
		{"node", AdminAll},
		{"Nodes", AdminAll},
		{"NODES/n-1", AdminAll},
		{"//nodes", AdminAll},
		{"nodes//n-1", AdminAll},
		{"nodes/n-1//", AdminAll},
		{"/nodes/../findings", AdminAll},
		{"nodes/../settings", AdminAll},
		{"nodes/./n-1", AdminAll},
		{"nodes/n-1/..", AdminAll},
		{"nodes/..;/settings", AdminAll},
		{"nodes/.;x/settings", AdminAll},
		{"nodes/%2e%2e/settings", AdminAll},
		{"nodes/%2E./settings", AdminAll},
		{"nodes/.%2e/settings", AdminAll},
		{"nodes\\..\\settings", AdminAll},
		{"nodes/n-1\\..\\..\\settings", AdminAll},
		{"nodes/n\x00", AdminAll},
		{"nodes/n\n1", AdminAll},
		{"nodes%2Fn-1", AdminAll},
		{"nodes;x/n-1", AdminAll},
		{"./nodes", AdminAll},
		{"../nodes", AdminAll},
		{" nodes", AdminAll},
		// Not dot segments: ordinary names that contain dots or percent signs.
		{"nodes/n.1", NodesRead},
		{"nodes/...", NodesRead},
		{"nodes/.hidden", NodesRead},
		{"nodes/100%25", NodesRead},
		{"nodes/a;b", NodesRead},
		// A format suffix on a rule's segment ("nodes.json") is read as that
		// segment by Rails, Django REST framework, Spring MVC: it needs admin:*.
		{"nodes.json", AdminAll},
		{"nodes.", AdminAll},
		{"Nodes.json/n-1", AdminAll},
		{"nodes/n-1.json", NodesRead},
	}
	for _, tc := range tests {
		if got := p.Permission("GET", tc.resource); got != tc.want {
			t.Errorf("Permission(GET, %q) = %q, want %q", tc.resource, got, tc.want)
		}
	}
}

func TestPolicyMethods(t *testing.T) {
	p := DefaultPolicy()
	for m, want := range map[string]Permission{
		"GET": NodesRead, "HEAD": NodesRead,
		"POST": NodesWrite, "PUT": NodesWrite, "PATCH": NodesWrite, "DELETE": NodesWrite,
		"OPTIONS": NodesWrite, "TRACE": NodesWrite, "CONNECT": NodesWrite, "PROPFIND": NodesWrite,
		// Methods are case-sensitive: "get" is not GET, so it writes.
		"get": NodesWrite, "Head": NodesWrite, "": NodesWrite,
	} {
		if got := p.Permission(m, "nodes/n-1"); got != want {
			t.Errorf("Permission(%q, nodes/n-1) = %q, want %q", m, got, want)
		}
	}
}

func TestPolicyOrderAndMultiSegmentPrefixes(t *testing.T) {
	p, err := NewPolicy([]RouteRule{
		{Prefix: "reports/exports", Read: AdminAll, Write: AdminAll},
		{Prefix: "reports", Read: ReportsRead, Write: ReportsRead},
		{Prefix: "/settings/", Read: ReportsRead, Write: AdminAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, resource string
		want             Permission
	}{
		{"GET", "reports", ReportsRead},
		{"GET", "reports/r-1", ReportsRead},
		{"GET", "reports/exports", AdminAll},
		{"GET", "reports/exports/e-1", AdminAll},
		{"GET", "reports/exportsx", ReportsRead},
		// A case-insensitive resource service serves these as the rules'
		// prefixes: the stricter rule must not be escaped by a case change.
		{"POST", "reports/EXPORTS", AdminAll},
		{"GET", "reports/Exports/e-1", AdminAll},
		{"GET", "Reports/r-1", AdminAll},
		{"GET", "REPORTS", AdminAll},
		{"GET", "reports/r-1/EXPORTS", ReportsRead},
		// Nor by a format suffix, which Rails, Django REST framework and
		// Spring MVC drop (an outside check, 18p).
		{"POST", "reports/exports.json", AdminAll},
		{"GET", "reports/exports.", AdminAll},
		{"GET", "reports/Exports.xml/e-1", AdminAll},
		{"GET", "reports/exports-x.json", ReportsRead},
		{"GET", "reports/r-1.json", ReportsRead},
		{"GET", "settings", ReportsRead},
		{"PUT", "settings", AdminAll},
		{"GET", "nodes", AdminAll},
	} {
		if got := p.Permission(tc.method, tc.resource); got != tc.want {
			t.Errorf("Permission(%s, %q) = %q, want %q", tc.method, tc.resource, got, tc.want)
		}
	}
	if got := p.Rules()[2].Prefix; got != "settings" {
		t.Fatalf("prefix not normalized: %q", got)
	}
	var zero Policy
	for _, m := range allMethods {
		if got := zero.Permission(m, "nodes"); got != AdminAll {
			t.Fatalf("zero policy: %q", got)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	p, err := ParsePolicy([]byte(`{
		"description": "default plus settings",
		"rules": [
			{"prefix": "nodes", "read": "nodes:read", "write": "nodes:write"},
			{"prefix": "settings", "read": "reports:read", "write": "admin:*", "description": "read-only for auditors"}
		]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Permission("GET", "settings/s-1"); got != ReportsRead {
		t.Fatalf("settings read: %q", got)
	}
	if got := p.Permission("DELETE", "settings/s-1"); got != AdminAll {
		t.Fatalf("settings write: %q", got)
	}
	if got := p.Permission("GET", "findings"); got != AdminAll {
		t.Fatalf("findings (no rule): %q", got)
	}

	empty, err := ParsePolicy([]byte(`{"rules": []}`))
	if err != nil || len(empty.Rules()) != 0 || empty.Permission("GET", "nodes") != AdminAll {
		t.Fatalf("empty rules: %v %v", empty.Rules(), err)
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct {
		name, json  string
		mentions    []string
		unknownPerm bool
	}{
		{"unknown read permission", `{"rules":[{"prefix":"nodes","read":"nodes:admin","write":"nodes:write"}]}`, []string{"rules[0].read", `"nodes:admin"`}, true},
		{"unknown write permission", `{"rules":[{"prefix":"nodes","read":"nodes:read","write":"nodes:write"},{"prefix":"x","read":"admin:*","write":"root"}]}`, []string{"rules[1].write", `"root"`}, true},
		{"wrong case", `{"rules":[{"prefix":"nodes","read":"Nodes:Read","write":"nodes:write"}]}`, []string{`"Nodes:Read"`}, true},
		{"missing write", `{"rules":[{"prefix":"nodes","read":"nodes:read"}]}`, []string{"rules[0].write: required"}, false},
		{"missing prefix", `{"rules":[{"read":"nodes:read","write":"nodes:write"}]}`, []string{"rules[0].prefix"}, false},
		{"root prefix", `{"rules":[{"prefix":"/","read":"nodes:read","write":"nodes:write"}]}`, []string{"rules[0].prefix"}, false},
		{"dot segment", `{"rules":[{"prefix":"nodes/..","read":"nodes:read","write":"nodes:write"}]}`, []string{"rules[0].prefix", `".."`}, false},
		{"empty segment", `{"rules":[{"prefix":"nodes//x","read":"nodes:read","write":"nodes:write"}]}`, []string{"empty path segment"}, false},
		{"wildcard", `{"rules":[{"prefix":"nodes/*","read":"nodes:read","write":"nodes:write"}]}`, []string{"'*'"}, false},
		{"percent", `{"rules":[{"prefix":"no%64es","read":"nodes:read","write":"nodes:write"}]}`, []string{"'%'"}, false},
		{"duplicate", `{"rules":[{"prefix":"nodes","read":"nodes:read","write":"nodes:write"},{"prefix":"/nodes/","read":"admin:*","write":"admin:*"}]}`, []string{"rules[1]", "never matches", "rules[0]"}, false},
		{"shadowed", `{"rules":[{"prefix":"reports","read":"reports:read","write":"reports:read"},{"prefix":"reports/exports","read":"admin:*","write":"admin:*"}]}`, []string{"rules[1]", "never matches"}, false},
		{"shadowed by a format suffix", `{"rules":[{"prefix":"reports/schedules","read":"reports:read","write":"admin:*"},{"prefix":"reports/schedules.json","read":"reports:read","write":"reports:read"}]}`, []string{"rules[1]", "never matches", "format suffix", "put rules[1] before it"}, false},
		{"shadowed by a letter case", `{"rules":[{"prefix":"reports","read":"reports:read","write":"reports:read"},{"prefix":"Reports/x","read":"admin:*","write":"admin:*"}]}`, []string{"rules[1]", "never matches", "letter case"}, false},
		{"unknown field", `{"rules":[{"prefix":"nodes","read":"nodes:read","write":"nodes:write","methods":["GET"]}]}`, []string{"methods"}, false},
		{"unknown top-level field", `{"fallback":"nodes:read","rules":[]}`, []string{"fallback"}, false},
		{"no rules", `{}`, []string{"rules: required"}, false},
		{"null", `null`, []string{"rules: required"}, false},
		{"not JSON", `nodes: nodes:read`, nil, false},
		{"empty", ``, nil, false},
		{"trailing data", `{"rules":[]} {"rules":[]}`, []string{"after"}, false},
		{"array", `[]`, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tc.json))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("error does not wrap ErrInvalidPolicy: %v", err)
			}
			if tc.unknownPerm && !errors.Is(err, ErrUnknownPermission) {
				t.Errorf("error does not wrap ErrUnknownPermission: %v", err)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %s", err, m)
				}
			}
		})
	}
}

// Every problem is reported at once.
func TestParsePolicyReportsEveryProblem(t *testing.T) {
	_, err := ParsePolicy([]byte(`{"rules":[
		{"prefix":"nodes","read":"nodes:reed","write":"nodes:write"},
		{"prefix":"jobs","read":"jobs:read","write":"jobs:wrote"},
		{"prefix":"","read":"admin:*","write":"admin:*"}
	]}`))
	if err == nil {
		t.Fatal("no error")
	}
	for _, m := range []string{`"nodes:reed"`, `"jobs:wrote"`, "rules[2].prefix"} {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not mention %s", err, m)
		}
	}
}

func TestPolicyJSONRoundTrip(t *testing.T) {
	b, err := json.Marshal(DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy(b)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if !reflect.DeepEqual(p.Rules(), DefaultPolicy().Rules()) {
		t.Fatalf("round trip: %v", p.Rules())
	}
}

// The sample file of the documentation is a valid policy that keeps the
// contract's table and adds to it.
func TestExamplePolicyFile(t *testing.T) {
	b, err := os.ReadFile("../docs/route-policy.example.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy(b)
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultPolicy()
	for _, r := range []string{"nodes/n-1", "findings/f-1/resolve", "jobs/j-1/start", "reports/generate"} {
		for _, m := range allMethods {
			if got, want := p.Permission(m, r), def.Permission(m, r); got != want {
				t.Errorf("example policy: %s %s = %q, default %q", m, r, got, want)
			}
		}
	}
}

func FuzzPolicyPermission(f *testing.F) {
	for _, s := range []string{
		"nodes", "nodes/n-1", "/nodes/../findings", "nodesx", "//nodes", "reports/generate",
		"settings", "", "/", "nodes/..;/settings", "nodes/%2e%2e/x", "findings\\..\\nodes",
		"jobs/j-1/", "reports/exports/e-1", "nodes/\x00", "ñodes/ü",
	} {
		for _, m := range []string{"GET", "POST", "HEAD", "get", ""} {
			f.Add(m, s)
		}
	}
	custom, err := NewPolicy([]RouteRule{
		{Prefix: "reports/exports", Read: AdminAll, Write: AdminAll},
		{Prefix: "reports", Read: ReportsRead, Write: ReportsRead},
		{Prefix: "settings", Read: ReportsRead, Write: AdminAll},
		{Prefix: "nodes", Read: NodesRead, Write: NodesWrite},
	})
	if err != nil {
		f.Fatal(err)
	}
	policies := []Policy{DefaultPolicy(), custom, {}}
	f.Fuzz(func(t *testing.T, method, resource string) {
		for _, p := range policies {
			got := p.Permission(method, resource)
			if !slices.Contains(AllPermissions, got) {
				t.Fatalf("Permission(%q, %q) = %q: not a known permission", method, resource, got)
			}
			// A resource whose first segment is no rule's first segment needs admin:*.
			first, _, _ := strings.Cut(strings.TrimPrefix(resource, "/"), "/")
			known := false
			for _, r := range p.Rules() {
				if s, _, _ := strings.Cut(r.Prefix, "/"); s == first {
					known = true
				}
			}
			if !known && got != AdminAll {
				t.Fatalf("Permission(%q, %q) = %q; first segment %q matches no rule, want admin:*", method, resource, got, first)
			}
			// A dot segment anywhere needs admin:*.
			for _, seg := range strings.Split(resource, "/") {
				if seg == ".." || seg == "." {
					if got != AdminAll {
						t.Fatalf("Permission(%q, %q) = %q despite a dot segment", method, resource, got)
					}
				}
			}
			// Read and write differ only by method.
			if got != p.Permission("GET", resource) && got != p.Permission("POST", resource) {
				t.Fatalf("Permission(%q, %q) = %q is neither the read nor the write permission", method, resource, got)
			}
		}
		if RoutePermission(method, resource) != policies[0].Permission(method, resource) {
			t.Fatal("RoutePermission differs from DefaultPolicy().Permission")
		}
	})
}
