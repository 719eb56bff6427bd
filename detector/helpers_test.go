package detector

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/crossborder/offencecam/internal/testenv"
)

// newTestGraph opens a graph on the test model cache; it fails under CI and skips elsewhere
// when the runtime or a model is missing.
func newTestGraph(t testing.TB, cfg Config) *Graph {
	t.Helper()
	testenv.ModelFile(t, "libonnxruntime.so.1")
	g, err := New(cfg, testenv.ModelCache())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

var (
	defaultGraphOnce sync.Once
	defaultGraph     *Graph
	defaultGraphErr  error
)

// sharedDefaultGraph is one default graph for the read-only tests of a run (opening the
// sessions costs a second each). Tests using it must not run in parallel.
func sharedDefaultGraph(t testing.TB) *Graph {
	t.Helper()
	testenv.ModelFile(t, "libonnxruntime.so.1")
	defaultGraphOnce.Do(func() {
		defaultGraph, defaultGraphErr = New(DefaultConfig(), testenv.ModelCache())
	})
	if defaultGraphErr != nil {
		t.Fatal(defaultGraphErr)
	}
	return defaultGraph
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sharedImages(t testing.TB, elem ...string) []string {
	t.Helper()
	dir := testenv.SharedPath(t, elem...)
	files, err := imageFiles(dir)
	if err != nil || len(files) == 0 {
		t.Fatalf("no images in %s: %v", dir, err)
	}
	return files
}

var _ = filepath.Join
