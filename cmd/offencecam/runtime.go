package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/crossborder/offencecam/internal/config"
	"github.com/crossborder/offencecam/internal/natsx"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/internal/telemetry"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// commonFlags are the flags every role shares.
type commonFlags struct {
	config, data, listen, natsURL, s3Endpoint string
}

func addCommonFlags(fs *flag.FlagSet) *commonFlags {
	c := &commonFlags{}
	fs.StringVar(&c.config, "config", "", "YAML configuration file (also $OFFENCECAM_CONFIG)")
	fs.StringVar(&c.data, "data", "", "data directory (default ./var)")
	fs.StringVar(&c.listen, "listen", "", "HTTP listen address for UI, /metrics, /healthz, /readyz (default 127.0.0.1:8080)")
	fs.StringVar(&c.natsURL, "nats-url", "", "external NATS server (default: the embedded one, which serve runs and `review user` joins)")
	fs.StringVar(&c.s3Endpoint, "s3-endpoint", "", "S3-compatible endpoint (credentials from OFFENCECAM_S3_ACCESS_KEY/OFFENCECAM_S3_SECRET_KEY); default: local object store under <data>/objects")
	return c
}

// load parses the configuration for a command.
func (c *commonFlags) load() (config.Config, error) {
	return config.Load(config.Flags{
		ConfigFile: c.config, Data: c.data, Listen: c.listen, NATSURL: c.natsURL, S3Endpoint: c.s3Endpoint,
	}, os.Environ())
}

// parseFlags parses args, returning flag errors as usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}

// runtime is what a running role stands on: logger, metrics, NATS, object store and the one
// HTTP listener.
type runtime struct {
	cfg    config.Config
	log    *slog.Logger
	reg    *prometheus.Registry
	health *telemetry.Health
	emb    *natsx.Embedded
	nc     *nats.Conn
	js     jetstream.JetStream
	store  objstore.Store
}

// natsMode says where a command's NATS comes from when no nats.url is configured.
type natsMode int

const (
	natsExternal natsMode = iota // nats.url is required
	natsEmbed                    // run the embedded server on the data directory (serve)
	// natsJoin joins the embedded server a running serve has on the data directory, and runs
	// its own only when none is running (the admin commands).
	natsJoin
)

// openRuntime connects to (or embeds) NATS as mode says, provisions the wire and opens the
// object store.
func openRuntime(ctx context.Context, cfg config.Config, role string, mode natsMode) (_ *runtime, err error) {
	log, err := telemetry.NewLogger(os.Stderr, cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return nil, err
	}
	log = log.With("role", role)
	slog.SetDefault(log)
	rt := &runtime{cfg: cfg, log: log, reg: telemetry.NewRegistry(role), health: &telemetry.Health{}}
	defer func() {
		if err != nil {
			rt.Close()
		}
	}()
	if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	url := cfg.NATS.URL
	joined := false
	if url == "" {
		if mode == natsExternal {
			return nil, fmt.Errorf("nats.url: required for `offencecam %s` (the embedded server runs only in `serve`)", role)
		}
		dir := filepath.Join(cfg.Data, "nats")
		if u, pid, ok := natsx.Running(dir); ok && mode == natsJoin {
			log.Info("joining the embedded NATS of the running serve", "url", u, "pid", pid)
			url, joined = u, true
		} else {
			rt.emb, err = natsx.StartEmbedded(natsx.EmbeddedConfig{Dir: dir, Listen: cfg.NATS.EmbeddedListen})
			if errors.Is(err, natsx.ErrInUse) {
				return nil, fmt.Errorf("data directory %s: %w (stop that process, or give this one another --data)", cfg.Data, err)
			}
			if err != nil {
				return nil, err
			}
			url = rt.emb.ClientURL()
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rt.nc, err = natsx.Connect(cctx, url, "offencecam-"+role)
	if err != nil {
		return nil, err
	}
	rt.js, err = jetstream.New(rt.nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	// A command joining a running serve leaves the wire as serve provisioned it: its own
	// configuration file may not carry serve's limits.
	if !joined {
		if err := natsx.Provision(cctx, rt.js, cfg.NATSLimits()); err != nil {
			return nil, err
		}
	}
	rt.health.Add("nats", func(context.Context) error { return natsx.Ready(rt.nc) })

	if rt.store, err = openStore(cfg); err != nil {
		return nil, err
	}
	for _, b := range []string{pipeline.BucketFrames, pipeline.BucketEvidence, pipeline.BucketQuarantine} {
		if err := rt.store.EnsureBucket(cctx, b); err != nil {
			return nil, fmt.Errorf("object store: bucket %s: %w", b, err)
		}
	}
	rt.health.Add("objstore", rt.store.Ping)
	return rt, nil
}

func openStore(cfg config.Config) (objstore.Store, error) {
	if cfg.S3.Endpoint == "" {
		s, err := objstore.NewLocal(filepath.Join(cfg.Data, "objects"))
		if err != nil {
			return nil, fmt.Errorf("local object store: %w", err)
		}
		return s, nil
	}
	sc := objstore.DefaultS3Config()
	sc.Endpoint, sc.AccessKey, sc.SecretKey, sc.Region = cfg.S3.Endpoint, cfg.S3.AccessKey, cfg.S3.SecretKey, cfg.S3.Region
	s, err := objstore.NewS3(sc)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	return s, nil
}

// Close releases everything in reverse order of opening.
func (rt *runtime) Close() {
	if rt.nc != nil && !rt.nc.IsClosed() {
		// Drain lets in-flight acks and publishes finish before the connection closes.
		closed := make(chan struct{})
		rt.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err := rt.nc.Drain(); err != nil {
			rt.nc.Close()
		}
		select {
		case <-closed:
		case <-time.After(2 * time.Second):
			rt.nc.Close()
		}
	}
	if rt.emb != nil {
		rt.emb.Shutdown()
	}
}

// listen opens the HTTP listener and announces where it is.
func (rt *runtime) listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", rt.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	addr := ln.Addr().String()
	rt.log.Info("listening", "addr", addr, "ui", "http://"+addr+"/", "metrics", "http://"+addr+"/metrics")
	return ln, nil
}

// mux returns a mux with /metrics, /healthz and /readyz; app (the review UI) gets the rest.
func (rt *runtime) mux(app http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	rt.health.Mount(mux, rt.reg)
	if app != nil {
		mux.Handle("/", app)
	}
	return mux
}

// group runs role loops and stops them all when one fails or ctx ends.
type group struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
	cancel context.CancelFunc
}

func (g *group) Go(name string, log *slog.Logger, fn func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := fn(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
			log.Error("role stopped with an error", "part", name, "err", err)
			g.mu.Lock()
			if g.err == nil {
				g.err = fmt.Errorf("%s: %w", name, err)
			}
			g.mu.Unlock()
			g.cancel()
		}
	}()
}

func (g *group) Wait() error {
	g.wg.Wait()
	return g.err
}

// roleStarter starts a command's roles in g on rt and returns the web UI handler, if any.
type roleStarter func(ctx context.Context, rt *runtime, g *group) (http.Handler, error)

// runRoles is the life of every long-running command: open the runtime, start the roles,
// serve /metrics, /healthz, /readyz (and the UI) on the one listener, announce it on stdout,
// and on ctx's end (SIGTERM) stop everything within shutdownGrace.
func runRoles(ctx context.Context, cfg config.Config, role string, mode natsMode, start roleStarter) error {
	rt, err := openRuntime(ctx, cfg, role, mode)
	if err != nil {
		return err
	}
	defer rt.Close()

	roleCtx, cancelRoles := context.WithCancel(ctx)
	defer cancelRoles()
	g := &group{cancel: cancelRoles}
	app, err := start(roleCtx, rt, g)
	if err != nil {
		return err
	}
	ln, err := rt.listen()
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	if app != nil {
		fmt.Fprintf(os.Stdout, "offencecam %s: UI http://%s/  metrics http://%s/metrics  data %s\n", role, addr, addr, cfg.Data)
	} else {
		fmt.Fprintf(os.Stdout, "offencecam %s: metrics http://%s/metrics\n", role, addr)
	}
	srv := &http.Server{Handler: rt.mux(app), ReadHeaderTimeout: 10 * time.Second}
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
		err = fmt.Errorf("%s did not stop within the grace period", role)
	}
	if err == nil {
		rt.log.Info("stopped")
	}
	return err
}
