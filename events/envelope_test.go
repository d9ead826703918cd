package events_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	meta := events.Meta{Actor: events.Actor{Type: "user", ID: "user-1"}, Request: events.RequestInfo{IP: "127.0.0.1", UserAgent: "curl", RequestID: "req-1"}}
	ev := domain.UserRoleGranted{UserID: "user-1", Tenant: "prod", Role: domain.RoleAdmin}
	b, err := events.Encode("evt-1", domain.AggregateUser, "user-1", 3, at, meta, ev)
	if err != nil {
		t.Fatal(err)
	}
	env, got, err := events.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got != ev {
		t.Fatalf("decoded %#v, want %#v", got, ev)
	}
	if env.Type != "user.role_granted" || env.Version != 1 || env.Sequence != 3 || !env.OccurredAt.Equal(at) || env.Actor != meta.Actor || env.Request != meta.Request {
		t.Fatalf("envelope %+v", env)
	}
	// The envelope has exactly the fields of the contract.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "type", "version", "aggregate", "aggregate_id", "sequence", "occurred_at", "actor", "request", "data"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("envelope lacks %q", k)
		}
	}
	if len(raw) != 10 {
		t.Errorf("envelope has %d fields, want 10", len(raw))
	}
}

func TestDecodeRejectsUnknownAndCorrupt(t *testing.T) {
	for name, doc := range map[string]string{
		"not json":       `{`,
		"unknown type":   `{"type":"user.exploded","version":1,"data":{}}`,
		"future version": `{"type":"user.created","version":99,"data":{}}`,
		"no version":     `{"type":"user.created","data":{}}`,
		"bad data":       `{"type":"user.created","version":1,"data":[1,2]}`,
	} {
		if _, _, err := events.Decode([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without error", name)
		} else if name == "unknown type" && !errors.Is(err, events.ErrUnknownEvent) {
			t.Errorf("%s: %v is not ErrUnknownEvent", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	b, _ := events.Encode("evt-1", "user", "u", 1, time.Unix(0, 0), events.Meta{}, domain.UserCreated{UserID: "u", Username: "a"})
	f.Add(b)
	f.Add([]byte(`{"type":"session.started","version":1,"data":{"expires_at":"x"}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, ev, err := events.Decode(data)
		if err == nil && (ev == nil || env.Type != ev.EventType()) {
			t.Fatalf("decoded %q into %#v", env.Type, ev)
		}
	})
}

func TestSealer(t *testing.T) {
	key := make([]byte, 32)
	s, err := events.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal("password_hash", "$argon2id$secret")
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := s.Open("password_hash", sealed); err != nil || pt != "$argon2id$secret" {
		t.Fatalf("open: %q %v", pt, err)
	}
	again, _ := s.Seal("password_hash", "$argon2id$secret")
	if again == sealed {
		t.Fatal("sealing is deterministic: nonce reused")
	}
	if _, err := s.Open("client_secret", sealed); !errors.Is(err, events.ErrUnseal) {
		t.Fatalf("opened under another field: %v", err)
	}
	other, _ := events.NewSealer(append([]byte{1}, key[1:]...))
	if _, err := other.Open("password_hash", sealed); !errors.Is(err, events.ErrUnseal) {
		t.Fatalf("opened with another key: %v", err)
	}
	tampered := []byte(sealed)
	tampered[len(tampered)-2] ^= 1
	if _, err := s.Open("password_hash", string(tampered)); err == nil {
		t.Fatal("opened a tampered value")
	}
	if _, err := events.NewSealer(key[:16]); err == nil {
		t.Fatal("accepted a 16-byte key")
	}
}
