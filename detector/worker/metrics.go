package worker

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Frame results (label `result` of offencecam_detector_frames_total).
const (
	resultFlagged = "flagged" // kept as evidence of a published Detection
	resultClean   = "clean"   // analysed, nothing flagged, deleted (or kept per retention)
	resultFailed  = "failed"  // sent to the DLQ
	resultMissing = "missing" // its object was already gone from `frames` (redelivery after a crash, or removed by hand)
)

// The stage graph (detector.WithRegistry) exports the stage histogram itself; the worker
// exports it from Detection.timings_ms only for analysers that do not. Same descriptor as
// the graph's, so whichever registers first owns it.
const (
	stageMetric = "offencecam_detector_stage_seconds"
	stageHelp   = "Wall time of one stage of the analysis of a passage."
)

// registerStage registers the stage histogram unless the analyser's package already did
// (it registers when its factory is made, before Run), and says whether the worker observes it.
func (m *metrics) registerStage(reg prometheus.Registerer) bool {
	// AlreadyRegisteredError: the graph feeds it. Any other error: a differently described
	// metric of that name, not ours to feed either.
	return reg.Register(m.stage) == nil
}

type metrics struct {
	frames        *prometheus.CounterVec
	passages      *prometheus.CounterVec
	stage         *prometheus.HistogramVec
	analysis      prometheus.Histogram
	batch         prometheus.Histogram
	pending       prometheus.Gauge
	ackPending    prometheus.Gauge
	redelivered   prometheus.Gauge
	inFlight      prometheus.Gauge
	evidenceBytes prometheus.Counter
	evidenceObjs  prometheus.Counter
	lateViews     prometheus.Counter
	dlq           *prometheus.CounterVec
	retries       *prometheus.CounterVec
	swept         prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offencecam_detector_frames_total",
			Help: "Frames the detection worker finished, by result (flagged, clean, failed, missing).",
		}, []string{"result"}),
		passages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offencecam_detector_passages_total",
			Help: "Passages analysed, by result (flagged, clean, failed).",
		}, []string{"result"}),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    stageMetric,
			Help:    stageHelp,
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"stage"}),
		analysis: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "offencecam_detector_analysis_seconds",
			Help:    "Wall time of one passage's analysis.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "offencecam_detector_batch_size",
			Help:    "Messages received per pull request on FRAMES.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "offencecam_detector_consumer_pending",
			Help: "Frames in FRAMES not yet delivered to any worker (the consumer's lag).",
		}),
		ackPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "offencecam_detector_consumer_ack_pending",
			Help: "Frames delivered to workers and not yet acked.",
		}),
		redelivered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "offencecam_detector_consumer_redelivered",
			Help: "Frames currently delivered more than once and not yet acked.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "offencecam_detector_in_flight",
			Help: "Frames held by this worker (waiting for their passage, queued or being analysed).",
		}),
		evidenceBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "offencecam_detector_evidence_bytes_total",
			Help: "Bytes written to the evidence bucket (originals and artefacts).",
		}),
		evidenceObjs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "offencecam_detector_evidence_objects_total",
			Help: "Objects written to the evidence bucket.",
		}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offencecam_detector_dlq_total",
			Help: "Frames sent to the DLQ, by reason (bad_image, panic, changed, bad_message, max_deliver, bad_artifact).",
		}, []string{"reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offencecam_detector_retries_total",
			Help: "Frames handed back for redelivery after a transient error, by cause.",
		}, []string{"cause"}),
		swept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "offencecam_detector_retention_deleted_total",
			Help: "Unflagged frames deleted by the retention sweeper after keep_unflagged.",
		}),
		lateViews: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "offencecam_detector_late_views_total",
			Help: "Flagged views that came after their passage's Detection and were sent for its case.",
		}),
	}
	for _, c := range []prometheus.Collector{m.frames, m.passages, m.analysis, m.batch, m.pending,
		m.ackPending, m.redelivered, m.inFlight, m.evidenceBytes, m.evidenceObjs, m.dlq, m.retries, m.swept, m.lateViews} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("detect: register metrics: %w", err)
		}
	}
	// Make the results visible at 0 before the first frame, so dashboards and tests can tell
	// "nothing happened" from "not exported".
	for _, r := range []string{resultFlagged, resultClean, resultFailed, resultMissing} {
		m.frames.WithLabelValues(r)
	}
	return m, nil
}
