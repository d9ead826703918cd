package events

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/oklog/ulid/v2"
)

// CheckPublish finds out, without storing anything, whether this
// connection's NATS user may publish to the stream's subjects: it appends to
// a new subject, infracast.auth.publish-check.<ULID>, expecting a last
// sequence that no subject has, and the stream refuses it (nil). A user
// that may not publish there gets no answer — the server drops the message
// and reports a permissions violation on the connection —, and the check
// returns when ctx ends. Without it, such a replica reported ready and
// every write waited 5 s and answered 503 "may have been applied" (outside
// check 20n).
func (s *Store) CheckPublish(ctx context.Context) error {
	m := Message{Subject: Subject("publish-check", ulid.Make().String()), ExpectSeq: math.MaxInt64}
	_, fail := s.appendOne(ctx, m)
	switch {
	case fail == nil:
		// Nothing refused it: cannot be, unless the server ignores the
		// expectation — and it stored an empty event nobody decodes.
		return fmt.Errorf("events: a publish check on %s was stored; the server ignores expected sequences", m.Subject)
	case errors.Is(fail.err, ErrConflict):
		return nil
	}
	return fmt.Errorf("events: publish to %s: %w", m.Subject, fail.err)
}
