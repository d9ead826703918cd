package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	authhttp "github.com/infracast/auth/http"
	"github.com/infracast/auth/projections"
)

// Service is a running instance.
type Service struct {
	cfg    Config
	log    *slog.Logger
	ns     *server.Server // nil with an external NATS
	nc     *nats.Conn
	Store  *events.Store
	Model  *projections.Model
	Runner *projections.Runner
	// Barrier makes a command that takes access away wait until every
	// other replica has applied it (events.Barrier).
	Barrier  *events.Barrier
	Commands *commands.Service
	// Passwords is the argon2id hasher the commands use (its Runs and
	// LastRun tell what the logins cost).
	Passwords *commands.Passwords
	HTTP      *authhttp.Server
	Metrics   *authhttp.Metrics
	Tokens    *authhttp.Tokens
	KeyUsage  *commands.KeyUsage

	readiness     *readiness
	resyncRunner  atomic.Pointer[projections.Runner] // told about NATS disconnects and reconnects
	barrier       atomic.Pointer[events.Barrier]     // told about the permissions NATS refuses (connectionHandlers)
	snapshots     *events.Snapshots                  // snapshots.go; nil until the bucket is open
	snapshotSeq   atomic.Uint64                      // sequence of the latest snapshot restored or saved
	unusableSnap  atomic.Uint64                      // 1 + sequence of the snapshot start-up could not restore (0: none)
	appendSeconds *prometheus.HistogramVec
	barrierWaits  *prometheus.HistogramVec
	cancel        context.CancelFunc
	cancelUsage   context.CancelFunc
	runnerDone    chan struct{}
	usageDone     chan struct{}
	clockOffset   atomic.Int64 // clock.go: this replica's clock minus the event store's, in nanoseconds
	refusals      *refusals    // natsperms.go: the permissions violations NATS reported

	// bootstrapPasswordIgnored is set by WaitReady (BootstrapPasswordIgnored).
	bootstrapPasswordIgnored atomic.Bool
}

var _ commands.State = (*projections.Model)(nil) // the commands decide against the read models

// Start connects to (or embeds) NATS, opens the stream, starts replaying the
// read models and builds the HTTP API. It does not listen yet; see Serve.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{cfg: cfg, log: log, runnerDone: make(chan struct{}), refusals: newRefusals()}
	if err := s.loadKeys(); err != nil {
		return nil, err
	}
	// Whatever fails from here on, the connection and the embedded server
	// (as far as they got) go with it.
	started := false
	defer func() {
		if !started {
			s.closeNATS()
		}
	}()
	// What the data folder recorded of the stream (seqmark.go): a stream
	// found below it lost events, and is refused rather than started on.
	seen, err := s.seenSequences()
	if err != nil {
		return nil, err
	}
	var marked uint64
	for _, sn := range seen {
		marked = max(marked, sn.Seq)
	}
	if err := s.connect(ctx); err != nil {
		return nil, err
	}
	s.phase("opening the event stream")
	// A permission NATS refuses this replica's user ends the start at once,
	// named (natsperms.go), rather than after the 30 s below with "context
	// deadline exceeded" (outside check 20n).
	startCtx, cancelStart := s.refusals.startContext(ctx)
	defer cancelStart()
	openCtx, cancelOpen := context.WithTimeout(startCtx, 30*time.Second)
	defer cancelOpen()
	st, err := events.OpenStore(openCtx, s.nc, events.StoreConfig{Replicas: cfg.StreamReplicas, ReplicasGiven: cfg.StreamReplicasGiven, Log: log, Seen: seen})
	if err != nil {
		return nil, s.refusals.explain(err)
	}
	s.Store = st
	s.Metrics = authhttp.NewMetrics()
	s.Model = projections.NewModel()
	s.Model.AddressWindow = cfg.LoginLockout
	s.Model.RevokedTokenGrace = accessTokenLeeway + domain.ClockSkewTolerance
	s.Model.RevokedSessionGrace = cfg.AccessTTL + accessTokenLeeway + domain.ClockSkewTolerance + revokedSessionMargin
	s.Model.JournalDir, s.Model.OnJournalError = s.journalDir(), s.journalError
	s.Model.OnJournalDamage = s.journalDamage
	s.phase("restoring the read-model snapshot")
	s.restoreSnapshot(openCtx)
	// A stream whose first events are gone, and no snapshot restored that
	// covers them, would give read models without them and a replica
	// ready on them: refused, as a stream behind the marker is.
	if err := st.CheckReplay(openCtx, s.Model.Applied()); err != nil {
		if s.cfg.SnapshotEvery <= 0 && errors.Is(err, events.ErrStoreRefused) {
			err = fmt.Errorf("%w (snapshots are off here: INFRACAST_SNAPSHOT_EVERY=0; a replica with them on restores the latest one)", err)
		}
		return nil, err
	}
	s.phase("building the API")
	s.Runner = projections.NewRunner(st, s.Model, log)
	s.resyncRunner.Store(s.Runner)
	s.registerMetrics()
	// Started before the replay (it answers the others' waits as it
	// catches up), announced by WaitReady before the first request.
	if s.Barrier, err = events.NewBarrier(s.nc, events.BarrierConfig{
		Stream: st.StreamName(), Applied: s.Runner.WaitFor, AppliedSeq: s.Runner.AppliedLockFree, Log: log, Observe: s.observeBarrier,
		Key:      authhttp.DeriveKey(s.cfg.MasterKey, "replica-barrier"),
		Rejected: func() { s.Metrics.BackgroundError("replica_barrier_rejected") },
	}); err != nil {
		return nil, err
	}
	s.barrier.Store(s.Barrier)
	if err := s.Barrier.Start(); err != nil {
		return nil, err
	}
	defer func() {
		if !started {
			s.Barrier.Close()
		}
	}()
	if err := s.checkNATSPermissions(startCtx); err != nil {
		return nil, err
	}
	sealer, err := events.NewSealer(s.cfg.MasterKey)
	if err != nil {
		return nil, err
	}
	pw, err := commands.NewPasswords(cfg.Hash)
	if err != nil {
		return nil, err
	}
	s.Passwords = pw
	s.readiness = &readiness{runner: s.Runner, nc: s.nc, barrier: s.Barrier}
	s.Commands = commands.New(st, s.Runner, s.Model, pw, sealer, commands.Config{
		RefreshTTL: cfg.RefreshTTL, RefreshRotation: cfg.RefreshRotation, Now: cfg.Now, RefreshIdleTTL: cfg.RefreshIdleTTL,
		MaxSessionsPerUser:   cfg.MaxSessionsPerUser,
		RefreshReuseInterval: cfg.RefreshReuseInterval, RefreshSuccessorKey: authhttp.DeriveKey(s.cfg.MasterKey, "refresh-token-successor"),
		ObserveAppend:   s.observeAppend,
		Throttle:        domain.LoginThrottle{MaxFailures: cfg.LoginMaxFailures, LockoutFor: cfg.LoginLockout},
		AddressThrottle: domain.LoginThrottle{MaxFailures: cfg.LoginMaxFailuresPerAddress, LockoutFor: cfg.LoginLockout},
		MFAKey:          authhttp.DeriveKey(s.cfg.MasterKey, "mfa"),
		NameKey:         authhttp.DeriveKey(s.cfg.MasterKey, "login-name"),
		Barrier:         s.Barrier,
		Serving: func() bool {
			ok, _ := s.readiness.Ready()
			return ok
		},
		Log: log,
	})
	s.Tokens, err = authhttp.NewTokens(authhttp.TokenConfig{
		Keys: s.cfg.JWTKeys, Issuer: cfg.Issuer, Audience: cfg.Audience, TTL: cfg.AccessTTL,
		Leeway: accessTokenLeeway, Now: cfg.Now,
		Source: s.Model, Unseal: func(sealed string) ([]byte, error) {
			b64, err := sealer.Open(commands.SealSigningSecret, sealed)
			if err != nil {
				return nil, err
			}
			return base64.RawURLEncoding.DecodeString(b64)
		},
	})
	if err != nil {
		return nil, err
	}
	s.KeyUsage = commands.NewKeyUsage(cfg.KeyUsageInterval)
	policy, err := cfg.RoutePolicy()
	if err != nil {
		return nil, fieldError("RoutePolicyFile", err)
	}
	var upstream *url.URL
	if cfg.UpstreamURL != "" {
		if upstream, err = authhttp.ParseUpstreamURL(cfg.UpstreamURL); err != nil {
			return nil, fieldError("UpstreamURL", err)
		}
		log.Info("gateway enabled", "upstream", upstream.Redacted(), "timeout", cfg.UpstreamTimeout.String())
	}
	for _, p := range cfg.TrustedProxies {
		if p.Bits() == 0 {
			// Every client is then a trusted proxy, and names its own
			// address in X-Forwarded-For (an outside check, 16t: started
			// without a word).
			log.Warn("INFRACAST_TRUSTED_PROXIES includes every address: any client may name its own address in X-Forwarded-For (API key IP ranges, the login throttle, the audit log); list only your proxies",
				"range", p.String())
		}
	}
	sso, err := s.ssoConfig()
	if err != nil {
		return nil, err
	}
	s.HTTP = authhttp.New(authhttp.Config{
		BodyLimit: cfg.BodyLimit, RefreshRotation: cfg.RefreshRotation, RefreshReuseInterval: cfg.RefreshReuseInterval, Now: cfg.Now,
		TrustedProxies: cfg.TrustedProxies, KeyEnv: cfg.KeyEnv(), CORSOrigins: canonicalOrigins(cfg.CORSOrigins),
		RoutePolicy: &policy, Upstream: upstream, UpstreamTimeout: cfg.UpstreamTimeout,
		SSO: sso, RevokedSessionGrace: s.Model.RevokedSessionGrace,
	}, authhttp.Deps{
		Auth: s.Commands, Users: s.Commands, Sessions: s.Commands, Keys: s.Commands, KeyUsage: s.KeyUsage,
		Model: s.Model, Readiness: s.readiness, Tokens: s.Tokens, Log: log, Metrics: s.Metrics,
		SigningKeys: s.Commands, SigningKeyModel: s.Model, CatchUp: s.Commands, Barrier: s.Barrier,
		SSO: s.Commands, SSOModel: s.Model, History: s.Model, Events: s.Store,
		SCIM: s.Commands, SCIMModel: s.Model,
		MFA: s.Commands, MFAModel: s.Model,
	})
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.runnerDone)
		snapshotsDone, pruneDone := make(chan struct{}), make(chan struct{})
		go func() { defer close(snapshotsDone); s.runSnapshots(runCtx) }()
		go func() { defer close(pruneDone); s.runPrune(runCtx, time.Minute) }()
		clockDone := make(chan struct{})
		go func() { defer close(clockDone); s.runClockCheck(runCtx) }()
		markDone := make(chan uint64, 1)
		go func() { markDone <- s.runSeqMark(runCtx, marked) }()
		s.Runner.Run(runCtx)
		<-snapshotsDone
		<-pruneDone
		<-clockDone
		// A clean shutdown leaves the marker at the last sequence applied.
		written := <-markDone
		s.markSeq(&written)
	}()
	usageCtx, cancelUsage := context.WithCancel(context.Background())
	s.cancelUsage = cancelUsage
	s.usageDone = make(chan struct{})
	go func() {
		defer close(s.usageDone)
		s.KeyUsage.Run(usageCtx, s.Commands, func(err error) {
			s.Metrics.BackgroundError("key_usage")
			log.Warn("recording API key usage failed; retried at the next flush", "err", err)
		})
	}()
	started = true
	return s, nil
}

// runPrune makes the read models forget, every interval, what can no longer
// matter (expired revocations, sessions past their absolute expiry), so memory
// and snapshots do not grow with every session ever started.
func (s *Service) runPrune(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if n := s.Model.Prune(s.cfg.Now()); n > 0 {
				s.log.Debug("pruned read models", "entries", n)
			}
		}
	}
}

// journalDir is where the audit journal's filled chunks go: a file of this
// process's under DataDir, which it empties first (the snapshot or the
// replay gives the content back); "" (in memory) without a DataDir, or
// when the folder cannot be made.
func (s *Service) journalDir() string {
	if s.cfg.DataDir == "" {
		return ""
	}
	dir := filepath.Join(s.cfg.DataDir, "audit-journal")
	if err := projections.ResetJournalDir(dir); err != nil {
		s.journalError(err)
		return ""
	}
	return dir
}

// journalError reports an error of the audit journal's file: its chunk
// stays in memory.
func (s *Service) journalError(err error) {
	s.log.Error("audit journal file: its chunks stay in memory", "err", err)
	s.Metrics.BackgroundError("audit_journal")
}

// journalDamage reports a chunk of the audit journal's file read back
// damaged: the question that read it failed (500), and so will any other
// that reads it, until the replica restarts and the snapshot or the replay
// fills a new file.
func (s *Service) journalDamage(err error) {
	s.log.Error("audit journal file: a chunk is damaged; the questions that read it fail until the replica restarts", "err", err)
	s.Metrics.BackgroundError("audit_journal")
}

// registerMetrics adds the event-store and projection metrics to the registry.
func (s *Service) registerMetrics() {
	s.appendSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "infracast_event_append_duration_seconds", Help: "Appends to the event store, by outcome.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
	}, []string{"outcome"})
	s.barrierWaits = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "infracast_replica_barrier_duration_seconds",
		Help:    "Waits of a command that takes access away for every other replica to apply it, by outcome (confirmed, timeout, canceled, error).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, .5, 1, 2.5},
	}, []string{"outcome"})
	s.Metrics.Registry.MustRegister(s.appendSeconds, s.barrierWaits,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "infracast_replica_peers", Help: "Other replicas of the service this one hears from (and waits for when it takes access away).",
		}, func() float64 { return float64(s.Barrier.Peers()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "infracast_catch_up_failures_total",
			Help: "Best-effort catch-ups with another replica's writes (a login's) that the event store did not answer in time; the decision went on from the read models.",
		}, func() float64 { return float64(s.Commands.CatchUpFailures()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "infracast_sso_unscoped_mapping_logins_total",
			Help: "SSO logins through a multi-directory Azure AD provider whose groups matched role mappings stored without their directory, which grant nothing (docs/operations.md, Upgrades and rollbacks).",
		}, func() float64 { return float64(s.Commands.UnscopedMappingLogins()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "infracast_follow_up_failures_total",
			Help: "Follow-ups of stored writes that failed (SCIM role reconciliations, in the request or retried in the background; a login's record after its session; a passkey's first recovery codes); the request answered success, its change being stored.",
		}, func() float64 { return float64(s.Commands.FollowUpFailures()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "infracast_session_limit_failures_total",
			Help: "Logins that left their user over the session limit because ending the least recently used sessions failed; the logins succeeded, and the next one ends them.",
		}, func() float64 { return float64(s.Commands.SessionLimitFailures()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "infracast_login_decoy_failures_total",
			Help: "Checks of a name that matches no user whose paired user's password hash did not open with the master key; the dummy hash stood in.",
		}, func() float64 { return float64(s.Commands.DecoyFailures()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "infracast_projection_applied_sequence", Help: "Last stream sequence applied to the read models.",
		}, func() float64 { return float64(s.Runner.Applied()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "infracast_projection_lag_events", Help: "Events the read models are behind the stream head (as the consumer last saw it, or as taken at start or after a reconnect).",
		}, func() float64 { return float64(s.Runner.Lag()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "infracast_projection_skipped_events_total", Help: "Undecodable events skipped by the projections.",
		}, func() float64 { return float64(s.Model.Skipped()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "infracast_clock_offset_seconds",
			Help: "This replica's clock minus the event store's (the NATS stream leader's), measured every 10 s; beyond ±1 s it is logged as a warning (docs/operations.md, Clocks).",
		}, func() float64 { return s.ClockOffset().Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "infracast_event_store_connected", Help: "1 while the NATS connection is up.",
		}, func() float64 {
			if s.nc.IsConnected() {
				return 1
			}
			return 0
		}),
	)
}

func (s *Service) observeBarrier(d time.Duration, outcome string) {
	s.barrierWaits.WithLabelValues(outcome).Observe(d.Seconds())
	if outcome == "timeout" || outcome == "error" {
		s.Metrics.BackgroundError("replica_barrier")
	}
}

func (s *Service) observeAppend(d time.Duration, err error) {
	outcome := "ok"
	switch {
	case errors.Is(err, events.ErrConflict):
		outcome = "conflict"
	case err != nil:
		outcome = "error"
	}
	s.appendSeconds.WithLabelValues(outcome).Observe(d.Seconds())
}

// WaitReady blocks until the read models have caught up, then creates the
// bootstrap admin if the store is empty. The generated password (when none was
// configured) is written to out, once. A BootstrapPassword configured for a
// store that has its admin already is ignored: BootstrapPasswordIgnored.
func (s *Service) WaitReady(ctx context.Context, out io.Writer) error {
	for !s.Runner.Ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	password, generated := s.cfg.BootstrapPassword, false
	if password == "" {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		password, generated = base64.RawURLEncoding.EncodeToString(b), true
	}
	created, err := s.Commands.Bootstrap(ctx, s.cfg.BootstrapAdmin, password)
	if err != nil {
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	if created {
		s.log.Info("bootstrap admin created", "username", s.cfg.BootstrapAdmin)
		if generated && out != nil {
			id := "{id}"
			if u, _, ok := s.Model.UserByName(s.cfg.BootstrapAdmin); ok { // applied: Bootstrap waits for its write
				id = u.ID
			}
			fmt.Fprintf(out, "\nInfracast Auth: created platform admin %q (%s) with password:\n\n    %s\n\n"+
				"This is shown once. Sign in at %s/console (or POST /api/v1/auth/token),\nand change it with POST /api/v1/users/%s/password.\n\n",
				s.cfg.BootstrapAdmin, id, password, s.cfg.ExternalBaseURL(), id)
		}
	} else if !generated {
		// The store was not empty: the password configured has no effect,
		// and an operator who set it to reset the admin's must learn so
		// (BootstrapPasswordIgnored; the command says it in its own words)
		// — unless it is the admin's password: another replica started
		// with it at the same moment made the admin.
		inForce, err := s.Commands.BootstrapPasswordInForce(ctx, s.cfg.BootstrapAdmin, password)
		if err != nil {
			return fmt.Errorf("bootstrap admin: %w", err)
		}
		s.bootstrapPasswordIgnored.Store(!inForce)
	}
	if err := s.Commands.CheckMasterKey(s.cfg.BootstrapAdmin); err != nil {
		return fmt.Errorf("%w: start with the master key this store was written with (INFRACAST_MASTER_KEY, or the data folder's master.key)", err)
	}
	// From here on revocations through the other replicas wait for this
	// one: it is about to serve.
	s.Barrier.Announce()
	s.readiness.bootstrapped.Store(true)
	return nil
}

// BootstrapPasswordIgnored reports whether WaitReady found the bootstrap
// admin created before while a BootstrapPassword was configured: it changed
// nothing. The caller tells the operator, naming the setting as they set it.
func (s *Service) BootstrapPasswordIgnored() bool { return s.bootstrapPasswordIgnored.Load() }

// readiness combines the projections' catch-up, the first start's bootstrap,
// the connection to NATS and the replica barrier.
type readiness struct {
	runner       *projections.Runner
	nc           *nats.Conn
	barrier      *events.Barrier
	bootstrapped atomic.Bool
}

func (r *readiness) Serving() bool { return r.bootstrapped.Load() && r.runner.Ready() }

func (r *readiness) Applied() uint64 { return r.runner.Applied() }

func (r *readiness) Ready() (bool, string) {
	switch {
	case !r.Serving():
		return false, "Read models are catching up with the event store"
	case !r.nc.IsConnected():
		return false, "Event store unreachable: serving reads from the read models, refusing writes"
	case r.barrier != nil && r.barrier.Outside():
		return false, "Outside the replica barrier (NATS refused this replica's user a permission on infracast.replicas.>): refusing credential checks until it takes part again"
	case r.runner.Stalled():
		return false, "Event store not serving the stream (JetStream unavailable): serving reads from the read models, refusing writes"
	case !r.runner.Current():
		return false, fmt.Sprintf("Event store reachable again: read models catching up (%d events behind); writes wait", r.runner.Lag())
	}
	return true, ""
}

// Serve accepts HTTP connections on ln until Shutdown. Accept errors that
// pass (out of file descriptors) are waited out, counted
// (infracast_background_errors_total{task="http_accept"}) and logged once
// each time they start and stop (retryingListener); any other error ends
// Serve, and the caller must treat that as a failure. A *Starting
// (ServeStarting) hands its address over: its early answers stop.
func (s *Service) Serve(ln net.Listener) error {
	count := func() { s.Metrics.BackgroundError("http_accept") }
	if st, ok := ln.(*Starting); ok {
		st.handOver(count)
		return s.HTTP.App().Listener(st)
	}
	return s.HTTP.App().Listener(newRetryingListener(ln, s.log, count))
}

// Shutdown stops accepting requests, lets in-flight ones finish, stops the
// projections and closes NATS (draining, so nothing acknowledged is lost).
func (s *Service) Shutdown(ctx context.Context) error {
	var errs []error
	if err := s.HTTP.App().ShutdownWithContext(ctx); err != nil {
		errs = append(errs, err)
	}
	s.HTTP.CloseUpstream()
	// No request of this replica's is left: the others stop waiting for
	// its read models now, not after a timeout.
	s.Barrier.Close()
	// The background retries of follow-ups (commands.Service.Close) and
	// the usage flusher's last append wait for the projection to apply
	// them, so they stop first, then the projection runner.
	s.Commands.Close()
	for _, stop := range []struct {
		cancel context.CancelFunc
		done   chan struct{}
	}{{s.cancelUsage, s.usageDone}, {s.cancel, s.runnerDone}} {
		stop.cancel()
		select {
		case <-stop.done:
		case <-ctx.Done():
		}
	}
	s.closeNATS()
	return errors.Join(errs...)
}

func (s *Service) closeNATS() {
	if s.nc != nil {
		_ = s.nc.Drain()
		for i := 0; i < 200 && !s.nc.IsClosed(); i++ {
			time.Sleep(5 * time.Millisecond)
		}
		s.nc.Close()
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
}

// NATSClientURL is the embedded server's TCP address when it listens on one.
func (s *Service) NATSClientURL() string {
	if s.ns == nil || s.cfg.NATSListen == "" {
		return ""
	}
	return s.ns.ClientURL()
}

// connectionHandlers log connection changes and make the projections take
// the stream head again: after an outage the replica reports ready, and
// takes writes, only once it has caught up (projections.Runner.Resync).
func (s *Service) connectionHandlers() []nats.Option {
	resync := func() {
		if r := s.resyncRunner.Load(); r != nil {
			r.Resync()
		}
	}
	return []nats.Option{
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err == nil && nc.IsClosed() {
				return // our own Close at shutdown: nothing went wrong
			}
			s.log.Warn("nats disconnected", "err", err)
			resync()
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			s.log.Info("nats reconnected", "url", shownURL(nc.ConnectedUrl()))
			resync()
		}),
		// Asynchronous errors (a write on a connection that broke) go to the
		// log, not as plain text to stderr.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if b := s.barrier.Load(); b != nil && b.RefusedAnswer(err) {
				// An older replica's request, during a rolling upgrade:
				// the barrier warned of it; no permission the service
				// needs is missing, and a start goes on.
				return
			}
			if s.refusals != nil && s.refusals.add(err) {
				if b := s.barrier.Load(); b != nil && b.Refused(err) {
					return // the barrier logged it, once, and takes part again when it may
				}
				// At start, it ends the start (natsperms.go); later (a
				// permission taken away meanwhile) a request or a
				// subscription of this replica's fails.
				s.log.Error("nats refused this replica's user a permission; "+permissionsDoc, "err", err)
				return
			}
			if sub != nil {
				s.log.Warn("nats error", "err", err, "subject", sub.Subject)
				return
			}
			s.log.Warn("nats error", "err", err)
		}),
	}
}

// embeddedUsers are the logins of the embedded server when it listens on TCP
// (none otherwise: in-process connections only), and this process's own. The
// service logs in as a user whose password is made at each start and never
// leaves the process.
func (s *Service) embeddedUsers() ([]events.EmbeddedUser, []nats.Option) {
	if s.cfg.NATSListen == "" {
		return nil, nil
	}
	const self = "infracast-internal"
	pw := rand.Text()
	users := []events.EmbeddedUser{{Name: self, Password: pw}}
	if s.cfg.NATSListenPassword != "" {
		users = append(users, events.EmbeddedUser{Name: events.EmbeddedReplicaUser, Password: s.cfg.NATSListenPassword})
	}
	if s.cfg.NATSAuditPassword != "" {
		users = append(users, events.EmbeddedUser{Name: events.EmbeddedAuditUser, Password: s.cfg.NATSAuditPassword, ReadOnly: true})
	}
	return users, []nats.Option{nats.UserInfo(self, pw)}
}

// natsPingInterval and natsPingsOut bound how long a replica stays on a
// NATS server that answers nothing: about (natsPingsOut+1) × the interval,
// 6 s, before it reconnects elsewhere (TestClusterFrozenNodeRevocationStillArrives).
// A ping is a few bytes each way per interval.
const (
	natsPingInterval = 2 * time.Second
	natsPingsOut     = 2
)

// phase tells Config.OnPhase what Start is doing.
func (s *Service) phase(p string) {
	if s.cfg.OnPhase != nil {
		s.cfg.OnPhase(p)
	}
}

// startProgressLogEvery spaces the INFO lines of an embedded NATS that is
// still starting (a variable for the tests).
var startProgressLogEvery = 5 * time.Second

// connect ends early when ctx does (a shutdown asked for during the
// start): its waits — the embedded NATS's recovery, the retries of an
// external NATS not reachable yet — watch it.
func (s *Service) connect(ctx context.Context) error {
	if s.cfg.Embedded() {
		s.phase("starting the embedded NATS")
		users, login := s.embeddedUsers()
		var logged time.Time
		ns, err := events.StartEmbeddedContext(ctx, events.EmbeddedOptions{
			StoreDir: filepath.Join(s.cfg.DataDir, "jetstream"), Listen: s.cfg.NATSListen, SyncAlways: true, Users: users,
			TLSCert: s.cfg.NATSListenTLSCert, TLSKey: s.cfg.NATSListenTLSKey,
			StartTimeout: s.cfg.NATSStartTimeout,
			// A recovery after a crash takes tens of seconds at a million
			// users: say so, every few seconds, and in /ready.
			Progress: func(p events.EmbeddedProgress) {
				s.phase(p.String())
				if time.Since(logged) >= startProgressLogEvery {
					s.log.Info("waiting for the embedded NATS: "+p.String(), "elapsed", p.Elapsed.Round(time.Second).String(),
						"recovering_stream", p.Recovering, "gives_up_in", (s.natsStartTimeout() - p.Elapsed).Round(time.Second).String())
					logged = time.Now()
				}
			},
		})
		if errors.Is(err, events.ErrEmbeddedNotReady) {
			// Long enough a recovery may yet end: say which setting allows more.
			return &FieldError{Field: "NATSStartTimeout", Value: s.natsStartTimeout().String(),
				Message: err.Error() + "; if it was still recovering (a big stream after a crash), allow it more time", Err: err}
		}
		if err != nil {
			return err
		}
		s.ns = ns
		s.nc, err = events.ConnectEmbedded(ns, append(s.connectionHandlers(), login...)...)
		return err
	}
	opts := append([]nats.Option{
		nats.Name("infracast-auth"), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		// A server that stops answering without closing the connection (a
		// frozen process, a network that drops packets) is found stale at
		// the ping after natsPingsOut unanswered ones, and the client moves to
		// another: with the defaults (every 2 minutes) a replica stayed on
		// a frozen node for 4–5 minutes, hearing of no revocation, while
		// the cluster kept its quorum and the other replicas wrote them.
		nats.PingInterval(natsPingInterval), nats.MaxPingsOutstanding(natsPingsOut),
		// A publish while disconnected fails at once instead of waiting in a
		// buffer and landing after its request was answered 503.
		nats.ReconnectBufSize(-1),
	}, s.connectionHandlers()...)
	if s.cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(s.cfg.NATSCreds))
	}
	if s.cfg.NATSNKeySeed != "" {
		o, err := nats.NkeyOptionFromSeed(s.cfg.NATSNKeySeed)
		if err != nil {
			return fieldError("NATSNKeySeed", err)
		}
		opts = append(opts, o)
	}
	if s.cfg.NATSUser != "" {
		opts = append(opts, nats.UserInfo(s.cfg.NATSUser, s.cfg.NATSPassword))
	}
	if s.cfg.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(s.cfg.NATSTLSCA))
	}
	if s.cfg.NATSTLSCert != "" {
		opts = append(opts, nats.ClientCert(s.cfg.NATSTLSCert, s.cfg.NATSTLSKey))
	}
	url, shown := "", "" // shown: without passwords, for messages (an outside check, 14g, found one printed)
	for i, u := range s.cfg.NATSURLs {
		if i > 0 {
			url += ","
			shown += ","
		}
		url += u
		shown += shownURL(u)
	}
	// NATS may be starting at the same moment (or be busy): keep trying the
	// first connection for a while before giving up. A refusal (credentials,
	// TLS) is final at once.
	// One warning every few seconds, not one per attempt (60 lines in 15 s).
	deadline := time.Now().Add(initialConnectWait)
	var warned time.Time
	s.phase("connecting to NATS")
	for attempt := 1; ; attempt++ {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			s.nc = nc
			return nil
		}
		var netErr net.Error
		retry := errors.As(err, &netErr) || errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrTimeout)
		if tlsRefusal(err) {
			return fmt.Errorf("%w: connect %s: %v: the NATS server refused this replica's TLS connection — it may require a client certificate (INFRACAST_NATS_TLS_CERT and INFRACAST_NATS_TLS_KEY) or not accept the one given", events.ErrUnavailable, shown, withoutPath(err))
		}
		if !retry || time.Now().After(deadline) {
			return fmt.Errorf("%w: connect %s: %v (after %d attempts)", events.ErrUnavailable, shown, withoutPath(err), attempt)
		}
		s.phase(fmt.Sprintf("connecting to NATS: not reachable yet (attempt %d; gives up in %s)", attempt, time.Until(deadline).Round(time.Second)))
		if time.Since(warned) >= connectWarnEvery {
			s.log.Warn("nats not reachable yet; retrying", "err", withoutPath(err), "attempt", attempt,
				"gives_up_in", time.Until(deadline).Round(time.Second).String())
			warned = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect %s: %w", shown, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// tlsRefusal reports whether err is the server's refusal of the TLS
// connection — its alert (a client certificate required or refused, no
// protocol version in common: a net.OpError "remote error"), or the
// connection closed right after the handshake (nats.ErrTLS), as servers that
// refuse a client certificate do —, which the retry above took for a network
// failure: 15 s of "nats not reachable yet" before "remote error: tls:
// certificate required" (outside check 20n). A handshake that timed out is
// not one: the server may be busy.
func tlsRefusal(err error) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "remote error" {
		return true
	}
	var netErr net.Error
	return errors.Is(err, nats.ErrTLS) && !(errors.As(err, &netErr) && netErr.Timeout())
}

// natsStartTimeout is the embedded NATS's bound on becoming ready.
func (s *Service) natsStartTimeout() time.Duration {
	if s.cfg.NATSStartTimeout > 0 {
		return s.cfg.NATSStartTimeout
	}
	return events.DefaultEmbeddedStartTimeout
}

// accessTokenLeeway is the clock skew tolerated on an access token's exp
// (and nbf, iat): it is accepted until then plus this; the read models keep
// its revocation as long plus domain.ClockSkewTolerance
// (projections.Model.RevokedTokenGrace), as long as a revocation of it is
// still written (domain.RevokeAccessToken): a repeat finds it revoked.
const accessTokenLeeway = 30 * time.Second

// revokedSessionMargin is how much later than its session's last use an
// access token may be issued — the login or refresh request's own time
// after its event, the session limit's revocations and the replicas'
// barrier included — for projections.Model.RevokedSessionGrace: generous,
// since a revoked session kept longer costs only its record.
const revokedSessionMargin = 5 * time.Minute

// initialConnectWait bounds how long Start keeps trying to reach an external
// NATS for the first time; connectWarnEvery spaces its warnings meanwhile.
// (Variables for the tests.)
var (
	initialConnectWait = 15 * time.Second
	connectWarnEvery   = 5 * time.Second
)

// loadKeys fills in the master key and the JWT signing key from DataDir,
// generating them on first start when they were not configured.
func (s *Service) loadKeys() error {
	if s.cfg.MasterKey != nil && len(s.cfg.JWTKeys) > 0 {
		return nil
	}
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	var err error
	if s.cfg.MasterKey == nil {
		path := filepath.Join(s.cfg.DataDir, "master.key")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if _, err := os.Stat(filepath.Join(s.cfg.DataDir, "jetstream")); err == nil {
				// A store without its key: a new key would not open its
				// sealed password hashes (and, written here, would look
				// like the right one to the next start).
				return fmt.Errorf("%s is missing, but %s holds an event store: the master key does not open it without that file — restore master.key from your backup (or set INFRACAST_MASTER_KEY to the key the store was written with)", path, s.cfg.DataDir)
			}
		}
		if s.cfg.MasterKey, err = keyFile(path); err != nil {
			return err
		}
	}
	if len(s.cfg.JWTKeys) == 0 {
		k, err := keyFile(filepath.Join(s.cfg.DataDir, "jwt-signing.key"))
		if err != nil {
			return err
		}
		s.cfg.JWTKeys = [][]byte{k}
	}
	return nil
}

// keyFile reads a base64 32-byte key, creating it (mode 0600) if missing.
func keyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, derr := DecodeKey(string(b))
		if derr != nil || len(k) != 32 {
			return nil, fmt.Errorf("%s: not a base64 32-byte key", path)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n"); err != nil {
		return nil, err
	}
	return k, f.Sync()
}
