package ort

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is the inference-time histogram shared by every session of a process (or of a
// test): offencecam_model_inference_seconds{model}.
type Metrics struct {
	inference *prometheus.HistogramVec
}

// NewMetrics registers the histogram on reg. Registering twice on the same registry returns
// the metrics already there, so each component may call it without coordination.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "offencecam_model_inference_seconds",
		Help: "Wall time of one raw ONNX Runtime Run, by model.",
		// 0.5 ms .. ~4 s: plate OCR is sub-millisecond, a scene model on a slow CPU is seconds.
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"model"})
	if reg != nil {
		if err := reg.Register(h); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				if existing, ok := are.ExistingCollector.(*prometheus.HistogramVec); ok {
					return &Metrics{inference: existing}, nil
				}
			}
			return nil, fmt.Errorf("ort: register metrics: %w", err)
		}
	}
	return &Metrics{inference: h}, nil
}

func (m *Metrics) observer(model string) prometheus.Observer {
	if m == nil {
		return nil
	}
	return m.inference.WithLabelValues(model)
}

func observe(o prometheus.Observer, d time.Duration) {
	if o != nil {
		o.Observe(d.Seconds())
	}
}
