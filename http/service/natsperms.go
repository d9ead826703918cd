package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/infracast/auth/events"
)

// ErrNATSPermissions: the NATS server refused this replica's user
// something the service needs (a publish or a subscription); the replica
// does not start. The message names what was refused, and points to the
// permissions block of docs/operations.md.
var ErrNATSPermissions = errors.New("the NATS user lacks permissions the service needs")

// permissionsDoc is where the operator finds the permissions to give.
const permissionsDoc = `give the service's NATS user the permissions block of docs/operations.md ("Running against an external NATS", Permissions)`

// refusals records the permissions violations the NATS server reports on the
// connection. They arrive asynchronously (nats.go's error handler), never
// as the error of the publish, subscription or request they refuse: a
// request waits for its timeout, a subscription receives nothing. Start
// ends at the first one (Refused), and names them all in its error.
type refusals struct {
	mu    sync.Mutex
	seen  []string
	first chan struct{}
}

// errPermissionViolation ends the start's context at the first refusal.
var errPermissionViolation = errors.New("NATS reported a permissions violation")

func newRefusals() *refusals { return &refusals{first: make(chan struct{})} }

// add records err if it is a permissions violation, and reports whether
// it was one.
func (r *refusals) add(err error) bool {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return false
	}
	// "nats: permissions violation: Permissions Violation for Publish to …"
	text := strings.TrimPrefix(err.Error(), nats.ErrPermissionViolation.Error()+": ")
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) == 0 {
		close(r.first)
	}
	if len(r.seen) < 8 && !slices.Contains(r.seen, text) {
		r.seen = append(r.seen, text)
	}
	return true
}

// Refused is closed at the first permissions violation.
func (r *refusals) Refused() <-chan struct{} { return r.first }

// explain returns err naming the permissions violations seen so far, as an
// ErrNATSPermissions; err itself when there was none.
func (r *refusals) explain(err error) error {
	r.mu.Lock()
	seen := append([]string(nil), r.seen...)
	r.mu.Unlock()
	if len(seen) == 0 {
		return err
	}
	return fmt.Errorf("%w: %s (%v); %s", ErrNATSPermissions, strings.Join(seen, "; "), err, permissionsDoc)
}

// startContext is ctx, canceled at the first permissions violation: a start
// that waits for a request NATS refused (the stream's creation, the
// barrier's self-check, the publish check) ends at once rather than at its
// timeout (30 s for the stream), and explain names the refusal.
func (r *refusals) startContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-r.first:
			cancel(errPermissionViolation)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

// selfCheckWait bounds the start-up checks of the NATS user's permissions
// (the barrier's round trip to itself, the publish check): each is a round
// trip or two when allowed; a refusal usually ends them at once (refusals).
// (A variable for the tests.)
var selfCheckWait = 5 * time.Second

// checkNATSPermissions makes sure, before the replica serves, that its NATS
// user may do what the service does: take part in the replica barrier
// (events.Barrier.SelfCheck: publish and subscribe on infracast.replicas.>)
// and publish events (events.Store.CheckPublish, which stores nothing).
// The stream's creation checked the JetStream API already. An outside check
// (20n) ran replicas with a permission missing: they reported ready and
// then accepted revoked tokens, or answered every write 503 after 5 s.
func (s *Service) checkNATSPermissions(ctx context.Context) error {
	if s.cfg.Embedded() {
		return nil // the service's own user of the embedded server may do everything
	}
	// A refusal may be reported a moment after the check's end.
	explain := func(err error) error {
		select {
		case <-s.refusals.Refused():
		case <-time.After(100 * time.Millisecond):
		}
		return s.refusals.explain(err)
	}
	barrierCtx, cancel := context.WithTimeout(ctx, selfCheckWait)
	defer cancel()
	if err := s.Barrier.SelfCheck(barrierCtx); err != nil {
		if explained := explain(err); explained != err {
			return explained
		}
		// Nothing refused, and yet its own messages did not come back: the
		// replica would still serve outside the barrier.
		return fmt.Errorf("replica barrier: %w; %s", err, permissionsDoc)
	}
	// The publish check needs the stream's leader: on a cluster that is
	// electing one (replicas starting with it), it is tried again within
	// the wait; a check that could not be made for that is not a reason to
	// refuse the start.
	publishCtx, cancel := context.WithTimeout(ctx, selfCheckWait)
	defer cancel()
	for {
		err := s.Store.CheckPublish(publishCtx)
		if err == nil {
			return nil
		}
		if publishCtx.Err() != nil || !errors.Is(err, events.ErrUnavailable) {
			if explained := explain(err); explained != err {
				return explained
			}
			s.log.Warn("could not check that this replica's NATS user may publish events; starting anyway", "err", err)
			return nil
		}
		select {
		case <-publishCtx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}
