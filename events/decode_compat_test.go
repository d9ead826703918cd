package events_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// decodeV1 is Decode as it was written with encoding/json: the reference that
// Decode (on go-json-experiment/json with the v1 options) must agree with.
func decodeV1(b []byte) (events.Envelope, domain.Event, error) {
	var env events.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return env, nil, err
	}
	if env.Version < 1 || env.Version > domain.EventVersion {
		return env, nil, events.ErrUnknownEvent
	}
	ev, ok := domain.NewEvent(env.Type)
	if !ok {
		return env, nil, events.ErrUnknownEvent
	}
	if err := json.Unmarshal(env.Data, ev); err != nil {
		return env, nil, err
	}
	return env, domain.Deref(ev), nil
}

// fill sets every field reachable from v to a value derived from seed: strings,
// numbers, booleans, times, slices and maps of two elements, pointers.
func fill(v reflect.Value, seed int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d-é", seed))
	case reflect.Bool:
		v.SetBool(seed%2 == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(seed % 100))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(seed % 100))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(seed) / 4)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), seed+1)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := 0; i < 2; i++ {
			fill(s.Index(i), seed+10*i+1)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for i := 0; i < 2; i++ {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, seed+10*i+1)
			fill(e, seed+10*i+2)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 3, 4, 5, 6, 7, seed, time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), seed+i+1)
			}
		}
	}
}

// TestDecodeMatchesEncodingJSON encodes every event type, filled in full, and
// decodes it with Decode and with encoding/json: the results must be equal.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	meta := events.Meta{Actor: events.Actor{Type: "user", ID: "user-1"}, Request: events.RequestInfo{IP: "192.0.2.1", UserAgent: "ua\u2028x", RequestID: "req-1"}}
	for _, typ := range domain.EventTypes() {
		for seed := 0; seed < 3; seed++ {
			p, _ := domain.NewEvent(typ)
			fill(reflect.ValueOf(p).Elem(), seed)
			ev := domain.Deref(p)
			b, err := events.Encode("evt-1", "agg", "agg-1", 7, time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), meta, ev)
			if err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			wantEnv, want, werr := decodeV1(b)
			gotEnv, got, gerr := events.Decode(b)
			if werr != nil || gerr != nil {
				t.Fatalf("%s: errors %v / %v", typ, werr, gerr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: decoded\n%#v\nencoding/json:\n%#v", typ, got, want)
			}
			if !reflect.DeepEqual(gotEnv, wantEnv) {
				t.Errorf("%s: envelope\n%#v\nencoding/json:\n%#v", typ, gotEnv, wantEnv)
			}
			if !reflect.DeepEqual(ev, got) {
				t.Errorf("%s: did not round-trip:\n%#v\n%#v", typ, ev, got)
			}
		}
	}
}

// TestDecodeOddDocumentsLikeEncodingJSON: documents this service never writes
// (another casing, duplicate names, invalid UTF-8, nulls, unknown fields)
// decode, or fail, exactly as encoding/json decodes them.
func TestDecodeOddDocumentsLikeEncodingJSON(t *testing.T) {
	for name, doc := range map[string]string{
		"case":           `{"TYPE":"session.token_revoked","Version":1,"Aggregate_ID":"s","DATA":{"Session_ID":"s","TOKEN_ID":"t"}}`,
		"duplicate":      `{"type":"session.token_revoked","version":1,"aggregate_id":"a","aggregate_id":"b","data":{"token_id":"x","token_id":"y"}}`,
		"invalid utf-8":  "{\"type\":\"session.token_revoked\",\"version\":1,\"data\":{\"token_id\":\"a\xffb\"}}",
		"nulls":          `{"type":"apikey.created","version":1,"aggregate_id":null,"data":{"tenants":null,"expires_at":null,"key_id":null}}`,
		"unknown fields": `{"type":"apikey.revoked","version":1,"extra":{"a":[1,2]},"data":{"key_id":"k","later":true}}`,
		"float version":  `{"type":"apikey.revoked","version":1.0,"data":{}}`,
		"string version": `{"type":"apikey.revoked","version":"1","data":{}}`,
		"data array":     `{"type":"apikey.revoked","version":1,"data":[]}`,
		"data string":    `{"type":"apikey.revoked","version":1,"data":"x"}`,
		"bad time":       `{"type":"session.token_revoked","version":1,"occurred_at":"yesterday","data":{}}`,
		"trailing":       `{"type":"apikey.revoked","version":1,"data":{}} x`,
		"escapes":        `{"type":"apikey.revoked","version":1,"data":{"key_id":"\u006b\ud83d\ude00\"","reason":"\ud800"}}`,
		"hour 24":        `{"type":"session.token_revoked","version":1,"occurred_at":"2026-01-02T24:00:00Z","data":{}}`,
		"lower-case t":   `{"type":"session.token_revoked","version":1,"occurred_at":"2026-01-02t10:00:00z","data":{}}`,
		"offset +24:00":  `{"type":"session.token_revoked","version":1,"data":{"expires_at":"2026-01-02T10:00:00+24:00"}}`,
		"decimal comma":  `{"type":"session.token_revoked","version":1,"data":{"expires_at":"2026-01-02T10:00:00,5Z"}}`,
		"no seconds":     `{"type":"session.token_revoked","version":1,"data":{"expires_at":"2026-01-02T10:00Z"}}`,
		"time a number":  `{"type":"session.token_revoked","version":1,"data":{"expires_at":5}}`,
		"int overflow":   `{"type":"apikey.revoked","version":99999999999999999999,"data":{}}`,
		"empty":          ``,
		"null":           `null`,
	} {
		wantEnv, want, werr := decodeV1([]byte(doc))
		gotEnv, got, gerr := events.Decode([]byte(doc))
		if (werr == nil) != (gerr == nil) {
			t.Errorf("%s: Decode error %v, encoding/json error %v", name, gerr, werr)
			continue
		}
		if werr != nil {
			continue
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotEnv, wantEnv) {
			t.Errorf("%s: decoded %#v %#v\nencoding/json %#v %#v", name, gotEnv, got, wantEnv, want)
		}
	}
}

// FuzzDecodeMatchesEncodingJSON: on any input, Decode and encoding/json agree.
func FuzzDecodeMatchesEncodingJSON(f *testing.F) {
	b, _ := events.Encode("evt-1", "apikey", "k", 1, time.Unix(0, 0), events.Meta{}, domain.APIKeyCreated{KeyID: "k", Tenants: []string{"a"}, Permissions: []domain.Permission{domain.NodesRead}})
	f.Add(b)
	b, _ = events.Encode("evt-1", "user", "u", 1, time.Unix(0, 0), events.Meta{}, domain.UserCreated{UserID: "u", Tenants: []domain.TenantRole{{Tenant: "t", Role: domain.RoleAdmin}}})
	f.Add(b)
	f.Add([]byte(`{"TYPE":"session.started","version":1,"data":{"expires_at":"2026-01-01T00:00:00Z","Session_ID":"s"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		wantEnv, want, werr := decodeV1(data)
		gotEnv, got, gerr := events.Decode(data)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("Decode error %v, encoding/json error %v", gerr, werr)
		}
		if werr == nil && (!reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotEnv, wantEnv)) {
			t.Fatalf("decoded %#v %#v\nencoding/json %#v %#v", gotEnv, got, wantEnv, want)
		}
	})
}

// benchDocs are distinct realistic events (distinct IDs, as a replay sees).
func benchDocs(b *testing.B) [][]byte {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	docs := make([][]byte, 1024)
	for i := range docs {
		meta := events.Meta{Actor: events.Actor{Type: "user", ID: fmt.Sprintf("user-01J%023d", i)},
			Request: events.RequestInfo{IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", RequestID: fmt.Sprintf("req-01J%023d", i)}}
		sid := fmt.Sprintf("sess-01J%023d", i)
		d, err := events.Encode(fmt.Sprintf("evt-01J%023d", i), domain.AggregateSession, sid, 3, at, meta,
			domain.SessionRefreshed{SessionID: sid, TokenID: fmt.Sprintf("tok-01J%023d", i), At: at})
		if err != nil {
			b.Fatal(err)
		}
		docs[i] = d
	}
	return docs
}

// BenchmarkDecode: Decode, and what it was (encoding/json), on session.refreshed
// events — most of a stream.
func BenchmarkDecode(b *testing.B) {
	docs := benchDocs(b)
	for _, c := range []struct {
		name   string
		decode func([]byte) (events.Envelope, domain.Event, error)
	}{{"Decode", events.Decode}, {"encoding-json", decodeV1}} {
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
