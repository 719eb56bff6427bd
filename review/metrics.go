package review

import (
	"time"

	"github.com/crossborder/offencecam/review/cases"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	decisions     *prometheus.CounterVec
	leaseExpiries prometheus.Counter
	detections    *prometheus.CounterVec
	logins        *prometheus.CounterVec
	evidenceViews *prometheus.CounterVec
	purged        *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "offencecam_review_decisions_total",
			Help: "Review decisions by outcome (confirm, reject, dispute)."}, []string{"outcome"}),
		leaseExpiries: prometheus.NewCounter(prometheus.CounterOpts{Name: "offencecam_review_lease_expiries_total",
			Help: "Review leases that expired and returned their case to the queue."}),
		detections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "offencecam_review_detections_total",
			Help: "Detections consumed, by result (created, late_view, duplicate, not_flagged, invalid)."}, []string{"result"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "offencecam_review_logins_total",
			Help: "Login attempts by result (ok, bad_credentials, locked, disabled, rate_limited)."}, []string{"result"}),
		evidenceViews: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "offencecam_review_evidence_views_total",
			Help: "Evidence images served, by kind."}, []string{"kind"}),
		purged: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "offencecam_review_evidence_purged_total",
			Help: "Cases whose evidence images and plate readings the retention sweep deleted, by case state."}, []string{"state"}),
	}
}

// caseCollector reports the case counts per state from the index at scrape time, so the
// gauge is right on every instance without bookkeeping on each transition.
type caseCollector struct {
	index *cases.Index
	now   func() time.Time
	cases *prometheus.Desc
	age   *prometheus.Desc
}

func (c *caseCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.cases; ch <- c.age }

func (c *caseCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[cases.State]int{}
	var oldest time.Time
	for _, k := range c.index.Select(nil) {
		counts[k.State]++
		if k.State == cases.Pending && (oldest.IsZero() || k.CreatedAt.Before(oldest)) {
			oldest = k.CreatedAt
		}
	}
	for _, st := range cases.AllStates {
		ch <- prometheus.MustNewConstMetric(c.cases, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
	age := 0.0
	if !oldest.IsZero() {
		age = c.now().Sub(oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, age)
}

func (m *metrics) register(reg prometheus.Registerer, ix *cases.Index, now func() time.Time) error {
	cc := &caseCollector{index: ix, now: now,
		cases: prometheus.NewDesc("offencecam_review_cases", "Cases by state.", []string{"state"}, nil),
		age: prometheus.NewDesc("offencecam_review_queue_oldest_pending_age_seconds",
			"Age of the oldest pending case (0 when none is pending).", nil, nil)}
	for _, c := range []prometheus.Collector{m.decisions, m.leaseExpiries, m.detections, m.logins, m.evidenceViews, m.purged, cc, newDecisionCollector(ix)} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
