package service

import (
	"context"
	"time"

	"github.com/infracast/auth/domain"
)

// The replica's clock against the event store's (docs/operations.md,
// "Clocks"). Rules that compare this replica's clock with a time another
// replica wrote — the refresh reuse interval, a token's iat/nbf/exp, an
// access-token revocation of a token about to expire — hold only while the
// replicas' clocks agree (an outside check, 19b, broke them with a few
// seconds of skew, and no doc stated a requirement). Every replica measures
// its clock against the event store's, the one clock they all share, shows
// it (infracast_clock_offset_seconds) and warns while it is beyond its half
// of domain.ClockSkewTolerance: two replicas each within it of the event
// store are within the tolerance of each other.
//
// It does not make the replica unready: a skewed clock refuses fresh tokens
// of the others or shifts expiries, but revocations (events) are enforced
// as ever, and taking every replica out of the load balancer because the
// event store's own clock stepped would be an outage made by the check.

// clockTolerance is how far from the event store's clock a replica's may be.
const clockTolerance = domain.ClockSkewTolerance / 2

// clockCheckEvery is how often a replica measures its clock; clockWarnEvery
// spaces the warnings while it is off (variables for the tests).
var (
	clockCheckEvery = 10 * time.Second
	clockWarnEvery  = time.Minute
)

// ClockOffset is this replica's clock minus the event store's as last
// measured (0 before the first measurement).
func (s *Service) ClockOffset() time.Duration { return time.Duration(s.clockOffset.Load()) }

// runClockCheck measures the clock at once and then every clockCheckEvery
// until ctx ends.
func (s *Service) runClockCheck(ctx context.Context) {
	var warnedAt time.Time // zero while the clock is within the tolerance
	tick := time.NewTicker(clockCheckEvery)
	defer tick.Stop()
	for {
		warnedAt = s.checkClock(ctx, warnedAt)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// checkClock measures the clock once, and warns if it is beyond the
// tolerance — by more than the question's uncertainty — and no warning came
// in the last clockWarnEvery; warnedAt is when the last warning of this
// spell was (zero: none), and it returns the new one.
func (s *Service) checkClock(ctx context.Context, warnedAt time.Time) time.Time {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	sample, err := s.Store.ClockOffset(cctx, s.cfg.Now)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			// The event store unreachable is reported by the runner and
			// /ready; this is counted, and measured again at the next tick.
			s.log.Debug("measuring the clock against the event store's failed", "err", err)
			s.Metrics.BackgroundError("clock_check")
		}
		return warnedAt
	}
	s.clockOffset.Store(int64(sample.Offset))
	off := sample.Offset.Abs() - sample.RTT/2
	switch {
	case off > clockTolerance && (warnedAt.IsZero() || time.Since(warnedAt) >= clockWarnEvery):
		s.log.Warn("this replica's clock is off the event store's (NATS) by more than the service tolerates: refresh retries may revoke sessions, fresh tokens of other replicas may be refused, expiries shift; synchronise the clocks of every replica and NATS server (NTP: chrony, systemd-timesyncd)",
			"offset", sample.Offset.Round(time.Millisecond).String(), "uncertainty", (sample.RTT / 2).Round(time.Millisecond).String(),
			"tolerance", clockTolerance.String())
		return time.Now()
	case off <= clockTolerance && !warnedAt.IsZero():
		s.log.Info("this replica's clock is within the tolerance of the event store's again",
			"offset", sample.Offset.Round(time.Millisecond).String(), "tolerance", clockTolerance.String())
		return time.Time{}
	}
	return warnedAt
}
