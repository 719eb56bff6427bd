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
	"text/tabwriter"

	"github.com/crossborder/offencecam/detector"
	"github.com/crossborder/offencecam/detector/evalmetrics"
	"github.com/crossborder/offencecam/detector/platetext"
)

// evalReport is the --json form: {"classes": {...}, "image_level": {...}, "plates": {...},
// "occupants": {...}} (the keys that apply).
type evalReport struct {
	Classes    map[string]evalClass                 `json:"classes,omitempty"`
	ImageLevel map[string]evalmetrics.BinaryMetrics `json:"image_level,omitempty"`
	Plates     *evalmetrics.PlateMetrics            `json:"plates,omitempty"`
	Occupants  *detector.OccupantEval               `json:"occupants,omitempty"`
}

// evalArgs are what cmdEval was asked to measure.
type evalArgs struct {
	set, plates string
	occupants   string // label file
	images      string // the occupant labels' images
	folds       string // training run with folds.tsv and a model per fold
	plot        string // PNG of the occupant precision-recall curves
	misses      bool
}

type evalClass struct {
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	AP50      float64 `json:"ap50"`
	N         int     `json:"n"`
	Note      string  `json:"note,omitempty"`
}

// cmdEval measures the stage graph on labelled folders.
func cmdEval(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	df := addDetectorFlags(fs)
	var a evalArgs
	jsonOut := fs.Bool("json", false, `print one JSON object: {"classes": {...}, "image_level": {...}, "plates": {...}, "occupants": {...}}`)
	fs.StringVar(&a.set, "set", "", "YOLO-format set: data.yaml (class names) with images/ and labels/")
	fs.StringVar(&a.plates, "plates", "", "plate set: images each with a .txt beside it (file x y w h TEXT)")
	fs.StringVar(&a.occupants, "occupants", "", "per-driver labels, tab separated: stem phone belt [x0,y0,x1,y1 driver crop]; IMAGES_DIR follows (default: images/ beside the file)")
	fs.StringVar(&a.folds, "folds", "", "with --occupants: a training run's folds directory (folds.tsv, occupant-fold{k}.onnx); each image is judged by the model that did not train on it")
	fs.StringVar(&a.plot, "plot", "", "with --occupants: write the precision-recall curves to this PNG")
	fs.BoolVar(&a.misses, "misses", false, "list on stderr every plate not read exactly: file, label, read")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: offencecam eval [--json] [--set DIR] [--plates DIR] [DIR]")
		fmt.Fprintln(fs.Output(), "       offencecam eval --occupants LABELS.tsv [--folds DIR] [--plot FILE.png] [--json] IMAGES_DIR")
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := a.positional(rest); err != nil {
		return err
	}
	rep, err := runEval(ctx, df, a, os.Stderr)
	if err != nil {
		return err
	}
	if *jsonOut {
		return json.NewEncoder(os.Stdout).Encode(rep)
	}
	printEval(os.Stdout, rep)
	return nil
}

// parseInterspersed parses flags wherever they stand among the arguments, as the issue
// writes `eval --occupants LABELS.tsv IMAGES_DIR --json` (package flag stops at the first
// non-flag). After "--" everything is an argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		left := fs.Args()
		if used := len(args) - len(left); used > 0 && args[used-1] == "--" {
			return append(rest, left...), nil
		}
		if len(left) == 0 {
			return rest, nil
		}
		rest, args = append(rest, left[0]), left[1:]
	}
}

// positional sorts out the bare arguments: with --occupants, the images directory; else a
// directory with data.yaml is a YOLO set, any other a plate set.
func (a *evalArgs) positional(rest []string) error {
	if a.occupants != "" {
		switch len(rest) {
		case 0:
			a.images = filepath.Join(filepath.Dir(a.occupants), "images")
		case 1:
			a.images = rest[0]
		default:
			return usageError{fmt.Errorf("--occupants takes one IMAGES_DIR, got %q", rest)}
		}
		return nil
	}
	if a.folds != "" || a.plot != "" {
		return usageError{errors.New("--folds and --plot go with --occupants")}
	}
	for _, arg := range rest {
		if _, err := os.Stat(arg + "/data.yaml"); err == nil && a.set == "" {
			a.set = arg
		} else if a.plates == "" {
			a.plates = arg
		} else {
			return usageError{fmt.Errorf("unexpected argument %q", arg)}
		}
	}
	if a.set == "" && a.plates == "" {
		return usageError{errors.New("give --set DIR, --plates DIR or --occupants LABELS.tsv IMAGES_DIR")}
	}
	return nil
}

// runEval runs the evaluations asked for. The configured graph is opened only when one of
// them uses it: --folds opens one graph per fold instead.
func runEval(ctx context.Context, df *detectorFlags, a evalArgs, stderr io.Writer) (evalReport, error) {
	var rep evalReport
	var labels []evalmetrics.OccupantLabel
	if a.occupants != "" {
		// A broken label file is reported before any model loads.
		var err error
		if labels, err = detector.ReadOccupantLabels(a.occupants); err != nil {
			return rep, err
		}
	}
	if a.set != "" || a.plates != "" || (a.occupants != "" && a.folds == "") {
		g, err := df.openGraph()
		if err != nil {
			return rep, err
		}
		defer g.Close()
		if rep, err = runGraphEval(ctx, g, a, labels, stderr); err != nil {
			return rep, err
		}
	}
	if a.occupants != "" && a.folds != "" {
		dc, cache, err := df.load()
		if err != nil {
			return rep, err
		}
		oe, err := detector.EvalOccupantFolds(ctx, dc, cache, labels, a.images, a.folds, batchProgress(stderr, "images"))
		if err != nil {
			return rep, err
		}
		rep.Occupants = &oe
	}
	if rep.Occupants != nil {
		for _, e := range rep.Occupants.Errors {
			fmt.Fprintf(stderr, "offencecam eval: %s\n", e)
		}
		if a.plot != "" {
			if err := writePlot(a.plot, *rep.Occupants); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

func writePlot(path string, oe detector.OccupantEval) error {
	png, err := detector.PlotOccupantPR(oe)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Errorf("eval: plot: %w", err)
	}
	return nil
}

// runGraphEval runs the evaluations of a's that use the configured graph g.
func runGraphEval(ctx context.Context, g *detector.Graph, a evalArgs, labels []evalmetrics.OccupantLabel, stderr io.Writer) (evalReport, error) {
	var rep evalReport
	if a.set != "" {
		se, err := g.EvalSet(ctx, a.set, newProgress().update)
		if err != nil {
			return rep, err
		}
		for _, e := range se.Errors {
			fmt.Fprintf(stderr, "offencecam eval: %s\n", e)
		}
		rep.Classes = map[string]evalClass{}
		for name, c := range se.Classes {
			rep.Classes[name] = evalClass{Precision: c.Precision, Recall: c.Recall, AP50: c.AP50, N: c.N, Note: c.Note}
		}
		rep.ImageLevel = se.ImageLevel
	}
	if a.plates != "" {
		pe, err := g.EvalPlates(ctx, a.plates, newProgress().update)
		if err != nil {
			return rep, err
		}
		for _, r := range pe.Reads {
			switch {
			case r.Err != nil:
				fmt.Fprintf(stderr, "offencecam eval: %s: %s: %v\n", r.File, reason(r.Err), r.Err)
			case a.misses && platetext.Normalize(r.Ref) != platetext.Normalize(r.Hyp):
				hyp := r.Hyp
				if hyp == "" {
					hyp = "(no read)"
				}
				fmt.Fprintf(stderr, "offencecam eval: miss: %s: label %s, read %s\n", r.File, r.Ref, hyp)
			}
		}
		m := pe.PlateMetrics
		rep.Plates = &m
	}
	if a.occupants != "" && a.folds == "" {
		oe, err := g.EvalOccupants(ctx, labels, a.images, batchProgress(stderr, "images"))
		if err != nil {
			return rep, err
		}
		rep.Occupants = &oe
	}
	return rep, nil
}

// batchProgress shows N/M on stderr: the bar on a terminal, else a line every tenth of the
// way, so a long run redirected to a log still shows it is moving.
func batchProgress(w io.Writer, unit string) func(done, total int) {
	if p := newProgress(); p.on {
		return p.update
	}
	last, finished := -1, false
	return func(done, total int) {
		step := max(1, total/10)
		switch {
		case done >= total:
			if finished {
				return
			}
			finished = true
		case done/step == last:
			return
		}
		last = done / step
		fmt.Fprintf(w, "offencecam eval: %d/%d %s\n", done, total, unit)
	}
}

func printEval(w io.Writer, rep evalReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	sections := 0
	gap := func() {
		if sections > 0 {
			fmt.Fprintln(tw)
		}
		sections++
	}
	if rep.Classes != nil {
		gap()
		fmt.Fprintln(tw, "class\tn\tprecision\trecall\tAP@0.5\tnote")
		names := make([]string, 0, len(rep.Classes))
		for n := range rep.Classes {
			names = append(names, n)
		}
		sortStrings(names)
		for _, n := range names {
			c := rep.Classes[n]
			fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.3f\t%s\n", n, c.N, c.Precision, c.Recall, c.AP50, c.Note)
		}
	}
	if len(rep.ImageLevel) > 0 {
		gap()
		fmt.Fprintln(tw, "per image (largest vehicle)\tn\ttp\tfp\tfn\tprecision\trecall")
		for _, k := range []string{detector.ImagePhone, detector.ImageSeatbeltWorn} {
			if m, ok := rep.ImageLevel[k]; ok {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.3f\t%.3f\n", k, m.N, m.TP, m.FP, m.FN, m.Precision, m.Recall)
			}
		}
	}
	if rep.Plates != nil {
		gap()
		fmt.Fprintln(tw, "plates\tn\texact\tCER")
		fmt.Fprintf(tw, "\t%d\t%.3f\t%.3f\n", rep.Plates.N, rep.Plates.Exact, rep.Plates.CER)
	}
	if o := rep.Occupants; o != nil {
		gap()
		printOccupants(tw, *o)
	}
	tw.Flush()
}

// printOccupants is the occupant table: each offence at the configured threshold and at the
// threshold for precision 0.9, then the driver crop's overlap with the labelled crops.
func printOccupants(w io.Writer, o detector.OccupantEval) {
	fmt.Fprintln(w, "driver offence\tn\ttp\tfp\tfn\tprecision\trecall\tthreshold\tAP\tthreshold P>=0.9\trecall there")
	for _, r := range []struct {
		name string
		e    detector.OffenceEval
	}{{"phone held", o.Phone}, {"belt not worn", o.Seatbelt}} {
		p90, r90 := "none", "-"
		if r.e.AtP90 != nil {
			p90, r90 = fmt.Sprintf("%.3f", r.e.AtP90.Threshold), fmt.Sprintf("%.3f", r.e.AtP90.Recall)
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%s\t%s\n",
			r.name, r.e.N, r.e.TP, r.e.FP, r.e.FN, r.e.Precision, r.e.Recall, r.e.Threshold, r.e.AP, p90, r90)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "images\t%d (no driver scores: %d, errors: %d)\n", o.Images, o.NoDriver, len(o.Errors))
	fmt.Fprintf(w, "driver crop\tmean IoU %.3f, IoU >= 0.5 in %.1f %% of %d\n", o.DriverCrop.MeanIoU, 100*o.DriverCrop.IoUGE05, o.DriverCrop.N)
	for _, f := range o.Folds {
		fmt.Fprintf(w, "fold %d\t%s (sha256 %.12s), %d images\n", f.Fold, f.File, f.SHA256, f.Images)
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
