// Command infracast-auth runs the Infracast Auth service: by default with an
// embedded NATS JetStream storing under ./data and the HTTP API on :8080.
//
// Every setting is an environment variable (INFRACAST_*) and a flag of the same
// name in lower case with dashes (INFRACAST_DATA_DIR = -data-dir); a flag wins.
// They are defined once, in settings; -h lists them, and the README's table
// is checked against that list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
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
	cfg, logs, err := parseConfig(args, getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h: the flag package printed every setting
	}
	if err != nil {
		return err
	}
	log := newLogger(logs)
	for _, u := range unknownVariables(os.Environ()) {
		// Named, never its value (it may be a secret set under a wrong name).
		if u.like != "" {
			log.Warn("unknown setting "+u.name+" is ignored; did you mean "+u.like+"?", "variable", u.name)
		} else {
			log.Warn("unknown setting "+u.name+" is ignored (the settings are in README's Configuration table, or -h)", "variable", u.name)
		}
	}
	// Listen first: an address in use fails at once, naming it, before the
	// store is opened. From then on /health answers (alive) and /ready
	// says what the start waits for (service.Starting): the embedded NATS's
	// recovery after a crash takes tens of seconds at a million users, and
	// a liveness probe that got no answer meanwhile restarted the replica
	// in the middle of it (outside check 20s).
	tcp, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("%s: %w", variable("Listen"), err)
	}
	ln := service.ServeStarting(tcp, log)
	cfg.OnPhase = ln.SetPhase
	log.Info("answering /health while starting", "addr", ln.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	svc, err := service.Start(ctx, cfg, log)
	if err != nil {
		_ = ln.Close()
		if ctx.Err() != nil {
			// A shutdown asked for during the start (SIGTERM while the
			// embedded NATS recovers, or while an external one is not
			// reachable yet): Start stopped waiting and closed what it had
			// opened; the exit is that of a requested shutdown, 0
			// (docs/operations.md "Exit status"), not a failed start.
			log.Info("shutting down during the start", "err", err)
			return nil
		}
		return named(err)
	}
	log.Info("listening", "addr", ln.Addr().String(), "embedded_nats", cfg.Embedded(), "nats_client_url", svc.NATSClientURL())
	serveErr := make(chan error, 1)
	go func() { serveErr <- svc.Serve(ln) }()
	// A start that cannot finish (the bootstrap admin refused, the store
	// failing) ends the process: a replica that would never be ready must
	// not stay up looking alive.
	startErr := svc.WaitReady(ctx, os.Stderr)
	if svc.BootstrapPasswordIgnored() {
		log.Warn(variable("BootstrapPassword") + " is set but the admin already exists (the event store is not empty); it is ignored — change the password through the API: POST /api/v1/users/{id}/password")
	}
	if startErr != nil && errors.Is(startErr, context.Canceled) {
		startErr = nil
	}
	var stopped error
	if startErr == nil {
		stopped = served(ctx, serveErr, log)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = svc.Shutdown(shutdownCtx)
	if startErr != nil {
		return fmt.Errorf("start: %w", startErr)
	}
	return errors.Join(stopped, err)
}

// served waits until a shutdown is asked for (ctx: SIGINT, SIGTERM), and
// returns nil, or until the HTTP server stops by itself, and returns why:
// the process then ends with status 1, so that a supervisor restarts it
// (systemd's Restart=on-failure, a container's restart policy). An outside
// check (18q) saw the server stop — out of file descriptors — and the
// process shut down and exit 0, which such a supervisor leaves down.
func served(ctx context.Context, serveErr <-chan error, log *slog.Logger) error {
	select {
	case <-ctx.Done():
		log.Info("shutting down")
		return nil
	case err := <-serveErr:
		if err == nil {
			err = errors.New("it returned without an error (its listener was closed)")
		}
		log.Error("http server stopped; shutting down", "err", err)
		return fmt.Errorf("http server stopped: %w", err)
	}
}

// logSettings are the settings of the process's own log (not the service's).
type logSettings struct {
	level  slog.Level
	format string // "json" or "text"
}

func newLogger(l logSettings) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.level}
	if l.format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// setting is one configuration setting: the flag -name and the environment
// variable envName(name), the service.Config field it fills (its name there,
// as service.FieldError names it; empty for the command's own settings), the
// default that -h shows (the README's table is checked against it:
// tests/readme_config_test.go), and set, which parses the value in use into
// the configuration. set leaves the default in place when the value is
// unusable, and says why in an error that names the variable (env).
type setting struct {
	name, field, def, usage string
	set                     func(env, v string) error
}

// settings is every setting of the command, with the defaults of cfg.
func settings(cfg *service.Config, logs *logSettings) []setting {
	return []setting{
		{"listen", "Listen", cfg.Listen, "HTTP listen address", text(&cfg.Listen)},
		{"data-dir", "DataDir", cfg.DataDir, "data folder for the embedded NATS and generated keys", text(&cfg.DataDir)},
		{"nats-url", "NATSURLs", "", "external NATS server URLs, comma-separated; embeds none when set", list(&cfg.NATSURLs)},
		{"nats-creds", "NATSCreds", "", "NATS credentials file", text(&cfg.NATSCreds)},
		{"nats-nkey", "NATSNKeySeed", "", "NATS NKey seed file", text(&cfg.NATSNKeySeed)},
		{"nats-user", "NATSUser", "", "NATS user", text(&cfg.NATSUser)},
		{"nats-password", "NATSPassword", "", "NATS password", text(&cfg.NATSPassword)},
		{"nats-tls-ca", "NATSTLSCA", "", "CA file for NATS TLS", text(&cfg.NATSTLSCA)},
		{"nats-tls-cert", "NATSTLSCert", "", "client certificate file for NATS TLS", text(&cfg.NATSTLSCert)},
		{"nats-tls-key", "NATSTLSKey", "", "client key file for NATS TLS (a path)", text(&cfg.NATSTLSKey)},
		{"nats-listen", "NATSListen", "", "also let the embedded NATS accept TCP clients here (host:port); they log in", text(&cfg.NATSListen)},
		{"nats-listen-password", "NATSListenPassword", "", "password of the embedded NATS user \"infracast\" (full access: replicas, backups)", text(&cfg.NATSListenPassword)},
		{"nats-audit-password", "NATSAuditPassword", "", "password of the embedded NATS user \"audit\" (read-only: the durable consumer \"audit\")", text(&cfg.NATSAuditPassword)},
		{"nats-listen-tls-cert", "NATSListenTLSCert", "", "certificate file (PEM) with which the embedded NATS listener requires TLS", text(&cfg.NATSListenTLSCert)},
		{"nats-listen-tls-key", "NATSListenTLSKey", "", "its private key file (PEM; a path)", text(&cfg.NATSListenTLSKey)},
		{"nats-start-timeout", "NATSStartTimeout", cfg.NATSStartTimeout.String(), "how long the embedded NATS may take to become ready at start (it first recovers the stream: after a crash, longer the bigger the stream)", duration(&cfg.NATSStartTimeout)},
		{"stream-replicas", "StreamReplicas", strconv.Itoa(cfg.StreamReplicas), "replicas of the event stream (3 on a cluster)", number(&cfg.StreamReplicas)},
		{"snapshot-every", "SnapshotEvery", strconv.Itoa(cfg.SnapshotEvery), "save a read-model snapshot every this many events (0: no snapshots)", number(&cfg.SnapshotEvery)},
		{"snapshot-interval", "SnapshotInterval", cfg.SnapshotInterval.String(), "how often a replica checks whether a snapshot is due", duration(&cfg.SnapshotInterval)},
		{"bootstrap-admin", "BootstrapAdmin", cfg.BootstrapAdmin, "username of the first platform admin", text(&cfg.BootstrapAdmin)},
		{"bootstrap-password", "BootstrapPassword", "", "password of the first platform admin (generated and printed once when empty; ignored once the admin exists)", text(&cfg.BootstrapPassword)},
		{"master-key", "MasterKey", "", "base64 32-byte key sealing sensitive event fields", func(env, v string) error {
			if v == "" {
				return nil
			}
			k, err := service.DecodeKey(v)
			if err != nil {
				return fmt.Errorf("%s: %v", env, err)
			}
			cfg.MasterKey = k
			return nil
		}},
		{"jwt-keys", "JWTKeys", "", "base64 HS256 keys, comma-separated; the first signs", func(env, v string) error {
			var errs []error
			for i, s := range splitList(v) {
				k, err := service.DecodeKey(s)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: key %d: %v", env, i+1, err))
					continue
				}
				cfg.JWTKeys = append(cfg.JWTKeys, k)
			}
			return errors.Join(errs...)
		}},
		{"jwt-issuer", "Issuer", cfg.Issuer, "access-token issuer (iss)", text(&cfg.Issuer)},
		{"jwt-audience", "Audience", cfg.Audience, "access-token audience (aud)", text(&cfg.Audience)},
		{"access-token-ttl", "AccessTTL", cfg.AccessTTL.String(), "access-token lifetime", duration(&cfg.AccessTTL)},
		{"refresh-token-ttl", "RefreshTTL", cfg.RefreshTTL.String(), "refresh-token lifetime", duration(&cfg.RefreshTTL)},
		{"refresh-rotation", "RefreshRotation", strconv.FormatBool(cfg.RefreshRotation), "rotate refresh tokens with reuse detection", boolean(&cfg.RefreshRotation)},
		{"refresh-reuse-interval", "RefreshReuseInterval", cfg.RefreshReuseInterval.String(), "with rotation: how long the refresh token just spent still gets the same successor (0: off)", duration(&cfg.RefreshReuseInterval)},
		{"refresh-idle-ttl", "RefreshIdleTTL", cfg.RefreshIdleTTL.String(), "expire a session not refreshed for this long (0: off)", duration(&cfg.RefreshIdleTTL)},
		{"max-sessions-per-user", "MaxSessionsPerUser", strconv.Itoa(cfg.MaxSessionsPerUser), "live sessions one user keeps; a login beyond ends the least recently used (0: no limit)", number(&cfg.MaxSessionsPerUser)},
		{"argon2-memory-kib", "Hash.MemoryKiB", strconv.Itoa(int(cfg.Hash.MemoryKiB)), "argon2id memory cost in KiB", unsigned(&cfg.Hash.MemoryKiB)},
		{"argon2-iterations", "Hash.Iterations", strconv.Itoa(int(cfg.Hash.Iterations)), "argon2id iterations", unsigned(&cfg.Hash.Iterations)},
		{"argon2-parallelism", "Hash.Parallelism", strconv.Itoa(int(cfg.Hash.Parallelism)), "argon2id parallelism", unsigned(&cfg.Hash.Parallelism)},
		{"body-limit", "BodyLimit", strconv.Itoa(cfg.BodyLimit), "maximum request body in bytes", number(&cfg.BodyLimit)},
		{"environment", "Environment", cfg.Environment, "deployment environment; production issues ic_live_ keys, anything else ic_test_", text(&cfg.Environment)},
		{"trusted-proxies", "TrustedProxies", "", "addresses/CIDR ranges of proxies whose X-Forwarded-For is believed, comma-separated", func(env, v string) error {
			var errs []error
			for _, s := range splitList(v) {
				p, err := domain.ParseIPRange(s)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %q is not an address or CIDR range", env, s))
					continue
				}
				cfg.TrustedProxies = append(cfg.TrustedProxies, p)
			}
			return errors.Join(errs...)
		}},
		{"cors-origins", "CORSOrigins", "", "exact browser origins allowed to call the API cross-origin, comma-separated (empty: CORS off)", list(&cfg.CORSOrigins)},
		{"key-usage-interval", "KeyUsageInterval", cfg.KeyUsageInterval.String(), "record an API key's last_used_at at most this often", duration(&cfg.KeyUsageInterval)},
		{"public-url", "PublicURL", "", "external origin of the service (https://auth.example.com): SSO redirect URIs and SAML entity ID", text(&cfg.PublicURL)},
		{"sso-return-to-allowlist", "SSOReturnToAllowlist", "", "origins an SSO login may redirect to with return_to, comma-separated", list(&cfg.SSOReturnToAllowlist)},
		{"saml-sp-key", "SAMLKeyFile", "", "SAML service provider private key file (PEM; a path); generated into the data folder when empty", text(&cfg.SAMLKeyFile)},
		{"saml-sp-cert", "SAMLCertFile", "", "SAML service provider certificate file (PEM), with -saml-sp-key", text(&cfg.SAMLCertFile)},
		{"upstream-url", "UpstreamURL", "", "gateway: proxy authorized /api/v1/tenants/{tenant}/** requests to this http(s) URL", text(&cfg.UpstreamURL)},
		{"upstream-timeout", "UpstreamTimeout", cfg.UpstreamTimeout.String(), "gateway: how long the upstream may stay silent", duration(&cfg.UpstreamTimeout)},
		{"route-policy-file", "RoutePolicyFile", "", "JSON route policy (default: the contract's table)", text(&cfg.RoutePolicyFile)},
		{"login-max-failures", "LoginMaxFailures", strconv.Itoa(cfg.LoginMaxFailures), "consecutive failed logins that lock an account (0: never)", number(&cfg.LoginMaxFailures)},
		{"login-max-failures-per-address", "LoginMaxFailuresPerAddress", strconv.Itoa(cfg.LoginMaxFailuresPerAddress), "failed logins from one client address, each within the lockout of the one before (a success does not reset them), that lock it (0: never)", number(&cfg.LoginMaxFailuresPerAddress)},
		{"login-lockout", "LoginLockout", cfg.LoginLockout.String(), "how long a lockout lasts after the last failed login", duration(&cfg.LoginLockout)},
		{"log-level", "", strings.ToLower(logs.level.String()), "debug, info, warn or error", func(env, v string) error {
			if err := logs.level.UnmarshalText([]byte(v)); err != nil {
				return fmt.Errorf("%s %q: want debug, info, warn or error", env, v)
			}
			return nil
		}},
		{"log-format", "", logs.format, "json or text", func(env, v string) error {
			if v != "json" && v != "text" {
				return fmt.Errorf("%s %q: want json or text", env, v)
			}
			logs.format = v
			return nil
		}},
	}
}

// parseConfig reads flags over environment variables over defaults. It
// returns an error at once only for a malformed command line (or -h:
// flag.ErrHelp, after printing every setting with its built-in default to
// usage); every unusable value, and every problem of the configuration as a
// whole (service.Config.Validate), is reported together.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (service.Config, logSettings, error) {
	cfg := service.Defaults()
	logs := logSettings{level: slog.LevelInfo, format: "json"}
	fs := flag.NewFlagSet("infracast-auth", flag.ContinueOnError)
	if usage != nil {
		fs.SetOutput(usage)
	}
	table := settings(&cfg, &logs)
	values := make([]*string, len(table))
	for i, s := range table {
		// The default -h shows is the built-in one, never the variable's
		// value: -h in a configured container would print the master key,
		// the signing keys and the passwords into its logs.
		values[i] = fs.String(s.name, s.def, s.usage+" ("+envName(s.name)+")")
	}
	if err := fs.Parse(args); err != nil {
		return cfg, logs, err
	}
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	for i, s := range table {
		v := *values[i]
		if e := getenv(envName(s.name)); e != "" && !given[s.name] {
			v = e // a flag wins over its variable; an empty variable is unset
		}
		if err := s.set(envName(s.name), v); err != nil {
			errs = append(errs, err)
		}
	}
	// Whether the stream's replicas were set or are the default: an existing
	// stream keeps its own unless they were set (service.Config).
	cfg.StreamReplicasGiven = given["stream-replicas"] || getenv(envName("stream-replicas")) != ""
	if err := errors.Join(append(errs, named(cfg.Validate()))...); err != nil {
		return cfg, logs, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, logs, nil
}

// The parsers of setting.set for the usual kinds of value.

func text(p *string) func(env, v string) error {
	return func(_, v string) error { *p = v; return nil }
}

func list(p *[]string) func(env, v string) error {
	return func(_, v string) error { *p = splitList(v); return nil }
}

func number(p *int) func(env, v string) error {
	return func(env, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%s %q: not a number", env, v)
		}
		*p = n
		return nil
	}
}

func unsigned[T uint8 | uint32](p *T) func(env, v string) error {
	return func(env, v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > uint64(^T(0)) {
			return fmt.Errorf("%s %q: not a number from 0 to %d", env, v, ^T(0))
		}
		*p = T(n)
		return nil
	}
}

func duration(p *time.Duration) func(env, v string) error {
	return func(env, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%s %q: not a duration (like 1h or 168h)", env, v)
		}
		*p = d
		return nil
	}
}

func boolean(p *bool) func(env, v string) error {
	return func(env, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%s %q: want true or false", env, v)
		}
		*p = b
		return nil
	}
}

// variable is the environment variable that sets field of service.Config,
// from the table of settings; field itself if none does.
func variable(field string) string {
	var cfg service.Config
	var logs logSettings
	for _, s := range settings(&cfg, &logs) {
		if s.field == field && field != "" {
			return envName(s.name)
		}
	}
	return field
}

// named returns err with every field of service.Config it names (a
// service.ValidationError or FieldError) named as the variable that sets it;
// any other error as it is.
func named(err error) error {
	var text string
	switch e := err.(type) {
	case *service.ValidationError:
		text = e.Format(variable)
	case *service.FieldError:
		text = e.Format(variable)
	default:
		return err
	}
	return &namedError{text: text, err: err}
}

// namedError is an error of the service as the command shows it.
type namedError struct {
	text string
	err  error
}

func (e *namedError) Error() string { return e.text }
func (e *namedError) Unwrap() error { return e.err }

// clientVariables are INFRACAST_ variables of the command-line client and
// of the documentation's examples, which a shell that runs the service may
// hold too: not unknown settings.
var clientVariables = map[string]bool{
	"INFRACAST_URL": true, "INFRACAST_TOKEN": true, "INFRACAST_PASSWORD": true, "INFRACAST_NEW_PASSWORD": true,
	"INFRACAST_MFA_CODE": true, "INFRACAST_CREDENTIAL": true, "INFRACAST_CLIENT_SECRET": true, "INFRACAST_KEY": true,
}

type unknownVariable struct{ name, like string }

// unknownVariables are the INFRACAST_ variables of environ that name no
// setting (nor the client's): a misspelt setting — INFRACAST_LOGIN_MAX_FAILURE
// — left its default in force without a word (outside check 17a: a user's
// INFRACAST_HTTP_ADDR was ignored silently). like is the setting whose
// name is nearest, when near enough to be a misspelling.
func unknownVariables(environ []string) []unknownVariable {
	known := map[string]bool{}
	var cfg service.Config
	var logs logSettings
	for _, st := range settings(&cfg, &logs) {
		known[envName(st.name)] = true
	}
	var out []unknownVariable
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "INFRACAST_") || known[name] || clientVariables[name] {
			continue
		}
		u := unknownVariable{name: name}
		best := 4 // at most 3 edits away
		for k := range known {
			if d := editDistance(name, k); d < best || (d == best && k < u.like) {
				best, u.like = d, k
			}
		}
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b unknownVariable) int { return strings.Compare(a.name, b.name) })
	return out
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
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
