package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crossborder/offencecam/detector"
	"github.com/crossborder/offencecam/pipeline"
)

// benchReport is the --json form of `offencecam bench`.
type benchReport struct {
	Frames          int     `json:"frames"`
	FramesPerSecond float64 `json:"frames_per_second"`
	P50MS           float64 `json:"p50_ms"`
	P99MS           float64 `json:"p99_ms"`
	OverheadRatio   float64 `json:"overhead_ratio"`
	Sessions        int     `json:"sessions"`
	Threads         int     `json:"threads"`
	ModelMS         float64 `json:"model_ms_per_frame"`
	PipelineMS      float64 `json:"pipeline_ms_per_frame"`
	// StagesMS is each stage's wall time per frame (model Run included where the stage runs
	// a model): where the overhead is. "decode" has no model in it.
	StagesMS map[string]float64 `json:"stages_ms_per_frame"`
}

// cmdBench measures whole-pipeline speed: N graphs (each with its own sessions of M intra-op
// threads) analyse the images round-robin for a fixed time; the overhead ratio is the
// pipeline's time over the raw model Run time measured in the same run.
func cmdBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	df := addDetectorFlags(fs)
	jsonOut := fs.Bool("json", false, "print one JSON object")
	sessions := fs.Int("sessions", 2, "analyses run at once, each with its own ONNX sessions")
	threads := fs.Int("threads", 1, "intra-op threads per ONNX session")
	duration := fs.Duration("duration", 10*time.Second, "how long to measure (after one warm-up analysis per session)")
	minFrames := fs.Int("frames", 0, "measure at least this many frames")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: offencecam bench [--json] [--sessions N --threads M] [--duration D] PATH…")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("no PATH given")}
	}
	if *sessions < 1 || *threads < 1 {
		return usageError{errors.New("--sessions and --threads must be >= 1")}
	}
	paths, err := imagePaths(fs.Args())
	if err != nil {
		return err
	}
	var images [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		images = append(images, b)
	}
	if len(images) == 0 {
		return usageError{errors.New("no images found")}
	}
	dc, cache, err := df.load()
	if err != nil {
		return err
	}
	dc.Runtime.IntraOpThreads = *threads
	rep, err := runBench(ctx, dc, cache, images, *sessions, *duration, *minFrames)
	if err != nil {
		return err
	}
	rep.Threads = *threads
	if *jsonOut {
		return json.NewEncoder(os.Stdout).Encode(rep)
	}
	printBench(os.Stdout, rep)
	return nil
}

func runBench(ctx context.Context, dc detector.Config, cache string, images [][]byte, sessions int, duration time.Duration, minFrames int) (benchReport, error) {
	factory, err := detector.NewFactory(dc, cache)
	if err != nil {
		return benchReport{}, err
	}
	graphs := make([]*detector.Graph, sessions)
	defer func() {
		for _, g := range graphs {
			if g != nil {
				g.Close()
			}
		}
	}()
	for i := range graphs {
		a, err := factory()
		if err != nil {
			return benchReport{}, err
		}
		graphs[i] = a.(*detector.Graph)
	}
	var (
		mu     sync.Mutex
		stages = map[string]float64{}
	)
	analyze := func(g *detector.Graph, i int) (time.Duration, error) {
		fr := pipeline.Frame{V: pipeline.Version, Key: fmt.Sprint(i), PassageID: fmt.Sprint(i), Camera: "bench"}
		t0 := time.Now()
		res, err := g.Analyze(ctx, []detector.View{{Frame: fr, Data: images[i%len(images)]}})
		d := time.Since(t0)
		if err == nil {
			mu.Lock()
			for k, v := range res.Detection.TimingsMS {
				stages[k] += v
			}
			mu.Unlock()
		}
		return d, err
	}
	// Warm-up: the first Run of a session allocates its arenas.
	for _, g := range graphs {
		for i := range min(len(images), 3) {
			if _, err := analyze(g, i); err != nil {
				return benchReport{}, fmt.Errorf("bench: warm-up: %w", err)
			}
		}
		g.ResetRunStats()
	}
	clear(stages)
	var (
		next  atomic.Int64
		lat   []time.Duration
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(duration)
	for _, g := range graphs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n := int(next.Add(1)) - 1
				if time.Now().After(deadline) && n >= minFrames {
					return
				}
				d, err := analyze(g, n)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				lat = append(lat, d)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if first != nil {
		return benchReport{}, fmt.Errorf("bench: %w", first)
	}
	if err := ctx.Err(); err != nil {
		return benchReport{}, err
	}
	var model time.Duration
	for _, g := range graphs {
		_, t := g.RunStats()
		model += t
	}
	var pipe time.Duration
	for _, d := range lat {
		pipe += d
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		i := min(len(lat)-1, int(p*float64(len(lat))))
		return float64(lat[i].Microseconds()) / 1000
	}
	rep := benchReport{
		Frames: len(lat), FramesPerSecond: float64(len(lat)) / wall.Seconds(),
		P50MS: pct(0.50), P99MS: pct(0.99), Sessions: sessions,
	}
	if model > 0 {
		rep.OverheadRatio = float64(pipe) / float64(model)
	}
	if n := len(lat); n > 0 {
		rep.ModelMS = float64(model.Microseconds()) / 1000 / float64(n)
		rep.PipelineMS = float64(pipe.Microseconds()) / 1000 / float64(n)
		rep.StagesMS = map[string]float64{}
		for k, v := range stages {
			if k != "total" && v > 0 {
				rep.StagesMS[k] = math.Round(v/float64(n)*1000) / 1000
			}
		}
	}
	return rep, nil
}

func printBench(w io.Writer, r benchReport) {
	fmt.Fprintf(w, "frames %d  %.1f frames/s  p50 %.1f ms  p99 %.1f ms  (%d sessions × %d threads)\n",
		r.Frames, r.FramesPerSecond, r.P50MS, r.P99MS, r.Sessions, r.Threads)
	fmt.Fprintf(w, "per frame: pipeline %.1f ms, raw model Run %.1f ms, overhead ratio %.3f\n", r.PipelineMS, r.ModelMS, r.OverheadRatio)
	names := make([]string, 0, len(r.StagesMS))
	for k := range r.StagesMS {
		names = append(names, k)
	}
	sort.Strings(names)
	fmt.Fprint(w, "stages per frame:")
	for _, k := range names {
		fmt.Fprintf(w, " %s %.1f ms", k, r.StagesMS[k])
	}
	fmt.Fprintln(w)
}
