package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/crossborder/offencecam/detector"
)

// shutdownGrace bounds the whole stop: SIGTERM must end the process within 5 s.
const shutdownGrace = 4 * time.Second

func cmdServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	common := addCommonFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := common.load()
	if err != nil {
		return err
	}
	return runRoles(ctx, cfg, "serve", natsEmbed, startRoles)
}

// startRoles starts every stage role inside serve and returns the web UI handler.
func startRoles(ctx context.Context, rt *runtime, g *group) (http.Handler, error) {
	rt.health.Add("models", func(context.Context) error { return checkModels(rt.cfg.Models.Cache) })
	if err := startIngestRole(ctx, rt, g); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	factory, err := newAnalyzerFactory(rt.cfg, detector.WithRegistry(rt.reg), detector.WithLogger(rt.log))
	switch {
	case errors.Is(err, errNoStageGraph):
		rt.log.Warn("detect role not started", "err", err)
	case err != nil:
		return nil, fmt.Errorf("detect: %w", err)
	default:
		if err := startDetectRole(ctx, rt, g, factory); err != nil {
			return nil, fmt.Errorf("detect: %w", err)
		}
	}
	if err := startPlatformRole(ctx, rt, g); err != nil {
		return nil, fmt.Errorf("platform: %w", err)
	}
	app, err := startReviewRole(ctx, rt, g, os.Stdout)
	if err != nil {
		return nil, fmt.Errorf("review: %w", err)
	}
	return app, nil
}

// cmdHealthcheck is the container HEALTHCHECK: a GET that exits 0 on 200.
func cmdHealthcheck(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080/healthz", "URL to GET")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return usageError{err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", *url, resp.Status)
	}
	return nil
}
