// Package backoff is the one retry delay every stage uses: capped exponential growth with
// jitter, so that many workers retrying the same outage (S3, NATS, the fines platform) spread
// out instead of hammering the server in step when it comes back.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Delay is the wait before retry number attempt (1 = the first retry): initial doubled per
// attempt up to max, then jittered into [d/2, d]. Half of it is fixed, so the delay never
// collapses to zero and a tight failure loop cannot spin.
func Delay(attempt int, initial, max time.Duration) time.Duration {
	if initial <= 0 || max <= 0 {
		return 0
	}
	d := initial
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + rand.N(d/2+1)
}
