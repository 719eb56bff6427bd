package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the ingest stage's Prometheus series. Names and labels are a contract with the
// operators' dashboards.
type metrics struct {
	frames         *prometheus.CounterVec // camera, source
	rejected       *prometheus.CounterVec // reason
	duplicates     prometheus.Counter
	deferred       prometheus.Counter
	lag            prometheus.Histogram
	inFlight       prometheus.Gauge
	publishRetries *prometheus.CounterVec // reason: full, error
	retries        *prometheus.CounterVec // op
	lastReconcile  prometheus.Gauge
	badEvents      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offencecam_ingest_frames_total",
			Help: "Frames published to FRAMES, by camera and source (event, listing, inbox).",
		}, []string{"camera", "source"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offencecam_ingest_rejected_total",
			Help: "Uploads quarantined, by reason.",
		}, []string{"reason"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "offencecam_ingest_duplicates_total",
			Help: "Announcements of an object version already published or quarantined.",
		}),
		deferred: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "offencecam_ingest_deferred_total",
			Help: "Objects left for a later listing because their camera is not known yet (sidecar pending).",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "offencecam_ingest_lag_seconds",
			Help:    "Time from capture to publish.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600},
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "offencecam_ingest_in_flight",
			Help: "Objects being processed (resolve, validate, publish) right now; bounded by ingest.workers.",
		}),
		publishRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offencecam_ingest_publish_retries_total",
			Help: "Publishes to FRAMES retried, by reason (full: the stream is at its limits; error: NATS).",
		}, []string{"reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offencecam_ingest_retries_total",
			Help: "Operations retried after a failure (S3 or NATS), by operation.",
		}, []string{"op"}),
		lastReconcile: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "offencecam_ingest_last_reconciliation_timestamp_seconds",
			Help: "Unix time the last complete reconciliation listing finished.",
		}),
		badEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "offencecam_ingest_bad_events_total",
			Help: "Notifications that were not readable S3 events.",
		}),
	}
	for _, c := range []prometheus.Collector{m.frames, m.rejected, m.duplicates, m.deferred, m.lag,
		m.inFlight, m.publishRetries, m.retries, m.lastReconcile, m.badEvents} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
