package projections

import (
	"slices"
	"strings"

	"github.com/infracast/auth/domain"
)

// The users list (GET /api/v1/users) without a long hold of the lock.
//
// It copied every user under the model's read lock, sorted them, and the
// handler sorted again and only then kept what the caller may see: at 1M
// users a request held the lock for about a second, even for a page of
// 10 or a caller who sees only themselves. An event applied meanwhile waits
// for the write lock, and a sync.RWMutex queues every new reader — each
// token check (Authorize) — behind that writer: the token checks' p99 went
// from 1 ms to 250–700 ms while the console's users page was open (outside
// check 20s). Now a list walks the users in chunks of listChunk records,
// releasing the lock between chunks, looks only at what each record holds
// inline (its role set, then its strings in the arena) to choose, keeps the
// best limit+1 in a bounded heap, and builds a domain.User for the page
// alone.

// listChunk is how many records a list looks at under one hold of the
// model's read lock: an Apply waiting for the write lock, and the token
// checks queued behind it, wait for at most one chunk.
const listChunk = 4096

// UserListQuery says which users a list asks for: those the caller sees
// (Everyone, Self, Administers), that match Match, after After, at most
// Limit of them.
type UserListQuery struct {
	// Everyone: the caller sees every user (a platform admin).
	Everyone bool
	// Self is the ID of the user the caller is, whom it sees anyway ("":
	// none).
	Self string
	// Administers, when set, reports whether the caller administers a
	// tenant: it sees the users who hold a role there. nil: the caller
	// administers none, and sees only Self — the list then looks at no
	// other user. It is called with the model's read lock held, once per
	// distinct set of tenant roles in a chunk: it must not call the model.
	Administers func(tenant string) bool
	// Match: only the users whose username or e-mail contains it, in any
	// ASCII case; given in lower case (domain.LowerASCII). "": any.
	Match string
	// After: only the users whose key (UserKey) is after it. "": from the
	// first.
	After string
	// Limit: at most this many users (0: all of them).
	Limit int
}

// UserKey is the key the users list is ordered by and its cursors hold:
// the username, then the ID (a username holds no NUL).
func UserKey(username, id string) string { return username + "\x00" + id }

// listed is a user a list chose: its record, and its key's parts as the
// walk saw them (strings of the arena, which nothing writes over).
type listed struct {
	r        uint32
	name, id string
}

// cmpListed orders by UserKey without building it.
func cmpListed(a, b listed) int {
	if c := strings.Compare(a.name, b.name); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// ListUsers returns the users q asks for, by UserKey, and next: the key of
// the last one when there are more after it ("" when there are none).
//
// No lock is held across the whole population: the users are looked at in
// chunks of listChunk records, the lock released between chunks, and the
// chosen ones' domain.User built in chunks again. Events applied meanwhile
// are reflected in some records and not in others: a list is not a
// snapshot of one moment, as a page never was of the pages before it. A
// user renamed during the walk may be listed by its old name's place, with
// its new name; one that no longer matches when its domain.User is built
// (it lost the role that made it visible, or was renamed away from Match)
// is left out. Users are never removed, so a record number seen in one
// chunk names the same user in the next.
//
// Cost: a caller who sees only themselves, one lookup; a page, one pass
// over the records reading their role sets and (for those visible) their
// names, O(n log limit), and limit users built; the whole list (Limit 0),
// the pass, a sort of what is visible, and a domain.User for each — a
// platform admin's unpaged list at 1M users is still ~1M users in memory
// (docs/scale.md), but no longer under the lock.
func (m *Model) ListUsers(q UserListQuery) (users []domain.User, next string) {
	if !q.Everyone && q.Administers == nil {
		return m.listSelf(q), ""
	}
	afterName, afterID, afterHasID := strings.Cut(q.After, "\x00")
	afterOK := func(name, id string) bool {
		if q.After == "" {
			return true
		}
		if c := strings.Compare(name, afterName); c != 0 {
			return c > 0
		}
		// name == afterName: the key is name NUL id, longer than an After
		// without a NUL.
		return !afterHasID || id > afterID
	}
	sel := smallest[listed]{keep: q.Limit + 1, cmp: cmpListed}
	var all []listed
	memo := make(map[uint32]bool)
	for start := uint32(0); ; start += listChunk {
		m.mu.RLock()
		us := &m.users
		n := us.recs.n
		if start >= n {
			m.mu.RUnlock()
			break
		}
		end := min(start+listChunk, n)
		clear(memo) // a role set's number may be reused between chunks
		for r := start; r < end; r++ {
			u := us.recs.at(r)
			vis := q.Everyone
			if !vis && q.Administers != nil {
				v, ok := memo[u.roles]
				if !ok {
					v = administersAny(us.sets.set(u.roles), q.Administers)
					memo[u.roles] = v
				}
				vis = v
			}
			id, rest := cutField(us.textOf(r, u))
			if !vis && (q.Self == "" || id != q.Self) {
				continue
			}
			name, rest := cutField(rest)
			email, _ := cutField(rest)
			if !matches(name, email, q.Match) || !afterOK(name, id) {
				continue
			}
			e := listed{r: r, name: name, id: id}
			if q.Limit == 0 {
				all = append(all, e)
			} else {
				sel.offer(e)
			}
		}
		if m.listHeld != nil {
			m.listHeld(int(end - start))
		}
		m.mu.RUnlock()
	}
	if q.Limit == 0 {
		slices.SortFunc(all, cmpListed)
	} else {
		all = sel.sorted()
		if len(all) > q.Limit {
			all = all[:q.Limit]
			next = UserKey(all[len(all)-1].name, all[len(all)-1].id)
		}
	}
	return m.buildListed(all, q), next
}

// buildListed builds the chosen users' domain.User, listChunk at a time,
// each checked again against q on the state it is built from.
func (m *Model) buildListed(chosen []listed, q UserListQuery) []domain.User {
	out := make([]domain.User, 0, len(chosen))
	for len(chosen) > 0 {
		part := chosen[:min(len(chosen), listChunk)]
		chosen = chosen[len(part):]
		m.mu.RLock()
		for _, e := range part {
			r := e.r
			if r >= m.users.recs.n || m.users.id(r) != e.id {
				// The store was replaced since (a resync): find the user
				// again.
				var ok bool
				if r, ok = m.users.find(e.id); !ok {
					continue
				}
			}
			u := m.users.state(r, false)
			if q.sees(u) && matches(u.Username, u.Email, q.Match) {
				out = append(out, u)
			}
		}
		if m.listHeld != nil {
			m.listHeld(len(part))
		}
		m.mu.RUnlock()
	}
	return out
}

// listSelf is the list of a caller who sees only themselves: their own
// user, if it matches, without looking at any other.
func (m *Model) listSelf(q UserListQuery) []domain.User {
	if q.Self == "" {
		return nil
	}
	u, _, ok := m.User(q.Self)
	if !ok || !matches(u.Username, u.Email, q.Match) {
		return nil
	}
	if q.After != "" && UserKey(u.Username, u.ID) <= q.After {
		return nil
	}
	u.PasswordHashSealed = ""
	return []domain.User{u}
}

// sees reports whether the caller q describes sees u.
func (q *UserListQuery) sees(u domain.User) bool {
	if q.Everyone || (q.Self != "" && u.ID == q.Self) {
		return true
	}
	return q.Administers != nil && administersAny(u.Tenants, q.Administers)
}

func administersAny(tenants map[string]domain.Role, administers func(string) bool) bool {
	for t := range tenants {
		if administers(t) {
			return true
		}
	}
	return false
}

// matches reports whether the username or the e-mail contains sub (in
// lower case), in any ASCII case — strings.Contains(domain.LowerASCII(s),
// sub) without a copy of s.
func matches(name, email, sub string) bool {
	return sub == "" || containsLower(name, sub) || containsLower(email, sub)
}

func containsLower(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for j < n && lowerASCII(s[i+j]) == sub[j] {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// smallest keeps the keep smallest items offered (by cmp): a max-heap,
// its largest at the root, replaced when a smaller one comes — a page of
// limit+1 out of n in O(n log limit), without sorting the n.
type smallest[T any] struct {
	keep int
	cmp  func(a, b T) int
	h    []T
}

func (s *smallest[T]) offer(e T) {
	if len(s.h) < s.keep {
		s.h = append(s.h, e)
		s.up(len(s.h) - 1)
		return
	}
	if s.keep == 0 || s.cmp(e, s.h[0]) >= 0 {
		return
	}
	s.h[0] = e
	s.down(0)
}

func (s *smallest[T]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if s.cmp(s.h[i], s.h[p]) <= 0 {
			return
		}
		s.h[i], s.h[p] = s.h[p], s.h[i]
		i = p
	}
}

func (s *smallest[T]) down(i int) {
	for {
		l, big := 2*i+1, i
		if l < len(s.h) && s.cmp(s.h[l], s.h[big]) > 0 {
			big = l
		}
		if r := l + 1; r < len(s.h) && s.cmp(s.h[r], s.h[big]) > 0 {
			big = r
		}
		if big == i {
			return
		}
		s.h[i], s.h[big] = s.h[big], s.h[i]
		i = big
	}
}

// sorted is what was kept, smallest first.
func (s *smallest[T]) sorted() []T {
	slices.SortFunc(s.h, s.cmp)
	return s.h
}
