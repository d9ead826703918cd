package domain

import (
	"errors"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

// AggregateAPIKey names the API key aggregate.
const AggregateAPIKey = "apikey"

// AllTenants in a key's tenant list makes a platform-wide key (platform admins only).
const AllTenants = "*"

// APIKey is the state of an API key aggregate (a service account credential).
// Only the SHA-256 of the secret is ever known here.
type APIKey struct {
	ID          string
	Name        string
	OwnerID     string // the user who created it; the key never exceeds the owner's live permissions
	Tenants     []string
	Permissions PermissionSet
	AllowedIPs  []netip.Prefix
	SecretHash  string
	CreatedAt   time.Time
	ExpiresAt   time.Time // zero: no expiry
	RotatedAt   time.Time
	LastUsedAt  time.Time
	Revoked     bool
	Version     uint64
}

// Exists reports whether the key has been created.
func (k APIKey) Exists() bool { return k.ID != "" }

// Expired reports whether the key has expired at now.
func (k APIKey) Expired(now time.Time) bool { return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) }

// InTenant reports whether the key may act in tenant at all.
func (k APIKey) InTenant(tenant string) bool {
	for _, t := range k.Tenants {
		if t == tenant || t == AllTenants {
			return true
		}
	}
	return false
}

// AllowsIP reports whether addr may use the key (an empty allowlist allows all).
func (k APIKey) AllowsIP(addr netip.Addr) bool {
	if len(k.AllowedIPs) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, p := range k.AllowedIPs {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// API key events.
type (
	// APIKeyCreated: a key was created; SecretHash is the SHA-256 (hex) of the secret.
	APIKeyCreated struct {
		KeyID       string       `json:"key_id"`
		Name        string       `json:"name"`
		OwnerID     string       `json:"owner_id"`
		Tenants     []string     `json:"tenants"`
		Permissions []Permission `json:"permissions"`
		AllowedIPs  []string     `json:"allowed_ips,omitempty"`
		SecretHash  string       `json:"secret_hash"`
		CreatedAt   time.Time    `json:"created_at"`
		ExpiresAt   *time.Time   `json:"expires_at,omitempty"`
	}
	// APIKeyRotated: the key has a new secret; the old one stops. Whoever
	// rotated it holds the new secret and becomes its owner (OwnerID), so the
	// key is capped by, and stops with, that user.
	APIKeyRotated struct {
		KeyID      string    `json:"key_id"`
		SecretHash string    `json:"secret_hash"`
		RotatedAt  time.Time `json:"rotated_at"`
		OwnerID    string    `json:"owner_id,omitempty"`
	}
	// APIKeyRevoked: the key stops everywhere.
	APIKeyRevoked struct {
		KeyID  string `json:"key_id"`
		Reason string `json:"reason,omitempty"`
	}
	// APIKeyUsed: the key was used (coalesced: at most about once a minute per key).
	APIKeyUsed struct {
		KeyID  string    `json:"key_id"`
		UsedAt time.Time `json:"used_at"`
	}
)

// AggregateAPIKeyName holds the reservations of API key names: one subject
// per owner and name (commands.APIKeyNameKey), so that an owner's live keys
// have different names (a retried create, or two at once, makes one key).
const AggregateAPIKeyName = "apikeyname"

// APIKeyNameReserved claims a key name among its owner's keys for the key
// created in the same atomic batch; appended with the name subject's last
// sequence expected, after checking that no live key of the owner has the
// name. A revoked or expired key's name may be reserved again.
type APIKeyNameReserved struct {
	OwnerID string `json:"owner_id"`
	Name    string `json:"name"`
	KeyID   string `json:"key_id"`
}

// TypeAPIKeyNameReserved is APIKeyNameReserved's type name.
const TypeAPIKeyNameReserved = "apikeyname.reserved"

func (APIKeyNameReserved) EventType() string { return TypeAPIKeyNameReserved }

// API key event type names.
const (
	TypeAPIKeyCreated = "apikey.created"
	TypeAPIKeyRotated = "apikey.rotated"
	TypeAPIKeyRevoked = "apikey.revoked"
	TypeAPIKeyUsed    = "apikey.used"
)

func (APIKeyCreated) EventType() string { return TypeAPIKeyCreated }
func (APIKeyRotated) EventType() string { return TypeAPIKeyRotated }
func (APIKeyRevoked) EventType() string { return TypeAPIKeyRevoked }
func (APIKeyUsed) EventType() string    { return TypeAPIKeyUsed }

// APIKeyCommand is a command on the API key aggregate: one of the types
// below. The set is closed (the marker method is unexported), so that handing
// DecideAPIKey, or commands.Service.ExecuteAPIKey, another aggregate's
// command does not compile.
type APIKeyCommand interface{ apiKeyCommand() }

// Commands on the API key aggregate.
type (
	// CreateAPIKey creates a key. The caller's permissions per tenant are
	// given so that Decide can refuse escalation.
	CreateAPIKey struct {
		KeyID       string
		Name        string
		OwnerID     string
		Tenants     []string
		Permissions []string
		AllowedIPs  []string
		SecretHash  string
		ExpiresAt   *time.Time
		Now         time.Time
		// CallerPermissions returns what the creator holds in a tenant
		// (AllTenants: platform-wide).
		CallerPermissions func(tenant string) PermissionSet
	}
	// RotateAPIKey gives the key a new secret, held by OwnerID from now on.
	// CallerPermissions is what that user holds per tenant: the key may not
	// exceed it (AllTenants: platform-wide). Replaces is the hash of the
	// secret the caller saw (the key as the request found it): a key
	// rotated by another request meanwhile is refused (ErrAPIKeyRotated),
	// so that of rotations at once only one answers with a secret, the one
	// in force.
	RotateAPIKey struct {
		Replaces          string
		SecretHash        string
		Now               time.Time
		OwnerID           string
		CallerPermissions func(tenant string) PermissionSet
	}
	// RevokeAPIKey stops the key.
	RevokeAPIKey struct{ Reason string }
	// RecordAPIKeyUse records use at UsedAt, also once the key is revoked
	// (a use accepted before the revocation, written after it).
	RecordAPIKeyUse struct{ UsedAt time.Time }
)

// ParseIPRange parses an address ("192.168.1.100", "2001:db8::1") or a CIDR
// range ("10.0.0.0/8"); a bare address is a single-address range. The bits
// of a range's address past its length are cleared (10.1.2.3/8 is
// 10.0.0.0/8), and an IPv4-mapped address or range is its IPv4 one
// (::ffff:10.0.0.0/104 is 10.0.0.0/8). An IPv4-mapped address with fewer
// than 96 bits (::ffff:0:0/95) is refused: it reaches past the mapped
// space, and masked it would be another range (::fffe:0:0/95) than the one
// given. Refusals are *ValidationError on "allowed_ips" naming s, or
// netip's parse errors.
func ParseIPRange(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, Invalid("allowed_ips", "%q: zones are not allowed", s)
		}
		if p.Addr().Is4In6() {
			// An IPv4-mapped range (::ffff:10.0.0.0/104) is the IPv4 range
			// (10.0.0.0/8): AllowsIP compares unmapped addresses, so a
			// mapped range would otherwise never match.
			if p.Bits() < 96 {
				return netip.Prefix{}, Invalid("allowed_ips",
					"%q: an IPv4-mapped range needs a length of at least /96 (::ffff:0:0/96 is all of IPv4; give IPv4 ranges as such, 10.0.0.0/8)", s)
			}
			return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked(), nil
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, Invalid("allowed_ips", "%q: zones are not allowed", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ErrAPIKeyRotated: a rotation of a key that another rotation gave a new
// secret since the caller saw it.
var ErrAPIKeyRotated = errors.New("domain: the key was rotated meanwhile")

func (CreateAPIKey) apiKeyCommand()    {}
func (RotateAPIKey) apiKeyCommand()    {}
func (RevokeAPIKey) apiKeyCommand()    {}
func (RecordAPIKeyUse) apiKeyCommand() {}

// DecideAPIKey decides a command against a key's state. No events and no
// error means the command changes nothing. A command it does not know (nil,
// or a pointer to a command) is refused: ErrNotFound for a key that does
// not exist, else a *ValidationError on "command".
func DecideAPIKey(k APIKey, cmd APIKeyCommand) ([]Event, error) {
	if c, ok := cmd.(CreateAPIKey); ok {
		return decideCreateAPIKey(k, c)
	}
	if !k.Exists() {
		return nil, ErrNotFound
	}
	switch c := cmd.(type) {
	case RotateAPIKey:
		if k.Revoked {
			return nil, ErrNotFound
		}
		if c.SecretHash == "" || c.SecretHash == k.SecretHash {
			return nil, Invalid("key", "rotation needs a new secret")
		}
		if c.OwnerID == "" {
			return nil, Invalid("owner", "rotation needs the user who will hold the new secret")
		}
		if c.Replaces != k.SecretHash {
			return nil, ErrAPIKeyRotated
		}
		for _, t := range k.Tenants {
			if c.CallerPermissions == nil || !c.CallerPermissions(t).Covers(k.Permissions) {
				return nil, ErrForbidden
			}
		}
		return []Event{APIKeyRotated{KeyID: k.ID, SecretHash: c.SecretHash, RotatedAt: c.Now.UTC(), OwnerID: c.OwnerID}}, nil
	case RevokeAPIKey:
		if k.Revoked {
			return nil, nil
		}
		return []Event{APIKeyRevoked{KeyID: k.ID, Reason: c.Reason}}, nil
	case RecordAPIKeyUse:
		// A revoked key still records a use: every use is one a replica
		// accepted, written up to a flush period later, maybe by another
		// replica than the one that revoked the key, or accepted there
		// before the revocation reached it. Refusing it would make the
		// history say that a leaked key was never used.
		if !c.UsedAt.After(k.LastUsedAt) {
			return nil, nil
		}
		return []Event{APIKeyUsed{KeyID: k.ID, UsedAt: c.UsedAt.UTC()}}, nil
	}
	return nil, Invalid("command", "unknown API key command %T", cmd)
}

// The most tenants and allowed_ips entries a new API key may have.
const (
	MaxAPIKeyTenants    = 100
	MaxAPIKeyAllowedIPs = 100
)

func decideCreateAPIKey(k APIKey, c CreateAPIKey) ([]Event, error) {
	if k.Exists() {
		return nil, ErrAlreadyExists
	}
	if c.KeyID == "" || c.SecretHash == "" || c.OwnerID == "" {
		return nil, Invalid("key", "id, owner and secret hash are required")
	}
	name := strings.TrimSpace(c.Name)
	if name == "" || utf8.RuneCountInString(name) > 128 || hasHiddenRuneInName(name) {
		return nil, Invalid("name", "must be 1-128 characters, without control or invisible characters (direction overrides, zero-width characters, line separators, blank fillers)")
	}
	if len(c.Tenants) == 0 {
		return nil, Invalid("tenants", "at least one tenant is required")
	}
	if len(c.Tenants) > MaxAPIKeyTenants {
		// As allowed_ips: a key's lists are answered whole (its access
		// lists every tenant: outside check 14d got 5.3 MB for 10,000).
		// Keys created before the cap keep their tenants (Evolve).
		return nil, Invalid("tenants", "at most %d tenants (a platform admin's key for every tenant: [\"*\"])", MaxAPIKeyTenants)
	}
	var perms PermissionSet
	permList := make([]Permission, 0, len(c.Permissions))
	for _, p := range c.Permissions {
		pp, err := ParsePermission(p)
		if err != nil {
			return nil, Invalid("permissions", "unknown permission %q", p)
		}
		if perms&SetOf(pp) == 0 {
			permList = append(permList, pp)
		}
		perms |= SetOf(pp)
	}
	if len(permList) == 0 {
		return nil, Invalid("permissions", "at least one permission is required")
	}
	seen := map[string]bool{}
	for _, t := range c.Tenants {
		if t != AllTenants && !ValidTenantID(t) {
			return nil, Invalid("tenants", "tenant id %q is not valid", t)
		}
		if seen[t] {
			return nil, Invalid("tenants", "tenant %q listed twice", t)
		}
		seen[t] = true
		if c.CallerPermissions == nil || !c.CallerPermissions(t).Covers(perms) {
			return nil, ErrForbidden
		}
	}
	// Each range once, as canonicalised: 127.0.0.1 and ::ffff:127.0.0.1
	// are one (outside check 12 found three copies stored).
	ips := make([]string, 0, len(c.AllowedIPs))
	seenIP := map[netip.Prefix]bool{}
	for _, s := range c.AllowedIPs {
		p, err := ParseIPRange(s)
		if err != nil {
			if ve := (*ValidationError)(nil); errors.As(err, &ve) {
				return nil, ve
			}
			return nil, Invalid("allowed_ips", "%q is not an IP address or CIDR range", s)
		}
		if !seenIP[p] {
			seenIP[p] = true
			ips = append(ips, p.String())
		}
	}
	if len(ips) > MaxAPIKeyAllowedIPs {
		return nil, Invalid("allowed_ips", "at most %d entries", MaxAPIKeyAllowedIPs)
	}
	// The expiry is kept to the second, as every answer shows it (RFC 3339
	// to the second): a key asked to expire at …:21.9Z worked until then
	// while shown expiring at …:21Z (outside check 17g).
	var exp time.Time
	if c.ExpiresAt != nil {
		exp = c.ExpiresAt.UTC().Truncate(time.Second)
		if !exp.After(c.Now) {
			return nil, Invalid("expires_at", "must be in the future")
		}
	}
	ev := APIKeyCreated{
		KeyID: c.KeyID, Name: name, OwnerID: c.OwnerID, Tenants: append([]string(nil), c.Tenants...),
		Permissions: permList, AllowedIPs: ips, SecretHash: c.SecretHash, CreatedAt: c.Now.UTC(),
	}
	if c.ExpiresAt != nil {
		ev.ExpiresAt = &exp
	}
	return []Event{ev}, nil
}

// EvolveAPIKey applies one event to a key's state.
func EvolveAPIKey(k APIKey, e Event) APIKey {
	switch ev := Deref(e).(type) {
	case APIKeyCreated:
		k = APIKey{
			ID: ev.KeyID, Name: ev.Name, OwnerID: ev.OwnerID, Tenants: ev.Tenants,
			Permissions: SetOf(ev.Permissions...), SecretHash: ev.SecretHash, CreatedAt: ev.CreatedAt,
			Version: k.Version,
		}
		for _, s := range ev.AllowedIPs {
			if p, err := ParseIPRange(s); err == nil {
				k.AllowedIPs = append(k.AllowedIPs, p)
			}
		}
		if ev.ExpiresAt != nil {
			k.ExpiresAt = *ev.ExpiresAt
		}
	case APIKeyRotated:
		k.SecretHash = ev.SecretHash
		k.RotatedAt = ev.RotatedAt
		if ev.OwnerID != "" {
			k.OwnerID = ev.OwnerID
		}
	case APIKeyRevoked:
		k.Revoked = true
	case APIKeyUsed:
		if ev.UsedAt.After(k.LastUsedAt) {
			k.LastUsedAt = ev.UsedAt
		}
	default:
		return k
	}
	k.Version++
	return k
}
