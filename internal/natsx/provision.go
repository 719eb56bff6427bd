package natsx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crossborder/offencecam/pipeline"
	"github.com/nats-io/nats.go/jetstream"
)

// Limits are the retention settings of the wire. The zero value is not useful; start from
// DefaultLimits and override what the configuration sets.
type Limits struct {
	Replicas int // 1 on one box, 3 on a cluster

	// FRAMES: when full, publishes fail (DiscardNew) so ingest slows down instead of
	// dropping frames.
	FramesMaxMsgs   int64
	FramesMaxBytes  int64
	FramesDedup     time.Duration // Nats-Msg-Id window; the `seen` KV covers beyond it
	DetectionsAge   time.Duration
	DetectionsDedup time.Duration
	FinesDedup      time.Duration
	AuditMaxAge     time.Duration
	DLQMaxAge       time.Duration
	SeenTTL         time.Duration
	CasesHistory    uint8
}

// DefaultLimits are the one-box defaults.
func DefaultLimits() Limits {
	return Limits{
		Replicas:        1,
		FramesMaxMsgs:   100_000,
		FramesMaxBytes:  256 << 20,
		FramesDedup:     10 * time.Minute,
		DetectionsAge:   90 * 24 * time.Hour,
		DetectionsDedup: 24 * time.Hour,
		FinesDedup:      7 * 24 * time.Hour,
		AuditMaxAge:     10 * 365 * 24 * time.Hour,
		DLQMaxAge:       90 * 24 * time.Hour,
		SeenTTL:         14 * 24 * time.Hour,
		CasesHistory:    16,
	}
}

// Validate names the first bad field.
func (l Limits) Validate() error {
	switch {
	case l.Replicas < 1 || l.Replicas > 5:
		return fmt.Errorf("nats.replicas: %d is not in 1..5", l.Replicas)
	case l.FramesMaxMsgs <= 0:
		return errors.New("nats.frames_max_msgs: must be > 0")
	case l.FramesMaxBytes <= 0:
		return errors.New("nats.frames_max_bytes: must be > 0")
	case l.FramesDedup <= 0:
		return errors.New("nats.frames_dedup: must be > 0")
	case l.SeenTTL < l.FramesDedup:
		return errors.New("nats.seen_ttl: must be at least nats.frames_dedup, or a redelivered event outside the stream window would make a second frame")
	case l.DetectionsAge <= 0 || l.DetectionsDedup <= 0 || l.DetectionsDedup > l.DetectionsAge:
		return errors.New("nats.detections_max_age / detections_dedup: must be > 0 with dedup <= max age")
	case l.FinesDedup <= 0:
		return errors.New("nats.fines_dedup: must be > 0")
	case l.AuditMaxAge <= 0:
		return errors.New("nats.audit_max_age: must be > 0")
	case l.DLQMaxAge <= 0:
		return errors.New("nats.dlq_max_age: must be > 0")
	}
	return nil
}

// StreamConfigs are the streams of DESIGN.md under the given limits.
func StreamConfigs(l Limits) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        pipeline.StreamFrames,
			Description: "camera frames waiting for the detector (work queue)",
			Subjects:    []string{pipeline.SubjectFramesAll},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    l.Replicas,
			MaxMsgs:     l.FramesMaxMsgs,
			MaxBytes:    l.FramesMaxBytes,
			Discard:     jetstream.DiscardNew,
			Duplicates:  l.FramesDedup,
		},
		{
			Name:        pipeline.StreamDetections,
			Description: "detector verdicts per passage; the review stage makes cases of them",
			Subjects:    []string{pipeline.SubjectDetectionsAll},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    l.Replicas,
			MaxAge:      l.DetectionsAge,
			Duplicates:  l.DetectionsDedup,
		},
		{
			Name:        pipeline.StreamFines,
			Description: "confirmed cases waiting to be sent to the fines platform (outbox)",
			Subjects:    []string{pipeline.SubjectFinesAll},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    l.Replicas,
			Duplicates:  l.FinesDedup,
		},
		{
			Name:        pipeline.StreamAudit,
			Description: "append-only audit trail",
			Subjects:    []string{pipeline.SubjectAuditAll},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    l.Replicas,
			MaxAge:      l.AuditMaxAge,
			// Writers resend audit entries from their outboxes after a crash; a day-long
			// window makes those resends no-ops instead of second entries.
			Duplicates: 24 * time.Hour,
			DenyDelete: true,
			DenyPurge:  true,
		},
		{
			Name:        pipeline.StreamDLQ,
			Description: "messages a stage could not process, with the reason and the original",
			Subjects:    []string{pipeline.SubjectDLQAll},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    l.Replicas,
			MaxAge:      l.DLQMaxAge,
		},
	}
}

// KVConfigs are the key-value buckets of DESIGN.md under the given limits.
func KVConfigs(l Limits) []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{
			Bucket:      pipeline.KVCases,
			Description: "review cases and their leases; every change is an update at the last revision",
			History:     l.CasesHistory,
			Storage:     jetstream.FileStorage,
			Replicas:    l.Replicas,
		},
		{
			Bucket:      pipeline.KVSeen,
			Description: "ingest deduplication beyond the FRAMES window",
			TTL:         l.SeenTTL,
			Storage:     jetstream.FileStorage,
			Replicas:    l.Replicas,
		},
	}
}

// Provision creates every stream and KV bucket, or updates the configuration of those that
// exist. It never deletes a stream, a bucket or a message, so it is safe on every start.
func Provision(ctx context.Context, js jetstream.JetStream, l Limits) error {
	if err := l.Validate(); err != nil {
		return fmt.Errorf("natsx: provision: %w", err)
	}
	for _, sc := range StreamConfigs(l) {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("natsx: provision stream %s: %w", sc.Name, err)
		}
	}
	for _, kc := range KVConfigs(l) {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return fmt.Errorf("natsx: provision KV %s: %w", kc.Bucket, err)
		}
	}
	return nil
}
