package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/nats-io/nats.go/jetstream"
)

// RetentionBucket is the KV bucket of unflagged frames kept under keep_unflagged: one entry
// per frame with the time it is due for deletion. A KV rather than object metadata because
// rewriting metadata means copying the object onto itself, and S3 listings do not return
// metadata, so a sweeper would have to Stat every object of `frames` (uploads not yet
// ingested included) instead of reading only what it owns.
const RetentionBucket = "detect-retention"

// retentionEntry is one kept frame.
type retentionEntry struct {
	Bucket string    `json:"bucket"`
	Key    string    `json:"key"`
	ETag   string    `json:"etag,omitempty"`
	Due    time.Time `json:"due"`
}

func openRetention(ctx context.Context, js jetstream.JetStream, frames jetstream.Stream) (jetstream.KeyValue, error) {
	replicas := 1
	if si, err := frames.Info(ctx); err == nil && si.Config.Replicas > 0 {
		replicas = si.Config.Replicas
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      RetentionBucket,
		Description: "unflagged frames kept under detect.keep_unflagged, with their deletion time",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("detect: retention KV %s: %w", RetentionBucket, err)
	}
	return kv, nil
}

func retentionKey(bucket, key string) string {
	sum := sha256.Sum256([]byte(bucket + "/" + key))
	return hex.EncodeToString(sum[:16])
}

// keep records that a clean frame is to be deleted after KeepUnflagged. It is written before
// the ack, so a crash leaves at worst a redelivery that writes it again.
func (w *Worker) keep(ctx context.Context, f pipeline.Frame, etag string) error {
	e := retentionEntry{Bucket: f.Bucket, Key: f.Key, ETag: etag, Due: time.Now().Add(w.cfg.KeepUnflagged).UTC()}
	b, _ := json.Marshal(e)
	if _, err := w.retention.Put(ctx, retentionKey(f.Bucket, f.Key), b); err != nil {
		return fmt.Errorf("record retention of %s/%s: %w", f.Bucket, f.Key, err)
	}
	return nil
}

func (w *Worker) sweepLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.SweepInterval)
	defer t.Stop()
	for {
		if n, err := w.sweep(ctx, time.Now()); err != nil && ctx.Err() == nil {
			w.log.Warn("retention sweep failed; next sweep retries", "err", err, "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweep deletes the kept frames that are due and returns how many it deleted. The cost is
// one KV read per kept frame per sweep: fine for the audit / training samples this is for.
func (w *Worker) sweep(ctx context.Context, now time.Time) (int, error) {
	lister, err := w.retention.ListKeys(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = lister.Stop() }()
	n := 0
	for k := range lister.Keys() {
		ent, err := w.retention.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		var e retentionEntry
		if err := json.Unmarshal(ent.Value(), &e); err != nil {
			w.log.Error("unreadable retention entry; dropping it", "key", k, "err", err)
			_ = w.retention.Purge(ctx, k)
			continue
		}
		if e.Due.After(now) {
			continue
		}
		info, err := w.deps.Store.Stat(ctx, e.Bucket, e.Key)
		switch {
		case errors.Is(err, objstore.ErrNotFound):
		case err != nil:
			return n, err
		case e.ETag != "" && normETag(info.ETag) != normETag(e.ETag):
			// Overwritten by a new upload: that version is another frame, not ours to delete.
		default:
			if err := w.deps.Store.Delete(ctx, e.Bucket, e.Key); err != nil {
				return n, err
			}
			n++
			w.m.swept.Inc()
		}
		if err := w.retention.Purge(ctx, k); err != nil {
			return n, err
		}
	}
	if n > 0 {
		_ = w.retention.PurgeDeletes(ctx)
	}
	return n, nil
}
