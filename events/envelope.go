package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/infracast/auth/domain"
)

// Envelope is the JSON document stored for every event (see docs/events.md).
type Envelope struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Version     int             `json:"version"`
	Aggregate   string          `json:"aggregate"`
	AggregateID string          `json:"aggregate_id"`
	Sequence    uint64          `json:"sequence"` // position of the event within its aggregate, from 1
	OccurredAt  time.Time       `json:"occurred_at"`
	Actor       Actor           `json:"actor"`
	Request     RequestInfo     `json:"request"`
	Data        json.RawMessage `json:"data"`
}

// Actor is who caused an event.
type Actor struct {
	Type string `json:"type"` // "user", "apikey", "system" or "anonymous"
	ID   string `json:"id,omitempty"`
}

// System is the actor of events the service causes by itself (bootstrap).
var System = Actor{Type: "system", ID: "infracast-auth"}

// RequestInfo describes the HTTP request that caused an event, for auditors.
type RequestInfo struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Meta is what a command handler knows about the cause of its events.
type Meta struct {
	Actor   Actor
	Request RequestInfo
}

// ErrUnknownEvent is returned by Decode for a type or version this build does not know.
var ErrUnknownEvent = errors.New("events: unknown event type or version")

// Encode wraps a domain event in an envelope.
func Encode(id string, aggregate, aggregateID string, sequence uint64, at time.Time, meta Meta, e domain.Event) ([]byte, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("events: encode %s: %w", e.EventType(), err)
	}
	return json.Marshal(Envelope{
		ID: id, Type: e.EventType(), Version: domain.EventVersion,
		Aggregate: aggregate, AggregateID: aggregateID, Sequence: sequence,
		OccurredAt: at.UTC(), Actor: meta.Actor, Request: meta.Request, Data: data,
	})
}

// decodeOptions give Decode the semantics of encoding/json's Unmarshal
// (case-insensitive member names, the last of duplicate names wins, invalid
// UTF-8 replaced, loose RFC 3339 times, ...) on the faster decoder of
// go-json-experiment/json, which allocates a fraction as much: replaying the
// stream at start is mostly decoding. Only errors are reported the v2 way,
// which reads a document once instead of validating it first: the same
// documents are refused, with other messages, and a refused document may
// have filled part of the envelope (Decode's callers skip it whole).
var decodeOptions = jsonv2.JoinOptions(jsonv1.DefaultOptionsV1(), jsonv1.ReportErrorsWithLegacySemantics(false))

// wireEnvelope is Envelope as decoded: the payload as a raw value.
type wireEnvelope struct {
	ID          string         `json:"id"`
	Type        string         `json:"type"`
	Version     int            `json:"version"`
	Aggregate   string         `json:"aggregate"`
	AggregateID string         `json:"aggregate_id"`
	Sequence    uint64         `json:"sequence"`
	OccurredAt  time.Time      `json:"occurred_at"`
	Actor       Actor          `json:"actor"`
	Request     RequestInfo    `json:"request"`
	Data        jsontext.Value `json:"data"`
}

// Decode parses an envelope and its payload. A malformed document or an unknown
// type is an error; callers log, count and skip it rather than stop. It
// decodes what encoding/json's Unmarshal into an Envelope and then into the
// event would, and refuses what it would refuse.
//
// The documents Encode writes are read in one pass (decode_fast.go); any
// other is decoded by decodeSlow. A Decoder does the same and shares repeated
// strings between consecutive events.
func Decode(b []byte) (Envelope, domain.Event, error) {
	d := decoders.Get().(*Decoder)
	defer decoders.Put(d)
	return d.Decode(b)
}

// decodeSlow is Decode for any document: in two passes, the envelope and
// then its payload, on go-json-experiment/json with encoding/json's semantics.
func decodeSlow(b []byte) (Envelope, domain.Event, error) {
	var w wireEnvelope
	err := jsonv2.Unmarshal(b, &w, decodeOptions)
	env := Envelope{
		ID: w.ID, Type: w.Type, Version: w.Version, Aggregate: w.Aggregate, AggregateID: w.AggregateID,
		Sequence: w.Sequence, OccurredAt: w.OccurredAt, Actor: w.Actor, Request: w.Request, Data: json.RawMessage(w.Data),
	}
	if err != nil {
		return env, nil, fmt.Errorf("events: decode envelope: %w", err)
	}
	if env.Version < 1 || env.Version > domain.EventVersion {
		return env, nil, fmt.Errorf("%w: %s v%d", ErrUnknownEvent, env.Type, env.Version)
	}
	ev, ok := domain.NewEvent(env.Type)
	if !ok {
		return env, nil, fmt.Errorf("%w: %q", ErrUnknownEvent, env.Type)
	}
	if err := jsonv2.Unmarshal(env.Data, ev, decodeOptions); err != nil {
		return env, nil, fmt.Errorf("events: decode %s: %w", env.Type, err)
	}
	return env, domain.Deref(ev), nil
}
