package service

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/infracast/auth/events"
	authhttp "github.com/infracast/auth/http"
)

// FieldError is one problem of a Config: the field at fault, by its name in
// Config ("Listen"; a field of a nested struct with a dot: "Hash.MemoryKiB"),
// and what is wrong with it.
//
// The service names no environment variable and no flag. A command renders
// each field as the setting its users set (Format); cmd/infracast-auth does
// so from its table of settings, the one the README documents.
type FieldError struct {
	Field string
	// Value is the value at fault as shown to the user (text quoted); empty
	// when the message does not show it.
	Value string
	// Message says what is wrong. It names another field as {Name}, and each
	// name it so uses is listed in Refs.
	Message string
	Refs    []string
	// Err is the underlying error, when there is one.
	Err error
}

// Error renders e with the fields' names in Config.
func (e *FieldError) Error() string { return e.Format(nil) }

// Unwrap returns the underlying error, if any.
func (e *FieldError) Unwrap() error { return e.Err }

// Format renders e as "field[ value]: message", naming every field it
// mentions as name(field); a nil name keeps the names in Config.
func (e *FieldError) Format(name func(field string) string) string {
	if name == nil {
		name = func(field string) string { return field }
	}
	var b strings.Builder
	b.WriteString(name(e.Field))
	if e.Value != "" {
		b.WriteString(" " + e.Value)
	}
	msg := e.Message
	for _, r := range e.Refs {
		msg = strings.ReplaceAll(msg, "{"+r+"}", name(r))
	}
	b.WriteString(": " + msg)
	return b.String()
}

// Fields lists every field e names: Field, then Refs.
func (e *FieldError) Fields() []string { return append([]string{e.Field}, e.Refs...) }

// ValidationError is every problem Validate found, one per line.
type ValidationError struct {
	Problems []*FieldError
}

// Error renders the problems with the fields' names in Config.
func (e *ValidationError) Error() string { return e.Format(nil) }

// Format renders the problems one per line, naming the fields as name does
// (FieldError.Format).
func (e *ValidationError) Format(name func(field string) string) string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Format(name)
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.As and errors.Is.
func (e *ValidationError) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

// problems collects what the checks of Validate find.
type problems struct{ list []*FieldError }

// add records a problem of field: its value as shown (may be empty) and
// message, which names each of refs as {Name}.
func (p *problems) add(field, value, message string, refs ...string) {
	p.list = append(p.list, &FieldError{Field: field, Value: value, Message: message, Refs: refs})
}

// fieldError is a problem of field that start-up met, beyond what Validate
// checks. A file's path is left out of the message (withoutPath).
func fieldError(field string, err error) *FieldError {
	return &FieldError{Field: field, Message: withoutPath(err).Error(), Err: err}
}

// withoutPath is err without the path of a file operation that failed: a
// setting documented as a file (a private key, an NKey seed, credentials)
// is often given the secret itself instead, as INFRACAST_MASTER_KEY is —
// and the error of opening "-----BEGIN PRIVATE KEY-----…" as a path printed
// the key (an outside check, 14g). The setting's name says which file.
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("not a readable file (the setting takes a path): %w", pe.Err)
	}
	return err
}

// shownURL is a URL-valued setting as messages and logs show it: its
// scheme, host, port and path. User information — a password, or a token
// as the user name (nats://TOKEN@host) — is replaced by xxxxx, a query and
// a fragment are left out, and nothing is shown of a value that is not
// scheme://host (its parse error would quote it: a password holding "/"
// or "%" does not parse). A re-check (14r1) found each of these printed.
func shownURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	switch {
	case err != nil:
		return "(not a URL of the form scheme://host)"
	case u.Scheme == "" || u.Host == "" || u.Opaque != "":
		if strings.ContainsAny(raw, "@?#") { // "user:password@host" has no scheme
			return "(not a URL of the form scheme://host)"
		}
		return raw // a typo such as "auth.example.com": nothing secret can be in it
	}
	if u.User != nil {
		u.User = url.User("xxxxx")
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	return u.String()
}

// natsURLProblem is what is wrong with an external NATS URL ("" for
// nothing): it must parse as scheme://host, so that a typo fails the start
// at once rather than after 15 s of connection attempts.
func natsURLProblem(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || !strings.Contains(raw, "://") || u.Host == "" {
		return "want nats://host:port or tls://host:port (a password with characters such as / % # or a space must be percent-encoded, or set INFRACAST_NATS_PASSWORD)"
	}
	return ""
}

// Validate reports every problem at once: nil, or a *ValidationError that
// lists each problem by the field at fault. The checks come in sections, one
// per part of the service.
func (c Config) Validate() error {
	var p problems
	for _, section := range []func(*problems){
		c.validateAPI, c.validateStore, c.validateNATS, c.validateNATSListener,
		c.validatePasswords, c.validateTokens, c.validateGateway, c.validateSSO,
	} {
		section(&p)
	}
	if len(p.list) == 0 {
		return nil
	}
	return &ValidationError{Problems: p.list}
}

// validateAPI checks the HTTP API: where it listens, what it accepts, and
// from where.
func (c Config) validateAPI(p *problems) {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		p.add("Listen", strconv.Quote(c.Listen), err.Error())
	}
	if c.BodyLimit < 1024 {
		p.add("BodyLimit", strconv.Itoa(c.BodyLimit), "at least 1024 bytes")
	}
	for _, o := range c.CORSOrigins {
		if _, err := authhttp.CanonicalOrigin(o); err != nil {
			p.add("CORSOrigins", strconv.Quote(shownURL(o)), "want an exact origin like https://app.example.com (no wildcard, no path): "+err.Error())
		}
	}
	if strings.TrimSpace(c.Environment) == "" {
		p.add("Environment", "", "must not be empty (production, staging, dev, …)")
	}
	if c.KeyUsageInterval < time.Millisecond {
		p.add("KeyUsageInterval", c.KeyUsageInterval.String(), "at least 1ms")
	}
}

// validateStore checks the event store: the data folder of the embedded
// NATS, the stream's replicas and the read-model snapshots.
func (c Config) validateStore(p *problems) {
	if c.Embedded() && c.DataDir == "" {
		p.add("DataDir", "", "required with the embedded NATS")
	}
	if c.StreamReplicas != 1 && c.StreamReplicas != 3 && c.StreamReplicas != 5 {
		p.add("StreamReplicas", strconv.Itoa(c.StreamReplicas), "want 1, 3 or 5")
	}
	if c.SnapshotEvery < 0 {
		p.add("SnapshotEvery", strconv.Itoa(c.SnapshotEvery), "must not be negative (0 switches snapshots off)")
	}
	if c.SnapshotEvery > 0 && c.SnapshotInterval < time.Millisecond {
		p.add("SnapshotInterval", c.SnapshotInterval.String(), "at least 1ms")
	}
	// 0 is refused, not taken as the default: re-check 20r5 found
	// INFRACAST_NATS_START_TIMEOUT=0 silently meaning 10 minutes.
	if c.NATSStartTimeout <= 0 {
		p.add("NATSStartTimeout", c.NATSStartTimeout.String(), "must be more than 0 (the default is "+events.DefaultEmbeddedStartTimeout.String()+")")
	}
}

// validateNATS checks the connection to an external NATS.
func (c Config) validateNATS(p *problems) {
	for _, u := range c.NATSURLs {
		if problem := natsURLProblem(u); problem != "" {
			p.add("NATSURLs", strconv.Quote(shownURL(u)), problem)
		}
	}
	together(p, "NATSTLSCert", c.NATSTLSCert != "", "NATSTLSKey", c.NATSTLSKey != "")
	together(p, "NATSUser", c.NATSUser != "", "NATSPassword", c.NATSPassword != "")
	// How to reach an external NATS: with the embedded one, a setting that
	// would be ignored is refused (an operator who set it believes it in
	// force); files are checked now, not after 15 s of failed connections.
	for _, f := range []struct {
		name, value string
		file        bool
	}{
		{"NATSCreds", c.NATSCreds, true}, {"NATSNKeySeed", c.NATSNKeySeed, true},
		{"NATSTLSCA", c.NATSTLSCA, true}, {"NATSTLSCert", c.NATSTLSCert, true}, {"NATSTLSKey", c.NATSTLSKey, true},
		{"NATSUser", c.NATSUser, false}, {"NATSPassword", c.NATSPassword, false},
	} {
		switch {
		case f.value == "":
		case c.Embedded():
			p.add(f.name, "", "only with an external NATS ({NATSURLs}); the embedded one needs none", "NATSURLs")
		case f.file:
			if _, err := os.Stat(f.value); err != nil {
				p.add(f.name, "", withoutPath(err).Error())
			}
		}
	}
}

// validateNATSListener checks the embedded NATS's own TCP listener: only
// with the embedded NATS, never without a login, TLS with a key pair.
func (c Config) validateNATSListener(p *problems) {
	if c.NATSListen == "" {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"NATSListenPassword", c.NATSListenPassword != ""}, {"NATSAuditPassword", c.NATSAuditPassword != ""},
			{"NATSListenTLSCert", c.NATSListenTLSCert != ""}, {"NATSListenTLSKey", c.NATSListenTLSKey != ""},
		} {
			if f.set {
				p.add(f.name, "", "only with {NATSListen}", "NATSListen")
			}
		}
	} else {
		if !c.Embedded() {
			p.add("NATSListen", "", "only with the embedded NATS ({NATSURLs} is set)", "NATSURLs")
		} else if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			p.add("NATSListen", strconv.Quote(c.NATSListen), err.Error())
		}
		if c.NATSListenPassword == "" && c.NATSAuditPassword == "" {
			p.add("NATSListen", "", fmt.Sprintf("set {NATSListenPassword} (user %q, full access) and/or {NATSAuditPassword} (user %q, read-only): the listener accepts only clients that log in",
				events.EmbeddedReplicaUser, events.EmbeddedAuditUser), "NATSListenPassword", "NATSAuditPassword")
		}
	}
	together(p, "NATSListenTLSCert", c.NATSListenTLSCert != "", "NATSListenTLSKey", c.NATSListenTLSKey != "")
	for _, f := range []struct{ name, path string }{
		{"NATSListenTLSCert", c.NATSListenTLSCert}, {"NATSListenTLSKey", c.NATSListenTLSKey},
	} {
		if f.path != "" {
			if _, err := os.Stat(f.path); err != nil {
				p.add(f.name, "", withoutPath(err).Error())
			}
		}
	}
	for _, pw := range []struct{ name, value string }{
		{"NATSListenPassword", c.NATSListenPassword}, {"NATSAuditPassword", c.NATSAuditPassword},
	} {
		if pw.value != "" && len(pw.value) < 16 {
			p.add(pw.name, "", "at least 16 characters")
		}
	}
	if c.NATSListenPassword != "" && c.NATSListenPassword == c.NATSAuditPassword {
		p.add("NATSAuditPassword", "", "must differ from {NATSListenPassword}", "NATSListenPassword")
	}
}

// validatePasswords checks the first admin, the password hash's cost and
// the brute-force protection.
func (c Config) validatePasswords(p *problems) {
	if c.BootstrapAdmin == "" {
		p.add("BootstrapAdmin", "", "must not be empty")
	}
	// BootstrapPassword is checked where it is used — by the password
	// policy, when a first start creates the admin with it — not here: a
	// later start ignores it, with a warning (README), whatever it is.
	// Upper bounds too: an absurd cost is not a stronger hash but a replica
	// that runs out of memory at its first hash, or never finishes one
	// (an outside check: 4294967295 KiB died of "out of memory"; 1,000,000
	// iterations never became ready, nor stopped on SIGTERM). RFC 9106's
	// strongest recommendation is 2 GiB with one pass.
	if c.Hash.MemoryKiB < 8 || c.Hash.MemoryKiB > maxArgon2MemoryKiB {
		p.add("Hash.MemoryKiB", strconv.FormatUint(uint64(c.Hash.MemoryKiB), 10), "argon2id memory: from 8 KiB to 2 GiB (2097152)")
	}
	if c.Hash.Iterations < 1 || c.Hash.Iterations > maxArgon2Iterations {
		p.add("Hash.Iterations", strconv.FormatUint(uint64(c.Hash.Iterations), 10), "argon2id iterations: from 1 to 64")
	} else if c.Hash.MemoryKiB <= maxArgon2MemoryKiB && uint64(c.Hash.MemoryKiB)*uint64(c.Hash.Iterations) > maxArgon2Work {
		p.add("Hash.Iterations", strconv.FormatUint(uint64(c.Hash.Iterations), 10), "argon2id memory × iterations: at most 4 GiB (4194304 KiB), seconds per hash on a server core")
	}
	if c.Hash.Parallelism < 1 || c.Hash.Parallelism > maxArgon2Parallelism {
		p.add("Hash.Parallelism", strconv.FormatUint(uint64(c.Hash.Parallelism), 10), "argon2id parallelism: from 1 to 64")
	}
	for _, f := range []struct {
		name string
		n    int
	}{{"LoginMaxFailures", c.LoginMaxFailures}, {"LoginMaxFailuresPerAddress", c.LoginMaxFailuresPerAddress}, {"MaxSessionsPerUser", c.MaxSessionsPerUser}} {
		if f.n < 0 {
			p.add(f.name, strconv.Itoa(f.n), "must not be negative (0 disables)")
		}
	}
	if (c.LoginMaxFailures > 0 || c.LoginMaxFailuresPerAddress > 0) && c.LoginLockout <= 0 {
		p.add("LoginLockout", c.LoginLockout.String(), "must be positive")
	}
}

// validateTokens checks the keys and the lifetimes of access and refresh
// tokens.
func (c Config) validateTokens(p *problems) {
	if c.MasterKey != nil && len(c.MasterKey) != 32 {
		p.add("MasterKey", "", fmt.Sprintf("must be 32 bytes (base64), got %d", len(c.MasterKey)))
	}
	for i, k := range c.JWTKeys {
		if len(k) < 32 {
			p.add("JWTKeys", "", fmt.Sprintf("key %d is %d bytes; at least 32", i+1, len(k)))
		}
	}
	if !c.Embedded() {
		if c.MasterKey == nil {
			p.add("MasterKey", "", "required with an external NATS ({NATSURLs}), so that every replica shares it", "NATSURLs")
		}
		if len(c.JWTKeys) == 0 {
			p.add("JWTKeys", "", "required with an external NATS ({NATSURLs}), so that every replica shares them", "NATSURLs")
		}
	}
	if strings.TrimSpace(c.Issuer) == "" {
		p.add("Issuer", "", "must not be empty")
	}
	if strings.TrimSpace(c.Audience) == "" {
		p.add("Audience", "", "must not be empty")
	}
	if c.AccessTTL < time.Minute || c.AccessTTL > 24*time.Hour {
		p.add("AccessTTL", c.AccessTTL.String(), "want 1m..24h")
	}
	if c.RefreshTTL < c.AccessTTL || c.RefreshTTL > 90*24*time.Hour {
		p.add("RefreshTTL", c.RefreshTTL.String(), "want access TTL..2160h")
	}
	if c.RefreshReuseInterval < 0 || c.RefreshReuseInterval > MaxRefreshReuseInterval {
		p.add("RefreshReuseInterval", c.RefreshReuseInterval.String(), "want 0 (off).."+MaxRefreshReuseInterval.String())
	}
	if c.RefreshIdleTTL < 0 || (c.RefreshIdleTTL > 0 && c.RefreshIdleTTL < c.AccessTTL) {
		p.add("RefreshIdleTTL", c.RefreshIdleTTL.String(), "0 (off) or at least the access-token lifetime")
	}
}

// validateGateway checks the upstream the gateway proxies to and the route
// policy that authorizes tenant routes (and forward auth).
func (c Config) validateGateway(p *problems) {
	if c.UpstreamURL != "" {
		if _, err := authhttp.ParseUpstreamURL(c.UpstreamURL); err != nil {
			p.add("UpstreamURL", strconv.Quote(shownURL(c.UpstreamURL)), err.Error())
		}
	}
	if c.UpstreamTimeout < time.Millisecond {
		p.add("UpstreamTimeout", c.UpstreamTimeout.String(), "at least 1ms")
	}
	if _, err := c.RoutePolicy(); err != nil {
		p.add("RoutePolicyFile", strconv.Quote(c.RoutePolicyFile), err.Error())
	}
}

// together reports the one of two fields that must be set with the other
// and is not.
func together(p *problems, a string, aSet bool, b string, bSet bool) {
	switch {
	case aSet && !bSet:
		p.add(b, "", "required with {"+a+"}", a)
	case bSet && !aSet:
		p.add(a, "", "required with {"+b+"}", b)
	}
}

// Bounds of the argon2id cost (Validate).
const (
	maxArgon2MemoryKiB   = 2 << 20 // 2 GiB
	maxArgon2Iterations  = 64
	maxArgon2Work        = 4 << 20 // memory × iterations, KiB
	maxArgon2Parallelism = 64
)
