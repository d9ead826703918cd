package service

import (
	"encoding/base64"
	"errors"
	"net"
	"net/netip"
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
	// NATSStartTimeout bounds how long the embedded NATS may take to become
	// ready at start: it recovers the stream first, which after a crash
	// grows with the stream's size (events.EmbeddedOptions.StartTimeout).
	// Validate refuses 0: set it, as Defaults does.
	NATSStartTimeout time.Duration
	// StreamReplicas are the replicas of a new stream (1 by default; 3 on a
	// cluster). StreamReplicasGiven says the operator set them (flag or
	// variable) rather than left the default: then an existing stream with
	// fewer is raised to them and one with more is refused; without it an
	// existing stream keeps its own (events.StoreConfig.ReplicasGiven), so
	// that a replica started without the setting never changes them.
	StreamReplicas      int
	StreamReplicasGiven bool
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
	// MaxSessionsPerUser bounds each user's live sessions: a login beyond
	// it ends the user's least recently used sessions (0: no limit).
	MaxSessionsPerUser int
	Hash               commands.HashParams
	BodyLimit          int

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
	// LoginMaxFailuresPerAddress failures from a client address, each within
	// LoginLockout of the one before (successes do not reset them), the
	// address is (0 disables either).
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
	// OnPhase, when set, is told what Start is doing as each step begins,
	// and every few seconds while it waits for NATS (cmd's early /ready
	// names it: Starting.SetPhase).
	OnPhase func(phase string)
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
// DefaultMaxSessionsPerUser is how many live sessions one user keeps by
// default: a login beyond it ends the least recently used (Auth0 keeps
// 200 refresh tokens per user and application).
const DefaultMaxSessionsPerUser = 100

func Defaults() Config {
	return Config{
		Listen: ":8080", DataDir: "./data", StreamReplicas: 1, NATSStartTimeout: events.DefaultEmbeddedStartTimeout,
		SnapshotEvery: 10_000, SnapshotInterval: 30 * time.Second,
		BootstrapAdmin: "admin", Issuer: "infracast-auth", Audience: "infracast-api",
		AccessTTL: time.Hour, RefreshTTL: 7 * 24 * time.Hour, RefreshReuseInterval: DefaultRefreshReuseInterval,
		MaxSessionsPerUser: DefaultMaxSessionsPerUser,
		Hash:               commands.DefaultHashParams, BodyLimit: 64 << 10,
		Environment: "production", KeyUsageInterval: time.Minute,
		UpstreamTimeout: authhttp.DefaultUpstreamTimeout,
		// Brute-force protection is on unless switched off explicitly.
		LoginMaxFailures: 5, LoginMaxFailuresPerAddress: 50, LoginLockout: 15 * time.Minute,
	}
}

// Embedded reports whether the service runs its own nats-server.
func (c Config) Embedded() bool { return len(c.NATSURLs) == 0 }

// ExternalBaseURL is where a person reaches the service, for the messages
// that tell them so: PublicURL when set, else http:// and the listen
// address (localhost for one on every interface).
func (c Config) ExternalBaseURL() string {
	if c.PublicURL != "" {
		return canonicalOrigin(c.PublicURL)
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return "http://" + c.Listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
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
