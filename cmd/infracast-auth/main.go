// Command infracast-auth runs the Infracast Auth service: by default with an
// embedded NATS JetStream storing under ./data and the HTTP API on :8080.
//
// Every setting is an environment variable (INFRACAST_*) and a flag of the same
// name in lower case with dashes (INFRACAST_DATA_DIR = -data-dir); a flag wins.
// See the README for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/http/service"
)

func main() {
	if err := run(os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "infracast-auth:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string) error {
	cfg, logLevel, logFormat, err := parseConfig(args, getenv)
	if err != nil {
		return err
	}
	log := newLogger(logLevel, logFormat)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	svc, err := service.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = svc.Shutdown(context.Background())
		return err
	}
	log.Info("listening", "addr", ln.Addr().String(), "embedded_nats", cfg.Embedded(), "nats_client_url", svc.NATSClientURL())
	serveErr := make(chan error, 1)
	go func() { serveErr <- svc.Serve(ln) }()
	if err := svc.WaitReady(ctx, os.Stderr); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("startup", "err", err)
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		log.Error("http server stopped", "err", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return svc.Shutdown(shutdownCtx)
}

func newLogger(level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// parseConfig reads flags over environment variables over defaults, and
// collects every unparsable value before reporting.
func parseConfig(args []string, getenv func(string) string) (service.Config, string, string, error) {
	cfg := service.Defaults()
	fs := flag.NewFlagSet("infracast-auth", flag.ContinueOnError)
	var errs []error
	str := func(name, def, usage string) *string {
		if v := getenv(envName(name)); v != "" {
			def = v
		}
		return fs.String(name, def, usage+" ("+envName(name)+")")
	}
	listen := str("listen", cfg.Listen, "HTTP listen address")
	dataDir := str("data-dir", cfg.DataDir, "data folder for the embedded NATS and generated keys")
	natsURL := str("nats-url", "", "external NATS server URLs, comma-separated; embeds none when set")
	natsCreds := str("nats-creds", "", "NATS credentials file")
	natsNKey := str("nats-nkey", "", "NATS NKey seed file")
	natsUser := str("nats-user", "", "NATS user")
	natsPassword := str("nats-password", "", "NATS password")
	natsCA := str("nats-tls-ca", "", "CA file for NATS TLS")
	natsCert := str("nats-tls-cert", "", "client certificate for NATS TLS")
	natsKey := str("nats-tls-key", "", "client key for NATS TLS")
	natsListen := str("nats-listen", "", "also let the embedded NATS accept TCP clients here (host:port); they log in")
	natsListenPassword := str("nats-listen-password", "", "password of the embedded NATS user \"infracast\" (full access: replicas, backups)")
	natsAuditPassword := str("nats-audit-password", "", "password of the embedded NATS user \"audit\" (read-only: the durable consumer \"audit\")")
	natsListenCert := str("nats-listen-tls-cert", "", "certificate (PEM) with which the embedded NATS listener requires TLS")
	natsListenKey := str("nats-listen-tls-key", "", "its private key (PEM)")
	replicas := str("stream-replicas", "1", "replicas of the event stream (3 on a cluster)")
	snapEvery := str("snapshot-every", strconv.Itoa(cfg.SnapshotEvery), "save a read-model snapshot every this many events (0: no snapshots)")
	snapInterval := str("snapshot-interval", cfg.SnapshotInterval.String(), "how often a replica checks whether a snapshot is due")
	bootAdmin := str("bootstrap-admin", cfg.BootstrapAdmin, "username of the first platform admin")
	bootPassword := str("bootstrap-password", "", "password of the first platform admin (generated and printed once when empty)")
	masterKey := str("master-key", "", "base64 32-byte key sealing sensitive event fields")
	jwtKeys := str("jwt-keys", "", "base64 HS256 keys, comma-separated; the first signs")
	issuer := str("jwt-issuer", cfg.Issuer, "access-token issuer (iss)")
	audience := str("jwt-audience", cfg.Audience, "access-token audience (aud)")
	accessTTL := str("access-token-ttl", cfg.AccessTTL.String(), "access-token lifetime")
	refreshTTL := str("refresh-token-ttl", cfg.RefreshTTL.String(), "refresh-token lifetime")
	rotation := str("refresh-rotation", "false", "rotate refresh tokens with reuse detection")
	reuseInterval := str("refresh-reuse-interval", cfg.RefreshReuseInterval.String(), "with rotation: how long the refresh token just spent still gets the same successor (0: off)")
	idleTTL := str("refresh-idle-ttl", "0s", "expire a session not refreshed for this long (0: off)")
	argonMem := str("argon2-memory-kib", strconv.Itoa(int(cfg.Hash.MemoryKiB)), "argon2id memory cost in KiB")
	argonIter := str("argon2-iterations", strconv.Itoa(int(cfg.Hash.Iterations)), "argon2id iterations")
	argonPar := str("argon2-parallelism", strconv.Itoa(int(cfg.Hash.Parallelism)), "argon2id parallelism")
	bodyLimit := str("body-limit", strconv.Itoa(cfg.BodyLimit), "maximum request body in bytes")
	environment := str("environment", cfg.Environment, "deployment environment; production issues ic_live_ keys, anything else ic_test_")
	trusted := str("trusted-proxies", "", "addresses/CIDR ranges of proxies whose X-Forwarded-For is believed, comma-separated")
	corsOrigins := str("cors-origins", "", "exact browser origins allowed to call the API cross-origin, comma-separated (empty: CORS off)")
	keyUsage := str("key-usage-interval", cfg.KeyUsageInterval.String(), "record an API key's last_used_at at most this often")
	publicURL := str("public-url", "", "external origin of the service (https://auth.example.com): SSO redirect URIs and SAML entity ID")
	returnTo := str("sso-return-to-allowlist", "", "origins an SSO login may redirect to with return_to, comma-separated")
	samlKey := str("saml-sp-key", "", "SAML service provider private key (PEM); generated into the data folder when empty")
	samlCert := str("saml-sp-cert", "", "SAML service provider certificate (PEM), with -saml-sp-key")
	upstreamURL := str("upstream-url", "", "gateway: proxy authorized /api/v1/tenants/{tenant}/** requests to this http(s) URL")
	upstreamTimeout := str("upstream-timeout", cfg.UpstreamTimeout.String(), "gateway: how long the upstream may stay silent")
	routePolicy := str("route-policy-file", "", "JSON route policy (default: the contract's table)")
	maxFailures := str("login-max-failures", strconv.Itoa(cfg.LoginMaxFailures), "consecutive failed logins that lock an account (0: never)")
	maxAddrFailures := str("login-max-failures-per-address", strconv.Itoa(cfg.LoginMaxFailuresPerAddress), "consecutive failed logins that lock a client address (0: never)")
	lockout := str("login-lockout", cfg.LoginLockout.String(), "how long a lockout lasts after the last failed login")
	logLevel := str("log-level", "info", "debug, info, warn or error")
	logFormat := str("log-format", "json", "json or text")
	if err := fs.Parse(args); err != nil {
		return cfg, "", "", err
	}
	cfg.Listen, cfg.DataDir = *listen, *dataDir
	cfg.NATSURLs = splitList(*natsURL)
	cfg.NATSCreds, cfg.NATSNKeySeed, cfg.NATSUser, cfg.NATSPassword = *natsCreds, *natsNKey, *natsUser, *natsPassword
	cfg.NATSTLSCA, cfg.NATSTLSCert, cfg.NATSTLSKey, cfg.NATSListen = *natsCA, *natsCert, *natsKey, *natsListen
	cfg.NATSListenPassword, cfg.NATSAuditPassword = *natsListenPassword, *natsAuditPassword
	cfg.NATSListenTLSCert, cfg.NATSListenTLSKey = *natsListenCert, *natsListenKey
	cfg.BootstrapAdmin, cfg.BootstrapPassword = *bootAdmin, *bootPassword
	cfg.Issuer, cfg.Audience = *issuer, *audience
	num := func(name, v string) int {
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: not a number", envName(name), v))
		}
		return n
	}
	dur := func(name, v string) time.Duration {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: not a duration (like 1h or 168h)", envName(name), v))
		}
		return d
	}
	cfg.StreamReplicas = num("stream-replicas", *replicas)
	cfg.SnapshotEvery, cfg.SnapshotInterval = num("snapshot-every", *snapEvery), dur("snapshot-interval", *snapInterval)
	cfg.AccessTTL, cfg.RefreshTTL = dur("access-token-ttl", *accessTTL), dur("refresh-token-ttl", *refreshTTL)
	cfg.RefreshIdleTTL = dur("refresh-idle-ttl", *idleTTL)
	cfg.RefreshReuseInterval = dur("refresh-reuse-interval", *reuseInterval)
	rot, err := strconv.ParseBool(*rotation)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s %q: want true or false", envName("refresh-rotation"), *rotation))
	}
	cfg.RefreshRotation = rot
	cfg.Hash.MemoryKiB = uint32(num("argon2-memory-kib", *argonMem))
	cfg.Hash.Iterations = uint32(num("argon2-iterations", *argonIter))
	cfg.Hash.Parallelism = uint8(num("argon2-parallelism", *argonPar))
	cfg.BodyLimit = num("body-limit", *bodyLimit)
	cfg.Environment = *environment
	cfg.CORSOrigins = splitList(*corsOrigins)
	cfg.LoginMaxFailures = num("login-max-failures", *maxFailures)
	cfg.LoginMaxFailuresPerAddress = num("login-max-failures-per-address", *maxAddrFailures)
	cfg.LoginLockout = dur("login-lockout", *lockout)
	cfg.KeyUsageInterval = dur("key-usage-interval", *keyUsage)
	cfg.PublicURL, cfg.SSOReturnToAllowlist = *publicURL, splitList(*returnTo)
	cfg.SAMLKeyFile, cfg.SAMLCertFile = *samlKey, *samlCert
	cfg.UpstreamURL, cfg.RoutePolicyFile = *upstreamURL, *routePolicy
	cfg.UpstreamTimeout = dur("upstream-timeout", *upstreamTimeout)
	for _, s := range splitList(*trusted) {
		p, err := domain.ParseIPRange(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not an address or CIDR range", envName("trusted-proxies"), s))
			continue
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, p)
	}
	if *masterKey != "" {
		k, err := service.DecodeKey(*masterKey)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", envName("master-key"), err))
		}
		cfg.MasterKey = k
	}
	for i, s := range splitList(*jwtKeys) {
		k, err := service.DecodeKey(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: key %d: %v", envName("jwt-keys"), i+1, err))
		}
		cfg.JWTKeys = append(cfg.JWTKeys, k)
	}
	if len(errs) > 0 {
		return cfg, "", "", fmt.Errorf("invalid configuration:\n%w", errors.Join(errs...))
	}
	return cfg, *logLevel, *logFormat, nil
}

func envName(flagName string) string {
	return "INFRACAST_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
