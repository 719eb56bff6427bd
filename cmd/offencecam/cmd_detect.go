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
	// The analyser is checked before anything is opened: a node without models should say
	// so at once, not after connecting.
	factory, err := newAnalyzerFactory(cfg)
	if err != nil {
		return err
	}
	rt, err := openRuntime(ctx, cfg, "detect", false)
	if err != nil {
		return err
	}
	defer rt.Close()

	roleCtx, cancelRoles := context.WithCancel(ctx)
	defer cancelRoles()
	g := &group{cancel: cancelRoles}
	if err := startDetectRole(roleCtx, rt, g, factory); err != nil {
		return err
	}

	ln, err := rt.listen()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "offencecam detect: metrics http://%s/metrics\n", ln.Addr())
	srv := &http.Server{Handler: rt.mux(nil), ReadHeaderTimeout: 10 * time.Second}
	g.Go("http", rt.log, func() error { return srv.Serve(ln) })

	<-roleCtx.Done()
	rt.log.Info("stopping")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	_ = srv.Shutdown(sctx)
	cancelRoles()
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err = <-done:
	case <-sctx.Done():
		err = errors.New("detect did not stop within the grace period")
	}
	return err
}

// detectConfig is the worker's section of the configuration. Until the lead adds a
// `detect` section to internal/config, it is the worker's default.
func detectConfig(cfg config.Config) worker.Config {
	wc := worker.DefaultConfig()
	// Leave a margin inside the process's stop budget for the NATS drain.
	wc.ShutdownGrace = min(wc.ShutdownGrace, shutdownGrace-time.Second)
	return wc
}

// startDetectRole starts the detection worker in g on rt; `serve` calls it too. Readiness is
// reported as "detect" on /readyz.
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

// errNoStageGraph is returned until package detector has the stage graph.
var errNoStageGraph = errors.New("detect: detector stage graph not built yet")

// newAnalyzerFactory returns the constructor of one Analyzer per analysis goroutine (the
// stage graph's ONNX sessions are not safe for concurrent use).
func newAnalyzerFactory(cfg config.Config) (func() (detector.Analyzer, error), error) {
	return nil, errNoStageGraph
}
