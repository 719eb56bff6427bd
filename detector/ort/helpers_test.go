package ort

import (
	"sync"
	"testing"

	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/models"
)

var (
	initOnce sync.Once
	initErr  error
	libPath  string
)

// setup initialises ONNX Runtime from the model cache once for the test binary.
func setup(t testing.TB) {
	t.Helper()
	p := testenv.ModelFile(t, "libonnxruntime.so.1")
	initOnce.Do(func() {
		libPath = p
		initErr = Init(p)
	})
	if initErr != nil {
		t.Fatalf("ort.Init(%s): %v", p, initErr)
	}
}

// Test manifests, written from ../shared/models/MODELS.md (what GetInputOutputInfo reports
// for each file), so these tests do not depend on the built-in catalogue being complete.
// TestBuiltinManifestsMatchModelFiles checks the catalogue's own manifests.

type testModel struct {
	file string
	m    *models.Manifest
}

func f32(name string, shape ...int64) models.Tensor {
	return models.Tensor{Name: name, Type: "float32", Shape: shape}
}

func yoloxManifest() *models.Manifest {
	return &models.Manifest{Name: "yolox-nano", Version: "test", Kind: models.KindModel, Task: models.TaskDetect,
		Input: &models.Tensor{Name: "images", Type: "float32", Shape: []int64{1, 3, 416, 416}, Layout: "NCHW",
			ColorOrder: "BGR", Scale: 1, Resize: "letterbox", PadValue: 114},
		Outputs: []models.Tensor{f32("output", 1, 3549, 85)},
		Decoder: &models.Decoder{Type: models.DecoderYOLOX}}
}

func testModels() map[string]testModel {
	yunetOuts := []models.Tensor{}
	for _, kind := range []struct {
		name string
		w    int64
	}{{"cls", 1}, {"obj", 1}, {"bbox", 4}, {"kps", 10}} {
		for _, s := range []struct {
			stride string
			n      int64
		}{{"8", 6400}, {"16", 1600}, {"32", 400}} {
			yunetOuts = append(yunetOuts, f32(kind.name+"_"+s.stride, 1, s.n, kind.w))
		}
	}
	return map[string]testModel{
		"yolox-nano": {"yolox_nano.onnx", yoloxManifest()},
		"ppocr-det": {"ch_PP-OCRv4_det_infer.onnx", &models.Manifest{Name: "ppocr-det", Version: "test",
			Input: &models.Tensor{Name: "x", Type: "float32", Shape: []int64{-1, 3, -1, -1}, Layout: "NCHW",
				ColorOrder: "BGR", Scale: 1.0 / 255, Mean: []float64{0.485, 0.456, 0.406}, Std: []float64{0.229, 0.224, 0.225}, Resize: "stretch"},
			Outputs: []models.Tensor{f32("sigmoid_0.tmp_0", -1, 1, -1, -1)}}},
		"ppocr-rec": {"ch_PP-OCRv4_rec_infer.onnx", &models.Manifest{Name: "ppocr-rec", Version: "test",
			Input: &models.Tensor{Name: "x", Type: "float32", Shape: []int64{-1, 3, 48, -1}, Layout: "NCHW",
				ColorOrder: "BGR", Scale: 1.0 / 255, Mean: []float64{0.5}, Std: []float64{0.5}, Resize: "keep-ratio-pad"},
			Outputs: []models.Tensor{f32("softmax_11.tmp_0", -1, -1, 6625)}}},
		"fast-plate-ocr": {"cct_xs_v1_global.onnx", &models.Manifest{Name: "fast-plate-ocr", Version: "test",
			Input: &models.Tensor{Name: "input", Type: "uint8", Shape: []int64{-1, 64, 128, 3}, Layout: "NHWC",
				ColorOrder: "RGB", Resize: "stretch"},
			Outputs: []models.Tensor{f32("Identity:0", -1, 9, 37)}}},
		"lpd-yunet": {"license_plate_detection_lpd_yunet_2023mar.onnx", &models.Manifest{Name: "lpd-yunet", Version: "test",
			Input:   &models.Tensor{Name: "input", Type: "float32", Shape: []int64{1, 3, 240, 320}, Layout: "NCHW", ColorOrder: "BGR", Resize: "stretch"},
			Outputs: []models.Tensor{f32("loc", 4385, 14), f32("conf", 4385, 2), f32("iou", 4385, 1)}}},
		"yunet-face": {"face_detection_yunet_2023mar.onnx", &models.Manifest{Name: "yunet-face", Version: "test",
			Input:   &models.Tensor{Name: "input", Type: "float32", Shape: []int64{1, 3, 640, 640}, Layout: "NCHW", ColorOrder: "BGR", Resize: "letterbox"},
			Outputs: yunetOuts}},
	}
}

// openModel creates a session of one test model with opts.
func openModel(t testing.TB, name string, opts Options, so ...SessionOption) *Session {
	t.Helper()
	setup(t)
	tm, ok := testModels()[name]
	if !ok {
		t.Fatalf("no test model %q", name)
	}
	s, err := NewSession(tm.m, testenv.ModelFile(t, tm.file), opts, so...)
	if err != nil {
		t.Fatalf("NewSession(%s): %v", name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
