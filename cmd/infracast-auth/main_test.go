package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/http/service"
)

// configFields is every field of service.Config that holds a setting, those
// of a nested struct as "Hash.MemoryKiB": what a service.FieldError names.
func configFields() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			switch {
			case !f.IsExported() || f.Type.Kind() == reflect.Func: // Now: the clock
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, prefix+f.Name+".")
			default:
				out = append(out, prefix+f.Name)
			}
		}
	}
	walk(reflect.TypeOf(service.Config{}), "")
	return out
}

// TestEveryConfigFieldHasOneSetting: the table of settings names every field
// of service.Config — so every problem Validate (or Start) reports is named
// as the variable a user sets — and no field that does not exist.
func TestEveryConfigFieldHasOneSetting(t *testing.T) {
	var cfg service.Config
	var logs logSettings
	table := settings(&cfg, &logs)
	byField, byName := map[string]string{}, map[string]bool{}
	for _, s := range table {
		if byName[s.name] {
			t.Errorf("-%s: a second setting", s.name)
		}
		byName[s.name] = true
		if s.field == "" {
			continue
		}
		if other, dup := byField[s.field]; dup {
			t.Errorf("%s: set by -%s and -%s", s.field, other, s.name)
		}
		byField[s.field] = s.name
	}
	fields := configFields()
	for _, f := range fields {
		if setting, ok := givenFields[f]; ok && byName[setting] {
			continue // filled by parseConfig from how that setting was given
		}
		name, ok := byField[f]
		if !ok {
			t.Errorf("service.Config.%s: no setting; a problem with it would be named %q", f, variable(f))
			continue
		}
		if got, want := variable(f), envName(name); got != want || !strings.HasPrefix(got, "INFRACAST_") {
			t.Errorf("variable(%q) = %q, want %q", f, got, want)
		}
		delete(byField, f)
	}
	for f, name := range byField {
		t.Errorf("-%s fills %q, which is no field of service.Config", name, f)
	}
	if len(fields) < 40 {
		t.Fatalf("found %d fields in service.Config: %v", len(fields), fields)
	}
}

// TestConfigProblemsNameVariables: every problem the command reports — a
// value that does not parse, or one Validate refuses — names the variable;
// no field name of the service is left, and the lines users know read as
// they did.
func TestConfigProblemsNameVariables(t *testing.T) {
	env := map[string]string{
		"INFRACAST_LISTEN": "nonsense", "INFRACAST_DATA_DIR": t.TempDir(), "INFRACAST_BODY_LIMIT": "10",
		"INFRACAST_STREAM_REPLICAS": "2", "INFRACAST_SNAPSHOT_EVERY": "often",
		"INFRACAST_NATS_LISTEN": "127.0.0.1:4222", "INFRACAST_NATS_LISTEN_TLS_CERT": "cert.pem",
		"INFRACAST_NATS_LISTEN_PASSWORD": "a-password-of-20-chars", "INFRACAST_NATS_AUDIT_PASSWORD": "a-password-of-20-chars",
		"INFRACAST_NATS_USER": "u", "INFRACAST_ACCESS_TOKEN_TTL": "1s",
		"INFRACAST_ARGON2_MEMORY_KIB": "1", "INFRACAST_ARGON2_ITERATIONS": "1000000", "INFRACAST_ARGON2_PARALLELISM": "200",
		"INFRACAST_LOGIN_MAX_FAILURES": "-1", "INFRACAST_LOGIN_LOCKOUT": "0s", "INFRACAST_MAX_SESSIONS_PER_USER": "-3",
		"INFRACAST_UPSTREAM_URL": "ftp://files.example", "INFRACAST_ROUTE_POLICY_FILE": "missing.json",
		"INFRACAST_PUBLIC_URL": "x", "INFRACAST_SAML_SP_KEY": "sp.key", "INFRACAST_LOG_FORMAT": "xml",
	}
	_, _, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if lines[0] != "invalid configuration:" {
		t.Fatalf("first line %q", lines[0])
	}
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "INFRACAST_") || strings.ContainsAny(l, "{}") {
			t.Errorf("a problem not named as a variable: %q", l)
		}
		for _, f := range configFields() {
			if strings.Contains(l, f+" ") || strings.Contains(l, f+":") {
				t.Errorf("%q names the field %s", l, f)
			}
		}
	}
	for _, want := range []string{
		`INFRACAST_LISTEN "nonsense": address nonsense: missing port in address`,
		`INFRACAST_SNAPSHOT_EVERY "often": not a number`,
		`INFRACAST_STREAM_REPLICAS 2: want 1, 3 or 5`,
		`INFRACAST_NATS_LISTEN_TLS_KEY: required with INFRACAST_NATS_LISTEN_TLS_CERT`,
		`INFRACAST_NATS_AUDIT_PASSWORD: must differ from INFRACAST_NATS_LISTEN_PASSWORD`,
		`INFRACAST_NATS_LISTEN_TLS_CERT: not a readable file (the setting takes a path): no such file or directory`,
		`INFRACAST_NATS_PASSWORD: required with INFRACAST_NATS_USER`,
		`INFRACAST_ACCESS_TOKEN_TTL 1s: want 1m..24h`,
		`INFRACAST_ARGON2_MEMORY_KIB 1: argon2id memory: from 8 KiB to 2 GiB (2097152)`,
		`INFRACAST_ARGON2_ITERATIONS 1000000: argon2id iterations: from 1 to 64`,
		`INFRACAST_ARGON2_PARALLELISM 200: argon2id parallelism: from 1 to 64`,
		`INFRACAST_LOGIN_MAX_FAILURES -1: must not be negative (0 disables)`,
		`INFRACAST_MAX_SESSIONS_PER_USER -3: must not be negative (0 disables)`,
		`INFRACAST_UPSTREAM_URL "ftp://files.example": want an http:// or https:// URL`,
		`INFRACAST_ROUTE_POLICY_FILE "missing.json": open missing.json: no such file or directory`,
		`INFRACAST_PUBLIC_URL "x": want the service's external origin, like https://auth.example.com: not an http(s) origin: scheme and host only`,
		`INFRACAST_SAML_SP_CERT: required with INFRACAST_SAML_SP_KEY`,
		`INFRACAST_LOG_FORMAT "xml": want json or text`,
	} {
		if !strings.Contains(err.Error()+"\n", "\n"+want+"\n") {
			t.Errorf("no line %q in:\n%v", want, err)
		}
	}

	// Without a listener, its options; with an external NATS, what it needs.
	cfg := service.Defaults()
	cfg.NATSURLs, cfg.NATSListen, cfg.NATSListenPassword = []string{"nats://n:4222"}, "", "a-password-of-20-chars"
	for _, want := range []string{
		"INFRACAST_NATS_LISTEN_PASSWORD: only with INFRACAST_NATS_LISTEN",
		"INFRACAST_MASTER_KEY: required with an external NATS (INFRACAST_NATS_URL), so that every replica shares it",
	} {
		if err := named(cfg.Validate()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: want %q", err, want)
		}
	}
	cfg = service.Defaults()
	cfg.NATSListen = "127.0.0.1:4222"
	want := `INFRACAST_NATS_LISTEN: set INFRACAST_NATS_LISTEN_PASSWORD (user "infracast", full access) and/or INFRACAST_NATS_AUDIT_PASSWORD (user "audit", read-only): the listener accepts only clients that log in`
	if err := named(cfg.Validate()); err == nil || err.Error() != want {
		t.Errorf("%v\nwant %s", err, want)
	}
}

// TestNamedKeepsTheError: named renders the service's errors with the
// variables and keeps them for errors.Is and errors.As; any other error, and
// nil, it returns as they are.
func TestNamedKeepsTheError(t *testing.T) {
	inner := errors.New("no such seed")
	fe := &service.FieldError{Field: "NATSNKeySeed", Message: inner.Error(), Err: inner}
	err := named(fe)
	if err.Error() != "INFRACAST_NATS_NKEY: no such seed" || !errors.Is(err, inner) {
		t.Errorf("named(FieldError) = %v (errors.Is inner: %v)", err, errors.Is(err, inner))
	}
	var ve *service.ValidationError
	if err := named(service.Config{}.Validate()); !errors.As(err, &ve) || strings.Contains(err.Error(), "Listen") {
		t.Errorf("named(ValidationError) = %v", err)
	}
	other := errors.New("other")
	if named(other) != other || named(nil) != nil {
		t.Error("named changed an error that names no field")
	}
}

// TestHelpShowsNoVariableValue: -h lists each setting with its built-in
// default, never the value of its variable: in a configured container the
// master key, the signing keys and the passwords would land in its logs
// (outside check 11a). A flag wins over its variable; a variable over the
// default.
func TestHelpShowsNoVariableValue(t *testing.T) {
	secrets := map[string]string{
		"INFRACAST_MASTER_KEY":          "c2VjcmV0LW1hc3Rlci1rZXktMzItYnl0ZXMtbG9uZyEhIQ",
		"INFRACAST_JWT_KEYS":            "kid1:c2VjcmV0LWp3dC1rZXk",
		"INFRACAST_BOOTSTRAP_PASSWORD":  "my-secret-bootstrap-pw",
		"INFRACAST_NATS_PASSWORD":       "my-secret-nats-password",
		"INFRACAST_NATS_AUDIT_PASSWORD": "my-secret-audit-password",
	}
	var out strings.Builder
	_, _, err := parseConfig([]string{"-h"}, func(k string) string { return secrets[k] }, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	if !strings.Contains(out.String(), "INFRACAST_MASTER_KEY") {
		t.Fatalf("-h did not list the settings: %q", out.String())
	}
	for k, v := range secrets {
		if strings.Contains(out.String(), v) {
			t.Errorf("-h printed the value of %s", k)
		}
	}

	env := map[string]string{"INFRACAST_LOGIN_MAX_FAILURES": "9", "INFRACAST_LOGIN_LOCKOUT": "20m", "INFRACAST_DATA_DIR": t.TempDir()}
	cfg, _, err := parseConfig([]string{"-login-lockout", "30m"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LoginMaxFailures != 9 || cfg.LoginLockout != 30*time.Minute {
		t.Fatalf("variable then flag: max failures %d, lockout %v; want 9 and 30m", cfg.LoginMaxFailures, cfg.LoginLockout)
	}
}

// TestMaxSessionsPerUserSetting: the session limit is 100 unless set, and
// INFRACAST_MAX_SESSIONS_PER_USER (or -max-sessions-per-user) sets it; 0
// is no limit.
// givenFields are the fields of service.Config that say whether a setting
// was given (flag or variable) rather than left at its default.
var givenFields = map[string]string{"StreamReplicasGiven": "stream-replicas"}

// TestStreamReplicasGiven: the service can tell INFRACAST_STREAM_REPLICAS
// (or -stream-replicas) set from its default, 1: an existing stream keeps
// its replicas unless they were set (an outside check, 20n: a replica left
// at the default turned the production R3 stream into R1).
func TestStreamReplicasGiven(t *testing.T) {
	for _, tc := range []struct {
		env       string
		args      []string
		want      int
		wantGiven bool
	}{{"", nil, 1, false}, {"3", nil, 3, true}, {"1", nil, 1, true}, {"", []string{"-stream-replicas", "5"}, 5, true}} {
		env := map[string]string{"INFRACAST_STREAM_REPLICAS": tc.env, "INFRACAST_DATA_DIR": t.TempDir()}
		cfg, _, err := parseConfig(tc.args, func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.StreamReplicas != tc.want || cfg.StreamReplicasGiven != tc.wantGiven {
			t.Errorf("INFRACAST_STREAM_REPLICAS %q, flags %v: %d given %t, want %d given %t",
				tc.env, tc.args, cfg.StreamReplicas, cfg.StreamReplicasGiven, tc.want, tc.wantGiven)
		}
	}
}

func TestMaxSessionsPerUserSetting(t *testing.T) {
	for _, tc := range []struct {
		env  string
		args []string
		want int
	}{{"", nil, 100}, {"250", nil, 250}, {"0", nil, 0}, {"250", []string{"-max-sessions-per-user", "20"}, 20}} {
		env := map[string]string{"INFRACAST_MAX_SESSIONS_PER_USER": tc.env, "INFRACAST_DATA_DIR": t.TempDir()}
		cfg, _, err := parseConfig(tc.args, func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MaxSessionsPerUser != tc.want {
			t.Errorf("INFRACAST_MAX_SESSIONS_PER_USER %q, flags %v: %d, want %d", tc.env, tc.args, cfg.MaxSessionsPerUser, tc.want)
		}
	}
}

// TestUnknownVariables: an INFRACAST_ variable that names no setting is
// reported (named, with the nearest setting when it looks misspelt); the
// settings, the client's variables and other variables are not.
func TestUnknownVariables(t *testing.T) {
	got := unknownVariables([]string{
		"INFRACAST_LOGIN_MAX_FAILURE=3", "INFRACAST_HTTP_ADDR=:9090", "INFRACAST_LISTEN=:8080",
		"INFRACAST_PASSWORD=secret", "INFRACAST_URL=http://x", "HOME=/root", "INFRACAST_MASTERKEY=c2VjcmV0",
		"INFRACAST_LOG_FORMAT=text",
	})
	want := []unknownVariable{
		{name: "INFRACAST_HTTP_ADDR"},
		{name: "INFRACAST_LOGIN_MAX_FAILURE", like: "INFRACAST_LOGIN_MAX_FAILURES"},
		{name: "INFRACAST_MASTERKEY", like: "INFRACAST_MASTER_KEY"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("unknown variables %+v, want %+v", got, want)
	}
}

// TestServerStoppedUnaskedIsAFailure: the HTTP server stopping by itself —
// with an error, or without one — ends the process with an error (status
// 1, so that systemd's Restart=on-failure restarts it); only a shutdown
// asked for ends it well. Before, it exited 0 (an outside check, 18q: out
// of file descriptors, fasthttp's Serve returned).
func TestServerStoppedUnaskedIsAFailure(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	accept := errors.New("accept tcp 127.0.0.1:8080: accept4: invalid argument")
	for _, serveErr := range []error{accept, nil} {
		ch := make(chan error, 1)
		ch <- serveErr
		err := served(context.Background(), ch, log)
		if err == nil || (serveErr != nil && !errors.Is(err, serveErr)) {
			t.Errorf("Serve returned %v: served answered %v, want an error", serveErr, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := served(ctx, make(chan error), log); err != nil {
		t.Errorf("a shutdown asked for: %v, want nil", err)
	}
}
