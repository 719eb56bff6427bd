package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/crossborder/offencecam/dataset"
	"github.com/crossborder/offencecam/review/cases"
)

const datasetUsage = `usage: offencecam dataset export --out DIR [--since T] [--by NAME] [flags]

Writes the reviewed cases whose evidence is still retained as a training set in the layout of
roadside-train (images/, windshield/, labels.tsv, MANIFEST.tsv) for
training/occupant/train.py --data DIR. Labels come from the decisions: a confirmed phone
offence is phone yes, a confirmed seatbelt offence belt not_worn, a rejection for not_phone
phone no, for belt_visible belt worn; the rest is unsure. Cases under review, purged or
without their evidence are skipped and counted. Each export is recorded in AUDIT.

--since keeps the cases decided at or after T: an RFC 3339 time or a duration (720h).
With the embedded NATS of ` + "`serve`" + ` (no nats.url) it joins the running serve of the
same --data directory, or opens its store itself while serve is stopped.`

// cmdDataset exports reviewed cases as a training set (`dataset export`).
func cmdDataset(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, datasetUsage)
		if len(args) == 0 {
			return usageError{errors.New("missing subcommand export")}
		}
		return flag.ErrHelp
	}
	if args[0] != "export" {
		return usageError{fmt.Errorf("dataset: unknown subcommand %q\n%s", args[0], datasetUsage)}
	}
	fs := flag.NewFlagSet("dataset export", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), datasetUsage+"\n\nflags:"); fs.PrintDefaults() }
	common := addCommonFlags(fs)
	out := fs.String("out", "", "directory to write (must not exist or be empty)")
	since := fs.String("since", "", "only cases decided at or after this RFC 3339 time, or this long ago (720h)")
	by := fs.String("by", "", "who exports, for AUDIT (default cli:<OS user>)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("dataset export: unexpected argument %q", fs.Arg(0))}
	}
	if *out == "" {
		return usageError{errors.New("dataset export: --out is required")}
	}
	start := time.Now()
	sinceT, err := dataset.ParseSince(*since, start)
	if err != nil {
		return usageError{err}
	}
	actor := *by
	if actor == "" {
		actor = "cli"
		if u, err := user.Current(); err == nil {
			actor = "cli:" + u.Username
		}
	}
	cfg, err := common.load()
	if err != nil {
		return err
	}
	rt, err := openRuntime(ctx, cfg, "dataset", natsJoin)
	if err != nil {
		return err
	}
	defer rt.Close()
	cs, err := cases.Open(ctx, rt.js, cases.Config{LeaseDuration: cfg.Review.LeaseDuration,
		ReasonCodes: cfg.Review.ReasonCodes, Log: rt.log})
	if err != nil {
		return err
	}
	_, err = dataset.Export(ctx, dataset.Deps{JS: rt.js, Store: rt.store, Cases: cs},
		dataset.Config{Out: *out, Since: sinceT, By: actor, Progress: os.Stderr})
	return err
}
