package models_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/crossborder/offencecam/models"
)

const validManifest = `
name: tiny
version: "1"
kind: model
task: detect
licence: MIT
files:
  - name: tiny.onnx
    sha256: 0000000000000000000000000000000000000000000000000000000000000000
    sources:
      - mirror: tiny.onnx
      - npm: {package: "@acme/models", version: "1.2.3", path: package/tiny.onnx}
      - url: https://example.org/tiny.tgz
        path: tiny/tiny.onnx
input: {name: images, type: float32, shape: [1, 3, 32, 32], layout: NCHW, color_order: BGR, mean: [0, 0, 0], std: [1, 1, 1]}
outputs:
  - {name: out, type: float32, shape: [1, -1, 6]}
decoder: {type: yolox, params: {strides: [8]}}
classes:
  - {id: 0, name: person, role: person}
  - {id: 1, name: car, role: vehicle}
thresholds: {score: 0.3, nms: 0.45}
`

func TestParseValid(t *testing.T) {
	m, err := models.Parse([]byte(validManifest))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "tiny" || m.ModelFile().Name != "tiny.onnx" || m.Input.Shape[3] != 32 {
		t.Fatalf("parsed wrongly: %+v", m)
	}
	if got := m.ClassesWithRole(models.RoleVehicle); len(got) != 1 || got[0] != 1 {
		t.Fatalf("ClassesWithRole(vehicle) = %v", got)
	}
	srcs := m.Files[0].Sources
	if srcs[0].Kind() != "mirror" || srcs[1].Kind() != "npm" || srcs[2].Kind() != "url" || srcs[2].Path != "tiny/tiny.onnx" {
		t.Fatalf("sources parsed wrongly: %+v", srcs)
	}
}

// Each case breaks one field; the error must name it by its YAML path.
func TestParseRejects(t *testing.T) {
	cases := []struct {
		name, from, to, want string
	}{
		{"unknown top-level field", "licence: MIT", "licence: MIT\nlicense: MIT", "field license not found"},
		{"unknown nested field", "layout: NCHW", "layout: NCHW, colour_order: BGR", "field colour_order not found"},
		{"bad name", "name: tiny", "name: Tiny Model", "name: must match"},
		{"bad kind", "kind: model", "kind: weights", "kind"},
		{"bad task", "task: detect", "task: guess", "task"},
		{"library with a detect task", "kind: model", "kind: library", "task"},
		{"bad sha", "sha256: 0000000000000000000000000000000000000000000000000000000000000000", "sha256: ABC", "files[0].sha256"},
		{"path in file name", "- name: tiny.onnx", "- name: ../tiny.onnx", "files[0].name"},
		{"http url", "url: https://example.org/tiny.tgz", "url: http://example.org/tiny.tgz", "files[0].sources[2].url"},
		{"two kinds in one source", "- mirror: tiny.onnx", "- {mirror: tiny.onnx, url: 'https://x.org/a'}", "files[0].sources[0]: exactly one"},
		{"npm version range", `version: "1.2.3"`, `version: "^1.2"`, "files[0].sources[1].npm"},
		{"npm path escapes", "path: package/tiny.onnx", "path: ../../etc/passwd", "files[0].sources[1].npm.path"},
		{"path without url", "- mirror: tiny.onnx", "- {mirror: tiny.onnx, path: a/b}", "files[0].sources[0].path"},
		{"bad tensor type", "type: float32, shape: [1, 3", "type: float, shape: [1, 3", "input.type"},
		{"zero dim", "shape: [1, 3, 32, 32]", "shape: [1, 0, 32, 32]", "input.shape[1]"},
		{"mean per channel", "mean: [0, 0, 0]", "mean: [0, 0]", "input.mean"},
		{"bad resize", "std: [1, 1, 1]}", "std: [1, 1, 1], resize: crop}", "input.resize"},
		{"preprocessing on output", "shape: [1, -1, 6]}", "shape: [1, -1, 6], layout: NCHW}", "outputs[0]"},
		{"bad decoder", "type: yolox", "type: yolo99", "decoder.type"},
		{"bad role", "role: vehicle", "role: lorry", "classes[1].role"},
		{"duplicate class id", "{id: 1, name: car", "{id: 0, name: car", "classes[1].id"},
		{"threshold range", "score: 0.3", "score: 30", "thresholds.score"},
		{"second document", "thresholds: {score: 0.3, nms: 0.45}", "thresholds: {score: 0.3, nms: 0.45}\n---\nname: other", "more than one YAML document"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(validManifest, c.from) {
				t.Fatalf("test case does not apply: %q not in the manifest", c.from)
			}
			_, err := models.Parse([]byte(strings.Replace(validManifest, c.from, c.to, 1)))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not name %q", err, c.want)
			}
		})
	}
}

func TestBuiltinCatalog(t *testing.T) {
	cat, err := models.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"onnxruntime", "onnxruntime-gpu", "yolox-nano", "paddleocr-det", "paddleocr-rec", "fast-plate-ocr", "lpd-yunet", "lpd-yunet-int8", "yunet-face"} {
		if cat[name] == nil {
			t.Errorf("builtin catalogue lacks %s", name)
		}
	}
	if err := cat.Validate(); err != nil {
		t.Fatal(err)
	}
	def := strings.Join(models.DefaultNames(cat), " ")
	for _, opt := range []string{"onnxruntime-gpu", "lpd-yunet-int8"} {
		if !cat[opt].Optional || strings.Contains(" "+def+" ", " "+opt+" ") {
			t.Errorf("%s must be optional and not fetched by default (defaults: %s)", opt, def)
		}
	}
	for _, m := range cat {
		for _, f := range m.Files {
			if f.Size <= 0 {
				t.Errorf("%s/%s: size missing (fetch uses it to bound downloads)", m.Name, f.Name)
			}
		}
	}

	yolox := cat["yolox-nano"]
	if len(yolox.Classes) != 80 {
		t.Fatalf("yolox-nano has %d classes, want the 80 COCO classes", len(yolox.Classes))
	}
	for i, c := range yolox.Classes {
		if c.ID != i {
			t.Fatalf("yolox-nano class %d has id %d", i, c.ID)
		}
	}
	roles := map[string][]int{
		models.RolePerson:  {0},
		models.RoleVehicle: {2, 3, 5, 7},
		models.RolePhone:   {67},
	}
	for role, want := range roles {
		got := yolox.ClassesWithRole(role)
		if len(got) != len(want) {
			t.Fatalf("yolox-nano role %s: ids %v, want %v", role, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("yolox-nano role %s: ids %v, want %v", role, got, want)
			}
		}
	}
	if yolox.Classes[67].Name != "cell phone" {
		t.Fatalf("class 67 is %q", yolox.Classes[67].Name)
	}

	rec := cat["paddleocr-rec"]
	if d, ok := rec.FileByRole(models.FileRoleDictionary); !ok || d.Name != "ppocr_keys_v1.txt" {
		t.Fatalf("paddleocr-rec dictionary: %+v %v", d, ok)
	}
	if rec.ModelFile().Name != "ch_PP-OCRv4_rec_infer.onnx" {
		t.Fatalf("paddleocr-rec model file: %s", rec.ModelFile().Name)
	}
	if cfg, ok := cat["fast-plate-ocr"].FileByRole(models.FileRoleConfig); !ok || cfg.Name != "cct_xs_v1_global_plate_config.yaml" {
		t.Fatalf("fast-plate-ocr config: %+v %v", cfg, ok)
	}
	if got := models.LibraryPath("/c"); got != "/c/libonnxruntime.so.1" {
		t.Fatalf("LibraryPath = %s", got)
	}
	if got := models.GPULibraryPath("/c"); got != "/c/libonnxruntime.so" {
		t.Fatalf("GPULibraryPath = %s", got)
	}
}

func TestCatalogRejectsConflictingFiles(t *testing.T) {
	other := strings.Replace(validManifest, "name: tiny\n", "name: tiny2\n", 1)
	other = strings.Replace(other, "sha256: 0000000000000000000000000000000000000000000000000000000000000000",
		"sha256: 1111111111111111111111111111111111111111111111111111111111111111", 1)
	fsys := fstest.MapFS{
		"a.yaml": {Data: []byte(validManifest)},
		"b.yaml": {Data: []byte(other)},
	}
	_, err := models.LoadFS(fsys, ".")
	if err == nil || !strings.Contains(err.Error(), `file "tiny.onnx"`) {
		t.Fatalf("two manifests with one file name and two hashes: err = %v", err)
	}
	fsys["b.yaml"] = &fstest.MapFile{Data: []byte(validManifest)}
	if _, err := models.LoadFS(fsys, "."); err == nil || !strings.Contains(err.Error(), "used twice") {
		t.Fatalf("one name in two files: err = %v", err)
	}
}

func TestSelect(t *testing.T) {
	cat, err := models.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cat.Select([]string{"yolox-nano", "nope"}); err == nil || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "yolox-nano") {
		t.Fatalf("unknown name: err = %v", err)
	}
	got, err := cat.Select([]string{"onnxruntime-gpu", "onnxruntime-gpu"})
	if err != nil || len(got) != 1 || got[0].Name != "onnxruntime-gpu" {
		t.Fatalf("explicit optional name: %v %v", got, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(validManifest))
	for _, n := range []string{"yolox-nano.yaml", "paddleocr-rec.yaml", "onnxruntime-gpu.yaml", "yunet-face.yaml"} {
		if data, err := models.BuiltinFile(n); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("name: x\nfiles: [{sources: [{npm: null}]}]"))
	f.Add([]byte("input: {shape: [-2]}\nkind: model"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := models.Parse(data)
		if err != nil {
			if m != nil {
				t.Fatal("error with a manifest")
			}
			return
		}
		// Whatever parses must be usable without panics by the code that consumes it.
		if err := m.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate rejects: %v", err)
		}
		_ = m.ModelFile()
		for _, f := range m.Files {
			for _, s := range f.Sources {
				_ = s.String()
			}
		}
		cat := models.Catalog{m.Name: m}
		if err := cat.Validate(); err != nil {
			t.Fatalf("catalogue of one valid manifest: %v", err)
		}
		if _, err := models.Verify(cat, nil, "/nonexistent/offencecam-fuzz"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMerge(t *testing.T) {
	cat, err := models.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	own, err := models.Parse([]byte(validManifest))
	if err != nil {
		t.Fatal(err)
	}
	merged, err := cat.Merge(models.Catalog{own.Name: own})
	if err != nil || merged["tiny"] == nil || merged["yolox-nano"] == nil || cat["tiny"] != nil {
		t.Fatalf("merge: %v (tiny=%v)", err, merged["tiny"] != nil)
	}
	if _, err := cat.Merge(models.Catalog{"yolox-nano": cat["yolox-nano"]}); err == nil {
		t.Fatal("a name in both catalogues was accepted")
	}
}
