package tests

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/infracast/auth/events"
	"github.com/infracast/auth/http/service"
)

// TestEmbeddedNATSListenerNeedsALogin: the embedded NATS opened on TCP
// (INFRACAST_NATS_LISTEN) accepts only its two logins. "audit" reads the
// stream through its durable consumer and can change nothing: no event
// published, no other consumer created (one that could update the service's
// own consumers could filter revocations out of its read models), nothing
// deleted or purged. "infracast" is a full client: another replica runs on it.
func TestEmbeddedNATSListenerNeedsALogin(t *testing.T) {
	t.Parallel()
	const replicaPW, auditPW = "replica-password-0123456789", "audit-password-0123456789"
	master, jwtKey := newKey(t), newKey(t)
	a := Start(t, func(c *service.Config) {
		c.NATSListen, c.NATSListenPassword, c.NATSAuditPassword = "127.0.0.1:-1", replicaPW, auditPW
		c.MasterKey, c.JWTKeys = master, [][]byte{jwtKey}
	})
	url := a.Svc.NATSClientURL()
	if url == "" {
		t.Fatal("no NATS client URL")
	}

	for name, opts := range map[string][]nats.Option{
		"no login":                      nil,
		"audit, wrong password":         {nats.UserInfo(events.EmbeddedAuditUser, "wrong-password-0123456789")},
		"the service's own user, guess": {nats.UserInfo("infracast-internal", auditPW)},
		"audit password as infracast":   {nats.UserInfo(events.EmbeddedReplicaUser, auditPW)},
	} {
		if nc, err := nats.Connect(url, append(opts, nats.MaxReconnects(0))...); err == nil {
			nc.Close()
			t.Fatalf("%s: connected", name)
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("%s: %v, want an authorization error", name, err)
		}
	}

	// audit: reads the events through its durable consumer.
	var mu sync.Mutex
	var violations []string
	nc, err := nats.Connect(url, nats.UserInfo(events.EmbeddedAuditUser, auditPW), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		violations = append(violations, err.Error())
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t)
	stream, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatalf("audit: stream info: %v", err)
	}
	headBefore := stream.CachedInfo().State.LastSeq
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: events.AuditConsumer, AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: events.SubjectPrefix + ".>",
	})
	if err != nil {
		t.Fatalf("audit: create its consumer: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for m := range batch.Messages() {
		env, _, err := events.Decode(m.Data())
		if err != nil {
			t.Fatalf("audit: undecodable event: %v", err)
		}
		if env.Type == "" {
			t.Fatal("audit: event without a type")
		}
		if err := m.Ack(); err != nil {
			t.Fatalf("audit: ack: %v", err)
		}
		read++
	}
	if read == 0 {
		t.Fatalf("audit read no event: %v", batch.Error())
	}
	if _, err := stream.GetMsg(ctx, 1); err != nil {
		t.Fatalf("audit: get message 1: %v", err)
	}

	// audit: every write is refused, and nothing changes. A refused request
	// gets no answer (the server reports the violation to the client
	// asynchronously, counted below), so each waits out a short deadline.
	denied := func(what string, op func(ctx context.Context) error) {
		t.Helper()
		dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if err := op(dctx); err == nil {
			t.Fatalf("audit could %s", what)
		}
	}
	denied("publish an event", func(ctx context.Context) error {
		_, err := js.Publish(ctx, events.Subject("user", "user-forged"), []byte(`{"type":"user.role_granted"}`))
		return err
	})
	denied("create another consumer", func(ctx context.Context) error {
		_, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "not-audit"})
		return err
	})
	denied("create an unnamed consumer", func(ctx context.Context) error {
		_, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{})
		return err
	})
	denied("list consumer names", func(ctx context.Context) error {
		names := stream.ConsumerNames(ctx)
		for range names.Name() {
		}
		return names.Err()
	})
	denied("purge the stream", func(ctx context.Context) error { return stream.Purge(ctx) })
	denied("delete the stream", func(ctx context.Context) error { return js.DeleteStream(ctx, events.StreamName) })
	denied("create a stream", func(ctx context.Context) error {
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FORGED", Subjects: []string{"forged.>"}})
		return err
	})
	Eventually(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, v := range violations {
			if strings.Contains(strings.ToLower(v), "permissions violation") {
				n++
			}
		}
		if n < 7 {
			return errors.New("fewer permission violations reported than refused operations")
		}
		return nil
	})
	if head := head(t, a); head != headBefore {
		t.Fatalf("the stream moved from %d to %d while audit tried to write", headBefore, head)
	}

	// infracast: a second replica on the same stream serves the same users.
	b := Start(t, func(c *service.Config) {
		c.NATSURLs, c.NATSUser, c.NATSPassword = []string{url}, events.EmbeddedReplicaUser, replicaPW
		c.MasterKey, c.JWTKeys = master, [][]byte{jwtKey}
	})
	tok := b.Login(AdminUser, AdminPassword).String("token")
	if r := me(t, a, tok); r.Status != 200 {
		t.Fatalf("a token issued by the replica on the listener, on the embedding one: %d %s", r.Status, r.Raw)
	}
}

// TestEmbeddedNATSListenerConfig: a listener without a login to offer, a
// password without a listener, short or shared passwords are refused at
// start, each named.
func TestEmbeddedNATSListenerConfig(t *testing.T) {
	t.Parallel()
	const good, other = "a-password-of-20-chars", "another-password-of-20"
	for _, c := range []struct {
		name                   string
		listen, replica, audit string
		want                   string
	}{
		{"listener without logins", "127.0.0.1:4222", "", "", "INFRACAST_NATS_LISTEN: set INFRACAST_NATS_LISTEN_PASSWORD"},
		{"password without listener", "", good, "", "only with INFRACAST_NATS_LISTEN"},
		{"audit password without listener", "", "", good, "only with INFRACAST_NATS_LISTEN"},
		{"short replica password", "127.0.0.1:4222", "short", "", "INFRACAST_NATS_LISTEN_PASSWORD: at least 16"},
		{"short audit password", "127.0.0.1:4222", "", "short", "INFRACAST_NATS_AUDIT_PASSWORD: at least 16"},
		{"one password for both", "127.0.0.1:4222", good, good, "must differ"},
		{"replica only", "127.0.0.1:4222", good, "", ""},
		{"audit only", "127.0.0.1:4222", "", good, ""},
		{"both", "127.0.0.1:4222", good, other, ""},
	} {
		cfg := service.Defaults()
		cfg.NATSListen, cfg.NATSListenPassword, cfg.NATSAuditPassword = c.listen, c.replica, c.audit
		err := cfg.Validate()
		if err != nil { // named as a user sets the settings: by the command
			err = configProblems(t, "INFRACAST_NATS_LISTEN="+c.listen, "INFRACAST_NATS_LISTEN_PASSWORD="+c.replica, "INFRACAST_NATS_AUDIT_PASSWORD="+c.audit)
		}
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// The events package refuses a listening server without users, whoever calls it.
	if _, err := events.StartEmbedded(events.EmbeddedOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1"}); err == nil {
		t.Fatal("an embedded server listened on TCP without users")
	}
}

// loopbackCert writes a self-signed ECDSA certificate for 127.0.0.1 and its
// key as PEM files, and returns them with a pool that trusts the certificate.
func loopbackCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "infracast-auth embedded NATS"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestEmbeddedNATSListenerTLS: with a certificate the listener takes only TLS
// clients (that log in); the service's own in-process connection needs none.
func TestEmbeddedNATSListenerTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := loopbackCert(t)
	const auditPW = "audit-password-0123456789"
	in := Start(t, func(c *service.Config) {
		c.NATSListen, c.NATSAuditPassword = "127.0.0.1:-1", auditPW
		c.NATSListenTLSCert, c.NATSListenTLSKey = certFile, keyFile
	})
	url := in.Svc.NATSClientURL()
	login := nats.UserInfo(events.EmbeddedAuditUser, auditPW)
	if nc, err := nats.Connect(url, login, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("the TLS listener accepted a plain connection")
	}
	if nc, err := nats.Connect(url, nats.Secure(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("the TLS listener accepted a client that did not log in")
	}
	nc, err := nats.Connect(url, login, nats.Secure(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}), nats.MaxReconnects(0))
	if err != nil {
		t.Fatalf("audit over TLS: %v", err)
	}
	defer nc.Close()
	if !nc.TLSRequired() {
		t.Fatal("the server does not say TLS is required")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Stream(ctxFor(t), events.StreamName); err != nil {
		t.Fatalf("audit over TLS: stream info: %v", err)
	}
	// The service itself writes as before.
	in.CreateUser(in.AdminToken(), "after-tls", "after-tls-passphrase", nil)

	// Each refused, named as a user sets the settings: by the command.
	missing := filepath.Join(t.TempDir(), "none.pem")
	for name, mutate := range map[string]struct {
		cfg func(*service.Config)
		env []string
	}{
		"certificate without key": {func(c *service.Config) { c.NATSListenTLSCert = certFile }, []string{"INFRACAST_NATS_LISTEN_TLS_CERT=" + certFile}},
		"key without certificate": {func(c *service.Config) { c.NATSListenTLSKey = keyFile }, []string{"INFRACAST_NATS_LISTEN_TLS_KEY=" + keyFile}},
		"missing certificate file": {func(c *service.Config) {
			c.NATSListenTLSCert, c.NATSListenTLSKey = missing, keyFile
		}, []string{"INFRACAST_NATS_LISTEN_TLS_CERT=" + missing, "INFRACAST_NATS_LISTEN_TLS_KEY=" + keyFile}},
	} {
		cfg := service.Defaults()
		cfg.NATSListen, cfg.NATSAuditPassword = "127.0.0.1:4222", auditPW
		mutate.cfg(&cfg)
		err := cfg.Validate()
		if err != nil {
			err = configProblems(t, append([]string{"INFRACAST_NATS_LISTEN=127.0.0.1:4222", "INFRACAST_NATS_AUDIT_PASSWORD=" + auditPW}, mutate.env...)...)
		}
		if err == nil || !strings.Contains(err.Error(), "INFRACAST_NATS_LISTEN_TLS") {
			t.Errorf("%s: %v", name, err)
		}
	}
	cfg := service.Defaults()
	cfg.NATSListenTLSCert, cfg.NATSListenTLSKey = certFile, keyFile
	err = cfg.Validate()
	if err != nil {
		err = configProblems(t, "INFRACAST_NATS_LISTEN_TLS_CERT="+certFile, "INFRACAST_NATS_LISTEN_TLS_KEY="+keyFile)
	}
	if err == nil || !strings.Contains(err.Error(), "only with INFRACAST_NATS_LISTEN") {
		t.Errorf("TLS without a listener: %v", err)
	}
}
