package models_test

import (
	"fmt"
	"os"
	"slices"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/models"
)

var ortTypes = map[ort.TensorElementDataType]string{
	ort.TensorElementDataTypeFloat:   "float32",
	ort.TensorElementDataTypeFloat16: "float16",
	ort.TensorElementDataTypeUint8:   "uint8",
	ort.TensorElementDataTypeInt8:    "int8",
	ort.TensorElementDataTypeInt32:   "int32",
	ort.TensorElementDataTypeInt64:   "int64",
	ort.TensorElementDataTypeBool:    "bool",
}

// Every builtin model's input and outputs are exactly what ONNX Runtime reports for the cached
// file: name, element type and shape (-1 for dynamic axes), in order. The detector relies on
// the manifest to build tensors before it opens a session.
func TestBuiltinTensorSpecsMatchONNXRuntime(t *testing.T) {
	lib := models.LibraryPath(testenv.ModelCache())
	if _, err := os.Stat(lib); err != nil {
		testenv.Missing(t, "ONNX Runtime library %s; run `make models`: %v", lib, err)
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(); err != nil {
		t.Fatalf("ONNX Runtime: %v", err)
	}
	defer ort.DestroyEnvironment()
	cat, err := models.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range cat.Names() {
		m := cat[name]
		if m.Kind != models.KindModel {
			continue
		}
		t.Run(name, func(t *testing.T) {
			path := testenv.ModelFile(t, m.ModelFile().Name)
			ins, outs, err := ort.GetInputOutputInfo(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(ins) != 1 {
				t.Fatalf("model has %d inputs; the manifest schema describes one", len(ins))
			}
			check := func(what string, spec models.Tensor, got ort.InputOutputInfo) {
				t.Helper()
				want := fmt.Sprintf("%s %s %v", spec.Name, spec.Type, spec.Shape)
				have := fmt.Sprintf("%s %s %v", got.Name, ortTypes[got.DataType], []int64(got.Dimensions))
				if want != have {
					t.Errorf("%s: manifest says %q, ONNX Runtime reports %q", what, want, have)
				}
			}
			check("input", *m.Input, ins[0])
			if len(outs) != len(m.Outputs) {
				t.Fatalf("model has %d outputs, manifest %d", len(outs), len(m.Outputs))
			}
			for i := range outs {
				check(fmt.Sprintf("outputs[%d]", i), m.Outputs[i], outs[i])
			}
			if ch := channelsOf(*m.Input); ch > 0 && len(m.Input.Mean) > 0 && len(m.Input.Mean) != ch {
				t.Errorf("input mean has %d values for %d channels", len(m.Input.Mean), ch)
			}
		})
	}
}

func channelsOf(in models.Tensor) int {
	if len(in.Shape) != 4 {
		return 0
	}
	i := slices.Index([]string{"NCHW", "NHWC"}, in.Layout)
	if i < 0 {
		return 0
	}
	return int(in.Shape[[]int{1, 3}[i]])
}
