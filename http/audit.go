package http

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/projections"
)

// The audit log (GET /api/v1/audit/events): the journal (projections) finds
// the page's events, their bodies are read from the stream by sequence,
// checked against every filter the body tells — the type (and the login
// result), the actor, the subject (the journal keeps only its hash) and the
// time — and returned without a secret. A wrong entry of the journal can
// then only leave out the event it wrongly points at, never put it in the
// answer (outside check 18r: a damaged journal file answered a
// session.refreshed to type=session.started); the tenants an event
// concerns were judged when it was applied, and the body does not tell
// them: they rest on the journal file's checksums (projections).

// HistoryModel answers the audit journal's and the access history's
// questions (projections/history.go).
type HistoryModel interface {
	AuditEvents(q projections.AuditQuery) ([]projections.AuditHit, bool, error)
	HistoryStart() (seq uint64, at time.Time, complete bool)
	TenantAccess(tenant string, perm domain.Permission, at time.Time) ([]projections.Access, error)
	UserAccess(id string, at time.Time) (projections.Access, bool, error)
	KeyAccess(id string, at time.Time) (projections.Access, bool, error)
	UserHistory(id string) (projections.UserHistory, bool, error)
	KeyHistory(id string) (projections.KeyHistory, bool, error)
	KeyHadSecret(id, secretHash string) bool
	RoleAt(id, tenant string, at time.Time) (domain.Role, projections.EventRef, bool, error)
	SessionByRefreshHash(hash string) (string, bool)
	Session(id string) (domain.Session, uint64, bool)
	SigningKey(id string) (domain.SigningKey, uint64, bool)
}

// EventReader reads stored events back from the stream (events/read.go).
type EventReader interface {
	ReadSeqs(ctx context.Context, seqs []uint64) ([]events.Record, error)
	ReadSubject(ctx context.Context, subject string, upTo uint64) ([]events.Record, error)
	// Head is the stream's last sequence, as its leader has it.
	Head(ctx context.Context) (uint64, error)
}

var (
	_ HistoryModel = (*projections.Model)(nil)
	_ EventReader  = (*events.Store)(nil)
)

// auditScope is what a caller may read of the audit log and the access
// history: everything (a platform admin), every tenant's (a platform-wide
// key of a platform admin, with audit:read; never the platform's own
// events), or the tenants where it holds audit:read.
type auditScope struct {
	all       bool
	anyTenant bool
	tenants   map[string]bool
}

// auditScope: a platform admin reads everything; a user the tenants where
// they hold audit:read (admin:* includes it), a tenant-scoped token only
// its tenant; an API key its tenants where its permissions and its owner's
// both include audit:read.
func (cl *Caller) auditScope() auditScope {
	if cl.IsPlatformAdmin() {
		return auditScope{all: true}
	}
	sc := auditScope{tenants: map[string]bool{}}
	var candidates []string
	switch {
	case cl.Key != nil:
		for _, t := range cl.Key.Tenants {
			if t != domain.AllTenants {
				candidates = append(candidates, t)
				continue
			}
			if cl.User.IsPlatformAdmin() && cl.Key.Permissions.Has(domain.AuditRead) {
				sc.anyTenant = true
				continue
			}
			for ut := range cl.User.Tenants { // a platform-wide key acts where its owner holds a role
				candidates = append(candidates, ut)
			}
		}
	case cl.Tenant != "":
		candidates = []string{cl.Tenant}
	default:
		for t := range cl.User.Tenants {
			candidates = append(candidates, t)
		}
	}
	for _, t := range candidates {
		if cl.PermissionsIn(t).Has(domain.AuditRead) {
			sc.tenants[t] = true
		}
	}
	return sc
}

// none: the caller may read nothing (403).
func (sc auditScope) none() bool { return !sc.all && !sc.anyTenant && len(sc.tenants) == 0 }

// covers reports whether the caller may read tenant's history ("*": the
// platform-wide, which only everything or every tenant covers).
func (sc auditScope) covers(tenant string) bool {
	return sc.all || sc.anyTenant || (tenant != domain.AllTenants && sc.tenants[tenant])
}

// list is the scope's tenants, sorted (nil for everything or every tenant).
func (sc auditScope) list() []string {
	if sc.all || sc.anyTenant {
		return nil
	}
	out := make([]string, 0, len(sc.tenants))
	for t := range sc.tenants {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// auditPageMax is the largest page; auditPageDefault the page without limit.
const (
	auditPageMax     = 1000
	auditPageDefault = 100
	// auditRounds bounds the journal queries of one page: each round reads
	// the bodies of the candidates and drops those the journal matched only
	// approximately. A page cut short by it still has its next_cursor.
	auditRounds = 8
	// appliedWait is how long a request whose cursor is ahead of this
	// replica's read models waits for them (another replica answered the
	// page before).
	appliedWait = 2 * time.Second
)

type actorJSON struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
}

type requestJSON struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// auditEventJSON is one entry of the audit log.
type auditEventJSON struct {
	Sequence    uint64          `json:"sequence"`
	ID          string          `json:"id"`
	Time        string          `json:"time"`
	Type        string          `json:"type"`
	Version     int             `json:"version"`
	Aggregate   string          `json:"aggregate"`
	AggregateID string          `json:"aggregate_id"`
	Actor       actorJSON       `json:"actor"`
	Tenants     []string        `json:"tenants"`
	Request     requestJSON     `json:"request"`
	Data        json.RawMessage `json:"data"`
	// Cursor asks, oldest first, for the events after this one (whatever
	// the page's order): where a client that follows the log goes on from.
	Cursor string `json:"cursor"`
}

type auditPageJSON struct {
	Events     []auditEventJSON `json:"events"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// auditFilter is a parsed GET /audit/events: the journal's query and what
// the bodies are checked against.
type auditFilter struct {
	q            projections.AuditQuery
	limit        int
	since, until time.Time
	subject      string
	// mark is the cursor's mark of the event at q.After (auditCursor);
	// hasMark: the cursor had one.
	mark    uint32
	hasMark bool
}

// auditReader is the caller's audit scope, for the endpoints that read the
// journal: 503 without one, 403 for a caller that may read no tenant's.
func (s *Server) auditReader(c *fiber.Ctx) (auditScope, error) {
	if s.deps.History == nil || s.deps.Events == nil {
		return auditScope{}, errUnavailable
	}
	sc := caller(c).auditScope()
	if sc.none() {
		return sc, errForbidden
	}
	return sc, nil
}

// auditEvents: GET /api/v1/audit/events.
func (s *Server) auditEvents(c *fiber.Ctx) error {
	sc, err := s.auditReader(c)
	if err != nil {
		return err
	}
	f, err := parseAuditFilter(c, sc)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	if err := s.waitApplied(ctx, f.q.After); err != nil {
		return err
	}
	if err := s.checkCursorMark(ctx, f); err != nil {
		return err
	}
	page := auditPageJSON{Events: make([]auditEventJSON, 0, min(f.limit, 128))}
	var last uint64 // the last journal entry examined
	var lastData []byte
	more := false
	for round := 0; len(page.Events) < f.limit; round++ {
		if round == auditRounds {
			more = true
			break
		}
		q := f.q
		q.Limit = f.limit - len(page.Events)
		if last != 0 {
			q.After = last
		}
		hits, m, err := s.deps.History.AuditEvents(q)
		if err != nil {
			return err
		}
		more = m
		if len(hits) == 0 {
			more = false
			break
		}
		seqs := make([]uint64, len(hits))
		for i, h := range hits {
			seqs[i] = h.Seq
		}
		recs, err := s.deps.Events.ReadSeqs(ctx, seqs)
		if err != nil {
			return err
		}
		bySeq := make(map[uint64][]byte, len(recs))
		for _, r := range recs {
			bySeq[r.StreamSeq] = r.Data
		}
		for _, h := range hits {
			last = h.Seq
			data, ok := bySeq[h.Seq]
			lastData = data
			if !ok {
				continue // no longer in the stream (its limits removed it)
			}
			ev, ok, err := f.render(h, data, sc)
			if errors.Is(err, errJournalMismatch) {
				// Only a damaged journal points at an event of another
				// type or actor: left out, and said.
				s.log.Error("audit: the journal pointed at an event the question does not match; it is left out", "stream_seq", h.Seq, "err", err)
				s.deps.Metrics.BackgroundError("audit_journal")
				continue
			}
			if err != nil {
				s.log.Warn("audit: an event could not be read", "stream_seq", h.Seq, "err", err)
				continue
			}
			if ok {
				ev.Cursor = auditCursor(false, h.Seq, data)
				page.Events = append(page.Events, ev)
			}
		}
		if !more {
			break
		}
	}
	if more && last != 0 {
		page.NextCursor = auditCursor(f.q.NewestFirst, last, lastData)
	}
	if wantsCSV(c.Get(fiber.HeaderAccept)) {
		return sendAuditCSV(c, page)
	}
	return c.JSON(page)
}

// auditCSVHeader is the header row of a page of the audit log as CSV.
var auditCSVHeader = []string{
	"sequence", "id", "time", "type", "version", "aggregate", "aggregate_id", "actor_type", "actor_id",
	"tenants", "request_ip", "request_user_agent", "request_id", "data",
}

// sendAuditCSV answers a page of the audit log as CSV, as the access review
// (sendAccessCSV): RFC 4180 with CRLF line ends and every cell quoted, one
// row per event, its tenants separated by spaces and its data as a JSON
// object in one cell, formula-like cells and parts of cells defused (csv.go).
// The next page's cursor is the X-Next-Cursor header (a CSV has no place for
// it).
func sendAuditCSV(c *fiber.Ctx, page auditPageJSON) error {
	var buf bytes.Buffer
	rows := [][]string{auditCSVHeader}
	for _, e := range page.Events {
		row := []string{strconv.FormatUint(e.Sequence, 10), e.ID, e.Time, e.Type, strconv.Itoa(e.Version),
			e.Aggregate, e.AggregateID, e.Actor.Type, e.Actor.ID, strings.Join(e.Tenants, " "),
			e.Request.IP, e.Request.UserAgent, e.Request.RequestID}
		for i, cell := range row {
			row[i] = csvSafe(cell)
		}
		rows = append(rows, append(row, csvSafeJSON(e.Data)))
	}
	writeCSV(&buf, rows)
	if page.NextCursor != "" {
		c.Set(headerNextCursor, page.NextCursor)
	}
	c.Set(fiber.HeaderContentType, mimeCSV+"; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="audit-events.csv"`)
	return c.Send(buf.Bytes())
}

// headerNextCursor carries next_cursor with a CSV page.
const headerNextCursor = "X-Next-Cursor"

// errCursorPastTheEnd answers a cursor beyond the event stream's last
// event (waitApplied).
var errCursorPastTheEnd = validation("cursor: is past the end of the event stream: it was not read from this deployment's event store (restored from a backup, or another deployment); start again without a cursor")

// waitApplied waits (briefly) until this replica's read models have applied
// stream sequence seq, so that a cursor from another replica neither skips
// nor repeats an event here.
func (s *Server) waitApplied(ctx context.Context, seq uint64) error {
	if seq == 0 || s.deps.Readiness == nil || s.deps.Readiness.Applied() >= seq {
		return nil
	}
	// A cursor past the stream's end was not read from this event store
	// (a data folder restored from a backup, another deployment): no wait
	// brings it, and waiting as for a lagging replica made a client that
	// follows the log retry it until the stream grew past it, skipping
	// every event in between without a word (re-check 15r3).
	if s.deps.Events != nil {
		head, err := s.deps.Events.Head(ctx)
		if err != nil {
			return err
		}
		if seq > head {
			return errCursorPastTheEnd
		}
	}
	ctx, cancel := context.WithTimeout(ctx, appliedWait)
	defer cancel()
	wait := time.Millisecond
	for s.deps.Readiness.Applied() < seq {
		select {
		case <-ctx.Done():
			return &Error{http.StatusServiceUnavailable, "UNAVAILABLE", "Read models are catching up with the event store; try again shortly"}
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
	return nil
}

// errJournalMismatch: the journal matched an event whose body does not
// match a filter the journal keeps exactly (its type, its actor).
var errJournalMismatch = errors.New("the event read from the stream does not match the journal's entry")

// render checks an event read from the stream against every filter its
// body tells, and makes its entry; false: it does not match after all (a
// subject of the same hash, a time the journal rounds); errJournalMismatch:
// the journal's entry was wrong (its type or actor).
func (f *auditFilter) render(h projections.AuditHit, data []byte, sc auditScope) (auditEventJSON, bool, error) {
	var env events.Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return auditEventJSON{}, false, err
	}
	switch q := &f.q; {
	case !typeMatches(q.Type, q.Result, env.Type):
		return auditEventJSON{}, false, fmt.Errorf("%w: type %q", errJournalMismatch, env.Type)
	case q.Actor != "" && env.Actor.ID != q.Actor:
		return auditEventJSON{}, false, fmt.Errorf("%w: of another actor", errJournalMismatch)
	case f.subject != "" && env.AggregateID != f.subject,
		!f.since.IsZero() && env.OccurredAt.Before(f.since),
		!f.until.IsZero() && !env.OccurredAt.Before(f.until):
		return auditEventJSON{}, false, nil
	}
	redacted, err := redactData(env.Data, sc)
	if err != nil {
		return auditEventJSON{}, false, err
	}
	return auditEventJSON{
		Sequence: h.Seq, ID: env.ID, Time: rfc3339Nano(env.OccurredAt), Type: env.Type, Version: env.Version,
		Aggregate: env.Aggregate, AggregateID: env.AggregateID,
		Actor:   actorJSON{Type: env.Actor.Type, ID: env.Actor.ID},
		Tenants: concernedTenants(h, sc),
		Request: requestJSON{IP: env.Request.IP, UserAgent: env.Request.UserAgent, RequestID: env.Request.RequestID},
		Data:    redacted,
	}, true, nil
}

// typeMatches reports whether an event of type t matches the filters type
// (exact, or a prefix ending in ".") and result ("succeeded", "failed"), as
// the journal matches them (projections.Model.compileAudit).
func typeMatches(typ, result, t string) bool {
	switch result {
	case "":
	case "succeeded":
		if t != domain.TypeUserLoginSucceeded {
			return false
		}
	case "failed":
		if t != domain.TypeUserLoginFailed && t != domain.TypeMFAFailed {
			return false
		}
	default:
		return false
	}
	switch {
	case typ == "":
		return true
	case strings.HasSuffix(typ, "."):
		return strings.HasPrefix(t, typ)
	}
	return t == typ
}

// concernedTenants are the tenants an event concerns, as far as the reader
// may know them: ["*"] for every tenant; a reader scoped to some tenants
// sees only those of them.
func concernedTenants(h projections.AuditHit, sc auditScope) []string {
	if h.AllTenantsConcerned {
		return []string{domain.AllTenants}
	}
	out := make([]string, 0, len(h.Tenants))
	for _, t := range h.Tenants {
		if sc.covers(t) {
			out = append(out, t)
		}
	}
	return out
}

// Values that stand in for secrets in an event's data.
const (
	sealedValue   = "[sealed]"
	redactedValue = "[redacted]"
)

// secretFields are field names that would hold a secret in the clear. No
// event has one (docs/events.md); an event type added later that did would
// still not leak it here.
var secretFields = map[string]bool{
	"password": true, "secret": true, "client_secret": true, "token": true, "refresh_token": true,
	"access_token": true, "api_key": true, "key": true, "private_key": true,
}

// redactData returns an event's data with every "*_sealed" field read
// "[sealed]" and every field of hashes ("*hash", "*hashes": hashField) and
// any field named like a secret "[redacted]" (each entry of a list), at any
// depth; for a reader limited to some tenants
// (scopeData), without what it names of the others.
func redactData(raw json.RawMessage, sc auditScope) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage("{}"), nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("event data: %w", err)
	}
	v = redact(v)
	if !sc.all && !sc.anyTenant {
		v = scopeData(v, sc)
	}
	return json.Marshal(v)
}

// scopeData drops from an event's data, for a reader limited to some
// tenants, what it says of the others: the entries of a "tenants" list (a
// tenant ID, or an object whose "id" or "tenant" is one — a user's roles)
// and of a "*_mappings" list (objects whose "tenant" is one — group to
// role mappings) outside sc, at any depth. "*" stays: such an event
// concerns every tenant, the reader's too.
func scopeData(v any, sc auditScope) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if list, ok := val.([]any); ok && (k == "tenants" || strings.HasSuffix(k, "_mappings")) {
				kept := make([]any, 0, len(list))
				for _, e := range list {
					if tenantEntryVisible(e, k == "tenants", sc) {
						kept = append(kept, e)
					}
				}
				val = kept
			}
			x[k] = scopeData(val, sc)
		}
	case []any:
		for i := range x {
			x[i] = scopeData(x[i], sc)
		}
	}
	return v
}

// tenantEntryVisible reports whether an entry of a tenants (byID) or
// mappings list names "*" or a tenant sc covers (an entry naming none is
// kept).
func tenantEntryVisible(e any, byID bool, sc auditScope) bool {
	var t any
	switch x := e.(type) {
	case string:
		t = x
	case map[string]any:
		t = x["tenant"]
		if t == nil && byID {
			t = x["id"]
		}
	default:
		return true
	}
	id, ok := t.(string)
	if !ok {
		return true
	}
	return id == domain.AllTenants || sc.covers(id)
}

func redact(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			name := strings.ToLower(k)
			switch {
			case strings.HasSuffix(name, "_sealed") || name == "sealed":
				x[k] = sealedValue
			case hashField(name):
				x[k] = redactedAll(val)
			case secretFields[name]:
				x[k] = redactedValue
			default:
				x[k] = redact(val)
			}
		}
	case []any:
		for i := range x {
			x[i] = redact(x[i])
		}
	}
	return v
}

// hashField reports whether a field (its name in lower case) holds hashes
// of secrets: "hash", "hashes" or any name ending in either
// ("secret_hash", "refresh_token_hash", the recovery codes' "hashes").
func hashField(name string) bool {
	return strings.HasSuffix(name, "hash") || strings.HasSuffix(name, "hashes")
}

// redactedAll is v withheld: "[redacted]", or a list of as many (how many
// recovery codes a set has is no secret).
func redactedAll(v any) any {
	list, ok := v.([]any)
	if !ok {
		return redactedValue
	}
	out := make([]any, len(list))
	for i := range out {
		out[i] = redactedValue
	}
	return out
}

// auditCursor is a page's next_cursor, or an event's cursor: the order, the
// stream sequence of the event, and the mark of that event ("a1042-9f3c01ab":
// oldest-first, after 1042). The mark — the first four bytes of the SHA-256
// of the event as stored — ties the cursor to this event store: a position
// alone was accepted again by a data folder restored from a backup once it
// had grown past it, skipping its events up to there without a word (outside
// check 16c). Without the stored event (its stream's limits removed it) the
// cursor has no mark.
func auditCursor(newestFirst bool, seq uint64, stored []byte) string {
	if stored == nil {
		return formatAuditCursor(newestFirst, seq, 0, false)
	}
	return formatAuditCursor(newestFirst, seq, auditMark(stored), true)
}

func formatAuditCursor(newestFirst bool, seq uint64, mark uint32, hasMark bool) string {
	b := make([]byte, 0, 30)
	if newestFirst {
		b = append(b, 'd')
	} else {
		b = append(b, 'a')
	}
	b = strconv.AppendUint(b, seq, 10)
	if hasMark {
		b = fmt.Appendf(b, "-%08x", mark)
	}
	return string(b)
}

// auditMark is a cursor's mark of the stored event it follows.
func auditMark(stored []byte) uint32 {
	sum := sha256.Sum256(stored)
	return binary.BigEndian.Uint32(sum[:4])
}

// parseAuditCursor reads a cursor: its sequence, and its mark if it has one
// (cursors from before marks — "a1042" — have none, and are still taken).
func parseAuditCursor(cur string, newestFirst bool) (seq uint64, mark uint32, hasMark bool, err error) {
	bad := validation("cursor: is not a next_cursor of this API")
	if len(cur) < 2 || len(cur) > 30 || (cur[0] != 'a' && cur[0] != 'd') {
		return 0, 0, false, bad
	}
	pos := cur[1:]
	if i := strings.IndexByte(pos, '-'); i >= 0 {
		m := pos[i+1:]
		if len(m) != 8 || strings.ToLower(m) != m {
			return 0, 0, false, bad
		}
		v, perr := strconv.ParseUint(m, 16, 32)
		if perr != nil {
			return 0, 0, false, bad
		}
		pos, mark, hasMark = pos[:i], uint32(v), true
	}
	if pos == "" || pos[0] < '0' || pos[0] > '9' {
		return 0, 0, false, bad
	}
	seq, perr := strconv.ParseUint(pos, 10, 64)
	if perr != nil || seq == 0 {
		return 0, 0, false, bad
	}
	if (cur[0] == 'd') != newestFirst {
		want := "asc"
		if cur[0] == 'd' {
			want = "desc"
		}
		return 0, 0, false, validation("cursor: belongs to order=" + want + "; ask for the next page with the same order")
	}
	return seq, mark, hasMark, nil
}

// errCursorNotHere answers a cursor whose mark is not that of the event at
// its position (checkCursorMark).
var errCursorNotHere = validation("cursor: does not match the event at its position: it was not read from this deployment's event store (restored from a backup, or another deployment); start again without a cursor")

// checkCursorMark refuses a cursor whose mark is not that of the event this
// store holds at its position: the cursor was read from another store (a
// data folder since restored from a backup and grown past the position
// again, another deployment). A position whose event the stream no longer
// holds (its limits removed it) cannot be checked, and is taken.
func (s *Server) checkCursorMark(ctx context.Context, f auditFilter) error {
	if !f.hasMark || f.q.After == 0 {
		return nil
	}
	recs, err := s.deps.Events.ReadSeqs(ctx, []uint64{f.q.After})
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.StreamSeq == f.q.After && auditMark(r.Data) != f.mark {
			return errCursorNotHere
		}
	}
	return nil
}

// issuedIDPrefixes are the kinds of ID the service makes: a kind, "-" and a
// ULID (commands.NewID).
var issuedIDPrefixes = []string{"user", "key", "sess", "scim", "group", "mfa", "chl", "tok", "sk", "evt", "cmd"}

// canonicalIDFilter returns an ID the service made as it writes it — the
// kind in lower case, the ULID in upper case — however v spells them: a ULID
// is the same in any letter case, the audit log's match is exact, and an
// actor or subject filter in another case found nothing, a forensic query's
// "no activity" (an outside check, 18s). Anything else is returned as it is.
func canonicalIDFilter(v string) string {
	kind, rest, ok := strings.Cut(v, "-")
	if !ok || len(rest) != ulid.EncodedSize {
		return v
	}
	kind = strings.ToLower(kind)
	if !slices.Contains(issuedIDPrefixes, kind) {
		return v
	}
	if _, err := ulid.ParseStrict(rest); err != nil {
		return v
	}
	return kind + "-" + strings.ToUpper(rest)
}

// auditParams are the query parameters of GET /audit/events.
var auditParams = []string{"tenant", "actor", "subject", "type", "since", "until", "result", "order", "limit", "cursor"}

func parseAuditFilter(c *fiber.Ctx, sc auditScope) (auditFilter, error) {
	p, err := queryParams(c, auditParams...)
	if err != nil {
		return auditFilter{}, err
	}
	f := auditFilter{limit: auditPageDefault}
	q := &f.q
	q.Scope, q.AnyTenant = sc.list(), sc.anyTenant
	if t, ok := p["tenant"]; ok {
		if !domain.ValidTenantID(t) {
			return f, validation("tenant: is not a valid tenant id")
		}
		q.Tenant = t
	}
	for _, field := range []struct {
		name string
		dst  *string
	}{{"actor", &q.Actor}, {"subject", &q.Subject}} {
		v, ok := p[field.name]
		if !ok {
			continue
		}
		if v == "" || len(v) > 256 || !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return f, validation(field.name + ": must be an ID (a user, key, session or provider ID), without spaces")
		}
		*field.dst = canonicalIDFilter(v)
	}
	f.subject = q.Subject
	if t, ok := p["type"]; ok {
		if !validEventTypeFilter(t) {
			return f, validation(`type: must be an event type like "user.created", or a prefix ending in "." like "apikey."`)
		}
		q.Type = t
	}
	for _, field := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.since}, {"until", &f.until}} {
		v, ok := p[field.name]
		if !ok {
			continue
		}
		t, err := parseTime(field.name, v)
		if err != nil {
			return f, err
		}
		*field.dst = t
	}
	if !f.since.IsZero() && !f.until.IsZero() && !f.until.After(f.since) {
		return f, validation("until: must be later than since")
	}
	q.Since, q.Until = f.since, f.until
	if r, ok := p["result"]; ok {
		if r != "succeeded" && r != "failed" {
			return f, validation(`result: must be "succeeded" or "failed"`)
		}
		q.Result = r
	}
	switch o, ok := p["order"]; {
	case !ok || o == "asc":
	case o == "desc":
		q.NewestFirst = true
	default:
		return f, validation(`order: must be "asc" or "desc"`)
	}
	if l, ok := p["limit"]; ok {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > auditPageMax {
			return f, validation(fmt.Sprintf("limit: must be a whole number from 1 to %d", auditPageMax))
		}
		f.limit = n
	}
	if cur, ok := p["cursor"]; ok {
		seq, mark, hasMark, err := parseAuditCursor(cur, q.NewestFirst)
		if err != nil {
			return f, err
		}
		q.After, f.mark, f.hasMark = seq, mark, hasMark
	}
	if q.Tenant != "" && !sc.covers(q.Tenant) {
		return f, errForbidden
	}
	return f, nil
}

// validEventTypeFilter: "user.created", or a prefix ending in "." ("apikey.").
func validEventTypeFilter(t string) bool {
	if t == "" || len(t) > 64 || t[0] == '.' || strings.Contains(t, "..") {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// queryParams returns the query parameters, refusing one not in allowed, or
// one given twice: a misspelt filter must not silently widen an answer.
func queryParams(c *fiber.Ctx, allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	var err error
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		if err != nil {
			return
		}
		name := string(k)
		known := false
		for _, a := range allowed {
			if a == name {
				known = true
				break
			}
		}
		switch {
		case !known:
			shown := name
			if len(shown) > 40 || !utf8.ValidString(shown) {
				shown = "a parameter"
			}
			accepted := "none"
			if len(allowed) > 0 {
				accepted = strings.Join(allowed, ", ")
			}
			err = validation(fmt.Sprintf("%s: unknown query parameter (accepted: %s)", shown, accepted))
		default:
			if _, dup := out[name]; dup {
				err = validation(name + ": given more than once")
				return
			}
			out[name] = string(v)
		}
	})
	return out, err
}

// parseTime reads an RFC 3339 time (any fraction of a second).
func parseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, validation(field + ": must be an RFC 3339 time like 2026-03-16T10:00:00Z")
	}
	return t, nil
}

// moment is the "at" of an access question: now when absent; a moment in
// the future is refused (nothing is known of it yet).
func (s *Server) moment(field, v string) (time.Time, error) {
	now := s.cfg.Now()
	if v == "" {
		return now.UTC(), nil
	}
	t, err := parseTime(field, v)
	if err != nil {
		return t, err
	}
	if t.After(now) {
		return t, validation(field + ": is in the future; history answers only for moments that have passed")
	}
	return t.UTC(), nil
}

// historyNotKept: the moment asked about is older than the oldest event the
// stream still keeps.
func (s *Server) historyNotKept() *Error {
	_, start, _ := s.deps.History.HistoryStart()
	msg := "at: no history is kept for that moment"
	if !start.IsZero() {
		msg = "at: no history is kept before " + rfc3339Nano(start) + ", the oldest event the stream still holds; ask about a later moment"
	}
	return &Error{http.StatusUnprocessableEntity, "HISTORY_NOT_KEPT", msg}
}

// rfc3339Nano formats an event's time exactly (a moment given back as `at`
// must name the same instant), always with nine digits of fractions
// (eventTimeLayout).
func rfc3339Nano(t time.Time) string { return t.UTC().Format(eventTimeLayout) }

// eventTimeLayout is RFC 3339 UTC with exactly nine digits of fractions:
// time.RFC3339Nano drops trailing zeros (…46.94770948Z, eight digits; a
// whole second none), and a CSV export sorted as text then misordered the
// events within a second (an outside check, 20a). Every time the audit log
// and the access history answer is of one length; any RFC 3339 parser
// (time.Parse, a browser's Date) reads it.
const eventTimeLayout = "2006-01-02T15:04:05.000000000Z07:00"
