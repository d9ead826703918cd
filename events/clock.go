package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// errNoServerTime: a NATS server before 2.10 stamps no time on its answers.
var errNoServerTime = errors.New("events: the event store's answer carries no server time (NATS before 2.10?)")

// ClockSample is one measurement of a replica's clock against the event
// store's.
type ClockSample struct {
	// Offset is the replica's clock minus the event store's: positive when
	// the replica's clock is ahead.
	Offset time.Duration
	// RTT is the question's round trip: Offset is known to within RTT/2.
	RTT time.Duration
}

// ClockOffset measures the clock now against the event store's, as NTP
// does: it asks the stream's leader for the stream's info, which the server
// stamps with its own time when it answers (ts), and compares that with the
// middle of the question's round trip on now. It costs one small question
// (the one Head sends every second) and nothing on any other path: the
// alternative, each event's time against the time the stream stored it,
// would have put a comparison on every event replayed or applied, and
// measured nothing on a replica that writes nothing.
func (s *Store) ClockOffset(ctx context.Context, now func() time.Time) (ClockSample, error) {
	sent, start := now(), time.Now()
	reply, err := s.apiRequest(ctx, "$JS.API.STREAM.INFO."+s.name, nil)
	if err != nil {
		return ClockSample{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	rtt := time.Since(start)
	var resp struct {
		Error *struct {
			ErrCode     uint16 `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		TS time.Time `json:"ts"`
	}
	switch err := json.Unmarshal(reply.Data, &resp); {
	case err != nil:
		return ClockSample{}, fmt.Errorf("%w: stream info: %v", ErrUnavailable, err)
	case resp.Error != nil:
		return ClockSample{}, fmt.Errorf("%w: stream info: %s (%d)", ErrUnavailable, resp.Error.Description, resp.Error.ErrCode)
	case resp.TS.IsZero():
		return ClockSample{}, errNoServerTime
	}
	return ClockSample{Offset: sent.Add(rtt / 2).Sub(resp.TS), RTT: rtt}, nil
}
