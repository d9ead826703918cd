package service

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	authhttp "github.com/infracast/auth/http"
)

// validateSSO checks the single sign-on settings: the public origin, the
// origins a login may return to, the SAML service provider's key pair.
func (c Config) validateSSO(p *problems) {
	if c.PublicURL != "" {
		if _, err := authhttp.CanonicalOrigin(c.PublicURL); err != nil {
			p.add("PublicURL", strconv.Quote(shownURL(c.PublicURL)), "want the service's external origin, like https://auth.example.com: "+err.Error())
		}
	}
	for _, o := range c.SSOReturnToAllowlist {
		if _, err := authhttp.CanonicalOrigin(o); err != nil {
			p.add("SSOReturnToAllowlist", strconv.Quote(shownURL(o)), "not an origin like https://app.example.com: "+err.Error())
		}
	}
	together(p, "SAMLKeyFile", c.SAMLKeyFile != "", "SAMLCertFile", c.SAMLCertFile != "")
}

// canonicalOrigin is raw as browsers send it (authhttp.CanonicalOrigin),
// or raw without its trailing slash where that refuses it (Validate has
// refused such a configuration).
func canonicalOrigin(raw string) string {
	o, err := authhttp.CanonicalOrigin(raw)
	if err != nil {
		return strings.TrimSuffix(raw, "/")
	}
	return o
}

// canonicalOrigins is each of origins as browsers send it (the CORS
// allowlist: https://app.example.com:443 or an internationalised host
// never matched a browser's Origin; re-check 17r3).
func canonicalOrigins(origins []string) []string {
	out := make([]string, 0, len(origins))
	for _, o := range origins {
		out = append(out, canonicalOrigin(o))
	}
	return out
}

// ssoConfig builds the HTTP layer's SSO settings: keys derived from the
// master key, and the SAML service provider key pair (from the configured
// files, or generated into the data folder on first start).
func (s *Service) ssoConfig() (authhttp.SSOConfig, error) {
	out := authhttp.SSOConfig{
		CookieKey: authhttp.DeriveKey(s.cfg.MasterKey, "sso-flow-cookie"),
		// As configured: authhttp.CheckReturnTo compares canonical origins.
		ReturnToAllowlist: s.cfg.SSOReturnToAllowlist,
	}
	if s.cfg.PublicURL != "" {
		u, err := url.Parse(canonicalOrigin(s.cfg.PublicURL))
		if err != nil {
			return out, err
		}
		out.PublicURL = u
	}
	keyFile, certFile := s.cfg.SAMLKeyFile, s.cfg.SAMLCertFile
	if keyFile == "" && s.cfg.DataDir != "" {
		keyFile, certFile = filepath.Join(s.cfg.DataDir, "saml-sp.key"), filepath.Join(s.cfg.DataDir, "saml-sp.crt")
	}
	var (
		mu   sync.Mutex
		key  *rsa.PrivateKey
		cert *x509.Certificate
	)
	// Loaded (and, in the data folder, generated) on first use: the SAML
	// metadata or login. Configured files are checked at start.
	out.SAMLKeys = func() (*rsa.PrivateKey, *x509.Certificate, error) {
		mu.Lock()
		defer mu.Unlock()
		if key != nil {
			return key, cert, nil
		}
		if keyFile == "" {
			return nil, nil, errors.New("no SAML service provider key: configure its key and certificate files (README: Configuration), or a data folder to generate them into")
		}
		if s.cfg.SAMLKeyFile == "" {
			if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
				return nil, nil, fmt.Errorf("data dir: %w", err)
			}
			if err := generateSAMLKeyPair(keyFile, certFile, s.cfg.Now()); err != nil {
				return nil, nil, err
			}
		}
		k, c, err := loadSAMLKeyPair(keyFile, certFile)
		if err != nil {
			return nil, nil, err
		}
		key, cert = k, c
		return key, cert, nil
	}
	if s.cfg.SAMLKeyFile != "" {
		if _, _, err := out.SAMLKeys(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// generateSAMLKeyPair writes an RSA-2048 key and a self-signed certificate
// (10 years) unless the key file exists.
func generateSAMLKeyPair(keyFile, certFile string, now time.Time) error {
	if _, err := os.Stat(keyFile); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "infracast-auth SAML service provider"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	f, err := os.OpenFile(keyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(keyPEM); err != nil {
		return err
	}
	return f.Sync()
}

// loadSAMLKeyPair reads the SAML service provider's key pair; an error
// names the setting at fault (a *FieldError), never a file's content.
func loadSAMLKeyPair(keyFile, certFile string) (*rsa.PrivateKey, *x509.Certificate, error) {
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, fieldError("SAMLKeyFile", err)
	}
	block, _ := pem.Decode(kb)
	if block == nil {
		return nil, nil, fieldError("SAMLKeyFile", errors.New("not a PEM private key"))
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		var k any
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		if err == nil {
			var ok bool
			if key, ok = k.(*rsa.PrivateKey); !ok {
				err = errors.New("not an RSA key")
			}
		}
	default:
		err = fmt.Errorf("PEM block %q", block.Type)
	}
	if err != nil {
		return nil, nil, fieldError("SAMLKeyFile", err)
	}
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fieldError("SAMLCertFile", err)
	}
	cblock, _ := pem.Decode(cb)
	if cblock == nil || cblock.Type != "CERTIFICATE" {
		return nil, nil, fieldError("SAMLCertFile", errors.New("not a PEM certificate"))
	}
	cert, err := x509.ParseCertificate(cblock.Bytes)
	if err != nil {
		return nil, nil, fieldError("SAMLCertFile", err)
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, nil, fieldError("SAMLCertFile", errors.New("does not match the key"))
	}
	return key, cert, nil
}
