// Package testenv locates what tests need outside the repository (../shared data and models,
// the model cache, tool binaries) and applies the project's rule: under CI=true a missing
// prerequisite fails the test; on a developer machine it skips with a message saying what
// to install.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	rootOnce sync.Once
	root     string
)

// RepoRoot is the directory holding go.mod.
func RepoRoot() string {
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			return
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				root = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return
			}
			dir = parent
		}
	})
	return root
}

// CI reports whether this run is CI's (CI=true), where nothing may be skipped for lack of files.
func CI() bool { return os.Getenv("CI") == "true" }

// Missing fails the test under CI and skips it elsewhere.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if CI() {
		t.Fatalf("missing prerequisite (CI=true, so this fails): "+format, args...)
	}
	t.Skipf("missing prerequisite: "+format, args...)
}

// SharedDir is ../shared beside the repository, or $OFFENCECAM_SHARED.
func SharedDir() string {
	if d := os.Getenv("OFFENCECAM_SHARED"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), "..", "shared")
}

// SharedPath returns a path under the shared directory, failing or skipping when absent.
func SharedPath(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{SharedDir()}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		Missing(t, "%s not found (set OFFENCECAM_SHARED): %v", p, err)
	}
	return p
}

// ModelCache is the model cache tests read: $OFFENCECAM_MODELS_CACHE (the variable of the
// models.cache setting), else <repo>/var/models (what `make models` fills).
// OFFENCECAM_MODEL_CACHE is accepted too, for older scripts.
func ModelCache() string {
	for _, env := range []string{"OFFENCECAM_MODELS_CACHE", "OFFENCECAM_MODEL_CACHE"} {
		if d := os.Getenv(env); d != "" {
			return d
		}
	}
	return filepath.Join(RepoRoot(), "var", "models")
}

// ModelFile returns the path of a cached model file, failing or skipping when absent.
func ModelFile(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(ModelCache(), name)
	if _, err := os.Stat(p); err != nil {
		Missing(t, "model file %s not in the cache; run `make models`: %v", p, err)
	}
	return p
}

// Binary finds a tool on PATH or in <repo>/.tools/bin, failing or skipping when absent.
func Binary(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(RepoRoot(), ".tools", "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if gp, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(string(trimNL(gp)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	Missing(t, "tool %q not found on PATH, in .tools/bin or GOPATH/bin; run `make tools`", name)
	return ""
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
