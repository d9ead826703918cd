package commands

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"

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

// APIKeyNameKey is the aggregate ID of the reservation of an API key name
// among its owner's keys: hex SHA-256 (first 16 bytes) of the owner and the
// name in lower case.
func APIKeyNameKey(owner, name string) string {
	sum := sha256.Sum256([]byte("apikeyname\x00" + owner + "\x00" + strings.ToLower(name)))
	return hex.EncodeToString(sum[:16])
}

// SCIMNameKey is the aggregate ID of the reservation of a SCIM connection
// name among its owner's connections: hex SHA-256 (first 16 bytes) of the
// owner and the name in lower case.
func SCIMNameKey(owner, name string) string {
	sum := sha256.Sum256([]byte("scimname\x00" + owner + "\x00" + strings.ToLower(name)))
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
