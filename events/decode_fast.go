package events

import (
	"encoding"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/infracast/auth/domain"
)

// decode_fast.go: Decode's fast path. Replaying the stream at start is
// mostly decoding, and the documents are all alike: what Encode writes
// (encoding/json's output: the members in their struct's order, named exactly,
// compact, times in UTC). decodeFast reads such a document in one pass — the
// envelope and its payload, straight into the event's struct, times without
// time.Parse — and reports ok only when the answer is certainly encoding/json's:
// anything else (another casing, a duplicate or unknown member, a surrogate
// escape, invalid UTF-8, a number with a fraction, a time not in "Z", an
// unknown type or version, malformed JSON...) returns ok=false, and Decode
// decodes the document again the slow, general way (decodeSlow), errors
// included. FuzzDecodeFastMatchesEncodingJSON holds the two to that.

// A Decoder decodes events as Decode does and, in addition, hands the same
// string to consecutive events that carry the same actor ID, client address
// or user agent (most of a stream, as the service writes it), instead of a
// copy each. Its zero value is ready to use; it is not safe for concurrent use.
type Decoder struct {
	actorID, ip, userAgent string
	scratch                []reflect.Value // by eventPlan.id: a *T decoded into, then copied out and zeroed
}

// decoders serve the package's Decode.
var decoders = sync.Pool{New: func() any { return new(Decoder) }}

// value returns a pointer to a zero value of the plan's type, to decode into.
func (d *Decoder) value(p *eventPlan) reflect.Value {
	if d.scratch == nil {
		d.scratch = make([]reflect.Value, len(eventPlans))
	}
	v := d.scratch[p.id]
	if !v.IsValid() {
		v = reflect.New(p.typ)
		d.scratch[p.id] = v
	}
	return v
}

// Decode parses an envelope and its payload, as the package's Decode.
func (d *Decoder) Decode(b []byte) (Envelope, domain.Event, error) {
	var env Envelope
	if ev, ok := d.decodeFast(b, &env); ok {
		return env, ev, nil
	}
	return decodeSlow(b)
}

// The envelope's members, in the order Encode writes them; a member's index
// is its bit in the set decodeFast has seen.
const (
	memberID = iota
	memberType
	memberVersion
	memberAggregate
	memberAggregateID
	memberSequence
	memberOccurredAt
	memberActor
	memberRequest
	memberData
)

var (
	envelopeMembers = quoted("id", "type", "version", "aggregate", "aggregate_id", "sequence", "occurred_at", "actor", "request", "data")
	actorMembers    = quoted("type", "id")
	requestMembers  = quoted("ip", "user_agent", "request_id")
)

// memberName is a name as it starts a member, `"name":`, with its first
// and last 8 bytes as words to compare it with at once.
type memberName struct {
	q           string
	first, last uint64 // little-endian; first masked when q is shorter than 8
	mask        uint64
}

// quoted returns the names as they start a member.
func quoted(names ...string) []memberName {
	out := make([]memberName, len(names))
	for i, n := range names {
		q := `"` + n + `":`
		var buf [8]byte
		copy(buf[:], q)
		m := memberName{q: q, first: binary.LittleEndian.Uint64(buf[:]), mask: ^uint64(0)}
		if len(q) < 8 {
			m.mask = 1<<(8*len(q)) - 1
		} else {
			m.last = binary.LittleEndian.Uint64([]byte(q[len(q)-8:]))
		}
		out[i] = m
	}
	return out
}

// startsWith reports whether b starts with the member name.
func (m *memberName) startsWith(b []byte) bool {
	if len(b) < 8 || len(b) < len(m.q) {
		return len(b) >= len(m.q) && string(b[:len(m.q)]) == m.q
	}
	if binary.LittleEndian.Uint64(b)&m.mask != m.first {
		return false
	}
	switch {
	case len(m.q) <= 8:
		return true
	case len(m.q) <= 16:
		return binary.LittleEndian.Uint64(b[len(m.q)-8:]) == m.last
	}
	return string(b[8:len(m.q)]) == m.q[8:]
}

// decodeFast fills env and returns the event when b is a document it decodes
// with certainty (see above); ok=false otherwise, with env partly filled.
func (d *Decoder) decodeFast(b []byte, env *Envelope) (ev domain.Event, ok bool) {
	s := scanner{b: b}
	var plan *eventPlan
	seen, next := 0, 0
	if !s.open('{') {
		return nil, false
	}
	for more := !s.close('}'); more; {
		m, ok := s.member(envelopeMembers, next)
		if !ok || m < 0 || seen&(1<<m) != 0 {
			return nil, false // malformed, unknown (or in another case), or twice
		}
		seen |= 1 << m
		next = m + 1
		switch m {
		case memberID:
			env.ID, ok = s.str()
		case memberType:
			var raw []byte
			if raw, ok = s.plainStr(); ok {
				plan, ok = eventPlans[string(raw)]
			}
			if ok {
				env.Type = plan.name
			}
		case memberVersion:
			var v uint64
			v, ok = s.uint()
			env.Version = int(v)
		case memberAggregate:
			var raw []byte
			if raw, ok = s.plainStr(); ok {
				env.Aggregate = internAggregate(raw)
			}
		case memberAggregateID:
			env.AggregateID, ok = s.str()
		case memberSequence:
			env.Sequence, ok = s.uint()
		case memberOccurredAt:
			env.OccurredAt, ok = s.time()
		case memberActor:
			ok = d.actor(&s, &env.Actor)
		case memberRequest:
			ok = d.request(&s, &env.Request)
		case memberData:
			if plan == nil { // the payload before its type: the slow path
				return nil, false
			}
			s.ws()
			start := s.i
			ptr := d.value(plan)
			if ok = plan.decode(&s, ptr.Elem()); ok {
				env.Data = append(json.RawMessage(nil), b[start:s.i]...)
				ev = domain.Deref(ptr.Interface().(domain.Event)) // a copy
			}
			ptr.Elem().SetZero()
		}
		if !ok {
			return nil, false
		}
		if more, ok = s.next('}'); !ok {
			return nil, false
		}
	}
	if s.ws(); s.i != len(b) || seen&(1<<memberData) == 0 || env.Version < 1 || env.Version > domain.EventVersion {
		return nil, false
	}
	return ev, true
}

func (d *Decoder) actor(s *scanner, a *Actor) bool {
	if !s.open('{') {
		return false
	}
	seen, next := 0, 0
	for more := !s.close('}'); more; {
		m, ok := s.member(actorMembers, next)
		if !ok || m < 0 || seen&(1<<m) != 0 {
			return false
		}
		seen |= 1 << m
		next = m + 1
		var raw []byte
		switch m {
		case 0:
			if raw, ok = s.plainStr(); ok {
				a.Type = internActorType(raw)
			}
		case 1:
			a.ID, ok = s.strInterned(&d.actorID)
		}
		if !ok {
			return false
		}
		if more, ok = s.next('}'); !ok {
			return false
		}
	}
	return true
}

func (d *Decoder) request(s *scanner, r *RequestInfo) bool {
	if !s.open('{') {
		return false
	}
	seen, next := 0, 0
	for more := !s.close('}'); more; {
		m, ok := s.member(requestMembers, next)
		if !ok || m < 0 || seen&(1<<m) != 0 {
			return false
		}
		seen |= 1 << m
		next = m + 1
		switch m {
		case 0:
			r.IP, ok = s.strInterned(&d.ip)
		case 1:
			r.UserAgent, ok = s.strInterned(&d.userAgent)
		case 2:
			r.RequestID, ok = s.str()
		}
		if !ok {
			return false
		}
		if more, ok = s.next('}'); !ok {
			return false
		}
	}
	return true
}

var knownAggregates = []string{
	domain.AggregateUser, domain.AggregateUsername, domain.AggregateSession, domain.AggregateAPIKey,
	domain.AggregateLogin, domain.AggregateSSO, domain.AggregateSSOIdentity, domain.AggregateSSOAssertion,
	domain.AggregateSigningKey,
}

// internAggregate returns the aggregate name, without a copy when it is one
// of the domain's.
func internAggregate(raw []byte) string {
	for _, a := range knownAggregates {
		if string(raw) == a {
			return a
		}
	}
	return string(raw)
}

var actorTypes = []string{"user", "apikey", "system", "anonymous"}

func internActorType(raw []byte) string {
	for _, a := range actorTypes {
		if string(raw) == a {
			return a
		}
	}
	return string(raw)
}

// ------------------------------------------------------------------ payloads

// eventPlans: for each event type whose struct decodeFast can fill, how to.
// A type with a member it cannot (a custom unmarshaler, a number, a map, an
// embedded struct...) has no plan, and its events take the slow path.
var eventPlans = func() map[string]*eventPlan {
	plans := map[string]*eventPlan{}
	for _, name := range domain.EventTypes() {
		p, _ := domain.NewEvent(name)
		t := reflect.TypeOf(p)
		if t.Kind() != reflect.Pointer {
			continue
		}
		if sp, ok := planStruct(t.Elem(), 0); ok {
			plans[name] = &eventPlan{id: len(plans), name: name, typ: t.Elem(), structPlan: sp}
		}
	}
	return plans
}()

type eventPlan struct {
	id   int    // from 0, in the order of domain.EventTypes
	name string // the type's name, shared by every envelope of it
	typ  reflect.Type
	*structPlan
}

type structPlan struct {
	fields []fieldPlan  // at most 64: a set of them fits a uint64
	quoted []memberName // their names as they start a member (scanner.member)
}

type fieldKind uint8

const (
	kindString      fieldKind = iota // a string, or a type of kind string
	kindBool                         // a bool, or a type of kind bool
	kindTime                         // time.Time
	kindTimePtr                      // *time.Time
	kindStringSlice                  // []T, T of kind string
	kindStructSlice                  // []T, T a struct with a plan
	kindStruct                       // T, a struct with a plan
	kindInt                          // a signed integer kind
	kindUint                         // an unsigned integer kind
)

type fieldPlan struct {
	name  string // the member's name
	index int    // the struct field's
	kind  fieldKind
	typ   reflect.Type // the slice's, for the slice kinds
	elem  *structPlan  // kindStructSlice, kindStruct
}

var (
	timeType             = reflect.TypeFor[time.Time]()
	jsonUnmarshalerType  = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType  = reflect.TypeFor[encoding.TextUnmarshaler]()
	maxPlanDepth         = 4
	maxPlanFields        = 64
	planNameAllowedBytes = "abcdefghijklmnopqrstuvwxyz0123456789_"
)

// customDecoding reports whether encoding/json would decode t with a method of
// its own.
func customDecoding(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t.Implements(jsonUnmarshalerType) || p.Implements(jsonUnmarshalerType) ||
		t.Implements(textUnmarshalerType) || p.Implements(textUnmarshalerType)
}

// planStruct plans the decoding of struct type t, or reports that it has
// something decodeFast leaves to the slow path.
func planStruct(t reflect.Type, depth int) (*structPlan, bool) {
	if t.Kind() != reflect.Struct || t == timeType || customDecoding(t) || depth > maxPlanDepth {
		return nil, false
	}
	sp := &structPlan{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			return nil, false // encoding/json's embedding rules: not here
		}
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",string,") || name == "" {
			return nil, false // the Go name, or numbers in strings: the slow path
		}
		for j := 0; j < len(name); j++ {
			if !strings.ContainsRune(planNameAllowedBytes, rune(name[j])) {
				return nil, false
			}
		}
		for _, g := range sp.fields {
			if strings.EqualFold(g.name, name) {
				return nil, false // encoding/json would choose between them
			}
		}
		fp := fieldPlan{name: name, index: i}
		ft := f.Type
		switch {
		case ft == timeType:
			fp.kind = kindTime
		case ft.Kind() == reflect.Pointer && ft.Elem() == timeType:
			fp.kind = kindTimePtr
		case customDecoding(ft):
			return nil, false
		case ft.Kind() == reflect.String:
			fp.kind = kindString
		case ft.Kind() == reflect.Bool:
			fp.kind = kindBool
		case ft.Kind() >= reflect.Int && ft.Kind() <= reflect.Int64:
			fp.kind = kindInt
		case ft.Kind() >= reflect.Uint && ft.Kind() <= reflect.Uint64:
			fp.kind = kindUint
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.String && !customDecoding(ft.Elem()):
			fp.kind, fp.typ = kindStringSlice, ft
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			ep, ok := planStruct(ft.Elem(), depth+1)
			if !ok {
				return nil, false
			}
			fp.kind, fp.typ, fp.elem = kindStructSlice, ft, ep
		case ft.Kind() == reflect.Struct:
			ep, ok := planStruct(ft, depth+1)
			if !ok {
				return nil, false
			}
			fp.kind, fp.elem = kindStruct, ep
		default:
			return nil, false
		}
		sp.fields = append(sp.fields, fp)
	}
	if len(sp.fields) > maxPlanFields {
		return nil, false
	}
	for _, f := range sp.fields {
		sp.quoted = append(sp.quoted, quoted(f.name)...)
	}
	return sp, true
}

// decode fills v, a zero value of the plan's struct, from the object at s.
func (sp *structPlan) decode(s *scanner, v reflect.Value) bool {
	if !s.open('{') {
		return false
	}
	var seen uint64
	next := 0
	for more := !s.close('}'); more; {
		n, ok := s.member(sp.quoted, next)
		if !ok || n < 0 || seen&(1<<n) != 0 {
			return false // malformed, unknown (or named in another case), or twice
		}
		seen |= 1 << n
		next = n + 1
		if s.null() {
			// Into a zero value, named once: encoding/json leaves it zero.
		} else if !sp.fields[n].decode(s, v.Field(sp.fields[n].index)) {
			return false
		}
		if more, ok = s.next('}'); !ok {
			return false
		}
	}
	return true
}

// decode fills f (a zero value) from the value at s, which is not null.
func (fp *fieldPlan) decode(s *scanner, f reflect.Value) bool {
	switch fp.kind {
	case kindString:
		str, ok := s.str()
		f.SetString(str)
		return ok
	case kindBool:
		b, ok := s.bool()
		f.SetBool(b)
		return ok
	case kindInt:
		s.ws()
		neg := s.i < len(s.b) && s.b[s.i] == '-'
		if neg {
			s.i++
		}
		n, ok := s.uint()
		i := int64(n)
		if neg {
			i = -i
		}
		if !ok || f.OverflowInt(i) {
			return false
		}
		f.SetInt(i)
		return true
	case kindUint:
		n, ok := s.uint()
		if !ok || f.OverflowUint(n) {
			return false
		}
		f.SetUint(n)
		return true
	case kindTime:
		t, ok := s.time()
		*f.Addr().Interface().(*time.Time) = t
		return ok
	case kindTimePtr:
		t, ok := s.time()
		if ok {
			f.Set(reflect.ValueOf(&t))
		}
		return ok
	case kindStringSlice:
		if !s.open('[') {
			return false
		}
		var buf [8]string
		strs := buf[:0]
		for more := !s.close(']'); more; {
			var str string
			if !s.null() { // null: a zero element
				var ok bool
				if str, ok = s.str(); !ok {
					return false
				}
			}
			strs = append(strs, str)
			var ok bool
			if more, ok = s.next(']'); !ok {
				return false
			}
		}
		sl := reflect.MakeSlice(fp.typ, len(strs), len(strs))
		for i, str := range strs {
			sl.Index(i).SetString(str)
		}
		f.Set(sl)
		return true
	case kindStructSlice:
		if !s.open('[') {
			return false
		}
		sl := reflect.MakeSlice(fp.typ, 0, 2)
		for more := !s.close(']'); more; {
			sl = reflect.Append(sl, reflect.Zero(fp.typ.Elem()))
			if !s.null() && !fp.elem.decode(s, sl.Index(sl.Len()-1)) {
				return false
			}
			var ok bool
			if more, ok = s.next(']'); !ok {
				return false
			}
		}
		f.Set(sl)
		return true
	case kindStruct:
		return fp.elem.decode(s, f)
	}
	return false
}

// ------------------------------------------------------------------ scanning

// scanner reads JSON from b at i. Its methods skip whitespace first and
// return ok=false at anything they do not read with certainty.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	if s.i < len(s.b) && s.b[s.i] > ' ' {
		return
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// open reads c, the start of an object or array.
func (s *scanner) open(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// close reads c if it comes next: the end of an empty object or array.
func (s *scanner) close(c byte) bool { return s.open(c) }

// next reads what follows a member or element: a comma (more: true) or the
// end c.
func (s *scanner) next(end byte) (more, ok bool) {
	s.ws()
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case ',':
			s.i++
			return true, true
		case end:
			s.i++
			return false, true
		}
	}
	return false, false
}

// key reads a member's name, without escapes, and its colon.
func (s *scanner) key() ([]byte, bool) {
	k, ok := s.plainStr()
	if !ok || !s.open(':') {
		return nil, false
	}
	return k, true
}

// member reads a member's name and its colon, and returns the name's index
// in quoted (see quoted), or -1 when it is none of them. Members mostly come
// in quoted's order, as Encode writes them: it first looks for one of
// quoted[from:] written plainly, then reads the name.
func (s *scanner) member(quoted []memberName, from int) (int, bool) {
	rest := s.b[s.i:]
	for k := from; k < len(quoted); k++ {
		if quoted[k].startsWith(rest) {
			s.i += len(quoted[k].q)
			return k, true
		}
	}
	key, ok := s.key()
	if !ok {
		return -1, false
	}
	for k := range quoted {
		if q := quoted[k].q; len(q) == len(key)+3 && q[1:len(q)-2] == string(key) {
			return k, true
		}
	}
	return -1, true
}

// null reads the literal null if it comes next.
func (s *scanner) null() bool {
	s.ws()
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

func (s *scanner) bool() (bool, bool) {
	s.ws()
	switch {
	case len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "true":
		s.i += 4
		return true, true
	case len(s.b)-s.i >= 5 && string(s.b[s.i:s.i+5]) == "false":
		s.i += 5
		return false, true
	}
	return false, false
}

// uint reads a non-negative integer of at most 18 digits.
func (s *scanner) uint() (uint64, bool) {
	s.ws()
	start := s.i
	var n uint64
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		n = n*10 + uint64(s.b[s.i]-'0')
		s.i++
	}
	digits := s.i - start
	if digits == 0 || digits > 18 || (digits > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, false
	}
	return n, true
}

// rawStr reads a string and returns its bytes as written, whether it has
// escapes; ok=false for a string with control characters or invalid UTF-8.
func (s *scanner) rawStr() (raw []byte, escaped, ok bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, false
	}
	start := s.i + 1
	ascii := true
	for j := start; j < len(s.b); {
		// On to the next quote, backslash, control character or byte of a
		// multi-byte character: 8 bytes at a time, then one by one.
		if j+8 <= len(s.b) {
			m := special8(binary.LittleEndian.Uint64(s.b[j:]))
			if m == 0 {
				j += 8
				continue
			}
			j += bits.TrailingZeros64(m) >> 3
		} else if c := s.b[j]; c != '"' && c != '\\' && c >= 0x20 && c < utf8.RuneSelf {
			j++
			continue
		}
		switch c := s.b[j]; {
		case c == '"':
			raw = s.b[start:j]
			if !ascii && !utf8.Valid(raw) {
				return nil, false, false // encoding/json replaces what is invalid
			}
			s.i = j + 1
			return raw, escaped, true
		case c == '\\':
			escaped = true
			j += 2 // and the escaped character, checked by unescape
		case c < 0x20:
			return nil, false, false
		default:
			ascii = false
			j++
		}
	}
	return nil, false, false
}

// special8 marks, in the high bit of each, the bytes of x (little-endian)
// that are a quote, a backslash, a control character or not ASCII. The
// lowest mark is exact; a marked byte above it may not be special. (The bit
// tricks of "Bit Twiddling Hacks": a zero byte of x^c is a byte equal to c;
// x-0x20 sets the high bit of a byte below 0x20, or of 0xA0 and above, which
// x marks anyway; a borrow runs upwards only.)
func special8(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q, bs := x^(ones*'"'), x^(ones*'\\')
	return ((q-ones)&^q | (bs-ones)&^bs | (x - ones*0x20) | x) & highs
}

// plainStr reads a string without escapes, returning its bytes.
func (s *scanner) plainStr() ([]byte, bool) {
	raw, escaped, ok := s.rawStr()
	return raw, ok && !escaped
}

func (s *scanner) str() (string, bool) {
	raw, escaped, ok := s.rawStr()
	if !ok {
		return "", false
	}
	if escaped {
		return unescape(raw)
	}
	return string(raw), true
}

// strInterned reads a string as str, returning *last instead of a copy when
// it is the same, and remembering it otherwise.
func (s *scanner) strInterned(last *string) (string, bool) {
	raw, escaped, ok := s.rawStr()
	switch {
	case !ok:
		return "", false
	case escaped:
		return unescape(raw)
	case string(raw) != *last:
		*last = string(raw)
	}
	return *last, true
}

// unescape decodes a string's escapes; ok=false for a malformed one, or one
// of a UTF-16 surrogate, left to the slow path.
func unescape(raw []byte) (string, bool) {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i++; i >= len(raw) {
			return "", false
		}
		switch raw[i] {
		case '"', '\\', '/':
			out = append(out, raw[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if i+5 > len(raw) {
				return "", false
			}
			r := rune(0)
			for _, h := range raw[i+1 : i+5] {
				switch {
				case '0' <= h && h <= '9':
					r = r<<4 | rune(h-'0')
				case 'a' <= h && h <= 'f':
					r = r<<4 | rune(h-'a'+10)
				case 'A' <= h && h <= 'F':
					r = r<<4 | rune(h-'A'+10)
				default:
					return "", false
				}
			}
			if 0xD800 <= r && r < 0xE000 {
				return "", false
			}
			out = utf8.AppendRune(out, r)
			i += 4
		default:
			return "", false
		}
	}
	return string(out), true
}

// time reads a time as Encode writes it: RFC 3339, 2006-01-02T15:04:05Z or
// with an offset, with 1 to 9 digits of fraction or none.
func (s *scanner) time() (time.Time, bool) {
	raw, ok := s.plainStr()
	if !ok {
		return time.Time{}, false
	}
	return parseRFC3339(raw)
}

// parseRFC3339 parses 2006-01-02T15:04:05[.999999999](Z|±07:00) as
// Time.UnmarshalJSON does (in the location it would choose: UTC, Local when
// the offset is Local's at that instant, else a fixed zone); ok=false for
// anything else.
func parseRFC3339(b []byte) (time.Time, bool) {
	if len(b) < len("2006-01-02T15:04:05Z") || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
		if b[i]-'0' > 9 {
			return time.Time{}, false
		}
	}
	d2 := func(i int) int { return int(b[i]-'0')*10 + int(b[i+1]-'0') }
	year, month, day := d2(0)*100+d2(2), d2(5), d2(8)
	hour, minute, sec := d2(11), d2(14), d2(17)
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	rest := b[19:]
	nsec := 0
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for ; n < len(rest) && rest[n]-'0' <= 9; n++ {
			nsec = nsec*10 + int(rest[n]-'0')
		}
		if n < 2 || n > 10 {
			return time.Time{}, false
		}
		for range 10 - n {
			nsec *= 10
		}
		rest = rest[n:]
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	switch {
	case len(rest) == 1 && rest[0] == 'Z':
		return t, true
	case len(rest) == len("+07:00") && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
		rest[1]-'0' <= 9 && rest[2]-'0' <= 9 && rest[4]-'0' <= 9 && rest[5]-'0' <= 9:
		hh, mm := int(rest[1]-'0')*10+int(rest[2]-'0'), int(rest[4]-'0')*10+int(rest[5]-'0')
		if hh > 23 || mm > 59 {
			return time.Time{}, false
		}
		offset := (hh*60 + mm) * 60
		if rest[0] == '-' {
			offset = -offset
		}
		t = t.Add(-time.Duration(offset) * time.Second)
		if _, local := t.In(time.Local).Zone(); local == offset {
			return t.In(time.Local), true
		}
		return t.In(time.FixedZone("", offset)), true
	}
	return time.Time{}, false
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
