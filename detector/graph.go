package detector

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gocv.io/x/gocv"

	"github.com/crossborder/offencecam/detector/ort"
	"github.com/crossborder/offencecam/models"
	"github.com/crossborder/offencecam/pipeline"
)

// Roles of the models in the graph (ModelRef.Role).
const (
	RoleScene         = "scene"
	RolePhone         = "phone"
	RoleSeatbelt      = "seatbelt"
	RolePlateDetector = "plate_detector"
	RolePlateReader   = "plate_reader"
	RoleFace          = "face"
)

// Graph is the stage graph with its own ONNX sessions. It implements Analyzer. A Graph is
// not safe for concurrent use: the worker makes one per analysis goroutine (NewFactory).
type Graph struct {
	cfg     Config
	log     *slog.Logger
	metrics *graphMetrics

	scene, phone, seatbelt, plateDet, plateRead, face *model
	all                                               []*model
	refs                                              []pipeline.ModelRef
	// occupant is the classifier serving the phone and/or seatbelt role (the same *model as
	// g.phone or g.seatbelt), nil when both roles are detectors.
	occupant *occupantModel
	// shadow runs the candidate models of cfg.Shadow (shadow.go); nil without.
	shadow *shadowStage

	// Thresholds in force: the configuration's, or the models' own where it leaves 0.
	phoneThr, seatbeltThr   float64
	phoneGate, seatbeltGate float64 // least visibility for a judged occupant state
	offenceThr              map[string]float64

	// frames are decode buffers kept across analyses, one per view index: decoding into
	// the last frame's pixels spares a fresh full-frame allocation and its page faults.
	frames []gocv.Mat
}

// Option adjusts New and NewFactory.
type Option func(*settings)

type settings struct {
	log     *slog.Logger
	reg     prometheus.Registerer
	catalog models.Catalog
	lib     string
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.log = l } }

// WithRegistry registers the detector's metrics (offencecam_model_inference_seconds,
// offencecam_detector_stage_seconds) on reg.
func WithRegistry(reg prometheus.Registerer) Option { return func(s *settings) { s.reg = reg } }

// WithCatalog uses these manifests instead of models.Builtin() (operators' own models).
func WithCatalog(c models.Catalog) Option { return func(s *settings) { s.catalog = c } }

// WithLibrary loads ONNX Runtime from path instead of the cache's CPU library (the CUDA build).
func WithLibrary(path string) Option { return func(s *settings) { s.lib = path } }

// shared is what every Graph of one factory shares: read-only manifests and metrics.
type shared struct {
	cfg      Config
	cacheDir string
	set      settings
	ortOpts  []ort.SessionOption
	metrics  *graphMetrics
}

func prepare(cfg Config, cacheDir string, opts []Option) (*shared, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	set := settings{log: slog.Default()}
	for _, o := range opts {
		o(&set)
	}
	if set.catalog == nil {
		c, err := models.Builtin()
		if err != nil {
			return nil, fmt.Errorf("detector: manifests: %w", err)
		}
		set.catalog = c
	}
	var err error
	if set.catalog, err = withManifestsDir(set.catalog, cfg.Manifests); err != nil {
		return nil, err
	}
	if set.lib == "" {
		var gpuMissing string
		set.lib, gpuMissing = libraryFor(cfg, cacheDir)
		if gpuMissing != "" {
			set.log.Warn("ONNX Runtime with CUDA not in the model cache, using the CPU build", "want", gpuMissing)
		}
	}
	if err := ort.Init(set.lib); err != nil {
		return nil, fmt.Errorf("detector: %w", err)
	}
	sh := &shared{cfg: cfg, cacheDir: cacheDir, set: set}
	so := []ort.SessionOption{ort.WithLogger(set.log)}
	if set.reg != nil {
		om, err := ort.NewMetrics(set.reg)
		if err != nil {
			return nil, err
		}
		so = append(so, ort.WithMetrics(om))
		if sh.metrics, err = newGraphMetrics(set.reg); err != nil {
			return nil, err
		}
		if sh.metrics.shadow, err = newShadowMetrics(set.reg); err != nil {
			return nil, err
		}
	}
	sh.ortOpts = so
	return sh, nil
}

// New loads ONNX Runtime (once per process) from cacheDir and opens a session for each
// configured role, checking every model against its manifest.
func New(cfg Config, cacheDir string, opts ...Option) (*Graph, error) {
	sh, err := prepare(cfg, cacheDir, opts)
	if err != nil {
		return nil, err
	}
	return sh.newGraph()
}

// NewFactory checks the configuration and loads the runtime once, then returns the
// constructor the detection worker calls once per analysis goroutine. Each Graph owns its
// sessions (ONNX sessions and their bound tensors are single-goroutine); manifests, the
// runtime and metrics are shared.
func NewFactory(cfg Config, cacheDir string, opts ...Option) (func() (Analyzer, error), error) {
	sh, err := prepare(cfg, cacheDir, opts)
	if err != nil {
		return nil, err
	}
	// Fail now, not in the first worker goroutine, when a model is missing or wrong.
	g, err := sh.newGraph()
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	first := g
	return func() (Analyzer, error) {
		mu.Lock()
		if first != nil {
			g := first
			first = nil
			mu.Unlock()
			return g, nil
		}
		mu.Unlock()
		return sh.newGraph()
	}, nil
}

func (sh *shared) newGraph() (_ *Graph, err error) {
	cfg := sh.cfg
	g := &Graph{cfg: cfg, log: sh.set.log, metrics: sh.metrics}
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	load := func(name, role string) (*model, error) {
		if name == "" {
			return nil, nil
		}
		// One session serves every role a model is named for (the occupant classifier is
		// both phone and seatbelt).
		for _, md := range g.all {
			if md.m.Name == name {
				g.refs = append(g.refs, pipeline.ModelRef{Name: md.m.Name, Version: md.m.Version, Role: role})
				return md, nil
			}
		}
		md, err := loadModel(sh.set.catalog, sh.cacheDir, name, role, cfg.Runtime, sh.ortOpts)
		if err != nil {
			return nil, err
		}
		g.all = append(g.all, md)
		g.refs = append(g.refs, pipeline.ModelRef{Name: md.m.Name, Version: md.m.Version, Role: role})
		return md, nil
	}
	if g.scene, err = load(cfg.Models.Scene, RoleScene); err != nil {
		return nil, err
	}
	if !isDetector(g.scene) || !g.scene.hasRole(models.RoleVehicle) {
		return nil, fmt.Errorf("detector: models.scene: %s is not a detector with a %q class", cfg.Models.Scene, models.RoleVehicle)
	}
	if cfg.Models.Phone != "" {
		if g.phone, err = load(cfg.Models.Phone, RolePhone); err != nil {
			return nil, err
		}
		if !(isDetector(g.phone) || isClassifier(g.phone)) || !g.phone.hasRole(models.RolePhone) {
			return nil, fmt.Errorf("detector: models.phone: %s is not a detector or occupant classifier with a %q class", cfg.Models.Phone, models.RolePhone)
		}
	} else if !g.scene.hasRole(models.RolePhone) {
		return nil, fmt.Errorf("detector: models.phone is empty and the scene model %s has no %q class", cfg.Models.Scene, models.RolePhone)
	}
	if cfg.Models.Seatbelt != "" {
		if g.seatbelt, err = load(cfg.Models.Seatbelt, RoleSeatbelt); err != nil {
			return nil, err
		}
		if !g.seatbelt.hasRole(models.RoleSeatbelt) && !g.seatbelt.hasRole(models.RoleNoSeatbelt) {
			return nil, fmt.Errorf("detector: models.seatbelt: %s has no %q or %q class", cfg.Models.Seatbelt, models.RoleSeatbelt, models.RoleNoSeatbelt)
		}
	}
	for _, md := range []*model{g.phone, g.seatbelt} {
		if md == nil || !isClassifier(md) {
			continue
		}
		if g.occupant != nil && g.occupant.model != md {
			return nil, fmt.Errorf("detector: models.phone (%s) and models.seatbelt (%s): two different occupant classifiers; name one for both roles", cfg.Models.Phone, cfg.Models.Seatbelt)
		}
		if g.occupant == nil {
			if g.occupant, err = newOccupantModel(md); err != nil {
				return nil, err
			}
		}
	}
	g.resolveThresholds()
	if g.plateDet, err = load(cfg.Models.PlateDetector, RolePlateDetector); err != nil {
		return nil, err
	}
	if g.plateRead, err = load(cfg.Models.PlateReader, RolePlateReader); err != nil {
		return nil, err
	}
	if g.face, err = load(cfg.Models.Face, RoleFace); err != nil {
		return nil, err
	}
	if g.shadow, err = sh.newShadow(g); err != nil {
		return nil, err
	}
	return g, nil
}

// libraryFor is the ONNX Runtime library of cacheDir the configuration runs on: the CUDA
// build for a cuda provider when it was fetched; else the CPU library (gpuMissing names the
// CUDA build then), and the sessions' CUDA provider falls back to the CPU with one warning.
func libraryFor(cfg Config, cacheDir string) (lib, gpuMissing string) {
	if name, _, _ := ort.ParseProvider(cfg.Runtime.Provider); name == "cuda" {
		gpu := models.GPULibraryPath(cacheDir)
		if fileExists(gpu) {
			return gpu, ""
		}
		return models.LibraryPath(cacheDir), gpu
	}
	return models.LibraryPath(cacheDir), ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func isClassifier(md *model) bool { return md != nil && md.m.Decoder.Type == models.DecoderSigmoid }

func isDetector(md *model) bool {
	switch md.m.Decoder.Type {
	case models.DecoderYOLOX, models.DecoderYOLOv8, models.DecoderNMSEnd2End:
		return true
	}
	return false
}

// Models names the models of the graph with their versions and roles.
func (g *Graph) Models() []pipeline.ModelRef { return append([]pipeline.ModelRef(nil), g.refs...) }

// Config is the configuration the graph runs with.
func (g *Graph) Config() Config { return g.cfg }

// RunStats sums the raw ONNX Runtime Run count and time of every session: the pipeline
// overhead is the analysis time over this.
func (g *Graph) RunStats() (count int64, total time.Duration) {
	for _, md := range g.all {
		c, t := md.s.RunStats()
		count += c
		total += t
	}
	return count, total
}

// ResetRunStats zeroes the counters of RunStats.
func (g *Graph) ResetRunStats() {
	for _, md := range g.all {
		md.s.ResetRunStats()
	}
}

// Close releases the sessions.
func (g *Graph) Close() error {
	var errs []error
	for _, md := range g.all {
		errs = append(errs, md.close())
	}
	g.all = nil
	for i := range g.frames {
		if g.frames[i].Ptr() != nil {
			g.frames[i].Close()
		}
	}
	g.frames = nil
	return errors.Join(errs...)
}

type graphMetrics struct {
	stage  *prometheus.HistogramVec
	shadow *shadowMetrics // detector.shadow's verdicts and disagreements
}

func newGraphMetrics(reg prometheus.Registerer) (*graphMetrics, error) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "offencecam_detector_stage_seconds",
		Help:    "Wall time of one stage of the analysis of a passage.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"stage"})
	if err := reg.Register(h); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.HistogramVec); ok {
				return &graphMetrics{stage: existing}, nil
			}
		}
		return nil, fmt.Errorf("detector: register metrics: %w", err)
	}
	return &graphMetrics{stage: h}, nil
}

func (m *graphMetrics) observe(timings map[string]float64) {
	if m == nil {
		return
	}
	for k, v := range timings {
		m.stage.WithLabelValues(k).Observe(v / 1000)
	}
}
