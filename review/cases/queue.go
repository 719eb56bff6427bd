package cases

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Filter narrows "next case". Stage is "" (first and second stage), "first", "second" or
// "supervisor" (disputed cases; supervisors only).
type Filter struct {
	Offence string `json:"offence,omitempty"`
	Camera  string `json:"camera,omitempty"`
	Site    string `json:"site,omitempty"`
	Stage   string `json:"stage,omitempty"`
}

// mayReview reports whether actor may decide c in its current state, leases aside. It
// mirrors the transition table's role and four-eyes rules, so a reviewer is never handed a
// case they could not decide.
func mayReview(c *Case, actor Actor) bool {
	switch c.State {
	case Pending:
		return Allowed(c, FirstConfirmed, actor) == nil
	case FirstConfirmed:
		return Allowed(c, Confirmed, actor) == nil
	case Disputed:
		return Allowed(c, Confirmed, actor) == nil
	}
	return false
}

func (f Filter) match(c *Case) bool {
	if f.Offence != "" && !slices.Contains(c.Flagged, f.Offence) {
		return false
	}
	if f.Camera != "" && c.Detection.Camera != f.Camera {
		return false
	}
	if f.Site != "" && c.Detection.Site != f.Site {
		return false
	}
	switch f.Stage {
	case "":
		return c.State == Pending || c.State == FirstConfirmed
	case "first":
		return c.State == Pending
	case "second":
		return c.State == FirstConfirmed
	case "supervisor":
		return c.State == Disputed
	}
	return false
}

// Next leases the oldest case matching f that actor may decide. A reviewer who already holds
// a live lease on a matching case gets that one back (renewed), so nobody hoards cases. Races
// between reviewers are settled by the KV revision: the loser moves on to the next candidate.
func (s *Store) Next(ctx context.Context, actor Actor, f Filter) (*Case, error) {
	now := s.cfg.Now()
	snap := s.index.Select(func(c *Case) bool { return f.match(c) && mayReview(c, actor) })
	for _, c := range snap {
		if c.LeasedTo(actor.Name, now) {
			if got, err := s.Renew(ctx, c.ID, actor); err == nil {
				return got, nil
			}
		}
	}
	for _, c := range snap {
		if c.LeaseActive(now) {
			continue
		}
		got, err := s.lease(ctx, c.ID, actor, &f)
		if err == nil {
			return got, nil
		}
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrLeased) || errors.Is(err, ErrForbidden) ||
			errors.Is(err, ErrNotFound) || errors.Is(err, ErrSameReviewer) || errors.Is(err, ErrIllegalTransition) {
			continue
		}
		return nil, err
	}
	return nil, ErrNoCase
}

// Lease leases one given case to actor (opening a case from a list), or renews the actor's
// own lease.
func (s *Store) Lease(ctx context.Context, id string, actor Actor) (*Case, error) {
	return s.lease(ctx, id, actor, nil)
}

func (s *Store) lease(ctx context.Context, id string, actor Actor, f *Filter) (*Case, error) {
	c, rev, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	if !c.State.Reviewable() {
		return nil, fmt.Errorf("case %q is %s: %w", id, c.State, ErrIllegalTransition)
	}
	if f != nil && !f.match(c) {
		return nil, fmt.Errorf("case %q no longer matches: %w", id, ErrConflict)
	}
	if !mayReview(c, actor) {
		if c.State == FirstConfirmed && c.FirstReviewer == actor.Name {
			return nil, fmt.Errorf("case %q: %w", id, ErrSameReviewer)
		}
		return nil, fmt.Errorf("case %q (%s) for %q: %w", id, c.State, actor.Name, ErrForbidden)
	}
	if c.LeaseActive(now) && c.Lease.Holder != actor.Name {
		return nil, fmt.Errorf("case %q: %w", id, ErrLeased)
	}
	expired := c.Lease != nil && !c.LeaseActive(now)
	next := *c
	next.Lease = &Lease{Holder: actor.Name, Stage: StageFor(c.State), Acquired: now.UTC(), Expires: now.Add(s.cfg.LeaseDuration).UTC()}
	if c.LeasedTo(actor.Name, now) {
		next.Lease.Acquired = c.Lease.Acquired
	}
	if _, err := s.put(ctx, &next, rev); err != nil {
		return nil, err
	}
	if expired && s.cfg.Hooks.LeaseExpired != nil {
		s.cfg.Hooks.LeaseExpired()
	}
	return &next, nil
}

// Renew extends the actor's own live lease; an expired or foreign lease is ErrNotLeased.
func (s *Store) Renew(ctx context.Context, id string, actor Actor) (*Case, error) {
	for attempt := 0; attempt < 3; attempt++ {
		c, rev, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		now := s.cfg.Now()
		if !c.LeasedTo(actor.Name, now) {
			return nil, fmt.Errorf("case %q: %w", id, ErrNotLeased)
		}
		next := *c
		l := *c.Lease
		l.Expires = now.Add(s.cfg.LeaseDuration).UTC()
		next.Lease = &l
		if _, err := s.put(ctx, &next, rev); errors.Is(err, ErrConflict) {
			continue
		} else if err != nil {
			return nil, err
		}
		return &next, nil
	}
	return nil, fmt.Errorf("case %q: renew: %w", id, ErrConflict)
}

// Release gives the actor's lease back so the case returns to the queue at once.
func (s *Store) Release(ctx context.Context, id string, actor Actor) error {
	c, rev, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if c.Lease == nil || c.Lease.Holder != actor.Name {
		return fmt.Errorf("case %q: %w", id, ErrNotLeased)
	}
	next := *c
	next.Lease = nil
	_, err = s.put(ctx, &next, rev)
	return err
}

// ReapResult says what one reaper pass did.
type ReapResult struct {
	LeasesExpired  int
	FinesPublished int
	AuditFlushed   int // cases whose AUDIT outbox the reaper published
}

// auditGrace leaves a just-written outbox to its writer before the reaper takes it over.
const auditGrace = 5 * time.Second

// Reap returns expired leases to the queue, republishes FINES messages a crash left unsent
// and publishes AUDIT entries left in case outboxes. It is safe to run on several instances at once: every change is revision-checked
// and the FINES message id is the case id.
func (s *Store) Reap(ctx context.Context) (ReapResult, error) {
	var res ReapResult
	now := s.cfg.Now()
	var errs []error
	for _, snap := range s.index.Select(nil) {
		switch {
		case snap.Lease != nil && !snap.LeaseActive(now):
			c, rev, err := s.Get(ctx, snap.ID)
			if err != nil || c.Lease == nil || c.LeaseActive(now) {
				continue
			}
			next := *c
			next.Lease = nil
			if _, err := s.put(ctx, &next, rev); err != nil {
				if !errors.Is(err, ErrConflict) {
					errs = append(errs, err)
				}
				continue
			}
			res.LeasesExpired++
			if s.cfg.Hooks.LeaseExpired != nil {
				s.cfg.Hooks.LeaseExpired()
			}
		case snap.State == Confirmed && !snap.FinePublished:
			c, rev, err := s.Get(ctx, snap.ID)
			if err != nil || c.State != Confirmed || c.FinePublished {
				continue
			}
			if _, err := s.publishFine(ctx, c, rev); err != nil {
				if !errors.Is(err, ErrConflict) {
					errs = append(errs, err)
				}
				continue
			}
			res.FinesPublished++
		}
		if len(snap.AuditOutbox) > 0 && now.Sub(snap.UpdatedAt) > auditGrace {
			c, rev, err := s.Get(ctx, snap.ID)
			if err != nil || len(c.AuditOutbox) == 0 {
				continue
			}
			if _, ok := s.flushAudit(ctx, c, rev); ok {
				res.AuditFlushed++
			}
		}
	}
	return res, errors.Join(errs...)
}

// RunReaper calls Reap every interval until ctx ends.
func (s *Store) RunReaper(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Reap(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("case reaper", "err", err)
			}
		}
	}
}
