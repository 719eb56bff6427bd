package cudacheck

import (
	"context"
	"fmt"
	"math"
	"os"
	"testing"
	"time"

	. "github.com/crossborder/offencecam/detector/ort"
	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/models"
)

// Package cudacheck holds the GPU check of detector/ort in a test binary that links nothing
// but ONNX Runtime (no OpenCV), so it can be carried to a GPU machine that lacks OpenCV.

func setup(t testing.TB) {
	t.Helper()
	if err := Init(os.Getenv("OFFENCECAM_TEST_ORT_LIB")); err != nil {
		t.Fatalf("ort.Init: %v", err)
	}
}

type testModel struct {
	name, file string
	m          *models.Manifest
}

// testModels are the built-in manifests of the models the stage graph runs.
func testModels(t testing.TB) map[string]testModel {
	cat, err := models.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]testModel{}
	for key, name := range map[string]string{"yolox-nano": "yolox-nano", "ppocr-det": "paddleocr-det",
		"ppocr-rec": "paddleocr-rec", "fast-plate-ocr": "fast-plate-ocr", "lpd-yunet": "lpd-yunet", "yunet-face": "yunet-face"} {
		m := cat[name]
		if m == nil {
			t.Fatalf("no built-in manifest %s", name)
		}
		out[key] = testModel{name: name, file: m.ModelFile().Name, m: m}
	}
	return out
}

// The CUDA path can only run where a GPU and the GPU build of ONNX Runtime are: opt in with
// OFFENCECAM_TEST_CUDA=1 and OFFENCECAM_TEST_ORT_LIB=<GPU libonnxruntime.so> (CUDA and cuDNN
// libraries on LD_LIBRARY_PATH). Everywhere else the CPU fallback test covers the path.
func cudaWanted(t testing.TB) {
	if os.Getenv("OFFENCECAM_TEST_CUDA") != "1" {
		t.Skip("GPU check: set OFFENCECAM_TEST_CUDA=1 and OFFENCECAM_TEST_ORT_LIB on a GPU machine")
	}
}

var cudaShapes = map[string][]int64{
	"ppocr-det":      {1, 3, 192, 608},
	"ppocr-rec":      {1, 3, 48, 320},
	"fast-plate-ocr": {1, 64, 128, 3},
}

func fillPattern(s *Session) {
	for i := range s.InputFloat32() {
		s.InputFloat32()[i] = float32((i*7919)%255) / 255 * 200
	}
	for i := range s.InputUint8() {
		s.InputUint8()[i] = uint8((i * 7919) % 255)
	}
}

// TestCUDASessionsMatchCPU runs every model on the GPU and on the CPU with the same input and
// requires the CUDA provider to be really in use and the outputs to agree.
func TestCUDASessionsMatchCPU(t *testing.T) {
	cudaWanted(t)
	setup(t)
	ctx := context.Background()
	for _, name := range []string{"yolox-nano", "ppocr-det", "ppocr-rec", "fast-plate-ocr", "lpd-yunet", "yunet-face"} {
		t.Run(name, func(t *testing.T) {
			tm := testModels(t)[name]
			gpuOpts := DefaultOptions()
			gpuOpts.Provider = "cuda:0"
			gpu, err := NewSession(tm.m, testenv.ModelFile(t, tm.file), gpuOpts)
			if err != nil {
				t.Fatal(err)
			}
			defer gpu.Close()
			if gpu.Provider() != "cuda:0" {
				t.Fatalf("provider %q, want cuda:0 (the fallback was taken)", gpu.Provider())
			}
			cpu, err := NewSession(tm.m, testenv.ModelFile(t, tm.file), DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			defer cpu.Close()
			for _, s := range []*Session{gpu, cpu} {
				if sh, ok := cudaShapes[name]; ok {
					if err := s.SetInputShape(sh...); err != nil {
						t.Fatal(err)
					}
				}
				fillPattern(s)
				if err := s.Run(ctx); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < gpu.NumOutputs(); i++ {
				g, _ := gpu.Output(i)
				c, _ := cpu.Output(i)
				if len(g) != len(c) {
					t.Fatalf("output %d: %d values on GPU, %d on CPU", i, len(g), len(c))
				}
				var maxDiff, maxAbs float64
				for j := range g {
					maxDiff = math.Max(maxDiff, math.Abs(float64(g[j]-c[j])))
					maxAbs = math.Max(maxAbs, math.Abs(float64(c[j])))
				}
				if maxDiff > 1e-2*math.Max(1, maxAbs) {
					t.Fatalf("output %d (%s): GPU and CPU differ by %g (largest value %g)", i, gpu.OutputName(i), maxDiff, maxAbs)
				}
				t.Logf("%s output %s: max |gpu-cpu| = %.2g", name, gpu.OutputName(i), maxDiff)
			}
			// Time both after warm-up, in one run, for the note.
			timeIt := func(s *Session) time.Duration {
				const n = 50
				start := time.Now()
				for k := 0; k < n; k++ {
					if err := s.Run(ctx); err != nil {
						t.Fatal(err)
					}
				}
				return time.Since(start) / n
			}
			dg, dc := timeIt(gpu), timeIt(cpu)
			t.Logf("%s: GPU %v/run, CPU (1 thread) %v/run, ratio %.1fx", name, dg, dc, float64(dc)/float64(dg))
			fmt.Printf("CUDA %s gpu_ms=%.3f cpu1_ms=%.3f\n", name, dg.Seconds()*1e3, dc.Seconds()*1e3)
		})
	}
}
