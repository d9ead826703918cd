package commands

import (
	"crypto/rand"
	"fmt"
	"runtime"
	"strings"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"

	"github.com/infracast/auth/domain"
)

// HashParams are the argon2id cost parameters. The service defaults follow the
// OWASP password storage recommendation (m=19 MiB, t=2, p=1); tests use cheap ones.
type HashParams struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

// DefaultHashParams is the production cost.
var DefaultHashParams = HashParams{MemoryKiB: 19 * 1024, Iterations: 2, Parallelism: 1}

// Passwords hashes and verifies passwords with argon2id, using
// github.com/alexedwards/argon2id for the PHC string format and the
// constant-time comparison.
type Passwords struct {
	params    *argon2id.Params
	dummyHash string // verified for unknown users, so both paths cost the same
	// MinLength is the fewest characters a password may have. The blocklist
	// leaves out entries shorter than blocklistMinRunes (8), which this rule
	// refuses first: it must not be set lower.
	MinLength int
	// slots bounds how many hashes run at once: as many as there are CPUs
	// for them. More would not hash faster, only slower each (argon2id is
	// memory-hard: more instances than cores evict each other's memory from
	// the caches), and each holds MemoryKiB: a burst of logins must not
	// allocate without bound. The others wait their turn, which costs nothing.
	slots chan struct{}
	// reserve keeps the memory the hashes need at full load (slots ×
	// MemoryKiB) counted as live heap, so that the GC sizes the heap for it.
	// Without it every argon2id block array (19 MiB at the default cost) is
	// a burst of garbage: the heap goal swings with the number of hashes in
	// flight when a cycle ends, the scavenger hands the pages back to the
	// OS, and the next hash faults them in again (up to 15% of a core in
	// kernel time under steady logins, docs/performance.md). It is never
	// written, so it costs address space, not resident memory; but it raises
	// the heap goal as much, so between collections up to that much more
	// garbage may be resident: the same as at full login load without it.
	reserve []byte
}

// NewPasswords returns a hasher with the given cost.
func NewPasswords(p HashParams) (*Passwords, error) {
	pw := &Passwords{
		params: &argon2id.Params{
			Memory: p.MemoryKiB, Iterations: p.Iterations, Parallelism: p.Parallelism,
			SaltLength: 16, KeyLength: 32,
		},
		MinLength: 8,
		slots:     make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/max(1, int(p.Parallelism)))),
	}
	pw.reserve = make([]byte, cap(pw.slots)*int(p.MemoryKiB)*1024)
	random := make([]byte, 24)
	if _, err := rand.Read(random); err != nil {
		return nil, err
	}
	h, err := pw.Hash(fmt.Sprintf("%x", random))
	if err != nil {
		return nil, err
	}
	pw.dummyHash = h
	return pw, nil
}

// Check validates a new password of the account described by who against the
// policy (NIST SP 800-63B §5.1.1.2): a minimum length, no composition rules,
// no truncation, not on the blocklist of common and breached passwords, not
// built on the username, the email address or the service's name
// (blocklist.go says how each is matched).
func (p *Passwords) Check(password string, who PasswordContext) error {
	if !utf8.ValidString(password) {
		return domain.Invalid("password", "must be valid UTF-8")
	}
	if utf8.RuneCountInString(password) < p.MinLength {
		return domain.Invalid("password", "must be at least %d characters", p.MinLength)
	}
	if len(password) > 4096 {
		return domain.Invalid("password", "must be at most 4096 bytes")
	}
	lower := strings.ToLower(password)
	if commonPasswords().contains(lower) {
		return domain.Invalid("password", "is too common; choose another")
	}
	if builtOnContext(lower, who, p.MinLength) {
		return domain.Invalid("password", "must not be built on the username, the email address or the service's name; choose another")
	}
	return nil
}

// Hash returns the argon2id PHC string of password.
func (p *Passwords) Hash(password string) (string, error) {
	p.slots <- struct{}{}
	defer func() { <-p.slots }()
	return argon2id.CreateHash(password, p.params)
}

// Verify reports whether password matches hash. An empty hash is checked
// against the dummy hash, so that an unknown user costs as much as a known one.
func (p *Passwords) Verify(password, hash string) bool {
	known := hash != ""
	if !known {
		hash = p.dummyHash
	}
	p.slots <- struct{}{}
	ok, err := argon2id.ComparePasswordAndHash(password, hash)
	<-p.slots
	return ok && err == nil && known
}
