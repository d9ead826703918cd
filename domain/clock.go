package domain

import "time"

// ClockSkewTolerance is the largest difference between two replicas' clocks
// the service is documented to tolerate (docs/operations.md, "Clocks"): each
// replica's clock within half of it of the event store's, which every
// replica measures and warns beyond (infracast_clock_offset_seconds). The
// rules that compare one replica's clock with a time another replica wrote
// into an event allow for it where a few seconds' disagreement would turn
// a client's honest retry into a theft, or an acknowledged revocation into
// nothing (an outside check, 19b):
//
//   - the refresh reuse interval (Session.withinReuseInterval): the spent
//     token is granted again until the interval plus this tolerance has
//     passed, by the deciding replica's clock;
//   - an access-token revocation (RevokeAccessToken) is written unless the
//     token expired longer ago than the leeway plus this tolerance.
//
// Rules that merely end early or late by the skew (lockouts, expiries,
// lifetimes) do not use it: they move by exactly the skew.
const ClockSkewTolerance = 2 * time.Second
