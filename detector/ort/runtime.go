// Package ort runs ONNX models with ONNX Runtime (github.com/yalue/onnxruntime_go): one
// process-wide environment, one Session per model with its tensors allocated once and re-bound
// only when a dynamic input shape changes, a check of the model file against its manifest at
// load, and the raw Run time of every session counted so the pipeline can report its overhead.
package ort

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	onnx "github.com/yalue/onnxruntime_go"
)

var (
	envMu   sync.Mutex
	envPath string // library the environment was initialised from; "" = not initialised
)

// Init loads the ONNX Runtime shared library and creates the process-wide environment. ONNX
// Runtime allows one environment per process, so Init is idempotent for the same path and an
// error for a different one (two libraries in one process would be two runtimes fighting over
// the same global state).
func Init(libPath string) error {
	if libPath == "" {
		return errors.New("ort: init: library path is empty")
	}
	envMu.Lock()
	defer envMu.Unlock()
	if envPath != "" {
		if envPath != libPath {
			return fmt.Errorf("ort: init: already initialised from %s, cannot switch to %s", envPath, libPath)
		}
		return nil
	}
	onnx.SetSharedLibraryPath(libPath)
	if err := onnx.InitializeEnvironment(onnx.WithLogLevelError()); err != nil {
		return fmt.Errorf("ort: init from %s: %w", libPath, err)
	}
	envPath = libPath
	return nil
}

// Initialized reports whether Init has succeeded (and Shutdown not been called since).
func Initialized() bool {
	envMu.Lock()
	defer envMu.Unlock()
	return envPath != ""
}

// Version is the loaded ONNX Runtime's version ("" before Init).
func Version() string {
	if !Initialized() {
		return ""
	}
	return onnx.GetVersion()
}

// Shutdown destroys the environment. Every Session must be closed first.
func Shutdown() error {
	envMu.Lock()
	defer envMu.Unlock()
	if envPath == "" {
		return nil
	}
	envPath = ""
	if err := onnx.DestroyEnvironment(); err != nil {
		return fmt.Errorf("ort: shutdown: %w", err)
	}
	return nil
}

// Graph optimisation levels accepted in Options.GraphOptLevel.
const (
	OptDisable  = "disable"
	OptBasic    = "basic"
	OptExtended = "extended"
	OptAll      = "all"
)

// ConfigPath is the YAML path of Options inside the composed configuration file; Validate
// names fields under it.
const ConfigPath = "detector.runtime"

// Options are the session options from configuration (YAML under detector.runtime).
type Options struct {
	// IntraOpThreads is the number of threads one Run may use (>= 1). On a small CPU box,
	// several sessions with 1 thread each usually beat one session with many.
	IntraOpThreads int `yaml:"intra_op_threads"`
	// InterOpThreads is the number of threads for running independent graph nodes (>= 1).
	InterOpThreads int `yaml:"inter_op_threads"`
	// AllowSpinning lets idle intra-op threads busy-wait for the next job: lower latency, but
	// burns CPU that other sessions on a shared box could use, hence off by default.
	AllowSpinning bool `yaml:"allow_spinning"`
	// GraphOptLevel is disable, basic, extended or all.
	GraphOptLevel string `yaml:"graph_opt_level"`
	// Provider is cpu, cuda (device 0) or cuda:N. CUDA falls back to CPU with one warning when
	// the provider cannot be loaded.
	Provider string `yaml:"provider"`
}

// DefaultOptions is one intra-op thread, full graph optimisation, on the CPU.
func DefaultOptions() Options {
	return Options{IntraOpThreads: 1, InterOpThreads: 1, GraphOptLevel: OptAll, Provider: "cpu"}
}

// Validate names the bad field with its full YAML path.
func (o Options) Validate() error {
	if o.IntraOpThreads < 1 {
		return fmt.Errorf("%s.intra_op_threads: must be >= 1, got %d", ConfigPath, o.IntraOpThreads)
	}
	if o.InterOpThreads < 1 {
		return fmt.Errorf("%s.inter_op_threads: must be >= 1, got %d", ConfigPath, o.InterOpThreads)
	}
	if _, err := graphOptLevel(o.GraphOptLevel); err != nil {
		return fmt.Errorf("%s.graph_opt_level: %w", ConfigPath, err)
	}
	if _, _, err := ParseProvider(o.Provider); err != nil {
		return fmt.Errorf("%s.provider: %w", ConfigPath, err)
	}
	return nil
}

func graphOptLevel(s string) (onnx.GraphOptimizationLevel, error) {
	switch s {
	case OptDisable:
		return onnx.GraphOptimizationLevelDisableAll, nil
	case OptBasic:
		return onnx.GraphOptimizationLevelEnableBasic, nil
	case OptExtended:
		return onnx.GraphOptimizationLevelEnableExtended, nil
	case OptAll, "":
		return onnx.GraphOptimizationLevelEnableAll, nil
	}
	return 0, fmt.Errorf("%q is not disable, basic, extended or all", s)
}

// ParseProvider splits "cpu", "cuda" or "cuda:N" into the provider name and device id.
func ParseProvider(s string) (name string, device int, err error) {
	switch {
	case s == "" || s == "cpu":
		return "cpu", 0, nil
	case s == "cuda":
		return "cuda", 0, nil
	case strings.HasPrefix(s, "cuda:"):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "cuda:"))
		if err != nil || n < 0 {
			return "", 0, fmt.Errorf("%q: the CUDA device must be a number >= 0 (cuda:0)", s)
		}
		return "cuda", n, nil
	}
	return "", 0, fmt.Errorf("%q is not cpu, cuda or cuda:N", s)
}
