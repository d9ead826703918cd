package commands

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
	"golang.org/x/text/unicode/norm"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
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
	// allocate without bound. The others wait their turn (acquire) — a wait
	// that is neither free nor unbounded: a request's answer is late by
	// it, and a burst queued behind the slots was all hashed, its clients
	// gone or not (an outside check, 18q: 1,000 guesses at once from one
	// address, ~20 s of CPU, and another address's login answered 503
	// after 43 s). So a wait honours the request's context and queue
	// bounds it, and what is run once a slot is held checks the throttles
	// again (Service.passwordMatches).
	slots chan struct{}
	// queue is how many may wait for a slot at once (hashQueuePerSlot per
	// slot); waiting counts them. Past it, ErrHashBusy at once. share is
	// how many of them may be one client address's, and how many one
	// account's (hashSharePerSlot per slot): byAddress and byAccount count
	// them, an entry removed when it is back to zero. Under mu, taken only
	// by a request that waits (the slots all busy): a login that finds a
	// free slot takes no lock.
	mu        sync.Mutex
	queue     int64
	share     int64
	waiting   int64
	byAddress map[string]int64
	byAccount map[string]int64
	// checkHash is argon2id.CheckHash: a test's way to hold a verification
	// while it holds its slot (a blocking stub).
	checkHash func(password, hash string) (bool, *argon2id.Params, error)
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
	// runs counts the argon2id computations (Runs); last holds the cost
	// parameters of the last one (LastRun).
	runs atomic.Uint64
	last atomic.Pointer[HashParams]
}

// Runs returns how many argon2id computations — hashes and verifications —
// the hasher has made: what a request costs in CPU, and what its timing
// tells (a test's way to see that two answers cost the same).
func (p *Passwords) Runs() uint64 { return p.runs.Load() }

// LastRun returns the cost parameters of the last argon2id computation:
// the hasher's own for a hash, the stored hash's for a verification (zero
// before any). What a verification costs is the hash's cost, not the
// hasher's: a test's way to see which cost an answer paid.
func (p *Passwords) LastRun() HashParams {
	if l := p.last.Load(); l != nil {
		return *l
	}
	return HashParams{}
}

// ran counts an argon2id computation at cost a (nil: none was made, the
// hash being unreadable).
func (p *Passwords) ran(a *argon2id.Params) {
	if a != nil {
		p.last.Store(&HashParams{MemoryKiB: a.Memory, Iterations: a.Iterations, Parallelism: a.Parallelism})
	}
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
		checkHash: argon2id.CheckHash,
	}
	pw.queue = int64(cap(pw.slots) * hashQueuePerSlot)
	pw.share = int64(cap(pw.slots) * hashSharePerSlot)
	pw.byAddress, pw.byAccount = map[string]int64{}, map[string]int64{}
	pw.reserve = make([]byte, cap(pw.slots)*int(p.MemoryKiB)*1024)
	random := make([]byte, 24)
	if _, err := rand.Read(random); err != nil {
		return nil, err
	}
	h, err := pw.Hash(context.Background(), Claimant{}, fmt.Sprintf("%x", random))
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
//
// The rules read the password's NFKC form, the one Hash stores (normalize):
// its length in characters and in bytes is that form's. The blocklist and the
// context words, and the minimum length, read what is visible of it
// (visible): without spaces at its ends or invisible characters, so that
// "password123 " or "pass\u200bword123" is refused as "password123" is, and
// eight zero-width spaces as blank. The password stored keeps them.
func (p *Passwords) Check(password string, who PasswordContext) error {
	if !utf8.ValidString(password) {
		return domain.Invalid("password", "must be valid UTF-8")
	}
	// What a JSON decoder makes of bytes that are not UTF-8 and of lone
	// surrogates ("\udc00"): accepted, every such password would be one, and
	// a literal U+FFFD or any invalid byte would sign in as it.
	if strings.ContainsRune(password, utf8.RuneError) {
		return domain.Invalid("password", "must not contain U+FFFD, the replacement character (what bytes that are not UTF-8 or a lone surrogate escape such as \\udc00 become): choose another")
	}
	password = normalize(password)
	if len(password) > MaxPasswordBytes {
		return domain.Invalid("password", "must be at most %d bytes of UTF-8", MaxPasswordBytes)
	}
	shown := visible(password)
	if shown == "" {
		return domain.Invalid("password", "must not be blank (spaces or invisible characters only)")
	}
	if utf8.RuneCountInString(shown) < p.MinLength {
		return domain.Invalid("password", "must be at least %d characters (spaces at its ends and invisible characters do not count)", p.MinLength)
	}
	lower := strings.ToLower(shown)
	if commonPasswords().contains(lower) {
		return domain.Invalid("password", "is too common; choose another")
	}
	if builtOnContext(lower, who, p.MinLength) {
		return domain.Invalid("password", "must not be built on the username, the email address or the service's name; choose another")
	}
	return nil
}

// MaxPasswordBytes bounds a new password: bytes of UTF-8 of its NFKC form
// (normalize). Far above any passphrase, it keeps the hashing of one request
// bounded; a login's password is not limited by it (only by the body limit).
const MaxPasswordBytes = 4096

// normalize is the form of a password that is hashed and verified: its NFKC
// normalisation (NIST SP 800-63B §5.1.1.2: verifiers SHOULD apply NFKC or
// NFKD), so that "café" signs in whether the é was typed as one code point
// (U+00E9, NFC, as most keyboards send it) or as e and a combining accent
// (U+0301, NFD, as some macOS input does), and compatibility forms
// (full-width letters, ligatures) as their plain letters.
func normalize(password string) string { return norm.NFKC.String(password) }

// visible is what the blocklist and the context words are looked up in: s
// without the characters nobody sees — format characters (Unicode Cf: the
// zero-width space, joiners, the word joiner, the byte order mark, the soft
// hyphen, …), the other default-ignorable code points, variation
// selectors, control characters (Cc: NUL, and a tab or newline inside it)
// and the blank braille pattern U+2800, which shows as a space but is no
// space to Unicode (a re-check, 15r1: "pass\u2800word123" was accepted) —
// and without white space at its ends.
func visible(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\u2800' || unicode.In(r, unicode.Cf, unicode.Cc, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector) {
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// nfkcParam marks a hash made from the password's NFKC form (normalize): an
// extra parameter in the PHC string's parameter list, normalisation 1 (a
// later form would be 2), $argon2id$v=19$m=19456,t=2,p=1,n=1$salt$key —
// short, since every user's sealed hash is in every replica's memory. Hashes made before it were
// made from the password as typed, and are verified against that (Verify).
// A parameter rather than a prefix, so that an older build (a rolling upgrade,
// a rollback) still reads the hash: its library ignores what follows p=… and
// verifies the password as typed, which is its NFKC form already for all but
// a few (docs/operations.md).
const nfkcParam = ",n=1"

// hashQueuePerSlot is how many may wait for each hash slot (Passwords.queue):
// at the default cost (~20 ms a hash) a wait of at most ~0.65 s, the
// slots all busy. A queue limit rather than a deadline: past it the answer
// is at once, not after a wait that ends in the same refusal, and the
// bound holds in hashes, whatever a hash costs; the request's own deadline
// bounds the wait too. The benchmark's logins (4 clients per CPU) stay
// below it, and below one address's share of it (hashSharePerSlot).
const hashQueuePerSlot = 32

// hashSharePerSlot is how many of the waiters for each hash slot may be
// one client address's, and how many one account's (Passwords.share): a
// quarter of the queue. Without it, one address sending logins with one
// account's right password — which no throttle refuses — filled the queue,
// and the other tenants' logins were answered 503 (an outside check, 19l:
// 80 at once from one address, 12 of 21 logins of another tenant's user
// refused). With it, one address or one account holds at most a quarter
// of the queue, and its logins past that are refused at once, so the
// others always find room — three quarters of it with one flood, half
// with two — and wait behind at most its share: ~8 hashes per slot, some
// 160 ms at the default cost. The price is a NAT's: the people behind one
// address (an office) may have, while the slots are all busy, at most
// that many password checks waiting at once — with 2 CPUs the 2 being
// hashed plus 16 waiting, with 8 CPUs 8 plus 64 — and the next of theirs
// that arrive within the same fraction of a second get 503 with
// Retry-After: 1; an office's logins at its busiest (a few a second)
// never wait that many. A smaller share would spare the others more and
// refuse a NAT's bursts sooner.
const hashSharePerSlot = hashQueuePerSlot / 4

// ErrHashBusy: a password was not hashed or verified because too many
// waited for a hash slot (Passwords.queue), or too many of the request's
// client address or of its account (Passwords.share), or because its
// request ended (its deadline, its client gone) while it waited. Nothing
// was done or recorded: try again (503 UNAVAILABLE with Retry-After,
// counted as password_hash_busy in infracast_background_errors_total).
var ErrHashBusy = fmt.Errorf("%w: too many passwords waiting to be checked", events.ErrUnavailable)

// errHashShare is ErrHashBusy because the request's client address, or
// its account, has its share of the waiters (Passwords.share).
var errHashShare = fmt.Errorf("%w (this client address's or account's share)", ErrHashBusy)

// Claimant is whom a password check or hash is made for, as the hash
// queue's shares count it (Passwords.share): the request's client address
// (the one the throttles see: a trusted proxy's client's), counted by
// domain.AddressKey (an IPv4 address, an IPv6 /64), and the account — a
// user's ID, or for a name that matches no user a key of the name. Either
// "" is not counted: the zero Claimant (the service's own hashes) only by
// the queue's bound.
type Claimant struct{ Address, Account string }

// acquire takes a hash slot for a request of ctx, made for who, and runs
// before (nil: no check) once it holds it: a refusal of before is the
// answer, and the slot is given back, no argon2id run. It waits for a slot
// only while ctx lasts, while fewer than queue wait, and while fewer than
// share wait for who's address and for who's account (else ErrHashBusy).
// The caller releases the slot it got.
func (p *Passwords) acquire(ctx context.Context, who Claimant, before func() error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrHashBusy, err)
	}
	select {
	case p.slots <- struct{}{}:
	default:
		if who.Address != "" {
			who.Address = domain.AddressKey(who.Address)
		}
		if err := p.wait(who); err != nil {
			return err
		}
		select {
		case p.slots <- struct{}{}:
			p.waited(who)
		case <-ctx.Done():
			p.waited(who)
			return fmt.Errorf("%w: %w", ErrHashBusy, ctx.Err())
		}
	}
	if before != nil {
		if err := before(); err != nil {
			p.release()
			return err
		}
	}
	return nil
}

// wait counts a waiter for a slot made for who (its address already a
// domain.AddressKey), or refuses it: the queue full (ErrHashBusy), or
// who's address or account at its share (errHashShare).
func (p *Passwords) wait(who Claimant) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waiting >= p.queue {
		return ErrHashBusy
	}
	if (who.Address != "" && p.byAddress[who.Address] >= p.share) ||
		(who.Account != "" && p.byAccount[who.Account] >= p.share) {
		return errHashShare
	}
	p.waiting++
	if who.Address != "" {
		p.byAddress[who.Address]++
	}
	if who.Account != "" {
		p.byAccount[who.Account]++
	}
	return nil
}

// waited uncounts a waiter wait counted, its entries removed at zero: the
// maps hold only who waits now (at most queue entries each).
func (p *Passwords) waited(who Claimant) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waiting--
	uncount(p.byAddress, who.Address)
	uncount(p.byAccount, who.Account)
}

// uncount takes one from m[key] ("": none counted), removing it at zero.
func uncount(m map[string]int64, key string) {
	if key == "" {
		return
	}
	if m[key] <= 1 {
		delete(m, key)
		return
	}
	m[key]--
}

// release gives back a slot acquire took.
func (p *Passwords) release() { <-p.slots }

// Hash returns the argon2id PHC string of password's NFKC form (normalize),
// marked so (nfkcParam). It waits for a hash slot as long as ctx lasts, if
// the queue has room, and who's share of it (acquire): else ErrHashBusy.
func (p *Passwords) Hash(ctx context.Context, who Claimant, password string) (string, error) {
	password = normalize(password)
	if err := p.acquire(ctx, who, nil); err != nil {
		return "", err
	}
	defer p.release()
	p.runs.Add(1)
	h, err := argon2id.CreateHash(password, p.params)
	p.ran(p.params)
	if err != nil {
		return "", err
	}
	salt := saltStart(h)
	if salt < 0 {
		return "", fmt.Errorf("commands: argon2id made a hash of an unknown form")
	}
	return h[:salt] + nfkcParam + h[salt:], nil
}

// saltStart is the index of the '$' before the salt of a PHC string
// ($argon2id$v=…$m=…,t=…,p=…$salt$key), or -1.
func saltStart(hash string) int {
	key := strings.LastIndexByte(hash, '$')
	if key < 0 {
		return -1
	}
	return strings.LastIndexByte(hash[:key], '$')
}

// unmark returns hash without nfkcParam, as the argon2id library reads it,
// and whether it had it.
func unmark(hash string) (string, bool) {
	salt := saltStart(hash)
	if salt < 0 {
		return hash, false
	}
	params, found := strings.CutSuffix(hash[:salt], nfkcParam)
	if !found {
		return hash, false
	}
	return params + hash[salt:], true
}

// Verify reports whether password matches hash. An empty hash is checked
// against the dummy hash, so that an unknown user costs as much as a known one.
// A marked hash (nfkcParam) is verified against the password's NFKC form, one
// made before against the password as typed: one argon2id either way. The
// password is normalised in both cases, so that they cost the same.
// before (nil: none) is run once a hash slot is held, before the argon2id:
// its error is the answer, and nothing is run (acquire). So is ErrHashBusy,
// the slot not had (the queue full, or who's share of it taken).
func (p *Passwords) Verify(ctx context.Context, who Claimant, password, hash string, before func() error) (bool, error) {
	known := hash != ""
	if !known {
		hash = p.dummyHash
	}
	ok, err := p.verify(ctx, who, password, hash, before)
	return ok && known, err
}

// Decoy verifies password against hash as Verify does — one argon2id at
// the hash's cost, the password normalised, before run alike — and tells
// nothing of the outcome: the check of a name that matches no user, against
// the hash of a user it does not name (Service.passwordMatches), or the
// dummy hash when hash is empty. It returns no outcome, so that no caller
// can make a match with someone else's hash a sign-in: only what refused
// it before the argon2id (before's error, ErrHashBusy).
func (p *Passwords) Decoy(ctx context.Context, who Claimant, password, hash string, before func() error) error {
	if hash == "" {
		hash = p.dummyHash
	}
	_, err := p.verify(ctx, who, password, hash, before)
	return err
}

// verify is one argon2id verification of password against hash (Verify),
// once acquire has a slot and before allowed it.
func (p *Passwords) verify(ctx context.Context, who Claimant, password, hash string, before func() error) (bool, error) {
	normalized := normalize(password)
	hash, marked := unmark(hash)
	if marked {
		password = normalized
	}
	if err := p.acquire(ctx, who, before); err != nil {
		return false, err
	}
	p.runs.Add(1)
	ok, params, err := p.checkHash(password, hash)
	p.ran(params)
	p.release()
	return ok && err == nil, nil
}
