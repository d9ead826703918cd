package events_test

import (
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// TestDecodeFastReadsWhatEncodeWrites: every event type, filled in full (and
// empty: null slices), with times in UTC and in other zones and strings with
// escapes, is decoded by the fast path alone, to what encoding/json decodes.
func TestDecodeFastReadsWhatEncodeWrites(t *testing.T) {
	// The events a stream is mostly made of must all take the fast path;
	// the others may have a member it leaves to the slow path ([]byte...).
	slow := map[string]bool{}
	for _, typ := range events.EventTypesWithoutPlan() {
		slow[typ] = true
		if strings.HasPrefix(typ, "user.") || strings.HasPrefix(typ, "session.") || strings.HasPrefix(typ, "apikey.") {
			t.Errorf("%s is left to the slow path: a member decode_fast.go cannot fill?", typ)
		} else {
			t.Logf("%s is left to the slow path", typ)
		}
	}
	metas := []events.Meta{
		{Actor: events.Actor{Type: "user", ID: "user-1"}, Request: events.RequestInfo{IP: "192.0.2.1", UserAgent: "ua\u2028x <&> \"q\" \\ \t é 😀", RequestID: "req-1"}},
		{Actor: events.System},
		{},
	}
	zones := []*time.Location{time.UTC, time.FixedZone("", -5*3600-30*60), time.FixedZone("CET", 3600), time.Local}
	n := 0
	for _, typ := range domain.EventTypes() {
		for seed := 0; seed < 4; seed++ {
			p, _ := domain.NewEvent(typ)
			if seed > 0 {
				fill(reflect.ValueOf(p).Elem(), seed)
			}
			if seed == 3 {
				inZone(reflect.ValueOf(p).Elem(), zones[1+n%3])
			}
			ev := domain.Deref(p)
			at := time.Date(2026, 1, 2, 3, 4, 5, seed*100_000, zones[n%len(zones)])
			b, err := events.Encode("evt-1", "agg", "agg-1", uint64(seed), at, metas[n%len(metas)], ev)
			n++
			if err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			wantEnv, want, werr := decodeV1(b)
			if werr != nil {
				t.Fatalf("%s: encoding/json: %v", typ, werr)
			}
			gotEnv, got, ok := events.DecodeFast(b)
			if !ok && slow[typ] {
				continue
			}
			if !ok {
				t.Errorf("%s (seed %d): not decoded by the fast path: %s", typ, seed, b)
				continue
			}
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotEnv, wantEnv) {
				t.Errorf("%s (seed %d): decoded\n%#v\n%#v\nencoding/json:\n%#v\n%#v", typ, seed, gotEnv, got, wantEnv, want)
			}
		}
	}
}

// inZone moves every time reachable from v to loc.
func inZone(v reflect.Value, loc *time.Location) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			inZone(v.Elem(), loc)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			inZone(v.Index(i), loc)
		}
	case reflect.Struct:
		if t, ok := v.Interface().(time.Time); ok {
			v.Set(reflect.ValueOf(t.In(loc)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				inZone(v.Field(i), loc)
			}
		}
	}
}

// TestDecodeFastAgreesOnOddDocuments: documents Encode does not write are
// decoded by the fast path only when it gets encoding/json's answer, and
// Decode answers as encoding/json either way.
func TestDecodeFastAgreesOnOddDocuments(t *testing.T) {
	for name, c := range map[string]struct {
		doc  string
		fast bool // taken by the fast path
	}{
		"whitespace":        {` { "type" : "apikey.revoked" , "version" : 1 , "data" : { "key_id" : "k" } } `, true},
		"escapes":           {`{"type":"apikey.revoked","version":1,"data":{"key_id":"a\"b\\c\/d\b\f\n\r\t\u00e9\u20ac\u0000"}}`, true},
		"surrogate pair":    {`{"type":"apikey.revoked","version":1,"data":{"key_id":"\ud83d\ude00"}}`, false},
		"lone surrogate":    {`{"type":"apikey.revoked","version":1,"data":{"key_id":"\ud800"}}`, false},
		"bad escape":        {`{"type":"apikey.revoked","version":1,"data":{"key_id":"\x"}}`, false},
		"short \\u":         {`{"type":"apikey.revoked","version":1,"data":{"key_id":"\u12"}}`, false},
		"nulls":             {`{"type":"apikey.created","version":1,"data":{"key_id":null,"tenants":null,"expires_at":null,"created_at":null}}`, true},
		"null elements":     {`{"type":"apikey.created","version":1,"data":{"tenants":["a",null],"permissions":[]}}`, true},
		"null struct elems": {`{"type":"user.created","version":1,"data":{"tenants":[null,{"id":"t","role":null}],"roles":[]}}`, true},
		"empty slices":      {`{"type":"user.created","version":1,"data":{"tenants":[],"roles":[]}}`, true},
		"pointer time":      {`{"type":"apikey.created","version":1,"data":{"expires_at":"2026-02-28T23:59:59.5+01:00"}}`, true},
		"leap day":          {`{"type":"session.token_revoked","version":1,"data":{"expires_at":"2028-02-29T00:00:00Z"}}`, true},
		"no leap day":       {`{"type":"session.token_revoked","version":1,"data":{"expires_at":"2026-02-29T00:00:00Z"}}`, false},
		"10-digit fraction": {`{"type":"session.token_revoked","version":1,"data":{"expires_at":"2026-01-02T00:00:00.1234567891Z"}}`, false},
		// (encoding/json refuses a time with escapes; decodeSlow, as
		// go-json-experiment/json does, unescapes it first: not compared.)
		"time escaped":       {`{"type":"session.token_revoked","version":1,"data":{"expires_at":"2026-01-02T00:00:00\u005a"}}`, false},
		"second 60":          {`{"type":"session.token_revoked","version":1,"data":{"expires_at":"2026-01-02T00:00:60Z"}}`, false},
		"case":               {`{"TYPE":"session.token_revoked","version":1,"data":{}}`, false},
		"member case":        {`{"type":"session.token_revoked","version":1,"data":{"Token_ID":"t"}}`, false},
		"duplicate":          {`{"type":"apikey.revoked","version":1,"version":1,"data":{}}`, false},
		"duplicate member":   {`{"type":"apikey.revoked","version":1,"data":{"key_id":"a","key_id":"b"}}`, false},
		"unknown member":     {`{"type":"apikey.revoked","version":1,"x":1,"data":{}}`, false},
		"data first":         {`{"data":{},"type":"apikey.revoked","version":1}`, false},
		"no data":            {`{"type":"apikey.revoked","version":1}`, false},
		"version 0":          {`{"type":"apikey.revoked","version":0,"data":{}}`, false},
		"version 01":         {`{"type":"apikey.revoked","version":01,"data":{}}`, false},
		"version 1e0":        {`{"type":"apikey.revoked","version":1e0,"data":{}}`, false},
		"version -1":         {`{"type":"apikey.revoked","version":-1,"data":{}}`, false},
		"trailing comma":     {`{"type":"apikey.revoked","version":1,"data":{},}`, false},
		"trailing":           {`{"type":"apikey.revoked","version":1,"data":{}}x`, false},
		"unterminated":       {`{"type":"apikey.revoked","version":1,"data":{"key_id":"k`, false},
		"control character":  {"{\"type\":\"apikey.revoked\",\"version\":1,\"data\":{\"key_id\":\"a\nb\"}}", false},
		"invalid utf-8":      {"{\"type\":\"apikey.revoked\",\"version\":1,\"data\":{\"key_id\":\"a\xffb\"}}", false},
		"bool":               {`{"type":"session.refreshed","version":1,"data":{"refresh_token_reissued":true}}`, true},
		"bool as string":     {`{"type":"session.refreshed","version":1,"data":{"refresh_token_reissued":"true"}}`, false},
		"string as number":   {`{"type":"apikey.revoked","version":1,"data":{"key_id":5}}`, false},
		"data null":          {`{"type":"apikey.revoked","version":1,"data":null}`, false},
		"big sequence":       {`{"type":"apikey.revoked","version":1,"sequence":18446744073709551615,"data":{}}`, false},
		"unknown type":       {`{"type":"apikey.exploded","version":1,"data":{}}`, false},
		"actor and request":  {`{"type":"apikey.revoked","version":1,"actor":{"type":"robot","id":"r"},"request":{"ip":"::1","user_agent":"","request_id":"x"},"data":{}}`, true},
		"actor extra member": {`{"type":"apikey.revoked","version":1,"actor":{"type":"user","name":"r"},"data":{}}`, false},
	} {
		wantEnv, want, werr := decodeV1([]byte(c.doc))
		gotEnv, got, ok := events.DecodeFast([]byte(c.doc))
		if ok != c.fast {
			t.Errorf("%s: fast path %v, want %v", name, ok, c.fast)
		}
		if ok && (werr != nil || !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotEnv, wantEnv)) {
			t.Errorf("%s: fast path %#v %#v\nencoding/json %#v %#v (%v)", name, gotEnv, got, wantEnv, want, werr)
		}
		if name == "time escaped" {
			continue
		}
		gotEnv, got, gerr := events.Decode([]byte(c.doc))
		if (werr == nil) != (gerr == nil) {
			t.Errorf("%s: Decode error %v, encoding/json error %v", name, gerr, werr)
		} else if werr == nil && (!reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotEnv, wantEnv)) {
			t.Errorf("%s: Decode %#v %#v\nencoding/json %#v %#v", name, gotEnv, got, wantEnv, want)
		}
	}
}

// TestDecoderSharesRepeatedStrings: consecutive events by the same actor
// from the same client share its strings, and a change is seen.
func TestDecoderSharesRepeatedStrings(t *testing.T) {
	doc := func(actor, ip, ua string) []byte {
		b, err := events.Encode("evt-1", domain.AggregateAPIKey, "k", 1, time.Unix(0, 0),
			events.Meta{Actor: events.Actor{Type: "user", ID: actor}, Request: events.RequestInfo{IP: ip, UserAgent: ua}},
			domain.APIKeyUsed{KeyID: "k", UsedAt: time.Unix(0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var d events.Decoder
	var envs []events.Envelope
	for _, b := range [][]byte{doc("u1", "192.0.2.1", "curl"), doc("u1", "192.0.2.1", "curl"), doc("u2", "192.0.2.2", "wget"), doc("u1", "192.0.2.1", "curl")} {
		env, _, err := d.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, env)
	}
	same := func(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }
	if !same(envs[0].Actor.ID, envs[1].Actor.ID) || !same(envs[0].Request.IP, envs[1].Request.IP) || !same(envs[0].Request.UserAgent, envs[1].Request.UserAgent) {
		t.Error("consecutive equal strings were copied")
	}
	want := []string{"u1 192.0.2.1 curl", "u1 192.0.2.1 curl", "u2 192.0.2.2 wget", "u1 192.0.2.1 curl"}
	for i, env := range envs {
		if got := strings.Join([]string{env.Actor.ID, env.Request.IP, env.Request.UserAgent}, " "); got != want[i] {
			t.Errorf("event %d: %q, want %q", i, got, want[i])
		}
	}
}

// FuzzDecodeFastMatchesEncodingJSON: whatever the fast path decodes by itself,
// encoding/json decodes to the same envelope and event, without error.
// (FuzzDecodeMatchesEncodingJSON holds Decode as a whole to it.)
func FuzzDecodeFastMatchesEncodingJSON(f *testing.F) {
	meta := events.Meta{Actor: events.Actor{Type: "user", ID: "u"}, Request: events.RequestInfo{IP: "192.0.2.1", UserAgent: "a\u2028<b>", RequestID: "r"}}
	for i, typ := range domain.EventTypes() {
		p, _ := domain.NewEvent(typ)
		fill(reflect.ValueOf(p).Elem(), i)
		b, err := events.Encode("evt-1", "agg", "agg-1", uint64(i), time.Date(2026, 1, 2, 3, 4, 5, i, time.FixedZone("", 3600*(i%3))), meta, domain.Deref(p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"user.created","version":1,"data":{"tenants":[null,{"id":"t\u00e9","role":null}],"roles":[]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		gotEnv, got, ok := events.DecodeFast(data)
		if !ok {
			return
		}
		wantEnv, want, err := decodeV1(data)
		if err != nil {
			t.Fatalf("fast path decoded what encoding/json refuses (%v): %#v %#v", err, gotEnv, got)
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotEnv, wantEnv) {
			t.Fatalf("fast path %#v %#v\nencoding/json %#v %#v", gotEnv, got, wantEnv, want)
		}
	})
}

// BenchmarkDecodePaths: Decode's fast path (through a Decoder, as the
// projection runner decodes) against its slow path, on session.refreshed.
func BenchmarkDecodePaths(b *testing.B) {
	docs := benchDocs(b)
	var d events.Decoder
	for _, c := range []struct {
		name   string
		decode func([]byte) (events.Envelope, domain.Event, error)
	}{{"Decoder", d.Decode}, {"Decode", events.Decode}, {"slow", events.DecodeSlow}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, _, err := c.decode(docs[i%len(docs)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
