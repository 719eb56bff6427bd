package review

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/review/cases"
)

// retentionPeriod is how long the evidence of a case in state st is kept after the case
// reached it; ok is false for states whose evidence is kept (open cases, cases on their way
// to the platform, and those the platform refused, which a supervisor still acts on).
func (s *Service) retentionPeriod(st cases.State) (time.Duration, bool) {
	switch st {
	case cases.Rejected:
		return s.cfg.RetainRejected, s.cfg.RetainRejected > 0
	case cases.FineCreated:
		return s.cfg.RetainFined, s.cfg.RetainFined > 0
	}
	return 0, false
}

func (s *Service) purgeDue(c *cases.Case, now time.Time) bool {
	d, ok := s.retentionPeriod(c.State)
	// UpdatedAt of a closed case is when it was closed: nothing else writes a closed case
	// but the AUDIT outbox flush, which leaves UpdatedAt alone.
	return ok && c.EvidencePurgedAt.IsZero() && !now.Before(c.UpdatedAt.Add(d))
}

// PurgeExpired deletes the evidence objects of every case whose retention period has run out
// and records it in the case (plate readings removed) and in AUDIT. An object is deleted
// before the case records it, so a crash in between leaves the case for the next sweep
// (deleting a missing object is no error). Only objects in the evidence bucket are touched.
// It returns how many cases it purged; it is safe to run on several instances at once.
func (s *Service) PurgeExpired(ctx context.Context) (int, error) {
	now := s.now()
	var errs []error
	n := 0
	for _, snap := range s.cases.Index().Select(func(c *cases.Case) bool { return s.purgeDue(c, now) }) {
		c, rev, err := s.cases.Get(ctx, snap.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !s.purgeDue(c, now) {
			continue
		}
		deleted, err := s.deleteEvidence(ctx, c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d, _ := s.retentionPeriod(c.State)
		reason := fmt.Sprintf("retention: %s for %s", d, c.State)
		if _, _, err := s.cases.RecordPurge(ctx, c, rev, reason, deleted); err != nil {
			if !errors.Is(err, cases.ErrConflict) { // another instance got there first
				errs = append(errs, err)
			}
			continue
		}
		n++
		s.metrics.purged.WithLabelValues(string(c.State)).Inc()
		s.log.Info("case evidence deleted under the retention policy", "case", c.ID, "state", c.State, "objects", deleted)
	}
	return n, errors.Join(errs...)
}

// deleteEvidence deletes the case's evidence objects, and every other object in their
// passage folders (the worker keeps a passage's evidence under <date>/<passage token>/, and
// a view that arrived after its case was decided leaves evidence there that no case names).
func (s *Service) deleteEvidence(ctx context.Context, c *cases.Case) (int, error) {
	n := 0
	dirs := map[string]bool{}
	for _, e := range c.Detection.Evidence {
		if e.Bucket != pipeline.BucketEvidence {
			// A reference outside the evidence bucket is not the case's copy: never delete it.
			s.log.Warn("evidence outside the evidence bucket left alone by retention", "case", c.ID, "bucket", e.Bucket, "key", e.Key)
			continue
		}
		if err := s.deps.Store.Delete(ctx, e.Bucket, e.Key); err != nil {
			return n, fmt.Errorf("case %q: delete evidence %s: %w", c.ID, e.Key, err)
		}
		n++
		// Only a folder named for this passage, as the worker writes them
		// (<date>/<passage token>/…): never a shared one that holds other cases' evidence.
		if d := path.Dir(e.Key); path.Base(d) == c.ID {
			dirs[d] = true
		}
	}
	for d := range dirs {
		after := ""
		for {
			page, err := s.deps.Store.List(ctx, pipeline.BucketEvidence, d+"/", objstore.ListOptions{StartAfter: after})
			if err != nil {
				return n, fmt.Errorf("case %q: list evidence under %s/: %w", c.ID, d, err)
			}
			for _, o := range page.Objects {
				if err := s.deps.Store.Delete(ctx, pipeline.BucketEvidence, o.Key); err != nil {
					return n, fmt.Errorf("case %q: delete evidence %s: %w", c.ID, o.Key, err)
				}
				n++
			}
			if !page.Truncated {
				break
			}
			after = page.NextStartAfter
		}
	}
	return n, nil
}

// runRetention sweeps every interval until ctx ends, once at start too (a stopped instance
// may have missed due cases).
func (s *Service) runRetention(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.PurgeExpired(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("retention sweep incomplete; the next sweep retries", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
