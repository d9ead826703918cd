package service

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestStartRefusedTLSIsFinalAtOnce: a NATS server that requires a client
// certificate, and none configured. The server's TLS alert is a refusal,
// final at once as the connect loop's comment says — an outside check (20n)
// saw 15 s of "nats not reachable yet" before `remote error: tls:
// certificate required`.
func TestStartRefusedTLSIsFinalAtOnce(t *testing.T) {
	wait := initialConnectWait
	initialConnectWait = 20 * time.Second // longer than the test allows the start
	t.Cleanup(func() { initialConnectWait = wait })
	certFile, keyFile := selfSignedLoopbackCert(t)
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: certFile, KeyFile: keyFile, CaFile: certFile, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		TLSConfig: tc, TLSVerify: true, TLSTimeout: 2})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(ns.Shutdown)

	c := testConfig(t)
	c.NATSURLs = []string{ns.ClientURL()} // tls://
	c.NATSTLSCA = certFile                // the server is trusted; it wants a certificate of the client's
	c.MasterKey, c.JWTKeys = make([]byte, 32), [][]byte{make([]byte, 32)}
	var logs syncBuffer
	start := time.Now()
	s, err := Start(context.Background(), c, slog.New(slog.NewTextHandler(&logs, nil)))
	if err == nil {
		if serr := s.Shutdown(context.Background()); serr != nil {
			t.Error(serr)
		}
		t.Fatal("started without a client certificate")
	}
	took := time.Since(start)
	// "remote error: tls: certificate required", or the connection closed
	// after the handshake (which comes first is the server's timing): the
	// message says what to configure either way.
	if !strings.Contains(err.Error(), "client certificate (INFRACAST_NATS_TLS_CERT") {
		t.Errorf("the error does not say the server may want a client certificate: %v", err)
	}
	if took > 5*time.Second || strings.Contains(logs.String(), "nats not reachable yet") {
		t.Fatalf("a TLS refusal was retried (%s): %v\n%s", took.Round(time.Millisecond), err, logs.String())
	}
}

// selfSignedLoopbackCert writes a self-signed certificate for 127.0.0.1
// (server and client use) and its key as PEM files.
func selfSignedLoopbackCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nats test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
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
	return certFile, keyFile
}
