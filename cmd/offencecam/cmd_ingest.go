package main

import (
	"context"
	"flag"
	"net/http"

	"github.com/crossborder/offencecam/ingest"
)

// cmdIngest runs the ingest role alone: S3 event notifications, the reconciliation listing and
// the drop folder in, FRAMES out. It needs an external NATS (nats.url); `serve` runs the same
// role on the embedded one.
func cmdIngest(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	common := addCommonFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := common.load()
	if err != nil {
		return err
	}
	return runRoles(ctx, cfg, "ingest", natsExternal, func(ctx context.Context, rt *runtime, g *group) (http.Handler, error) {
		return nil, startIngestRole(ctx, rt, g)
	})
}

// startIngestRole starts the ingest stage in g on rt; `serve` calls it too. Readiness is
// reported as "ingest" on /readyz.
func startIngestRole(ctx context.Context, rt *runtime, g *group) error {
	svc, err := ingest.New(ingest.Deps{
		NC: rt.nc, JS: rt.js, Store: rt.store, Registry: rt.reg, Log: rt.log, DataDir: rt.cfg.Data,
	}, rt.cfg.Ingest)
	if err != nil {
		return err
	}
	rt.health.Add("ingest", func(context.Context) error { return svc.Ready() })
	g.Go("ingest", rt.log, func() error { return svc.Run(ctx) })
	return nil
}
