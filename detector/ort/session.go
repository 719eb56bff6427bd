package ort

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	onnx "github.com/yalue/onnxruntime_go"

	"github.com/crossborder/offencecam/models"
)

// Session is one loaded model. Its input tensor is allocated once per distinct input shape and
// exposed as a slice (InputFloat32 / InputUint8) so preprocessing writes straight into the
// memory ONNX Runtime reads; outputs are likewise kept and re-bound across runs.
//
// A Session is NOT safe for concurrent use: Run, the input slice and the output slices belong
// to one goroutine at a time (use a Pool for concurrency). RunStats and ResetRunStats may be
// called from any goroutine.
type Session struct {
	name     string // manifest name, the metric label
	version  string
	provider string // provider actually in use: "cpu" or "cuda:N"

	sess    *onnx.DynamicAdvancedSession
	runOpts *onnx.RunOptions

	in       tensorSpec   // the model's input (after narrowing by the manifest)
	outs     []tensorSpec // in manifest order
	inShape  onnx.Shape   // current input shape; nil until set
	inF32    *onnx.Tensor[float32]
	inU8     *onnx.Tensor[uint8]
	inBufF32 []float32 // backing store, grown only, so a new shape rarely allocates
	inBufU8  []uint8
	inValue  []onnx.Value
	outVals  []onnx.Value // nil entries are allocated by ORT on the next Run and then kept

	observer prometheus.Observer
	runs     atomic.Int64
	runNanos atomic.Int64
	closed   bool
}

// tensorSpec is one input/output as the session uses it.
type tensorSpec struct {
	name  string
	dtype onnx.TensorElementDataType
	shape onnx.Shape // -1 = dynamic
}

func (t tensorSpec) static() bool {
	for _, d := range t.shape {
		if d < 0 {
			return false
		}
	}
	return true
}

var (
	cudaWarnMu sync.Mutex
	cudaWarned bool
)

// warnCUDAFallback logs the CPU fallback once per process: every session of a misconfigured
// box would otherwise repeat the same line.
func warnCUDAFallback(log *slog.Logger, provider string, err error) {
	cudaWarnMu.Lock()
	defer cudaWarnMu.Unlock()
	if cudaWarned {
		return
	}
	cudaWarned = true
	log.Warn("CUDA execution provider unavailable, falling back to CPU", "provider", provider, "err", err)
}

// SessionOption adjusts a session beyond its configuration.
type SessionOption func(*sessionSettings)

type sessionSettings struct {
	logger  *slog.Logger
	metrics *Metrics
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) SessionOption { return func(s *sessionSettings) { s.logger = l } }

// WithMetrics makes every Run observe offencecam_model_inference_seconds{model}.
func WithMetrics(m *Metrics) SessionOption { return func(s *sessionSettings) { s.metrics = m } }

// NewSession loads modelPath, checks its real inputs and outputs against the manifest and
// allocates the tensors of every fully static shape. Init must have been called.
func NewSession(m *models.Manifest, modelPath string, opts Options, so ...SessionOption) (*Session, error) {
	if m == nil {
		return nil, errors.New("ort: new session: nil manifest")
	}
	if !Initialized() {
		return nil, fmt.Errorf("ort: model %s: runtime not initialised (call ort.Init)", m.Name)
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("ort: model %s: %w", m.Name, err)
	}
	set := sessionSettings{logger: slog.Default()}
	for _, o := range so {
		o(&set)
	}
	if m.Input == nil {
		return nil, fmt.Errorf("ort: model %s: manifest has no input", m.Name)
	}

	inInfo, outInfo, err := readIOInfo(modelPath)
	if err != nil {
		return nil, fmt.Errorf("ort: model %s: read %s: %w", m.Name, modelPath, err)
	}
	in, outs, err := checkManifest(m, inInfo, outInfo)
	if err != nil {
		return nil, fmt.Errorf("ort: %w", err)
	}

	sopts, provider, err := sessionOptions(opts, set.logger)
	if err != nil {
		return nil, fmt.Errorf("ort: model %s: %w", m.Name, err)
	}
	defer sopts.Destroy()

	outNames := make([]string, len(outs))
	for i, o := range outs {
		outNames[i] = o.name
	}
	sess, err := onnx.NewDynamicAdvancedSession(modelPath, []string{in.name}, outNames, sopts)
	if err != nil {
		return nil, fmt.Errorf("ort: model %s: create session from %s: %w", m.Name, modelPath, err)
	}
	runOpts, err := onnx.NewRunOptions()
	if err != nil {
		sess.Destroy()
		return nil, fmt.Errorf("ort: model %s: run options: %w", m.Name, err)
	}
	s := &Session{
		name: m.Name, version: m.Version, provider: provider,
		sess: sess, runOpts: runOpts,
		in: in, outs: outs,
		inValue:  make([]onnx.Value, 1),
		outVals:  make([]onnx.Value, len(outs)),
		observer: set.metrics.observer(m.Name),
	}
	for i, o := range outs {
		if !o.static() {
			continue
		}
		t, err := onnx.NewEmptyTensor[float32](o.shape)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("ort: model %s: output %q: %w", m.Name, o.name, err)
		}
		s.outVals[i] = t
	}
	if in.static() {
		if err := s.SetInputShape(in.shape...); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// readIOInfo reads the model's declared inputs and outputs. ORT can only do so through a
// temporary session; building it unoptimised on one thread halves the load time of a model.
func readIOInfo(path string) ([]onnx.InputOutputInfo, []onnx.InputOutputInfo, error) {
	so, err := onnx.NewSessionOptions()
	if err != nil {
		return nil, nil, err
	}
	defer so.Destroy()
	if err := so.SetGraphOptimizationLevel(onnx.GraphOptimizationLevelDisableAll); err != nil {
		return nil, nil, err
	}
	if err := so.SetIntraOpNumThreads(1); err != nil {
		return nil, nil, err
	}
	return onnx.GetInputOutputInfoWithOptions(path, so)
}

// sessionOptions builds ORT session options; a CUDA provider that cannot be appended falls
// back to the CPU (one warning per process) rather than failing, so one configuration runs on
// GPU and CPU nodes alike.
func sessionOptions(opts Options, log *slog.Logger) (*onnx.SessionOptions, string, error) {
	so, err := onnx.NewSessionOptions()
	if err != nil {
		return nil, "", fmt.Errorf("session options: %w", err)
	}
	fail := func(what string, err error) (*onnx.SessionOptions, string, error) {
		so.Destroy()
		return nil, "", fmt.Errorf("session options: %s: %w", what, err)
	}
	if err := so.SetIntraOpNumThreads(opts.IntraOpThreads); err != nil {
		return fail("intra-op threads", err)
	}
	if err := so.SetInterOpNumThreads(opts.InterOpThreads); err != nil {
		return fail("inter-op threads", err)
	}
	if !opts.AllowSpinning {
		if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			return fail("allow_spinning", err)
		}
		if err := so.AddSessionConfigEntry("session.inter_op.allow_spinning", "0"); err != nil {
			return fail("allow_spinning", err)
		}
	}
	lvl, _ := graphOptLevel(opts.GraphOptLevel)
	if err := so.SetGraphOptimizationLevel(lvl); err != nil {
		return fail("graph optimisation level", err)
	}
	name, device, _ := ParseProvider(opts.Provider)
	if name == "cpu" {
		return so, "cpu", nil
	}
	if err := appendCUDA(so, device); err != nil {
		warnCUDAFallback(log, opts.Provider, err)
		return so, "cpu", nil
	}
	return so, fmt.Sprintf("cuda:%d", device), nil
}

func appendCUDA(so *onnx.SessionOptions, device int) error {
	cuda, err := onnx.NewCUDAProviderOptions()
	if err != nil {
		return err
	}
	defer cuda.Destroy()
	if err := cuda.Update(map[string]string{"device_id": fmt.Sprint(device)}); err != nil {
		return err
	}
	return so.AppendExecutionProviderCUDA(cuda)
}

// Name is the manifest name of the model.
func (s *Session) Name() string { return s.name }

// Version is the manifest version of the model.
func (s *Session) Version() string { return s.version }

// Provider is the execution provider in use: "cpu", or "cuda:N" when CUDA loaded.
func (s *Session) Provider() string { return s.provider }

// InputShape is the current input shape (nil before SetInputShape for a dynamic model).
func (s *Session) InputShape() []int64 { return append([]int64(nil), s.inShape...) }

// ModelInputShape is the input shape the model declares (after the manifest), -1 = dynamic.
func (s *Session) ModelInputShape() []int64 { return append([]int64(nil), s.in.shape...) }

// NumOutputs is the number of outputs, in manifest order.
func (s *Session) NumOutputs() int { return len(s.outs) }

// OutputName is the name of output i.
func (s *Session) OutputName(i int) string { return s.outs[i].name }

// SetInputShape sets the input shape for the next runs. The same shape again is free; a new
// shape re-makes the input tensor (reusing its backing memory when large enough) and drops the
// outputs whose shape depends on it. Every fixed axis must match the model's.
func (s *Session) SetInputShape(shape ...int64) error {
	if s.closed {
		return fmt.Errorf("ort: model %s: session closed", s.name)
	}
	if s.inShape != nil && s.inShape.Equals(shape) {
		return nil
	}
	if len(shape) != len(s.in.shape) {
		return fmt.Errorf("ort: model %s: input %q: shape %v has %d axes, the model has %d (%v)",
			s.name, s.in.name, shape, len(shape), len(s.in.shape), []int64(s.in.shape))
	}
	for i, d := range shape {
		if d < 1 {
			return fmt.Errorf("ort: model %s: input %q: axis %d of %v must be >= 1", s.name, s.in.name, i, shape)
		}
		if want := s.in.shape[i]; want >= 0 && want != d {
			return fmt.Errorf("ort: model %s: input %q: axis %d is fixed at %d, got shape %v", s.name, s.in.name, i, want, shape)
		}
	}
	sh := onnx.NewShape(shape...)
	n := int(sh.FlattenedSize())
	s.destroyInput()
	var v onnx.Value
	switch s.in.dtype {
	case onnx.TensorElementDataTypeFloat:
		if cap(s.inBufF32) < n {
			s.inBufF32 = make([]float32, n)
		}
		t, err := onnx.NewTensor(sh, s.inBufF32[:n])
		if err != nil {
			return fmt.Errorf("ort: model %s: input tensor %v: %w", s.name, shape, err)
		}
		s.inF32, v = t, t
	case onnx.TensorElementDataTypeUint8:
		if cap(s.inBufU8) < n {
			s.inBufU8 = make([]uint8, n)
		}
		t, err := onnx.NewTensor(sh, s.inBufU8[:n])
		if err != nil {
			return fmt.Errorf("ort: model %s: input tensor %v: %w", s.name, shape, err)
		}
		s.inU8, v = t, t
	default:
		return fmt.Errorf("ort: model %s: input element type %s is not supported", s.name, s.in.dtype)
	}
	s.inValue[0] = v
	s.inShape = sh
	for i, o := range s.outs {
		if !o.static() && s.outVals[i] != nil {
			s.outVals[i].Destroy()
			s.outVals[i] = nil
		}
	}
	return nil
}

func (s *Session) destroyInput() {
	if s.inF32 != nil {
		s.inF32.Destroy()
		s.inF32 = nil
	}
	if s.inU8 != nil {
		s.inU8.Destroy()
		s.inU8 = nil
	}
	s.inValue[0] = nil
	s.inShape = nil
}

// InputFloat32 is the float32 input buffer of the current shape (nil if the input is not
// float32 or no shape is set). Write the preprocessed image here before Run.
func (s *Session) InputFloat32() []float32 {
	if s.inF32 == nil {
		return nil
	}
	return s.inF32.GetData()
}

// InputUint8 is the uint8 input buffer of the current shape (nil if the input is not uint8
// or no shape is set).
func (s *Session) InputUint8() []uint8 {
	if s.inU8 == nil {
		return nil
	}
	return s.inU8.GetData()
}

// Run runs the model on the current input. Cancelling ctx terminates a run in progress.
func (s *Session) Run(ctx context.Context) error {
	if s.closed {
		return fmt.Errorf("ort: model %s: session closed", s.name)
	}
	if s.inValue[0] == nil {
		return fmt.Errorf("ort: model %s: input shape not set (call SetInputShape)", s.name)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ort: model %s: run: %w", s.name, err)
	}
	var (
		stop       func() bool
		terminated chan struct{}
	)
	if ctx.Done() != nil {
		terminated = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			s.runOpts.Terminate()
			close(terminated)
		})
	}
	start := time.Now()
	err := s.sess.RunWithOptions(s.inValue, s.outVals, s.runOpts)
	d := time.Since(start)
	if stop != nil && !stop() {
		// The cancel hook ran or is running: wait until it has set the terminate flag, then
		// clear it, so the flag cannot kill the next Run.
		<-terminated
		s.runOpts.UnsetTerminate()
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("ort: model %s: run: %w (%v)", s.name, ctxErr, err)
		}
		return fmt.Errorf("ort: model %s: run: %w", s.name, err)
	}
	s.runs.Add(1)
	s.runNanos.Add(int64(d))
	observe(s.observer, d)
	return nil
}

// Output is output i of the last Run (manifest order) and its shape. The slice is reused by
// the next Run: copy what must outlive it.
func (s *Session) Output(i int) (data []float32, shape []int64) {
	if i < 0 || i >= len(s.outVals) || s.outVals[i] == nil {
		return nil, nil
	}
	t, ok := s.outVals[i].(*onnx.Tensor[float32])
	if !ok {
		return nil, nil
	}
	return t.GetData(), t.GetShape()
}

// RunStats is the number of successful Runs and their total wall time since creation or the
// last ResetRunStats: the "raw model time" the pipeline's overhead is measured against.
func (s *Session) RunStats() (count int64, total time.Duration) {
	return s.runs.Load(), time.Duration(s.runNanos.Load())
}

// ResetRunStats zeroes the counters of RunStats.
func (s *Session) ResetRunStats() {
	s.runs.Store(0)
	s.runNanos.Store(0)
}

// Close releases the session and its tensors; further calls are no-ops.
func (s *Session) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.destroyInput()
	for i, v := range s.outVals {
		if v != nil {
			v.Destroy()
			s.outVals[i] = nil
		}
	}
	var errs []error
	if s.runOpts != nil {
		errs = append(errs, s.runOpts.Destroy())
	}
	if s.sess != nil {
		errs = append(errs, s.sess.Destroy())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ort: model %s: close: %w", s.name, err)
	}
	return nil
}
