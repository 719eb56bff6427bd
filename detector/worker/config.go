// Package worker is the detection worker: it pulls pipeline.Frames from the FRAMES work
// queue, groups the views of one passage, runs a detector.Analyzer on them, keeps evidence
// of flagged passages in the `evidence` bucket, publishes one pipeline.Detection per flagged
// passage on DETECTIONS and deletes every frame it does not need to keep.
//
// Crash safety comes from ordering, never from local state: evidence is stored before the
// Detection is published, the Detection (Nats-Msg-Id = passage id) before the originals are
// deleted from `frames`, and the deletions before the FRAMES messages are acked. A crash at
// any point leaves the messages un-acked; their redelivery repeats idempotent steps, and a
// frame already gone from `frames` whose original sits in `evidence` proves its passage was
// published.
package worker

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/crossborder/offencecam/pipeline"
)

// Config is the detection worker's configuration (YAML section `detect`).
type Config struct {
	// Concurrency is the number of analyses run at once, each on its own Analyzer (the stage
	// graph's ONNX sessions are not safe for concurrent use). 0 picks DefaultConcurrency().
	Concurrency int `yaml:"concurrency"`
	// BatchSize is the most messages asked for in one pull request.
	BatchSize int `yaml:"batch_size"`
	// BatchWait is how long one pull request waits for BatchSize messages before returning
	// what it has; it also bounds how long a clean stop waits for the fetch loop.
	BatchWait time.Duration `yaml:"batch_wait"`
	// MaxInFlight bounds the messages this worker holds un-acked (waiting for the rest of
	// their passage, queued or being analysed). It must cover Concurrency passages plus
	// those waiting for late views.
	MaxInFlight int `yaml:"max_in_flight"`
	// AckWait is the consumer's ack deadline. Healthy work never hits it: held messages get
	// a progress ack every ProgressInterval.
	AckWait time.Duration `yaml:"ack_wait"`
	// ProgressInterval is the period of progress acks; 0 means AckWait/3.
	ProgressInterval time.Duration `yaml:"progress_interval"`
	// MaxDeliver is how often a frame is tried before it goes to the DLQ.
	MaxDeliver int `yaml:"max_deliver"`
	// MaxAckPending is the consumer-wide limit of un-acked messages (all workers together).
	MaxAckPending int `yaml:"max_ack_pending"`
	// PassageWait is how long the first view of a passage waits for the others. A passage
	// whose expected number of views is known goes as soon as all are there.
	PassageWait time.Duration `yaml:"passage_wait"`
	// ExpectedViews is the number of views per passage by camera id; a camera not listed
	// uses DefaultExpectedViews. A frame that says itself (extra field "passage_views") wins.
	ExpectedViews map[string]int `yaml:"expected_views"`
	// DefaultExpectedViews is the views per passage of unlisted cameras; 0 means unknown,
	// so every passage waits PassageWait for late views.
	DefaultExpectedViews int `yaml:"default_expected_views"`
	// KeepUnflagged keeps frames without a flagged offence this long (audits, model
	// training); 0 deletes them as soon as they are analysed (the privacy default).
	KeepUnflagged time.Duration `yaml:"keep_unflagged"`
	// SweepInterval is how often frames kept by KeepUnflagged are checked for deletion.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// RetryInitial and RetryMax bound the redelivery delay (Nak with delay, doubling per
	// delivery) after a transient error such as an S3 read failure.
	RetryInitial time.Duration `yaml:"retry_initial"`
	RetryMax     time.Duration `yaml:"retry_max"`
	// ShutdownGrace is how long a clean stop lets in-flight analyses finish before it
	// cancels them (they are then left un-acked for redelivery).
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// MetricsInterval is how often consumer lag and pending counts are polled.
	MetricsInterval time.Duration `yaml:"metrics_interval"`
	// ReconcileInterval is how often FRAMES is scanned for messages that exhausted
	// MaxDeliver while no worker received the advisory (they would otherwise stay in the
	// work queue forever).
	ReconcileInterval time.Duration `yaml:"reconcile_interval"`
	// EvidenceBucket receives originals and artefacts of flagged passages.
	EvidenceBucket string `yaml:"evidence_bucket"`
	// QuarantineBucket receives the frame objects of passages sent to the DLQ.
	QuarantineBucket string `yaml:"quarantine_bucket"`
}

// DefaultConcurrency is the default number of concurrent analyses: half the cores (each ONNX
// session runs its own intra-op threads), at least 1, at most 8. A provisional choice until
// the benchmark settles it.
func DefaultConcurrency() int {
	return min(max(runtime.NumCPU()/2, 1), 8)
}

// DefaultConfig is the one-box default.
func DefaultConfig() Config {
	return Config{
		Concurrency:          0,
		BatchSize:            16,
		BatchWait:            time.Second,
		MaxInFlight:          128,
		AckWait:              30 * time.Second,
		MaxDeliver:           5,
		MaxAckPending:        1024,
		PassageWait:          2 * time.Second,
		ExpectedViews:        map[string]int{},
		DefaultExpectedViews: 0,
		KeepUnflagged:        0,
		SweepInterval:        time.Minute,
		RetryInitial:         time.Second,
		RetryMax:             time.Minute,
		ShutdownGrace:        3 * time.Second,
		MetricsInterval:      5 * time.Second,
		ReconcileInterval:    time.Minute,
		EvidenceBucket:       pipeline.BucketEvidence,
		QuarantineBucket:     pipeline.BucketQuarantine,
	}
}

// Validate names the first bad field with its YAML path.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, msg string, args ...any) {
		errs = append(errs, fmt.Errorf("detect.%s: %s", field, fmt.Sprintf(msg, args...)))
	}
	if c.Concurrency < 0 {
		bad("concurrency", "must be >= 0 (0 picks %d from the core count)", DefaultConcurrency())
	}
	if c.BatchSize < 1 {
		bad("batch_size", "must be >= 1")
	}
	if c.BatchWait <= 0 {
		bad("batch_wait", "must be > 0")
	}
	if c.MaxInFlight < 1 {
		bad("max_in_flight", "must be >= 1")
	} else if c.MaxInFlight < c.concurrency() {
		bad("max_in_flight", "must be >= concurrency (%d), or analysers sit idle", c.concurrency())
	}
	if c.AckWait < time.Second {
		bad("ack_wait", "must be >= 1s")
	}
	if c.ProgressInterval < 0 || (c.ProgressInterval > 0 && c.ProgressInterval >= c.AckWait) {
		bad("progress_interval", "must be > 0 and < ack_wait (0 means ack_wait/3)")
	}
	if c.MaxDeliver < 1 {
		bad("max_deliver", "must be >= 1")
	}
	if c.MaxAckPending < 1 {
		bad("max_ack_pending", "must be >= 1")
	} else if c.MaxAckPending < c.MaxInFlight {
		bad("max_ack_pending", "must be >= max_in_flight (%d)", c.MaxInFlight)
	}
	if c.PassageWait < 0 {
		bad("passage_wait", "must be >= 0")
	} else if c.PassageWait >= c.AckWait {
		// Not a correctness problem (progress acks cover the wait), but a passage that
		// waits longer than a redelivery would take is certainly a typo.
		bad("passage_wait", "must be < ack_wait")
	}
	for cam, n := range c.ExpectedViews {
		if n < 1 {
			bad("expected_views."+cam, "must be >= 1")
		}
	}
	if c.DefaultExpectedViews < 0 {
		bad("default_expected_views", "must be >= 0 (0 means unknown)")
	}
	if c.KeepUnflagged < 0 {
		bad("keep_unflagged", "must be >= 0 (0 deletes at once)")
	}
	if c.KeepUnflagged > 0 && c.SweepInterval <= 0 {
		bad("sweep_interval", "must be > 0 when keep_unflagged is set")
	}
	if c.RetryInitial <= 0 {
		bad("retry_initial", "must be > 0")
	}
	if c.RetryMax < c.RetryInitial {
		bad("retry_max", "must be >= retry_initial")
	}
	if c.ShutdownGrace < 0 {
		bad("shutdown_grace", "must be >= 0")
	}
	if c.MetricsInterval <= 0 {
		bad("metrics_interval", "must be > 0")
	}
	if c.ReconcileInterval <= 0 {
		bad("reconcile_interval", "must be > 0")
	}
	if c.EvidenceBucket == "" {
		bad("evidence_bucket", "must be set")
	}
	if c.QuarantineBucket == "" {
		bad("quarantine_bucket", "must be set")
	}
	return errors.Join(errs...)
}

func (c Config) concurrency() int {
	if c.Concurrency > 0 {
		return c.Concurrency
	}
	return DefaultConcurrency()
}

func (c Config) progressInterval() time.Duration {
	if c.ProgressInterval > 0 {
		return c.ProgressInterval
	}
	return c.AckWait / 3
}

// expectedViews is the number of views the passage of f should have, 0 when unknown.
func (c Config) expectedViews(f pipeline.Frame) int {
	if raw, ok := f.Extra["passage_views"]; ok {
		var n int
		if _, err := fmt.Sscan(string(raw), &n); err == nil && n > 0 {
			return n
		}
	}
	if n, ok := c.ExpectedViews[f.Camera]; ok {
		return n
	}
	return c.DefaultExpectedViews
}
