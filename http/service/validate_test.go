package service

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// configFields is every field of Config a FieldError may name: the exported
// fields that hold a setting, those of a nested struct as "Hash.MemoryKiB".
func configFields() map[string]bool {
	out := map[string]bool{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			switch {
			case !f.IsExported() || f.Type.Kind() == reflect.Func: // Now: the clock
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, prefix+f.Name+".")
			default:
				out[prefix+f.Name] = true
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	return out
}

// badConfig has a problem in every section of Validate.
func badConfig(t *testing.T) Config {
	t.Helper()
	c := Defaults()
	c.Listen, c.BodyLimit, c.CORSOrigins = "nonsense", 10, []string{"*"} // API
	c.Environment, c.KeyUsageInterval = "", 0
	c.DataDir, c.StreamReplicas, c.SnapshotEvery, c.NATSStartTimeout = "", 2, -1, 0 // store
	c.NATSListenPassword = "short"                                                  // listener options without a listener
	c.BootstrapAdmin = ""                                                           // passwords
	c.Hash.Iterations = 0
	c.LoginMaxFailures = -1
	c.JWTKeys = [][]byte{[]byte("too short")} // tokens
	c.AccessTTL = time.Second
	c.UpstreamURL = "ftp://files.example" // gateway
	c.RoutePolicyFile = filepath.Join(t.TempDir(), "missing.json")
	c.PublicURL = "not a url" // SSO
	c.SAMLKeyFile = "sp.key"
	return c
}

// TestValidateReportsEveryProblemAtOnce: one call reports every problem, in
// the order of the sections, each as the field at fault; errors.As finds each.
func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	err := badConfig(t).Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate: %T %v, want a *ValidationError", err, err)
	}
	var got []string
	for _, p := range ve.Problems {
		got = append(got, p.Field)
	}
	want := []string{
		"Listen", "BodyLimit", "CORSOrigins", "Environment", "KeyUsageInterval",
		"DataDir", "StreamReplicas", "SnapshotEvery", "NATSStartTimeout",
		"NATSListenPassword", "NATSListenPassword",
		"BootstrapAdmin", "Hash.Iterations", "LoginMaxFailures",
		"JWTKeys", "AccessTTL",
		"UpstreamURL", "RoutePolicyFile",
		"PublicURL", "SAMLCertFile",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("fields at fault:\n got %v\nwant %v\n%v", got, want, err)
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != len(want) {
		t.Fatalf("%d lines for %d problems:\n%v", len(lines), len(want), err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "Listen" {
		t.Fatalf("errors.As(*FieldError): %v", fe)
	}
}

// TestFieldErrorFormat: "field[ value]: message", with every field named by
// the function given (the Config's names without one).
func TestFieldErrorFormat(t *testing.T) {
	upper := func(f string) string { return "X_" + strings.ToUpper(f) }
	for _, c := range []struct {
		e          FieldError
		raw, named string
	}{
		{FieldError{Field: "Listen", Value: `"x"`, Message: "missing port"}, `Listen "x": missing port`, `X_LISTEN "x": missing port`},
		{FieldError{Field: "NATSTLSKey", Message: "required with {NATSTLSCert}", Refs: []string{"NATSTLSCert"}},
			"NATSTLSKey: required with NATSTLSCert", "X_NATSTLSKEY: required with X_NATSTLSCERT"},
		{FieldError{Field: "Hash.MemoryKiB", Value: "4", Message: "at least 8"}, "Hash.MemoryKiB 4: at least 8", "X_HASH.MEMORYKIB 4: at least 8"},
	} {
		if got := c.e.Error(); got != c.raw {
			t.Errorf("Error() = %q, want %q", got, c.raw)
		}
		if got := c.e.Format(upper); got != c.named {
			t.Errorf("Format = %q, want %q", got, c.named)
		}
	}
	inner := errors.New("inner")
	if err := fieldError("RoutePolicyFile", inner); !errors.Is(err, inner) || err.Error() != "RoutePolicyFile: inner" {
		t.Errorf("fieldError: %v (errors.Is inner: %v)", err, errors.Is(err, inner))
	}
}

// TestValidateNamesOnlyConfigFields: every field a check can name — each
// string in the validate* functions and fieldError calls that looks like
// one, and each {Name} in a message — is a field of Config, and so one the
// command can name as a setting (cmd/infracast-auth checks that every field
// has one). A new check naming a field that does not exist fails here.
func TestValidateNamesOnlyConfigFields(t *testing.T) {
	fields := configFields()
	fieldLike := regexp.MustCompile(`^[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*(\.[A-Z][A-Za-z0-9]*)?$`)
	ref := regexp.MustCompile(`\{([A-Za-z0-9.]+)\}`)
	named := map[string]bool{}
	check := func(fset *token.FileSet, n ast.Node) {
		ast.Inspect(n, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			if fieldLike.MatchString(s) {
				names = append(names, s)
			}
			for _, m := range ref.FindAllStringSubmatch(s, -1) {
				names = append(names, m[1])
			}
			for _, name := range names {
				named[name] = true
				if !fields[name] {
					t.Errorf("%s: %q is no field of Config", fset.Position(lit.Pos()), name)
				}
			}
			return true
		})
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				if strings.HasPrefix(n.Name.Name, "validate") || n.Name.Name == "together" {
					check(fset, n)
					return false
				}
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "fieldError" {
					check(fset, n)
				}
			}
			return true
		})
	}
	if len(named) < 40 {
		t.Fatalf("found %d fields named by the checks; is this still where they are? %v", len(named), named)
	}

	// And at run time: every field of every problem, Refs included.
	var ve *ValidationError
	if !errors.As(badConfig(t).Validate(), &ve) {
		t.Fatal("no *ValidationError")
	}
	for _, p := range ve.Problems {
		for _, f := range p.Fields() {
			if !fields[f] {
				t.Errorf("%v: %q is no field of Config", p, f)
			}
		}
		if s := p.Format(func(string) string { return "NAME" }); strings.ContainsAny(s, "{}") {
			t.Errorf("%q: a {Name} not listed in Refs", s)
		}
	}
}

// TestValidateArgon2Bounds: an argon2id cost that would exhaust the memory
// or never finish a hash is refused at start, not met at the first login.
func TestValidateArgon2Bounds(t *testing.T) {
	for _, tc := range []struct {
		mem, iter uint32
		par       uint8
		field     string // "" when valid
	}{
		{19 * 1024, 2, 1, ""},  // the default
		{2 << 20, 1, 4, ""},    // RFC 9106's first recommendation
		{64 * 1024, 64, 1, ""}, // 4 GiB of passes
		{4294967295, 1, 1, "Hash.MemoryKiB"},
		{7, 1, 1, "Hash.MemoryKiB"},
		{19 * 1024, 1000000, 1, "Hash.Iterations"},
		{2 << 20, 3, 1, "Hash.Iterations"}, // 6 GiB of passes
		{19 * 1024, 0, 1, "Hash.Iterations"},
		{19 * 1024, 2, 65, "Hash.Parallelism"},
		{19 * 1024, 2, 0, "Hash.Parallelism"},
	} {
		cfg := Defaults()
		cfg.Hash.MemoryKiB, cfg.Hash.Iterations, cfg.Hash.Parallelism = tc.mem, tc.iter, tc.par
		err := cfg.Validate()
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%+v: %v", cfg.Hash, err)
		case tc.field != "" && (err == nil || !strings.Contains(err.Error(), tc.field)):
			t.Errorf("%+v: %v, want a problem with %s", cfg.Hash, err, tc.field)
		}
	}
}

// TestValidateNATSClientSettings: how to reach an external NATS is refused
// with the embedded one (it would be ignored), its files are checked at
// start, and blank names are not names.
func TestValidateNATSClientSettings(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.creds")
	for _, tc := range []struct {
		name  string
		set   func(c *Config)
		field string
	}{
		{"creds, embedded", func(c *Config) { c.NATSCreds = missing }, "NATSCreds"},
		{"CA, embedded", func(c *Config) { c.NATSTLSCA = "ca.pem" }, "NATSTLSCA"},
		{"user, embedded", func(c *Config) { c.NATSUser, c.NATSPassword = "u", "p" }, "NATSUser"},
		{"creds file missing", func(c *Config) { c.NATSURLs, c.NATSCreds = []string{"nats://n:4222"}, missing }, "NATSCreds"},
		{"CA file missing", func(c *Config) { c.NATSURLs, c.NATSTLSCA = []string{"nats://n:4222"}, missing }, "NATSTLSCA"},
		{"blank issuer", func(c *Config) { c.Issuer = " " }, "Issuer"},
		{"blank environment", func(c *Config) { c.Environment = " " }, "Environment"},
	} {
		cfg := Defaults()
		cfg.MasterKey, cfg.JWTKeys = make([]byte, 32), [][]byte{make([]byte, 32)}
		tc.set(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want a problem with %s", tc.name, err, tc.field)
		}
	}
	cfg := Defaults()
	cfg.NATSURLs, cfg.NATSUser, cfg.NATSPassword = []string{"nats://n:4222"}, "u", "p"
	cfg.MasterKey, cfg.JWTKeys = make([]byte, 32), [][]byte{make([]byte, 32)}
	if err := cfg.Validate(); err != nil {
		t.Errorf("external NATS with a user: %v", err)
	}
}

// TestConfigErrorsShowNoSecret: a setting that takes a path to a file (a
// private key, an NKey seed, credentials) given the secret itself, as
// INFRACAST_MASTER_KEY takes one, and a URL with a password: the messages
// name the setting and never print the value (an outside check, 14g, found
// a PEM private key, an NKey seed and a NATS password in the start-up error).
func TestConfigErrorsShowNoSecret(t *testing.T) {
	const marker = "SecretMarker42"
	pem := "-----BEGIN PRIVATE KEY-----\n" + marker + "\n-----END PRIVATE KEY-----"
	for _, tc := range []struct {
		name string
		set  func(c *Config)
	}{
		{"NKey seed", func(c *Config) { c.NATSURLs, c.NATSNKeySeed = []string{"nats://n:4222"}, "SU"+marker }},
		{"NATS TLS key", func(c *Config) {
			c.NATSURLs, c.NATSTLSCert, c.NATSTLSKey = []string{"nats://n:4222"}, "cert.pem", pem
		}},
		{"NATS listener TLS key", func(c *Config) {
			c.NATSListen, c.NATSListenPassword = "127.0.0.1:4223", "listener-password-long-enough"
			c.NATSListenTLSCert, c.NATSListenTLSKey = "cert.pem", pem
		}},
		{"upstream URL with a password", func(c *Config) { c.UpstreamURL = "http://gw:" + marker + "@127.0.0.1:8080/x" }},
		{"upstream URL with a token as the user", func(c *Config) { c.UpstreamURL = "http://" + marker + "@127.0.0.1:8080/x" }},
		{"upstream URL that does not parse", func(c *Config) { c.UpstreamURL = "http://u:" + marker + "%@127.0.0.1:8080/x" }},
		{"upstream URL with a query", func(c *Config) { c.UpstreamURL = "http://127.0.0.1:8080/?token=" + marker }},
		{"NATS URL with a password that does not parse", func(c *Config) {
			c.NATSURLs = []string{"nats://infracast:" + marker + "/9x+Qz=@127.0.0.1:4222"}
		}},
		{"NATS URL without a scheme", func(c *Config) { c.NATSURLs = []string{"u:" + marker + "@127.0.0.1:4222"} }},
		{"public URL with credentials", func(c *Config) { c.PublicURL = "https://u:" + marker + "@auth.example.com/" }},
		{"return-to origin with credentials", func(c *Config) { c.SSOReturnToAllowlist = []string{"https://u:" + marker + "@app.example.com"} }},
	} {
		cfg := Defaults()
		cfg.MasterKey, cfg.JWTKeys = make([]byte, 32), [][]byte{make([]byte, 32)}
		tc.set(&cfg)
		err := cfg.Validate()
		if err == nil {
			t.Errorf("%s: no problem found", tc.name)
			continue
		}
		if strings.Contains(err.Error(), marker) {
			t.Errorf("%s: the message shows the secret: %v", tc.name, err)
		}
	}

	// The SAML key pair is read as the service starts: its errors name the
	// setting too (r4: "SAML SP key: …" named none).
	_, _, err := loadSAMLKeyPair(pem, "sp.crt")
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "SAMLKeyFile" || strings.Contains(err.Error(), marker) {
		t.Errorf("the SAML SP key given as PEM: %v, want a problem of SAMLKeyFile without the key", err)
	}
}

// TestValidateCORSOriginsRefusesWildcards: a "*" anywhere in a CORS origin
// is refused at start — the CORS middleware reads "https://*.com" as every
// .com (re-check 17r4: it started, and allowed https://evil.com).
func TestValidateCORSOriginsRefusesWildcards(t *testing.T) {
	for _, o := range []string{"*", "https://*.com", "https://*.example.com", "https://app.*.example"} {
		c := Defaults()
		c.CORSOrigins = []string{o}
		var fe *FieldError
		if err := c.Validate(); !errors.As(err, &fe) || !strings.Contains(err.Error(), "CORSOrigins") {
			t.Errorf("CORS origin %q: %v, want it refused", o, err)
		}
	}
	c := Defaults()
	c.CORSOrigins = []string{"https://app.example.com", "https://Bücher.example:443"}
	if err := c.Validate(); err != nil {
		t.Errorf("valid CORS origins refused: %v", err)
	}
}
