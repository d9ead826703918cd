package commands

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// pending is one decided event and where it goes.
type pending struct {
	aggregate, id string
	expect        uint64
	expectOn      string // the subject whose last sequence expect is; empty: the event's own
	version       uint64 // aggregate version before this event
	event         domain.Event
}

// appendEvents encodes and appends events atomically and waits until the local
// read model has applied them.
func (s *Service) appendEvents(ctx context.Context, meta events.Meta, commandID string, evs []pending) (uint64, error) {
	msgs := make([]events.Message, len(evs))
	now := s.cfg.Now()
	for i, p := range evs {
		data, err := events.Encode(NewID("evt"), p.aggregate, p.id, p.version+1, now, meta, p.event)
		if err != nil {
			return 0, err
		}
		msgs[i] = events.Message{
			Subject: events.Subject(p.aggregate, p.id), ExpectSeq: p.expect, ExpectSubject: p.expectOn,
			ID: fmt.Sprintf("%s-%d", commandID, i), Data: data,
		}
	}
	if err := s.waitCurrent(ctx); err != nil {
		return 0, err
	}
	start := time.Now()
	seq, err := s.log.Append(ctx, msgs...)
	if s.cfg.ObserveAppend != nil {
		s.cfg.ObserveAppend(time.Since(start), err)
	}
	if err != nil {
		return 0, err
	}
	if err := s.proj.WaitFor(ctx, seq); err != nil {
		// Stored, but this replica has not applied it in time: the answer
		// cannot be built, and must not claim that nothing changed.
		return 0, fmt.Errorf("%w: stored at sequence %d, not yet applied here: %v", events.ErrOutcomeUnknown, seq, err)
	}
	return seq, nil
}

// currentWait bounds how long a command waits for the read models to catch up
// after a reconnection before answering ErrUnavailable.
const currentWait = 2 * time.Second

// waitCurrent holds an append back while the read models catch up after a
// reconnection to the event store (decisions made on stale state would only
// run into conflicts), and refuses it if that takes longer than currentWait.
// While NATS is unreachable it does not wait: Append decides (it gives the
// connection a moment to come back, then refuses).
func (s *Service) waitCurrent(ctx context.Context) error {
	if c, ok := s.log.(interface{ Connected() bool }); ok && !c.Connected() {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, currentWait)
	defer cancel()
	if err := s.proj.WaitCurrent(wctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: read models are catching up with the event store", events.ErrUnavailable)
	}
	return nil
}

// retry runs attempt until it stops reporting a conflict. After a conflict it
// waits until the read model has caught up with the subject that moved.
func (s *Service) retry(ctx context.Context, subject string, attempt func(commandID string) error) error {
	for i := 0; i < s.cfg.MaxAttempts; i++ {
		err := attempt(NewID("cmd"))
		if !errors.Is(err, events.ErrConflict) {
			return err
		}
		s.conflicts.Add(1)
		last, lerr := s.log.LastSequence(ctx, subject)
		if lerr != nil {
			return lerr
		}
		if err := s.proj.WaitFor(ctx, last); err != nil {
			return err
		}
		if i > 2 { // heavy contention: spread the retries out
			time.Sleep(time.Duration(mathrand.IntN(1000*(i+1))) * time.Microsecond)
		}
	}
	return ErrTooManyConflicts
}

// onAggregate addresses decided events to an aggregate whose state had
// version events, the last at stream sequence expect (0: a new aggregate).
func onAggregate(aggregate, id string, version, expect uint64, evs []domain.Event) []pending {
	out := make([]pending, len(evs))
	for i, e := range evs {
		out[i] = pending{aggregate: aggregate, id: id, expect: expect, version: version + uint64(i), event: e}
	}
	return out
}
