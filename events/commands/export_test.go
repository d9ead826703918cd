package commands

import "github.com/alexedwards/argon2id"

// StubCheck makes p's verifications call check instead of
// argon2id.CheckHash: a test's blocking stub, run while its hash slot is
// held (counted in Runs as the argon2id it stands for).
func (p *Passwords) StubCheck(check func(password, hash string) (bool, *argon2id.Params, error)) {
	p.checkHash = check
}

// Waiting is how many wait for a hash slot now.
func (p *Passwords) Waiting() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiting
}

// Share is how many waiters one client address, or one account, may have.
func (p *Passwords) Share() int { return int(p.share) }

// SetShare sets how many waiters one client address, or one account, may
// have.
func (p *Passwords) SetShare(n int) { p.share = int64(n) }

// Shares is how many client addresses and accounts the queue's shares
// count now (entries of byAddress and byAccount).
func (p *Passwords) Shares() (addresses, accounts int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byAddress), len(p.byAccount)
}

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

// Turns is how many writers of s hold or wait for the turn on subject
// (subjectLocks).
func (s *Service) Turns(subject string) int {
	s.subjects.mu.Lock()
	defer s.subjects.mu.Unlock()
	if e := s.subjects.m[subject]; e != nil {
		return e.refs
	}
	return 0
}

// NoTurns reports whether no subject's turn is held or waited for, and
// none is remembered.
func (s *Service) NoTurns() bool {
	s.subjects.mu.Lock()
	defer s.subjects.mu.Unlock()
	return len(s.subjects.m) == 0 && s.subjects.entries.Load() == 0
}

// TurnWaiters is how many writers of s wait for the turn on subject (not
// counting its holder).
func (s *Service) TurnWaiters(subject string) int {
	s.subjects.mu.Lock()
	defer s.subjects.mu.Unlock()
	if e := s.subjects.m[subject]; e != nil {
		return e.refs - len(e.turn)
	}
	return 0
}
