package domain

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// testCertPEM is a self-signed certificate valid from notBefore to notAfter.
func testCertPEM(t *testing.T, cn string, notBefore, notAfter time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestParseCertificatesPEM: a SAML provider's certificate field holds one to
// MaxSAMLCertificates certificates (a rollover), each valid now; an error
// names which one is wrong.
func TestParseCertificatesPEM(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := testCertPEM(t, "a", now.Add(-time.Hour), now.AddDate(1, 0, 0))
	b := testCertPEM(t, "b", now.Add(-time.Hour), now.AddDate(2, 0, 0))
	expired := testCertPEM(t, "old", now.AddDate(-1, 0, 0), now.Add(-time.Hour))
	future := testCertPEM(t, "future", now.Add(time.Hour), now.AddDate(1, 0, 0))
	key := "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
	for _, tc := range []struct {
		name string
		in   string
		n    int    // certificates parsed
		err  string // in the message, "" = accepted
	}{
		{"one", a, 1, ""},
		{"one with surrounding space", "\n  " + a + "\n\n", 1, ""},
		{"two", a + b, 2, ""},
		{"two with a blank line between", a + "\n" + b, 2, ""},
		{"three", a + b + a, 3, ""},
		{"four", a + b + a + b, 0, "more than 3"},
		{"none", "", 0, "is not a PEM certificate"},
		{"text", "MIIC…", 0, "is not a PEM certificate"},
		{"expired alone", expired, 0, "certificate: expired at"},
		{"the second expired", a + expired, 0, "PEM certificate 2 expired at"},
		{"the first not yet valid", future + a, 0, "PEM certificate 1 is not valid before"},
		{"a key after it", a + key, 0, `PEM certificate 2 is a PEM block "PRIVATE KEY"`},
		{"text after it", a + "trailing", 0, "something else than PEM certificates after PEM certificate 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certs, err := ParseCertificatesPEM(tc.in, now)
			if tc.err == "" {
				if err != nil || len(certs) != tc.n {
					t.Fatalf("got %d certificates, %v; want %d", len(certs), err, tc.n)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %v, want an error with %q", err, tc.err)
			}
		})
	}
}
