package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/crossborder/offencecam/detector"
	"github.com/crossborder/offencecam/detector/worker"
	"github.com/crossborder/offencecam/internal/config"
	"github.com/crossborder/offencecam/models"
)

// cmdDetect runs the detection worker alone: FRAMES in, evidence and DETECTIONS out. It
// needs an external NATS (nats.url); `serve` runs the same role on the embedded one.
func cmdDetect(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("detect", flag.ContinueOnError)
	common := addCommonFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := common.load()
	if err != nil {
		return err
	}
	// Say at once, not after connecting, when this box cannot run the models.
	if err := stageGraphAvailable(cfg); err != nil {
		return err
	}
	return runRoles(ctx, cfg, "detect", natsExternal, func(ctx context.Context, rt *runtime, g *group) (http.Handler, error) {
		// The factory loads ONNX Runtime and opens one graph now, so a node with a missing or
		// wrong model fails here, before it takes any frame.
		factory, err := newAnalyzerFactory(cfg, detector.WithRegistry(rt.reg), detector.WithLogger(rt.log))
		if err != nil {
			return nil, err
		}
		return nil, startDetectRole(ctx, rt, g, factory)
	})
}

// detectConfig is the worker's section (`detect`) of the configuration.
func detectConfig(cfg config.Config) worker.Config {
	wc := cfg.Detect
	// Leave a margin inside the process's stop budget for the NATS drain.
	wc.ShutdownGrace = min(wc.ShutdownGrace, shutdownGrace-time.Second)
	return wc
}

// startDetectRole starts the detection worker in g on rt; `serve` calls it too, with a
// factory from newAnalyzerFactory made first (the graph registers the stage metrics the
// worker then leaves to it). Readiness is reported as "detect" on /readyz.
func startDetectRole(ctx context.Context, rt *runtime, g *group, factory func() (detector.Analyzer, error)) error {
	w, err := worker.New(worker.Deps{
		JS: rt.js, Store: rt.store, NewAnalyzer: factory, Registry: rt.reg, Log: rt.log,
	}, detectConfig(rt.cfg))
	if err != nil {
		return err
	}
	rt.health.Add("detect", func(context.Context) error { return w.Ready() })
	rt.log.Info("detect role", "concurrency", w.Concurrency())
	g.Go("detect", rt.log, func() error { return w.Run(ctx) })
	return nil
}

// errNoStageGraph says the model cache has no ONNX Runtime, so no stage graph can run on this
// box: `detect` fails with it, `serve` starts without the detect role and says so.
var errNoStageGraph = errors.New("detector stage graph unavailable")

// newAnalyzerFactory returns the constructor of one Analyzer (stage graph with its own ONNX
// sessions) per analysis goroutine, from the `detector` section and the model cache
// (models.cache, or $OFFENCECAM_MODELS_CACHE as for `analyze`). Pass
// detector.WithRegistry(rt.reg) so the graph exports offencecam_model_inference_seconds and
// offencecam_detector_stage_seconds.
func newAnalyzerFactory(cfg config.Config, opts ...detector.Option) (func() (detector.Analyzer, error), error) {
	if err := stageGraphAvailable(cfg); err != nil {
		return nil, err
	}
	f, err := detector.NewFactory(detectorConfig(cfg), detectModelCache(cfg), opts...)
	if err != nil {
		return nil, fmt.Errorf("stage graph: %w", err)
	}
	return f, nil
}

// detectModelCache is models.cache (which $OFFENCECAM_MODELS_CACHE sets).
func detectModelCache(cfg config.Config) string { return cfg.Models.Cache }

// stageGraphAvailable is errNoStageGraph (wrapped) when the model cache has no ONNX Runtime.
func stageGraphAvailable(cfg config.Config) error {
	cache := detectModelCache(cfg)
	if _, err := os.Stat(models.LibraryPath(cache)); err != nil {
		return fmt.Errorf("%w: no ONNX Runtime in the model cache %s (run `offencecam models fetch`): %v",
			errNoStageGraph, cache, err)
	}
	return nil
}
