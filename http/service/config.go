package service

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	authhttp "github.com/infracast/auth/http"
)

// Config is everything the service needs, already parsed. cmd/ fills it from
// flags and the environment; tests fill it directly.
type Config struct {
	Listen  string // HTTP address, default ":8080"
	DataDir string // embedded store and generated keys, default "./data"

	// NATSURLs, when set, selects an external NATS; nothing is embedded.
	NATSURLs     []string
	NATSCreds    string // credentials file
	NATSNKeySeed string // NKey seed file
	NATSUser     string
	NATSPassword string
	NATSTLSCA    string
	NATSTLSCert  string
	NATSTLSKey   string
	// NATSListen makes the embedded server also accept TCP clients, which
	// must log in: as events.EmbeddedReplicaUser with NATSListenPassword
	// (full access: other replicas, backups) or as events.EmbeddedAuditUser
	// with NATSAuditPassword (read-only: audit consumers).
	NATSListen         string
	NATSListenPassword string
	NATSAuditPassword  string
	// NATSListenTLSCert and NATSListenTLSKey make the listener require TLS.
	NATSListenTLSCert string
	NATSListenTLSKey  string
	StreamReplicas    int
	// SnapshotEvery: a replica saves a read-model snapshot (bucket
	// INFRACAST_AUTH_SNAPSHOTS) once the stream has grown by this many events
	// since the last one, and a starting replica restores the latest one and
	// replays only what followed. 0 switches snapshots off. SnapshotInterval
	// is how often a replica checks (snapshots.go).
	SnapshotEvery    int
	SnapshotInterval time.Duration

	BootstrapAdmin    string
	BootstrapPassword string

	// MasterKey (32 bytes) seals sensitive event fields; JWTKeys sign (first)
	// and verify access tokens. Generated into DataDir when empty and embedded.
	MasterKey []byte
	JWTKeys   [][]byte

	Issuer          string
	Audience        string
	AccessTTL       time.Duration
	RefreshTTL      time.Duration
	RefreshRotation bool
	// RefreshReuseInterval: with rotation, the refresh token spent last may
	// be presented again this long after its rotation, and gets the same
	// successor instead of revoking the session (0: it always revokes).
	RefreshReuseInterval time.Duration
	// RefreshIdleTTL expires a session not refreshed for that long (0: off).
	RefreshIdleTTL time.Duration
	Hash           commands.HashParams
	BodyLimit      int

	// Environment "production" issues and accepts ic_live_ keys; anything
	// else ic_test_ keys, so a test key never works on production.
	Environment string
	// CORSOrigins are the exact origins (scheme://host[:port]) allowed to call
	// the API from a browser on another origin; empty: CORS stays off.
	CORSOrigins []string
	// TrustedProxies may set X-Forwarded-For (CIDR ranges or addresses).
	TrustedProxies []netip.Prefix
	// KeyUsageInterval coalesces last_used_at: at most one event per key per interval.
	KeyUsageInterval time.Duration

	// UpstreamURL, when set, makes the service a gateway: authorized requests to
	// /api/v1/tenants/{tenant}/** are proxied there with the identity headers.
	UpstreamURL string
	// UpstreamTimeout bounds how long the upstream may stay silent (connecting,
	// before answering, between two reads of a body).
	UpstreamTimeout time.Duration
	// RoutePolicyFile is a JSON route policy (domain.ParsePolicy); the
	// contract's default table when empty.
	RoutePolicyFile string

	// Brute-force protection: after LoginMaxFailures consecutive failed
	// logins an account (or unknown name) is locked for LoginLockout; after
	// LoginMaxFailuresPerAddress a client address is (0 disables either).
	LoginMaxFailures           int
	LoginMaxFailuresPerAddress int
	LoginLockout               time.Duration

	// Single sign-on (sso.go): PublicURL is the external origin that OIDC
	// redirect URIs and the SAML entity ID are built from (from each request
	// when empty: development only); SSOReturnToAllowlist the origins a login
	// may redirect to; SAMLKeyFile/SAMLCertFile the SAML SP key pair (PEM),
	// generated into DataDir on first use when empty.
	PublicURL            string
	SSOReturnToAllowlist []string
	SAMLKeyFile          string
	SAMLCertFile         string

	// Now is the clock (tests inject one).
	Now func() time.Time
}

// DefaultRefreshReuseInterval is how long, with rotation on, a spent refresh
// token may be presented again for the same successor: long enough for
// what real clients do — tabs refreshing together (milliseconds apart), a
// retry after a lost answer (client timeouts of a few seconds), a request
// that waited on a replica catching up (up to about 2 s) — and short enough
// that a thief replaying a stolen token later is caught by reuse detection.
// Auth0's reuse interval and Okta's grace period have the same purpose
// (both configurable within 0..60 s).
const DefaultRefreshReuseInterval = 10 * time.Second

// MaxRefreshReuseInterval bounds it: a longer interval widens the window in
// which a stolen refresh token goes unnoticed (and the access-token lifetime
// is never shorter than a minute).
const MaxRefreshReuseInterval = time.Minute

// Defaults returns a Config with every default of the README.
func Defaults() Config {
	return Config{
		Listen: ":8080", DataDir: "./data", StreamReplicas: 1,
		SnapshotEvery: 10_000, SnapshotInterval: 30 * time.Second,
		BootstrapAdmin: "admin", Issuer: "infracast-auth", Audience: "infracast-api",
		AccessTTL: time.Hour, RefreshTTL: 7 * 24 * time.Hour, RefreshReuseInterval: DefaultRefreshReuseInterval,
		Hash: commands.DefaultHashParams, BodyLimit: 64 << 10,
		Environment: "production", KeyUsageInterval: time.Minute,
		UpstreamTimeout: authhttp.DefaultUpstreamTimeout,
		// Brute-force protection is on unless switched off explicitly.
		LoginMaxFailures: 5, LoginMaxFailuresPerAddress: 50, LoginLockout: 15 * time.Minute,
	}
}

// Embedded reports whether the service runs its own nats-server.
func (c Config) Embedded() bool { return len(c.NATSURLs) == 0 }

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("INFRACAST_LISTEN %q: %v", c.Listen, err)
	}
	if c.Embedded() && c.DataDir == "" {
		bad("INFRACAST_DATA_DIR: required with the embedded NATS")
	}
	if c.NATSListen != "" {
		if !c.Embedded() {
			bad("INFRACAST_NATS_LISTEN: only with the embedded NATS (INFRACAST_NATS_URL is set)")
		} else if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			bad("INFRACAST_NATS_LISTEN %q: %v", c.NATSListen, err)
		}
		if c.NATSListenPassword == "" && c.NATSAuditPassword == "" {
			bad("INFRACAST_NATS_LISTEN: set INFRACAST_NATS_LISTEN_PASSWORD (user %q, full access) and/or INFRACAST_NATS_AUDIT_PASSWORD (user %q, read-only): the listener accepts only clients that log in",
				events.EmbeddedReplicaUser, events.EmbeddedAuditUser)
		}
	} else if c.NATSListenPassword != "" || c.NATSAuditPassword != "" || c.NATSListenTLSCert != "" || c.NATSListenTLSKey != "" {
		bad("INFRACAST_NATS_LISTEN_PASSWORD, INFRACAST_NATS_AUDIT_PASSWORD and INFRACAST_NATS_LISTEN_TLS_*: only with INFRACAST_NATS_LISTEN")
	}
	if (c.NATSListenTLSCert == "") != (c.NATSListenTLSKey == "") {
		bad("INFRACAST_NATS_LISTEN_TLS_CERT and INFRACAST_NATS_LISTEN_TLS_KEY go together")
	}
	for _, f := range []struct{ name, path string }{
		{"INFRACAST_NATS_LISTEN_TLS_CERT", c.NATSListenTLSCert}, {"INFRACAST_NATS_LISTEN_TLS_KEY", c.NATSListenTLSKey},
	} {
		if f.path != "" {
			if _, err := os.Stat(f.path); err != nil {
				bad("%s: %v", f.name, err)
			}
		}
	}
	for _, pw := range []struct{ name, value string }{
		{"INFRACAST_NATS_LISTEN_PASSWORD", c.NATSListenPassword}, {"INFRACAST_NATS_AUDIT_PASSWORD", c.NATSAuditPassword},
	} {
		if pw.value != "" && len(pw.value) < 16 {
			bad("%s: at least 16 characters", pw.name)
		}
	}
	if c.NATSListenPassword != "" && c.NATSListenPassword == c.NATSAuditPassword {
		bad("INFRACAST_NATS_AUDIT_PASSWORD: must differ from INFRACAST_NATS_LISTEN_PASSWORD")
	}
	for _, u := range c.NATSURLs {
		if !strings.Contains(u, "://") {
			bad("INFRACAST_NATS_URL %q: want nats://host:port or tls://host:port", u)
		}
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		bad("INFRACAST_NATS_TLS_CERT and INFRACAST_NATS_TLS_KEY go together")
	}
	if (c.NATSUser == "") != (c.NATSPassword == "") {
		bad("INFRACAST_NATS_USER and INFRACAST_NATS_PASSWORD go together")
	}
	if c.StreamReplicas != 1 && c.StreamReplicas != 3 && c.StreamReplicas != 5 {
		bad("INFRACAST_STREAM_REPLICAS %d: want 1, 3 or 5", c.StreamReplicas)
	}
	if c.SnapshotEvery < 0 {
		bad("INFRACAST_SNAPSHOT_EVERY %d: must not be negative (0 switches snapshots off)", c.SnapshotEvery)
	}
	if c.SnapshotEvery > 0 && c.SnapshotInterval < time.Millisecond {
		bad("INFRACAST_SNAPSHOT_INTERVAL %s: at least 1ms", c.SnapshotInterval)
	}
	if c.BootstrapAdmin == "" {
		bad("INFRACAST_BOOTSTRAP_ADMIN: must not be empty")
	}
	if c.BootstrapPassword != "" && len([]rune(c.BootstrapPassword)) < 8 {
		bad("INFRACAST_BOOTSTRAP_PASSWORD: must be at least 8 characters")
	}
	if c.MasterKey != nil && len(c.MasterKey) != 32 {
		bad("INFRACAST_MASTER_KEY: must be 32 bytes (base64), got %d", len(c.MasterKey))
	}
	for i, k := range c.JWTKeys {
		if len(k) < 32 {
			bad("INFRACAST_JWT_KEYS: key %d is %d bytes; at least 32", i+1, len(k))
		}
	}
	if !c.Embedded() && (c.MasterKey == nil || len(c.JWTKeys) == 0) {
		bad("INFRACAST_MASTER_KEY and INFRACAST_JWT_KEYS: required with an external NATS, so that every replica shares them")
	}
	if c.Issuer == "" || c.Audience == "" {
		bad("INFRACAST_JWT_ISSUER and INFRACAST_JWT_AUDIENCE: must not be empty")
	}
	if c.AccessTTL < time.Minute || c.AccessTTL > 24*time.Hour {
		bad("INFRACAST_ACCESS_TOKEN_TTL %s: want 1m..24h", c.AccessTTL)
	}
	if c.RefreshTTL < c.AccessTTL || c.RefreshTTL > 90*24*time.Hour {
		bad("INFRACAST_REFRESH_TOKEN_TTL %s: want access TTL..2160h", c.RefreshTTL)
	}
	if c.RefreshReuseInterval < 0 || c.RefreshReuseInterval > MaxRefreshReuseInterval {
		bad("INFRACAST_REFRESH_REUSE_INTERVAL %s: want 0 (off)..%s", c.RefreshReuseInterval, MaxRefreshReuseInterval)
	}
	if c.RefreshIdleTTL < 0 || (c.RefreshIdleTTL > 0 && c.RefreshIdleTTL < c.AccessTTL) {
		bad("INFRACAST_REFRESH_IDLE_TTL %s: 0 (off) or at least the access-token lifetime", c.RefreshIdleTTL)
	}
	if c.Hash.MemoryKiB < 8 || c.Hash.Iterations < 1 || c.Hash.Parallelism < 1 {
		bad("INFRACAST_ARGON2_*: memory ≥ 8 KiB, iterations ≥ 1, parallelism ≥ 1")
	}
	for _, o := range c.CORSOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || o == "*" {
			bad("INFRACAST_CORS_ORIGINS %q: want an exact origin like https://app.example.com (no wildcard, no path)", o)
		}
	}
	if c.Environment == "" {
		bad("INFRACAST_ENVIRONMENT: must not be empty (production, staging, dev, …)")
	}
	if c.KeyUsageInterval < time.Millisecond {
		bad("INFRACAST_KEY_USAGE_INTERVAL %s: at least 1ms", c.KeyUsageInterval)
	}
	if c.LoginMaxFailures < 0 || c.LoginMaxFailuresPerAddress < 0 {
		bad("INFRACAST_LOGIN_MAX_FAILURES / _PER_ADDRESS: must not be negative (0 disables)")
	}
	if (c.LoginMaxFailures > 0 || c.LoginMaxFailuresPerAddress > 0) && c.LoginLockout <= 0 {
		bad("INFRACAST_LOGIN_LOCKOUT %s: must be positive", c.LoginLockout)
	}
	if c.BodyLimit < 1024 {
		bad("INFRACAST_BODY_LIMIT %d: at least 1024 bytes", c.BodyLimit)
	}
	if c.UpstreamURL != "" {
		if _, err := authhttp.ParseUpstreamURL(c.UpstreamURL); err != nil {
			bad("INFRACAST_UPSTREAM_URL %q: %v", c.UpstreamURL, err)
		}
	}
	if c.UpstreamTimeout < time.Millisecond {
		bad("INFRACAST_UPSTREAM_TIMEOUT %s: at least 1ms", c.UpstreamTimeout)
	}
	if _, err := c.RoutePolicy(); err != nil {
		bad("INFRACAST_ROUTE_POLICY_FILE %q: %v", c.RoutePolicyFile, err)
	}
	c.validateSSO(bad)
	return errors.Join(errs...)
}

// RoutePolicy reads RoutePolicyFile, or returns the default policy without one.
func (c Config) RoutePolicy() (domain.Policy, error) {
	if c.RoutePolicyFile == "" {
		return domain.DefaultPolicy(), nil
	}
	b, err := os.ReadFile(c.RoutePolicyFile)
	if err != nil {
		return domain.Policy{}, err
	}
	return domain.ParsePolicy(b)
}

// KeyEnv is the API key environment of the deployment.
func (c Config) KeyEnv() string {
	if c.Environment == "production" {
		return "live"
	}
	return "test"
}

// DecodeKey parses a base64 (standard or URL, padded or not) key.
func DecodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}
