package ingest

import (
	"context"
	"errors"
	"time"

	backoffpkg "github.com/crossborder/offencecam/internal/backoff"
	"github.com/crossborder/offencecam/internal/objstore"
)

// backoff is capped exponential backoff with full jitter: outages of S3 or NATS must not
// turn every ingest process into a synchronised hammer when the server comes back.
type backoff struct {
	initial, max time.Duration
	n            int
}

func (b *backoff) next() time.Duration {
	b.n++
	return backoffpkg.Delay(b.n, b.initial, b.max)
}

// permanentError ends a retry loop: the failure will not go away by trying again.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

func permanent(err error) error { return permanentError{err} }

// retry runs fn until it succeeds, returns a permanent error, or ctx ends. Each failure is
// counted under op, shows in Ready until the next success, and is logged on the first
// failure and then every tenth.
func (s *Service) retry(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	b := backoff{initial: s.cfg.RetryInitial, max: s.cfg.RetryMax}
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			if attempt > 1 {
				s.log.Info("recovered", "op", op, "attempts", attempt)
			}
			s.health.clear(op)
			return nil
		}
		var p permanentError
		if errors.As(err, &p) {
			return p.err
		}
		if errors.Is(err, objstore.ErrInvalid) {
			return err // a key or name the store refuses is refused again on every try
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.health.set(op, err)
		s.metrics.retries.WithLabelValues(op).Inc()
		if attempt == 1 || attempt%10 == 0 {
			s.log.Warn("retrying", "op", op, "attempt", attempt, "err", err)
		}
		t := time.NewTimer(b.next())
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
