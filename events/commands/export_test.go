package commands

import "github.com/alexedwards/argon2id"

// StubCheck makes p's verifications call check instead of
// argon2id.CheckHash: a test's blocking stub, run while its hash slot is
// held (counted in Runs as the argon2id it stands for).
func (p *Passwords) StubCheck(check func(password, hash string) (bool, *argon2id.Params, error)) {
	p.checkHash = check
}

// Waiting is how many wait for a hash slot now.
func (p *Passwords) Waiting() int64 { return p.waiting.Load() }

// Slots is how many hashes p runs at once.
func (p *Passwords) Slots() int { return cap(p.slots) }

// SetQueue sets how many may wait for a hash slot at once.
func (p *Passwords) SetQueue(n int) { p.queue = int64(n) }

// HoldSlots takes every hash slot until release is called.
func (p *Passwords) HoldSlots() (release func()) {
	for range cap(p.slots) {
		p.slots <- struct{}{}
	}
	return func() {
		for range cap(p.slots) {
			<-p.slots
		}
	}
}
