package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

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
	rt, err := openRuntime(ctx, cfg, "ingest", false)
	if err != nil {
		return err
	}
	defer rt.Close()

	roleCtx, cancelRoles := context.WithCancel(ctx)
	defer cancelRoles()
	g := &group{cancel: cancelRoles}
	if err := startIngestRole(roleCtx, rt, g); err != nil {
		return err
	}

	ln, err := rt.listen()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "offencecam ingest: metrics http://%s/metrics\n", ln.Addr())
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
		err = errors.New("ingest did not stop within the grace period")
	}
	return err
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
