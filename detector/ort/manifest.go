package ort

import (
	"fmt"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/crossborder/offencecam/models"
)

// elemType maps a manifest type name to ONNX Runtime's element type.
func elemType(s string) (onnx.TensorElementDataType, bool) {
	switch s {
	case "float32", "float":
		return onnx.TensorElementDataTypeFloat, true
	case "uint8":
		return onnx.TensorElementDataTypeUint8, true
	case "int64":
		return onnx.TensorElementDataTypeInt64, true
	}
	return 0, false
}

func typeName(t onnx.TensorElementDataType) string {
	switch t {
	case onnx.TensorElementDataTypeFloat:
		return "float32"
	case onnx.TensorElementDataTypeUint8:
		return "uint8"
	case onnx.TensorElementDataTypeInt64:
		return "int64"
	}
	return t.String()
}

// checkTensor compares one tensor of the file with the manifest. A manifest may fix an axis
// the file leaves dynamic (e.g. a recogniser's width); any other difference is an error, since
// a model run with the wrong preprocessing gives confident garbage rather than an error.
func checkTensor(model, kind string, file onnx.InputOutputInfo, man models.Tensor) (tensorSpec, error) {
	if file.OrtValueType != onnx.ONNXTypeTensor {
		return tensorSpec{}, fmt.Errorf("model %s: %s %q is a %s in the file, not a tensor", model, kind, file.Name, file.OrtValueType)
	}
	want, ok := elemType(man.Type)
	if !ok {
		return tensorSpec{}, fmt.Errorf("model %s: %s %q: manifest type %q is not float32, uint8 or int64", model, kind, man.Name, man.Type)
	}
	if file.DataType != want {
		return tensorSpec{}, fmt.Errorf("model %s: %s %q type %s in the file, manifest says %s", model, kind, file.Name, typeName(file.DataType), man.Type)
	}
	mismatch := len(file.Dimensions) != len(man.Shape)
	shape := make(onnx.Shape, len(man.Shape))
	for i := 0; !mismatch && i < len(man.Shape); i++ {
		f, m := file.Dimensions[i], man.Shape[i]
		switch {
		case f == m:
		case f < 0 && m > 0: // the manifest narrows a dynamic axis
		default:
			mismatch = true
		}
		shape[i] = m
	}
	if mismatch {
		return tensorSpec{}, fmt.Errorf("model %s: %s %q shape %v in the file, manifest says %v", model, kind, file.Name, []int64(file.Dimensions), man.Shape)
	}
	return tensorSpec{name: file.Name, dtype: want, shape: shape}, nil
}

// checkManifest checks the file's inputs and outputs against the manifest and returns them in
// manifest order (Output(i) follows the manifest's outputs list).
func checkManifest(m *models.Manifest, inInfo, outInfo []onnx.InputOutputInfo) (tensorSpec, []tensorSpec, error) {
	if len(inInfo) != 1 {
		names := make([]string, len(inInfo))
		for i, in := range inInfo {
			names[i] = in.Name
		}
		return tensorSpec{}, nil, fmt.Errorf("model %s: the file has %d inputs %q, only single-input models are supported", m.Name, len(inInfo), names)
	}
	if inInfo[0].Name != m.Input.Name {
		return tensorSpec{}, nil, fmt.Errorf("model %s: input %q in the file, manifest says %q", m.Name, inInfo[0].Name, m.Input.Name)
	}
	in, err := checkTensor(m.Name, "input", inInfo[0], *m.Input)
	if err != nil {
		return tensorSpec{}, nil, err
	}
	if in.dtype != onnx.TensorElementDataTypeFloat && in.dtype != onnx.TensorElementDataTypeUint8 {
		return tensorSpec{}, nil, fmt.Errorf("model %s: input %q: type %s is not supported (float32, uint8)", m.Name, in.name, typeName(in.dtype))
	}
	fileOuts := map[string]onnx.InputOutputInfo{}
	fileNames := make([]string, len(outInfo))
	for i, o := range outInfo {
		fileOuts[o.Name] = o
		fileNames[i] = o.Name
	}
	manOuts := m.Outputs
	if len(manOuts) == 0 {
		return tensorSpec{}, nil, fmt.Errorf("model %s: manifest lists no outputs; the file has %q", m.Name, fileNames)
	}
	if len(manOuts) != len(outInfo) {
		return tensorSpec{}, nil, fmt.Errorf("model %s: %d outputs %q in the file, manifest lists %d", m.Name, len(outInfo), fileNames, len(manOuts))
	}
	outs := make([]tensorSpec, len(manOuts))
	for i, mo := range manOuts {
		fo, ok := fileOuts[mo.Name]
		if !ok {
			return tensorSpec{}, nil, fmt.Errorf("model %s: output %q in the manifest is not in the file (it has %q)", m.Name, mo.Name, fileNames)
		}
		spec, err := checkTensor(m.Name, "output", fo, mo)
		if err != nil {
			return tensorSpec{}, nil, err
		}
		if spec.dtype != onnx.TensorElementDataTypeFloat {
			return tensorSpec{}, nil, fmt.Errorf("model %s: output %q: type %s is not supported (float32)", m.Name, mo.Name, typeName(spec.dtype))
		}
		outs[i] = spec
	}
	return in, outs, nil
}
