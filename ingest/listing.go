package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/nats-io/nats.go/jetstream"
)

// The reconciliation listing walks the WHOLE bucket every period and checks each object
// against the seen set (this process's cache, then the seen KV). A checkpoint on key order
// alone ("everything up to key K is done") would miss a late upload to a key before K — a
// camera that was offline uploads yesterday's frames, or keys do not grow with time — and a
// since-time filter depends on clocks and on servers reporting LastModified consistently.
// Walking everything is affordable because the frames bucket is a transit area: frames are
// deleted after detection (privacy) and rejected ones are moved to quarantine, so it holds a
// backlog, not an archive.
//
// The durable checkpoint (in the seen KV) records where the current pass is, so a restart in
// the middle of a long pass resumes it instead of starting over, and when the last pass
// completed (shown as a metric and in the log).
type listCheckpoint struct {
	StartAfter  string    `json:"start_after"`
	PassStarted time.Time `json:"pass_started"`
	CompletedAt time.Time `json:"completed_at,omitempty"`
}

func checkpointKey(bucket string) string { return "checkpoint.listing." + pipeline.Token(bucket) }

func (s *Service) listLoop(ctx context.Context) {
	for {
		// First pass at once: it finds what was uploaded while ingest or NATS was down.
		if _, err := s.ListPass(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("reconciliation listing failed", "err", err)
		}
		t := time.NewTimer(s.cfg.ListInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// ListPass runs one reconciliation pass (resuming an interrupted one) and queues every
// object not yet seen, returning how many it queued once all pages are queued. Run must be
// running (its workers take the queue).
func (s *Service) ListPass(ctx context.Context) (int, error) {
	if s.kv.Load() == nil {
		return 0, errors.New("ingest: reconciliation listing: the service is not running")
	}
	queued, err := s.listPass(ctx)
	if err != nil {
		err = fmt.Errorf("ingest: reconciliation listing: %w", err)
	}
	return queued, err
}

func (s *Service) listPass(ctx context.Context) (int, error) {
	kv := s.seenKV()
	ck, err := s.loadCheckpoint(ctx, kv)
	if err != nil {
		return 0, err
	}
	if ck.StartAfter == "" {
		ck.PassStarted = s.now().UTC()
	}
	var queued, total int
	for {
		var page objstore.ListPage
		err := s.retry(ctx, "list", func(ctx context.Context) error {
			var err error
			page, err = s.store.List(ctx, s.cfg.Bucket, "", objstore.ListOptions{StartAfter: ck.StartAfter, Limit: s.cfg.ListPageSize})
			return err
		})
		if err != nil {
			return queued, fmt.Errorf("list %s: %w", s.cfg.Bucket, err)
		}
		for _, o := range page.Objects {
			total++
			if s.cfg.SidecarExt != "" && strings.HasSuffix(o.Key, s.cfg.SidecarExt) {
				continue
			}
			id := pipeline.FrameID(s.cfg.Bucket, o.Key, NormalizeETag(o.ETag))
			seen, err := s.isSeen(ctx, id)
			if err != nil {
				return queued, err
			}
			if seen {
				continue
			}
			queued++
			s.enqueue(ctx, ObjectRef{Bucket: s.cfg.Bucket, Keys: []string{o.Key}, ETag: o.ETag, Source: pipeline.SourceListing})
		}
		if ctx.Err() != nil {
			return queued, ctx.Err()
		}
		if !page.Truncated || len(page.Objects) == 0 {
			break
		}
		next := page.NextStartAfter
		if next == "" {
			next = page.Objects[len(page.Objects)-1].Key
		}
		ck.StartAfter = next
		if err := s.saveCheckpoint(ctx, kv, ck); err != nil {
			return queued, err
		}
	}
	ck.StartAfter = ""
	ck.CompletedAt = s.now().UTC()
	if err := s.saveCheckpoint(ctx, kv, ck); err != nil {
		return queued, err
	}
	s.metrics.lastReconcile.Set(float64(ck.CompletedAt.UnixNano()) / 1e9)
	s.log.Debug("reconciliation pass done", "objects", total, "queued", queued)
	return queued, nil
}

func (s *Service) loadCheckpoint(ctx context.Context, kv jetstream.KeyValue) (listCheckpoint, error) {
	var ck listCheckpoint
	err := s.retry(ctx, "checkpoint_get", func(ctx context.Context) error {
		e, err := kv.Get(ctx, checkpointKey(s.cfg.Bucket))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := json.Unmarshal(e.Value(), &ck); err != nil {
			// A damaged checkpoint costs one full pass, nothing more.
			s.log.Warn("listing checkpoint unreadable; starting a full pass", "err", err)
			ck = listCheckpoint{}
		}
		return nil
	})
	return ck, err
}

func (s *Service) saveCheckpoint(ctx context.Context, kv jetstream.KeyValue, ck listCheckpoint) error {
	b, _ := json.Marshal(ck)
	return s.retry(ctx, "checkpoint_put", func(ctx context.Context) error {
		_, err := kv.Put(ctx, checkpointKey(s.cfg.Bucket), b)
		return err
	})
}
