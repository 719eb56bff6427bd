package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/crossborder/offencecam/detector"
	"github.com/crossborder/offencecam/detector/evalmetrics"
	"github.com/crossborder/offencecam/detector/platetext"
)

// evalReport is the --json form: {"classes": {...}, "plates": {...}} (the keys that apply).
type evalReport struct {
	Classes map[string]evalClass      `json:"classes,omitempty"`
	Plates  *evalmetrics.PlateMetrics `json:"plates,omitempty"`
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
	jsonOut := fs.Bool("json", false, `print one JSON object: {"classes": {...}, "plates": {...}}`)
	set := fs.String("set", "", "YOLO-format set: data.yaml (class names) with images/ and labels/")
	plates := fs.String("plates", "", "plate set: images each with a .txt beside it (file x y w h TEXT)")
	misses := fs.Bool("misses", false, "list on stderr every plate not read exactly: file, label, read")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: offencecam eval [--json] [--set DIR] [--plates DIR] [DIR]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// A bare DIR is a YOLO set when it has data.yaml, else a plate set.
	for _, a := range fs.Args() {
		if _, err := os.Stat(a + "/data.yaml"); err == nil && *set == "" {
			*set = a
		} else if *plates == "" {
			*plates = a
		} else {
			return usageError{fmt.Errorf("unexpected argument %q", a)}
		}
	}
	if *set == "" && *plates == "" {
		return usageError{errors.New("give --set DIR and/or --plates DIR")}
	}
	g, err := df.openGraph()
	if err != nil {
		return err
	}
	defer g.Close()
	rep, err := runEval(ctx, g, *set, *plates, *misses, os.Stderr)
	if err != nil {
		return err
	}
	if *jsonOut {
		return json.NewEncoder(os.Stdout).Encode(rep)
	}
	printEval(os.Stdout, rep)
	return nil
}

func runEval(ctx context.Context, g *detector.Graph, set, plates string, misses bool, stderr io.Writer) (evalReport, error) {
	var rep evalReport
	if set != "" {
		se, err := g.EvalSet(ctx, set, newProgress().update)
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
	}
	if plates != "" {
		pe, err := g.EvalPlates(ctx, plates, newProgress().update)
		if err != nil {
			return rep, err
		}
		for _, r := range pe.Reads {
			switch {
			case r.Err != nil:
				fmt.Fprintf(stderr, "offencecam eval: %s: %s: %v\n", r.File, reason(r.Err), r.Err)
			case misses && platetext.Normalize(r.Ref) != platetext.Normalize(r.Hyp):
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
	return rep, nil
}

func printEval(w io.Writer, rep evalReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if rep.Classes != nil {
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
	if rep.Plates != nil {
		if rep.Classes != nil {
			fmt.Fprintln(tw)
		}
		fmt.Fprintln(tw, "plates\tn\texact\tCER")
		fmt.Fprintf(tw, "\t%d\t%.3f\t%.3f\n", rep.Plates.N, rep.Plates.Exact, rep.Plates.CER)
	}
	tw.Flush()
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
