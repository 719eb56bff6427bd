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
	dto "github.com/prometheus/client_model/go"
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
// queueing and storage cost on top of the analysis. "work" is a fixed CPU cost per frame,
// "real" the stage graph on the model cache (skipped without it).
func BenchmarkDetect(b *testing.B) {
	imgs := benchImages(b)
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer slog.SetDefault(prev)
	const conc = 2

	b.Run("work", func(b *testing.B) {
		const rounds = 150 // about 10 ms of CPU per 70 kB frame
		benchPair(b, imgs, conc, func(calls *atomic.Int64) func() (detector.Analyzer, error) {
			return func() (detector.Analyzer, error) { return workAnalyzer{rounds: rounds, calls: calls}, nil }
		})
	})
	b.Run("real", func(b *testing.B) {
		f := realFactory(b)
		benchPair(b, imgs, conc, func(calls *atomic.Int64) func() (detector.Analyzer, error) {
			return countingFactory(f, calls)
		})
	})
}

// warmed makes every analyser run a few frames before it is handed out (the first runs of an
// ONNX session allocate its arenas) and records when the last one was ready.
func warmed(f func() (detector.Analyzer, error), imgs [][]byte, ready *atomic.Int64) func() (detector.Analyzer, error) {
	return func() (detector.Analyzer, error) {
		a, err := f()
		if err != nil {
			return nil, err
		}
		for i := range min(3, len(imgs)) {
			fr := pipeline.Frame{V: 1, ID: "warm", Key: "warm", View: pipeline.ViewFront, Camera: "bench", PassageID: "warm"}
			if _, err := a.Analyze(context.Background(), []detector.View{{Frame: fr, Data: imgs[i]}}); err != nil {
				return nil, err
			}
		}
		ready.Store(time.Now().UnixNano())
		return a, nil
	}
}

func benchPair(b *testing.B, imgs [][]byte, conc int, mk0 func(*atomic.Int64) func() (detector.Analyzer, error)) {
	var readyAt atomic.Int64
	mk := func(calls *atomic.Int64) func() (detector.Analyzer, error) {
		return warmed(mk0(calls), imgs, &readyAt)
	}
	var analyseFPS float64
	b.Run("analyse-only", func(b *testing.B) {
		var calls, next atomic.Int64
		factory := mk(&calls)
		as := make([]detector.Analyzer, conc)
		for i := range as {
			a, err := factory()
			if err != nil {
				b.Fatal(err)
			}
			as[i] = a
		}
		defer func() {
			for _, a := range as {
				if c, ok := a.(interface{ Close() error }); ok {
					c.Close()
				}
			}
		}()
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for _, a := range as {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(b.N) {
						return
					}
					f := pipeline.Frame{V: 1, ID: fmt.Sprint(i), Key: fmt.Sprint(i), View: pipeline.ViewFront, Camera: "bench", PassageID: fmt.Sprint(i)}
					if _, err := a.Analyze(context.Background(), []detector.View{{Frame: f, Data: imgs[i%int64(len(imgs))]}}); err != nil {
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
		cfg.AckWait = time.Minute
		var calls atomic.Int64
		b.StopTimer()
		for i := range b.N {
			e.putFrame(b, "bench", fmt.Sprintf("p%06d", i), pipeline.ViewFront, imgs[i%len(imgs)])
		}
		// The worker starts fetching right after its analysers are made (and warmed): the
		// clock runs from there to the last frame acked.
		b.StartTimer()
		r := e.start(b, cfg, mk(&calls))
		// Polled on the worker's own counters: a JetStream request per poll would cost the
		// CPU being measured.
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for done := 0.0; done < float64(b.N); <-tick.C {
			done = 0
			for _, res := range []string{resultFlagged, resultClean, resultFailed, resultMissing} {
				var m dto.Metric
				_ = r.w.m.frames.WithLabelValues(res).Write(&m)
				done += m.GetCounter().GetValue()
			}
		}
		el := time.Since(time.Unix(0, readyAt.Load()))
		b.StopTimer()
		_ = r.stop()
		fps := float64(b.N) / el.Seconds()
		b.ReportMetric(fps, "frames/s")
		if analyseFPS > 0 {
			b.ReportMetric(100*(analyseFPS-fps)/analyseFPS, "overhead_%")
		}
		b.ReportMetric(counter(b, r.reg, "offencecam_detector_frames_total", map[string]string{"result": "flagged"}), "flagged")
		if failed := counter(b, r.reg, "offencecam_detector_frames_total", map[string]string{"result": "failed"}); failed > 0 || calls.Load() < int64(b.N) {
			b.Fatalf("%v frames failed, %d of %d analysed", failed, calls.Load(), b.N)
		}
	})
}
