package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/platform"
)

// cmdPlatform runs the fines platform connector alone (FINES in, fine records out to the
// configured endpoint or the local ledger), or prints what it works from:
//
//	offencecam platform [flags]            run the connector (needs nats.url)
//	offencecam platform catalogue [flags]  print the offence catalogue in effect (YAML)
//	offencecam platform schema             print the fine-record JSON Schema
func cmdPlatform(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "catalogue", "catalog":
			return cmdPlatformCatalogue(args[1:])
		case "schema":
			_, err := os.Stdout.Write(platform.SchemaJSON)
			return err
		}
	}
	fs := flag.NewFlagSet("platform", flag.ContinueOnError)
	common := addCommonFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: offencecam platform [flags] | platform catalogue [flags] | platform schema\n\n"+
			"Sends confirmed cases (FINES) to the fines platform at platform.endpoint, or to the local\n"+
			"ledger (<data>/fines-ledger.jsonl) when no endpoint is configured. Bearer token: platform.token,\n"+
			"platform.token_file or $"+platform.TokenEnv+".\n\nflags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	cfg, err := common.load()
	if err != nil {
		return err
	}
	return runRoles(ctx, cfg, "platform", natsExternal, func(ctx context.Context, rt *runtime, g *group) (http.Handler, error) {
		return nil, startPlatformRole(ctx, rt, g)
	})
}

// startPlatformRole starts the connector in g on rt; `serve` calls it too. Readiness is
// reported as "platform" on /readyz.
func startPlatformRole(ctx context.Context, rt *runtime, g *group) error {
	c, err := platform.New(platform.Deps{JS: rt.js, Registry: rt.reg, Log: rt.log, DataDir: rt.cfg.Data}, rt.cfg.Platform)
	if err != nil {
		return err
	}
	rt.health.Add("platform", func(context.Context) error { return c.Ready() })
	g.Go("platform", rt.log, func() error { return c.Run(ctx) })
	return nil
}

// cmdPlatformCatalogue prints the catalogue the connector would use with this configuration,
// after the same checks (coverage of every offence kind included).
func cmdPlatformCatalogue(args []string) error {
	fs := flag.NewFlagSet("platform catalogue", flag.ContinueOnError)
	common := addCommonFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON instead of YAML")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := common.load()
	if err != nil {
		return err
	}
	cat, err := platform.LoadCatalogue(cfg.Platform.Catalogue)
	if err != nil {
		return fmt.Errorf("platform.catalogue: %w", err)
	}
	if err := cat.Covers(pipeline.OffenceKinds); err != nil {
		return fmt.Errorf("platform.catalogue: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(cat)
	}
	enc := yaml.NewEncoder(os.Stdout)
	enc.SetIndent(2)
	defer enc.Close()
	return enc.Encode(cat)
}
