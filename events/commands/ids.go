package commands

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"unicode"

	"github.com/oklog/ulid/v2"

	"github.com/infracast/auth/domain"
)

// NewID returns a prefixed ULID such as "user-01J…".
func NewID(prefix string) string { return prefix + "-" + ulid.Make().String() }

// HashToken is the SHA-256 (hex) under which refresh tokens and keys are stored.
func HashToken(secret string) string {
	sum := SumToken(secret)
	return hex.EncodeToString(sum[:])
}

// SumToken is the SHA-256 of a secret: HashToken before the hex encoding. It
// does not allocate for secrets up to 128 bytes (an API key is 57): it is on
// the path of every request with an API key.
func SumToken(secret string) [sha256.Size]byte {
	var buf [128]byte
	if len(secret) <= len(buf) {
		n := copy(buf[:], secret)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(secret))
}

// LooksLikeRefreshToken reports whether s has the form of a refresh token
// this service issues (newSecret at a login, successor at a rotation): 32
// bytes, base64url without padding. Whether one was issued is the read
// model's to say, while it remembers its session.
func LooksLikeRefreshToken(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == 32
}

func newSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// usernameKey is the reservation subject token for a username: the hex SHA-256
// of its normalized form (subjects cannot hold arbitrary characters).
func usernameKey(username string) string {
	sum := sha256.Sum256([]byte(domain.NormalizeUsername(username)))
	return hex.EncodeToString(sum[:16])
}

// loginKey is the aggregate ID of the failed logins of a name that matches
// no user: the first 16 bytes of HMAC-SHA256, keyed with NameKey, of its
// normalized form. Not a plain hash like usernameKey: the name may be a
// password typed in the wrong box, and the ID is in the stream and the audit
// log (a re-check reversed a SHA-256 one with a dictionary at once).
func (s *Service) loginKey(username string) string {
	m := hmac.New(sha256.New, s.cfg.NameKey)
	m.Write([]byte(domain.NormalizeUsername(username)))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// APIKeyNameKey is the aggregate ID of the reservation of an API key name
// among its owner's keys: hex SHA-256 (first 16 bytes) of the owner and the
// name case-folded (foldName).
func APIKeyNameKey(owner, name string) string {
	sum := sha256.Sum256([]byte("apikeyname\x00" + owner + "\x00" + foldName(name)))
	return hex.EncodeToString(sum[:16])
}

// foldName maps a name to one spelling per class of names that
// strings.EqualFold takes for the same (the check of the live names): each
// letter to the least lower case of its Unicode simple case folding orbit —
// for ASCII its lower case, as strings.ToLower (which reservations used
// before), but one rune for σ, ς and Σ, for s, S and ſ, for k, K and the
// Kelvin sign, where ToLower gives two, and two creations racing through
// two replicas with "Sigma-σ" and "Sigma-ς" both got their name (outside
// check 11f).
func foldName(name string) string {
	return strings.Map(func(r rune) rune {
		least := unicode.ToLower(r)
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, unicode.ToLower(f))
		}
		return least
	}, name)
}

// SCIMNameKey is the aggregate ID of the reservation of a SCIM connection
// name among its owner's connections: hex SHA-256 (first 16 bytes) of the
// owner and the name case-folded (foldName).
func SCIMNameKey(owner, name string) string {
	sum := sha256.Sum256([]byte("scimname\x00" + owner + "\x00" + foldName(name)))
	return hex.EncodeToString(sum[:16])
}

// SCIMGroupNameKey is the aggregate ID of the reservation of a SCIM group
// name (trimmed) among its connection's groups: hex SHA-256 (first 16
// bytes) of the connection ID and the name case-folded (foldName).
func SCIMGroupNameKey(connID, name string) string {
	sum := sha256.Sum256([]byte("scimgroupname\x00" + connID + "\x00" + foldName(name)))
	return hex.EncodeToString(sum[:16])
}

// SSOIdentityKey is the aggregate ID of the link of the identity (issuer,
// subject): hex SHA-256 (first 16 bytes) of both, so that neither needs
// escaping. (Links written before identities were keyed by issuer live on
// the hash of "identity\0<provider>\0<subject>"; both prefixes differ, so
// the two never share a subject.)
func SSOIdentityKey(issuer, subject string) string {
	sum := sha256.Sum256([]byte("sso-identity\x00" + issuer + "\x00" + subject))
	return hex.EncodeToString(sum[:16])
}

// SSOAssertionKey is the aggregate ID of a consumed SAML assertion.
func SSOAssertionKey(provider, assertionID string) string {
	sum := sha256.Sum256([]byte("assertion\x00" + provider + "\x00" + assertionID))
	return hex.EncodeToString(sum[:16])
}
