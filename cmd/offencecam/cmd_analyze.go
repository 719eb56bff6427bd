package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/crossborder/offencecam/detector"
	"github.com/crossborder/offencecam/detector/imgproc"
	"github.com/crossborder/offencecam/internal/config"
	"github.com/crossborder/offencecam/pipeline"
)

// detectorFlags are the flags of the commands that run the stage graph locally.
type detectorFlags struct {
	common *commonFlags
	cache  string
}

func addDetectorFlags(fs *flag.FlagSet) *detectorFlags {
	d := &detectorFlags{common: addCommonFlags(fs)}
	fs.StringVar(&d.cache, "cache", "", "model cache directory (default: models.cache, $OFFENCECAM_MODELS_CACHE or <data>/models)")
	return d
}

// detectorConfig is the stage graph's section of the configuration.
func detectorConfig(cfg config.Config) detector.Config { return cfg.Detector }

// load reads the configuration and works out the model cache.
func (d *detectorFlags) load() (detector.Config, string, error) {
	cfg, err := d.common.load()
	if err != nil {
		return detector.Config{}, "", err
	}
	cache := d.cache
	if cache == "" {
		cache = cfg.Models.Cache // also set by $OFFENCECAM_MODELS_CACHE
	}
	return detectorConfig(cfg), cache, nil
}

// openGraph loads the stage graph of the configuration.
func (d *detectorFlags) openGraph() (*detector.Graph, error) {
	dc, cache, err := d.load()
	if err != nil {
		return nil, err
	}
	return detector.New(dc, cache)
}

// imagePaths expands files and folders (recursively) into image files, in order.
func imagePaths(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		var in []string
		err = filepath.WalkDir(a, func(p string, e os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !e.IsDir() && detector.IsImageName(p) {
				in = append(in, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Strings(in)
		out = append(out, in...)
	}
	return out, nil
}

// progress draws a one-line progress bar on a terminal; elsewhere it is silent.
// Fewer files than progressMin finish too soon for a bar to help.
type progress struct {
	w  io.Writer
	on bool
}

const progressMin = 10

func newProgress() *progress {
	st, err := os.Stderr.Stat()
	return &progress{w: os.Stderr, on: err == nil && st.Mode()&os.ModeCharDevice != 0}
}

func (p *progress) update(done, total int) {
	if !p.on || total < progressMin {
		return
	}
	const width = 30
	n := done * width / max(1, total)
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d", strings.Repeat("#", n), strings.Repeat(".", width-n), done, total)
	if done >= total {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// reason is the short label of an analysis error for the error line.
func reason(err error) string {
	if r := imgproc.Reason(err); r != "" {
		return r
	}
	if errors.Is(err, os.ErrNotExist) {
		return "not_found"
	}
	return "error"
}

// cmdAnalyze analyses image files and prints one Detection per image.
func cmdAnalyze(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("analyze", flag.ContinueOnError)
	df := addDetectorFlags(fs)
	jsonOut := fs.Bool("json", false, "print one JSON Detection per line (default: one summary line per image)")
	annotate := fs.String("annotate", "", "write evidence images (annotated frame, plate and driver crops) of EVERY image into this folder")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: offencecam analyze [--json] [--annotate DIR] PATH…  (files or folders)")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("no PATH given")}
	}
	paths, err := imagePaths(fs.Args())
	if err != nil {
		return err
	}
	if *annotate != "" {
		if err := os.MkdirAll(*annotate, 0o750); err != nil {
			return err
		}
	}
	g, err := df.openGraph()
	if err != nil {
		return err
	}
	defer g.Close()
	return analyzeFiles(ctx, g, paths, *jsonOut, *annotate, os.Stdout, os.Stderr)
}

func analyzeFiles(ctx context.Context, g *detector.Graph, paths []string, jsonOut bool, annotate string, stdout, stderr io.Writer) error {
	bar := newProgress()
	enc := json.NewEncoder(stdout)
	failed := 0
	for i, p := range paths {
		bar.update(i, len(paths))
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := analyzeFile(ctx, g, p, annotate != "")
		if err != nil {
			failed++
			fmt.Fprintf(stderr, "offencecam analyze: %s: %s: %v\n", p, reason(err), err)
			continue
		}
		if annotate != "" {
			if err := writeArtifacts(annotate, p, res.Artifacts); err != nil {
				return err
			}
		}
		if jsonOut {
			if err := enc.Encode(res.Detection); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintln(stdout, summary(p, res.Detection))
	}
	bar.update(len(paths), len(paths))
	if failed > 0 {
		return fmt.Errorf("%d of %d images failed", failed, len(paths))
	}
	return nil
}

func analyzeFile(ctx context.Context, g *detector.Graph, p string, render bool) (detector.Result, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return detector.Result{}, err
	}
	fr := pipeline.Frame{V: pipeline.Version, Key: p, Size: int64(len(data)), Camera: "analyze", PassageID: p}
	res, _, err := g.AnalyzeDetailed(ctx, []detector.View{{Frame: fr, Data: data}}, detector.AnalyzeOptions{Render: render})
	return res, err
}

func writeArtifacts(dir, src string, arts []detector.Artifact) error {
	base := strings.TrimSuffix(filepath.Base(src), filepath.Ext(src))
	count := map[string]int{}
	for _, a := range arts {
		name := fmt.Sprintf("%s.%s.jpg", base, a.Kind)
		if n := count[a.Kind]; n > 0 {
			name = fmt.Sprintf("%s.%s-%d.jpg", base, a.Kind, n)
		}
		count[a.Kind]++
		if err := os.WriteFile(filepath.Join(dir, name), a.Data, 0o640); err != nil {
			return fmt.Errorf("annotate: %w", err)
		}
	}
	return nil
}

// summary is the one-line human form of a Detection.
func summary(p string, d pipeline.Detection) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d vehicle(s)", p, len(d.Vehicles))
	if len(d.Vehicles) > 0 {
		v := d.Vehicles[0]
		fmt.Fprintf(&b, ", phone %s %.2f, seatbelt %s", v.Phone.State, v.Phone.Score, v.Seatbelt.State)
		if v.Plate != nil {
			fmt.Fprintf(&b, ", plate %s", v.Plate.Text)
			if v.Plate.Country != "" {
				fmt.Fprintf(&b, " (%s)", v.Plate.Country)
			}
			fmt.Fprintf(&b, " %.2f", v.Plate.Confidence)
		}
	}
	if d.Flagged {
		var kinds []string
		for _, o := range d.Offences {
			kinds = append(kinds, fmt.Sprintf("%s %.2f", o.Kind, o.Score))
		}
		fmt.Fprintf(&b, " FLAGGED: %s", strings.Join(kinds, ", "))
	}
	fmt.Fprintf(&b, " [%.0f ms]", d.TimingsMS[detector.StageTotal])
	return b.String()
}
