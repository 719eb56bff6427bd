package worker

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crossborder/offencecam/detector"
	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/pipeline"
)

// workAnalyzer stands in for the models with a fixed CPU cost per frame (hashing the image
// `rounds` times) and flags by hash parity, so half the passages write evidence. With the
// stage graph in place, benchAnalyzerFactory switches to it.
type workAnalyzer struct {
	rounds int
	calls  *atomic.Int64
}

func (a workAnalyzer) Analyze(ctx context.Context, views []detector.View) (detector.Result, error) {
	a.calls.Add(1)
	flagged := false
	for _, v := range views {
		var sum [32]byte
		for range a.rounds {
			sum = sha256.Sum256(v.Data)
		}
		flagged = flagged || sum[0]%2 == 0
	}
	return testResult(views, flagged), nil
}

func benchImages(b *testing.B) [][]byte {
	dir := testenv.SharedPath(b, "data", "seatbelt-phone", "images")
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(strings.ToLower(e.Name()), ".jpg") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	names = names[:min(len(names), 32)]
	out := make([][]byte, len(names))
	for i, n := range names {
		if out[i], err = os.ReadFile(filepath.Join(dir, n)); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// BenchmarkDetect compares, on the same images and analyser in one run, analyse-only
// throughput (Concurrency analysers fed from memory) with FRAMES → worker → DETECTIONS
// (object store reads, evidence writes, publishes, deletes, acks). overhead_% is what
// queueing and storage cost on top of the analysis.
func BenchmarkDetect(b *testing.B) {
	imgs := benchImages(b)
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer slog.SetDefault(prev)
	const rounds = 150 // about 10 ms of CPU per 70 kB frame
	conc := 2

	var analyseFPS float64
	b.Run("analyse-only", func(b *testing.B) {
		var calls atomic.Int64
		var next atomic.Int64
		start := time.Now()
		var wg sync.WaitGroup
		for range conc {
			wg.Go(func() {
				a := workAnalyzer{rounds: rounds, calls: &calls}
				for {
					i := next.Add(1) - 1
					if i >= int64(b.N) {
						return
					}
					v := detector.View{Frame: pipeline.Frame{ID: fmt.Sprint(i), View: pipeline.ViewFront}, Data: imgs[i%int64(len(imgs))]}
					if _, err := a.Analyze(context.Background(), []detector.View{v}); err != nil {
						b.Error(err)
					}
				}
			})
		}
		wg.Wait()
		analyseFPS = float64(b.N) / time.Since(start).Seconds()
		b.ReportMetric(analyseFPS, "frames/s")
	})

	b.Run("frames-to-detections", func(b *testing.B) {
		e := newEnv(b, false)
		cfg := testConfig()
		cfg.Concurrency = conc
		cfg.DefaultExpectedViews = 1
		cfg.ExpectedViews = nil
		var calls atomic.Int64
		b.StopTimer()
		for i := range b.N {
			e.putFrame(b, "bench", fmt.Sprintf("p%06d", i), pipeline.ViewFront, imgs[i%len(imgs)])
		}
		b.StartTimer()
		start := time.Now()
		r := e.start(b, cfg, func() (detector.Analyzer, error) { return workAnalyzer{rounds: rounds, calls: &calls}, nil })
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for e.streamCount(b, pipeline.StreamFrames) > 0 {
			<-tick.C
		}
		el := time.Since(start)
		b.StopTimer()
		_ = r.stop()
		fps := float64(b.N) / el.Seconds()
		b.ReportMetric(fps, "frames/s")
		if analyseFPS > 0 {
			b.ReportMetric(100*(analyseFPS-fps)/analyseFPS, "overhead_%")
		}
	})
}
