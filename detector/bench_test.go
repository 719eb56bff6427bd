package detector

import (
	"context"
	"image"
	"runtime"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/crossborder/offencecam/detector/imgproc"
	"github.com/crossborder/offencecam/internal/testenv"
)

// frameOf is a real roadside photo resized to w×h and JPEG-encoded.
func frameOf(b testing.TB, w, h int) []byte {
	b.Helper()
	src := readFile(b, testenv.SharedPath(b, "data", "plates", "wts-lg-000013.jpg"))
	m, _, err := imgproc.Decode(src, imgproc.DecodeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	d := gocv.NewMat()
	defer d.Close()
	gocv.Resize(m, &d, image.Pt(w, h), 0, 0, gocv.InterpolationCubic)
	out, err := imgproc.EncodeJPEG(d, 92)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// frame1080 is a real roadside photo resized to 1920×1080 and JPEG-encoded (the shared sets
// hold no full-HD frame).
func frame1080(b testing.TB) []byte { return frameOf(b, 1920, 1080) }

// benchAnalyze runs full analyses and reports the overhead ratio: pipeline time over the raw
// model Run time of the same analyses.
func benchAnalyze(b *testing.B, g *Graph, images [][]byte) {
	ctx := context.Background()
	for i := range min(3, len(images)) { // warm-up
		if _, err := g.Analyze(ctx, []View{{Data: images[i]}}); err != nil {
			b.Fatal(err)
		}
	}
	g.ResetRunStats()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := g.Analyze(ctx, []View{{Data: images[i%len(images)]}}); err != nil {
			b.Fatal(err)
		}
	}
	total := time.Since(start)
	b.StopTimer()
	_, model := g.RunStats()
	if model > 0 {
		b.ReportMetric(float64(total)/float64(model), "overhead_ratio")
		b.ReportMetric(float64(model.Microseconds())/1000/float64(b.N), "model_ms/op")
	}
}

func BenchmarkAnalyze(b *testing.B) {
	g := newTestGraph(b, DefaultConfig())
	b.Run("1920x1080", func(b *testing.B) { benchAnalyze(b, g, [][]byte{frame1080(b)}) })
	b.Run("shared-plates", func(b *testing.B) {
		var imgs [][]byte
		for _, p := range sharedImages(b, "data", "plates") {
			imgs = append(imgs, readFile(b, p))
		}
		benchAnalyze(b, g, imgs)
	})
	b.Run("shared-seatbelt-phone", func(b *testing.B) {
		var imgs [][]byte
		for _, p := range sharedImages(b, "data", "seatbelt-phone", "images") {
			imgs = append(imgs, readFile(b, p))
		}
		benchAnalyze(b, g, imgs)
	})
}

// BenchmarkAnalyzeParallel keeps both cores busy with one graph per goroutine, as the
// worker does; -cpu 2 with GOMAXPROCS-many graphs.
func BenchmarkAnalyzeParallel(b *testing.B) {
	data := frame1080(b)
	factory, err := NewFactory(DefaultConfig(), testenv.ModelCache())
	if err != nil {
		b.Fatal(err)
	}
	// One graph per goroutine, made (and warmed up) before the clock starts.
	n := runtime.GOMAXPROCS(0)
	graphs := make(chan *Graph, n)
	for range n {
		a, err := factory()
		if err != nil {
			b.Fatal(err)
		}
		g := a.(*Graph)
		defer g.Close()
		if _, err := g.Analyze(context.Background(), []View{{Data: data}}); err != nil {
			b.Fatal(err)
		}
		graphs <- g
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := <-graphs
		for pb.Next() {
			if _, err := g.Analyze(context.Background(), []View{{Data: data}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkModelRun is the time of each model's raw Run on the 1920×1080 frame's inputs.
func BenchmarkModelRun(b *testing.B) {
	g := newTestGraph(b, DefaultConfig())
	data := frame1080(b)
	res, err := g.Analyze(context.Background(), []View{{Data: data}})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("stage ms: %v", res.Detection.TimingsMS)
	for _, md := range g.all {
		if md.s.InputShape() == nil {
			continue // not run on this frame
		}
		b.Run(md.role+"/"+md.m.Name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := md.s.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecode: full vs reduced decode of a 1920×1080 and a 3840×2160 (8.3 MP) JPEG, as
// the graph does them for the scene model.
func BenchmarkDecode(b *testing.B) {
	for _, c := range []struct {
		name   string
		data   []byte
		reduce int
	}{
		{"1920x1080/full", frame1080(b), 1}, {"1920x1080/reduced2", frame1080(b), 2},
		{"3840x2160/full", frameOf(b, 3840, 2160), 1}, {"3840x2160/reduced4", frameOf(b, 3840, 2160), 4},
	} {
		data, r := c.data, c.reduce
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				m, _, err := imgproc.Decode(data, imgproc.DecodeOptions{Reduce: r})
				if err != nil {
					b.Fatal(err)
				}
				m.Close()
			}
		})
	}
}

// BenchmarkOccupant: the occupant classifier's cost per vehicle (crop, flip where needed,
// resize, run) for the driver (the default) and with detector.judge_passenger, against one
// run of the scene model in the same process: `scene_ratio` is occupant time ÷ scene time
// (the budget is 5 ms per vehicle).
func BenchmarkOccupant(b *testing.B) {
	g := newTestGraph(b, DefaultConfig())
	if g.occupant == nil {
		b.Fatal("the default graph has no occupant classifier")
	}
	data := readFile(b, sharedImages(b, "data", "seatbelt-phone", "images")[0])
	res, _, err := g.AnalyzeDetailed(context.Background(), []View{{Data: data}}, AnalyzeOptions{NoRender: true})
	if err != nil {
		b.Fatal(err)
	}
	if len(res.Detection.Vehicles) == 0 || res.Detection.Vehicles[0].Driver == nil {
		b.Fatal("no vehicle with a driver in the benchmark frame")
	}
	veh := res.Detection.Vehicles[0]
	full, _, err := imgproc.Decode(data, imgproc.DecodeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer full.Close()
	ctx := context.Background()
	timeScene := func(n int) time.Duration {
		start := time.Now()
		for range n {
			if err := g.scene.s.Run(ctx); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start) / time.Duration(n)
	}
	for _, c := range []struct {
		name  string
		seats []imgproc.Box
	}{
		{"driver", []imgproc.Box{fromPBox(*veh.Driver)}},
		{"driver+passenger", []imgproc.Box{fromPBox(*veh.Driver), fromPBox(*veh.Passenger)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			start := time.Now()
			for i := 0; i < b.N; i++ {
				for j, s := range c.seats {
					if _, err := g.occupant.classify(ctx, full, s, j == 1); err != nil {
						b.Fatal(err)
					}
				}
			}
			perVehicle := time.Since(start) / time.Duration(b.N)
			b.StopTimer()
			scene := timeScene(max(5, min(b.N, 50)))
			b.ReportMetric(float64(perVehicle.Microseconds())/1000, "ms/vehicle")
			b.ReportMetric(float64(scene.Microseconds())/1000, "scene_ms")
			b.ReportMetric(float64(perVehicle)/float64(scene), "scene_ratio")
		})
	}
}
