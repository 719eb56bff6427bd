// Package telemetry holds what every role shares for being observed: the Prometheus
// registry with the Go and process collectors, the slog setup, and the HTTP endpoints
// /metrics, /healthz and /readyz.
package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry with the Go runtime and process collectors and
// offencecam_build_info. Roles register their own metrics on it.
func NewRegistry(role string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	version := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "offencecam_build_info",
		Help: "Build and role of this process; always 1.",
	}, []string{"version", "role"})
	info.WithLabelValues(version, role).Set(1)
	reg.MustRegister(info)
	return reg
}

// NewLogger builds the process logger: JSON by default, because logs are read by machines
// first; "text" for a person at a terminal.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("log.level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "json", "":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log.format: %q is not json or text", format)
	}
}

// Check is one readiness condition.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Health serves /healthz and /readyz. Checks can be added while serving, because roles
// register theirs as they start.
type Health struct {
	mu     sync.RWMutex
	checks []Check
}

// Add registers a readiness check.
func (h *Health) Add(name string, fn func(ctx context.Context) error) {
	h.mu.Lock()
	h.checks = append(h.checks, Check{Name: name, Fn: fn})
	h.mu.Unlock()
}

// Ready runs every check and returns the failures by name.
func (h *Health) Ready(ctx context.Context) map[string]string {
	h.mu.RLock()
	checks := append([]Check(nil), h.checks...)
	h.mu.RUnlock()
	out := map[string]string{}
	for _, c := range checks {
		if err := c.Fn(ctx); err != nil {
			out[c.Name] = err.Error()
		} else {
			out[c.Name] = "ok"
		}
	}
	return out
}

// Mount adds /metrics, /healthz and /readyz to mux.
func (h *Health) Mount(mux *http.ServeMux, reg *prometheus.Registry) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		res := h.Ready(ctx)
		status := http.StatusOK
		for _, v := range res {
			if v != "ok" {
				status = http.StatusServiceUnavailable
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": status == http.StatusOK, "checks": res})
	})
}
