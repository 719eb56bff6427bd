package ort

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crossborder/offencecam/detector/imgproc"
	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/models"
)

func TestInitIdempotentAndExclusive(t *testing.T) {
	setup(t)
	if err := Init(libPath); err != nil {
		t.Fatalf("second Init with the same path: %v", err)
	}
	err := Init("/elsewhere/libonnxruntime.so")
	if err == nil || !strings.Contains(err.Error(), "already initialised") {
		t.Fatalf("Init with another path: %v", err)
	}
	if Version() == "" {
		t.Fatal("no version after Init")
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		mod   func(*Options)
		field string
	}{
		{func(o *Options) { o.IntraOpThreads = 0 }, "detector.runtime.intra_op_threads"},
		{func(o *Options) { o.InterOpThreads = -1 }, "detector.runtime.inter_op_threads"},
		{func(o *Options) { o.GraphOptLevel = "max" }, "detector.runtime.graph_opt_level"},
		{func(o *Options) { o.Provider = "tpu" }, "detector.runtime.provider"},
		{func(o *Options) { o.Provider = "cuda:x" }, "detector.runtime.provider"},
		{func(o *Options) { o.Provider = "cuda:-1" }, "detector.runtime.provider"},
	} {
		o := DefaultOptions()
		tc.mod(&o)
		err := o.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.field+":") {
			t.Errorf("%+v: error %v, want one naming %s", o, err, tc.field)
		}
	}
	for _, p := range []string{"cpu", "cuda", "cuda:0", "cuda:3"} {
		o := DefaultOptions()
		o.Provider = p
		if err := o.Validate(); err != nil {
			t.Errorf("provider %q: %v", p, err)
		}
	}
}

// yoloxBest is the best obj×class score of a vehicle class (car, bus, truck) over all cells.
func yoloxBest(out []float32) float32 {
	var best float32
	for i := 0; i+85 <= len(out); i += 85 {
		obj := out[i+4]
		for _, c := range []int{2, 5, 7} {
			best = max(best, obj*out[i+5+c])
		}
	}
	return best
}

func sharedJPEGs(t testing.TB) []string {
	dir := testenv.SharedPath(t, "data", "seatbelt-phone", "images")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".jpg") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out
}

// letterboxFile decodes an image and writes it into the session's input.
func letterboxFile(t testing.TB, s *Session, spec *models.Tensor, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := imgproc.Decode(data, imgproc.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := imgproc.Letterbox(m, s.InputFloat32(), spec); err != nil {
		t.Fatal(err)
	}
}

// Every shared image is a roadside photo of a car or bus front: YOLOX must see a vehicle in
// (nearly) all of them, and the output must have the documented shape.
func TestYOLOXOnRealImages(t *testing.T) {
	s := openModel(t, "yolox-nano", DefaultOptions())
	spec := yoloxManifest().Input
	imgs := sharedJPEGs(t)
	found := 0
	for _, p := range imgs {
		letterboxFile(t, s, spec, p)
		if err := s.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		out, shape := s.Output(0)
		if len(shape) != 3 || shape[0] != 1 || shape[1] != 3549 || shape[2] != 85 || len(out) != 3549*85 {
			t.Fatalf("output shape %v (%d values), want [1 3549 85]", shape, len(out))
		}
		for _, v := range out {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s: non-finite output", p)
			}
		}
		if yoloxBest(out) > 0.5 {
			found++
		}
	}
	if found < len(imgs)*8/10 {
		t.Fatalf("a vehicle scored > 0.5 in %d of %d images, want >= 80%%", found, len(imgs))
	}
	// A blank grey input has no vehicle: the scores depend on the input.
	in := s.InputFloat32()
	for i := range in {
		in[i] = 114
	}
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	out, _ := s.Output(0)
	if b := yoloxBest(out); b > 0.2 {
		t.Fatalf("blank input: best vehicle score %v", b)
	}
	if n, total := s.RunStats(); n != int64(len(imgs)+1) || total <= 0 {
		t.Fatalf("RunStats = %d, %v", n, total)
	}
}

func TestManifestMismatchNamesBoth(t *testing.T) {
	setup(t)
	path := testenv.ModelFile(t, "yolox_nano.onnx")
	for _, tc := range []struct {
		mod  func(m *models.Manifest)
		want string
	}{
		{func(m *models.Manifest) { m.Input.Shape = []int64{1, 3, 640, 640} },
			`model yolox-nano: input "images" shape [1 3 416 416] in the file, manifest says [1 3 640 640]`},
		{func(m *models.Manifest) { m.Input.Name = "input" },
			`model yolox-nano: input "images" in the file, manifest says "input"`},
		{func(m *models.Manifest) { m.Input.Type = "uint8" },
			`model yolox-nano: input "images" type float32 in the file, manifest says uint8`},
		{func(m *models.Manifest) { m.Outputs[0].Shape = []int64{1, 8400, 85} },
			`model yolox-nano: output "output" shape [1 3549 85] in the file, manifest says [1 8400 85]`},
		{func(m *models.Manifest) { m.Outputs[0].Name = "boxes" },
			`model yolox-nano: output "boxes" in the manifest is not in the file`},
		{func(m *models.Manifest) { m.Outputs = append(m.Outputs, f32("extra", 1)) },
			`model yolox-nano: 1 outputs ["output"] in the file, manifest lists 2`},
	} {
		m := yoloxManifest()
		tc.mod(m)
		s, err := NewSession(m, path, DefaultOptions())
		if err == nil {
			s.Close()
			t.Fatalf("accepted manifest, want %q", tc.want)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %q\nwant it to contain %q", err, tc.want)
		}
	}
	// A manifest may fix a dynamic axis of the file.
	rec := testModels()["ppocr-rec"]
	m := *rec.m
	in := *m.Input
	in.Shape = []int64{1, 3, 48, 320}
	m.Input = &in
	s, err := NewSession(&m, testenv.ModelFile(t, rec.file), DefaultOptions())
	if err != nil {
		t.Fatalf("narrowed dynamic axes: %v", err)
	}
	defer s.Close()
	if len(s.InputFloat32()) != 3*48*320 {
		t.Fatalf("narrowed input has %d values", len(s.InputFloat32()))
	}
	if err := s.SetInputShape(1, 3, 48, 160); err == nil {
		t.Fatal("a width the manifest fixed at 320 was accepted")
	}
}

// Dynamic models: tensors follow the input shape; the same shape again reuses them.
func TestDynamicShapesPaddleDet(t *testing.T) {
	s := openModel(t, "ppocr-det", DefaultOptions())
	if s.InputFloat32() != nil {
		t.Fatal("a dynamic model has an input before SetInputShape")
	}
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("Run without an input shape succeeded")
	}
	for _, hw := range [][2]int64{{96, 320}, {160, 224}} {
		if err := s.SetInputShape(1, 3, hw[0], hw[1]); err != nil {
			t.Fatal(err)
		}
		in := s.InputFloat32()
		if int64(len(in)) != 3*hw[0]*hw[1] {
			t.Fatalf("input has %d values for %v", len(in), hw)
		}
		if err := s.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		out, shape := s.Output(0)
		if len(shape) != 4 || shape[2] != hw[0] || shape[3] != hw[1] || int64(len(out)) != hw[0]*hw[1] {
			t.Fatalf("output shape %v for input %v", shape, hw)
		}
		first := &out[0]
		if err := s.SetInputShape(1, 3, hw[0], hw[1]); err != nil {
			t.Fatal(err)
		}
		if &s.InputFloat32()[0] != &in[0] {
			t.Fatal("same shape re-made the input tensor")
		}
		if err := s.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		out2, _ := s.Output(0)
		if &out2[0] != first {
			t.Fatal("same shape re-made the output tensor")
		}
	}
	if err := s.SetInputShape(1, 4, 32, 32); err == nil {
		t.Fatal("4 channels accepted for a 3-channel model")
	}
	if err := s.SetInputShape(1, 3, 32); err == nil {
		t.Fatal("3-axis shape accepted")
	}
}

func TestPaddleRecOutputLength(t *testing.T) {
	s := openModel(t, "ppocr-rec", DefaultOptions())
	if err := s.SetInputShape(1, 3, 48, 320); err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	out, shape := s.Output(0)
	// Softmax over 6625 classes per time step; PP-OCRv4 has W/8 steps.
	if len(shape) != 3 || shape[0] != 1 || shape[1] != 40 || shape[2] != 6625 {
		t.Fatalf("rec output shape %v", shape)
	}
	var sum float64
	for _, v := range out[:6625] {
		sum += float64(v)
	}
	if math.Abs(sum-1) > 1e-3 {
		t.Fatalf("first step sums to %v, want a softmax", sum)
	}
}

func TestFastPlateOCRBatchUint8(t *testing.T) {
	s := openModel(t, "fast-plate-ocr", DefaultOptions())
	if s.InputFloat32() != nil {
		t.Fatal("uint8 model exposes a float32 input")
	}
	for _, n := range []int64{1, 3} {
		if err := s.SetInputShape(n, 64, 128, 3); err != nil {
			t.Fatal(err)
		}
		in := s.InputUint8()
		if int64(len(in)) != n*64*128*3 {
			t.Fatalf("batch %d: input %d bytes", n, len(in))
		}
		for i := range in {
			in[i] = uint8(i * 7)
		}
		if err := s.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		out, shape := s.Output(0)
		if len(shape) != 3 || shape[0] != n || shape[1] != 9 || shape[2] != 37 || int64(len(out)) != n*9*37 {
			t.Fatalf("batch %d: output shape %v", n, shape)
		}
	}
}

func TestMultipleOutputsYuNetAndLPD(t *testing.T) {
	face := openModel(t, "yunet-face", DefaultOptions())
	if face.NumOutputs() != 12 || face.OutputName(0) != "cls_8" || face.OutputName(11) != "kps_32" {
		t.Fatalf("yunet outputs %d, first %q", face.NumOutputs(), face.OutputName(0))
	}
	if err := face.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]int64{{1, 6400, 1}, {1, 1600, 1}, {1, 400, 1}} {
		if _, shape := face.Output(i); !equal(shape, want) {
			t.Fatalf("yunet output %d shape %v, want %v", i, shape, want)
		}
	}
	if _, shape := face.Output(11); !equal(shape, []int64{1, 400, 10}) {
		t.Fatalf("kps_32 shape %v", shape)
	}
	if d, _ := face.Output(12); d != nil {
		t.Fatal("output 12 of 12 returned data")
	}
	lpd := openModel(t, "lpd-yunet", DefaultOptions())
	if err := lpd.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]int64{{4385, 14}, {4385, 2}, {4385, 1}} {
		if _, shape := lpd.Output(i); !equal(shape, want) {
			t.Fatalf("lpd output %d shape %v, want %v", i, shape, want)
		}
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The CPU build of ONNX Runtime has no CUDA: asking for it must fall back, say so once, and
// still run.
func TestCUDAFallsBackToCPUWithOneWarning(t *testing.T) {
	cudaWarnMu.Lock()
	cudaWarned = false
	cudaWarnMu.Unlock()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := DefaultOptions()
	opts.Provider = "cuda:0"
	a := openModel(t, "yolox-nano", opts, WithLogger(log))
	b := openModel(t, "lpd-yunet", opts, WithLogger(log))
	if a.Provider() != "cpu" || b.Provider() != "cpu" {
		t.Fatalf("providers %q, %q, want cpu fallback", a.Provider(), b.Provider())
	}
	if n := strings.Count(buf.String(), "CUDA execution provider unavailable, falling back to CPU"); n != 1 {
		t.Fatalf("%d warning lines, want 1:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "err=") {
		t.Fatalf("warning lacks level or error: %s", buf.String())
	}
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("run after fallback: %v", err)
	}
}

func TestRunStatsAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := NewMetrics(reg)
	if err != nil || m2.inference != m.inference {
		t.Fatalf("second NewMetrics on the same registry: %v", err)
	}
	s := openModel(t, "lpd-yunet", DefaultOptions(), WithMetrics(m))
	for i := 0; i < 3; i++ {
		if err := s.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	n, total := s.RunStats()
	if n != 3 || total <= 0 {
		t.Fatalf("RunStats = %d, %v", n, total)
	}
	h, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || h[0].GetName() != "offencecam_model_inference_seconds" || len(h[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v, want one offencecam_model_inference_seconds series", h)
	}
	got := h[0].GetMetric()[0]
	if got.GetHistogram().GetSampleCount() != 3 || got.GetLabel()[0].GetValue() != "lpd-yunet" {
		t.Fatalf("histogram %v", got)
	}
	s.ResetRunStats()
	if n, total := s.RunStats(); n != 0 || total != 0 {
		t.Fatalf("after reset: %d, %v", n, total)
	}
}

func TestRunCancelled(t *testing.T) {
	s := openModel(t, "lpd-yunet", DefaultOptions())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Run: %v", err)
	}
	// A live context with a cancel func: the terminate hook is armed and disarmed cleanly.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	for i := 0; i < 2; i++ {
		if err := s.Run(ctx2); err != nil {
			t.Fatalf("run %d with a live context: %v", i, err)
		}
	}
	if n, _ := s.RunStats(); n != 2 {
		t.Fatalf("%d runs counted, want 2 (the cancelled one must not count)", n)
	}
}

func TestClosedSession(t *testing.T) {
	s := openModel(t, "lpd-yunet", DefaultOptions())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("Run on a closed session succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestPoolConcurrentRuns(t *testing.T) {
	setup(t)
	tm := testModels()["lpd-yunet"]
	p, err := NewPool(2, tm.m, testenv.ModelFile(t, tm.file), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := p.Acquire(context.Background())
			if err != nil {
				errs <- err
				return
			}
			defer p.Release(s)
			errs <- s.Run(context.Background())
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := p.RunStats(); n != 8 {
		t.Fatalf("pool counted %d runs, want 8", n)
	}
	// With every session taken, Acquire waits until the context ends.
	a, _ := p.Acquire(context.Background())
	b, _ := p.Acquire(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire on an exhausted pool: %v", err)
	}
	p.Release(a)
	p.Release(b)
}

// Every model manifest of the built-in catalogue whose file is in the cache must load: its
// declared input and outputs match the real file.
func TestBuiltinManifestsMatchModelFiles(t *testing.T) {
	setup(t)
	cat, err := models.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range cat.Names() {
		m := cat[name]
		if m.Kind != models.KindModel || m.Input == nil {
			continue
		}
		path := filepath.Join(testenv.ModelCache(), m.ModelFile().Name)
		if _, err := os.Stat(path); err != nil {
			t.Logf("%s: %s not in the cache, skipped", name, path)
			continue
		}
		s, err := NewSession(m, path, DefaultOptions())
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		s.Close()
		checked++
	}
	if checked == 0 {
		t.Fatal("no built-in model manifest checked")
	}
}

// A deadline that passes during a Run terminates it; the next Run is not affected.
func TestRunTerminatedMidway(t *testing.T) {
	s := openModel(t, "ppocr-det", DefaultOptions())
	if err := s.SetInputShape(1, 3, 960, 960); err != nil { // ~100 ms or more per Run
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	err := s.Run(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run past its deadline: %v", err)
	}
	// The error carries ONNX Runtime's own message: the run was stopped inside ORT.
	if !strings.Contains(strings.ToLower(err.Error()), "terminate") {
		t.Fatalf("error %q does not come from a terminated run", err)
	}
	if err := s.Run(context.Background()); err != nil {
		t.Fatalf("Run after a terminated one: %v", err)
	}
	if n, _ := s.RunStats(); n != 1 {
		t.Fatalf("%d runs counted, want 1", n)
	}
}
