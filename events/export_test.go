package events

import (
	"context"

	"github.com/infracast/auth/domain"
)

// DecodeFast is decodeFast for the tests of package events_test: ok reports
// whether the fast path decoded b by itself.
func DecodeFast(b []byte) (env Envelope, ev domain.Event, ok bool) {
	var d Decoder
	ev, ok = d.decodeFast(b, &env)
	return env, ev, ok
}

// EventTypesWithoutPlan lists the event types decodeFast leaves to the slow path.
func EventTypesWithoutPlan() []string {
	var out []string
	for _, t := range domain.EventTypes() {
		if eventPlans[t] == nil {
			out = append(out, t)
		}
	}
	return out
}

// DecodeSlow is Decode without its fast path.
var DecodeSlow = decodeSlow

// AckSequences is ackSequences (ackreply.go).
var AckSequences = ackSequences

// Heads is heads (head.go) for the tests of package events_test.
type Heads = heads

// Get is get.
func (h *heads) Get(ctx context.Context, ask func(context.Context) (uint64, error)) (uint64, error) {
	return h.get(ctx, ask)
}

// Waiting reports whether callers wait for the next question.
func (h *heads) Waiting() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.waiting != nil
}

// BucketError is bucketError (streamconfig.go).
var BucketError = bucketError
