package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crossborder/offencecam/detector"
	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/models"
)

// The export is a training set training/occupant reads as it reads roadside-train: the recipe
// runs on it end to end at smoke size, and the Go detector loads and runs the model it
// exported. No figure of the model is asserted: a handful of cases trains nothing useful.
func TestRetrainOnExport(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch, onnx, cv2, numpy").Run(); err != nil {
		testenv.Missing(t, "Debian's python3-torch, python3-onnx, python3-opencv (%v)", err)
	}
	base := testenv.ModelFile(t, "yolox_nano.onnx")
	lib := testenv.ModelFile(t, "libonnxruntime.so.1")
	f := newFixture(t)
	f.build(t)
	data := filepath.Join(t.TempDir(), "export")
	sum := f.export(t, data)
	require.NotZero(t, sum.Exported)

	out := t.TempDir()
	cmd := exec.Command(py, filepath.Join(testenv.RepoRoot(), "training", "occupant", "train.py"),
		"--smoke", strconv.Itoa(sum.Exported), "--data", data, "--out", out, "--base", base, "--threads", "1")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "train.py on the export:\n%s", b)
	t.Logf("train.py on the export:\n%s", b)

	mb, err := os.ReadFile(filepath.Join(out, "occupant.yaml"))
	require.NoError(t, err)
	m, err := models.Parse(mb)
	require.NoError(t, err)
	onnx, err := os.ReadFile(filepath.Join(out, m.ModelFile().Name))
	require.NoError(t, err)
	s := sha256.Sum256(onnx)
	require.Equal(t, hex.EncodeToString(s[:]), m.ModelFile().SHA256, "the manifest names the exported file")

	// The shipped catalogue with the retrained occupant model, in a cache of its own.
	cat, err := models.Builtin()
	require.NoError(t, err)
	cat[detector.ModelOccupant] = m
	cache := t.TempDir()
	require.NoError(t, os.Symlink(base, filepath.Join(cache, filepath.Base(base))))
	require.NoError(t, os.WriteFile(filepath.Join(cache, m.ModelFile().Name), onnx, 0o600))
	cfg := detector.DefaultConfig()
	cfg.Models.PlateDetector, cfg.Models.PlateReader, cfg.Models.Face = "", "", ""
	g, err := detector.New(cfg, cache, detector.WithCatalog(cat), detector.WithLibrary(lib))
	require.NoError(t, err)
	defer g.Close()

	stem := readTSV(t, filepath.Join(data, "labels.tsv"))[0][0]
	img, err := os.ReadFile(filepath.Join(data, "images", stem+".jpg"))
	require.NoError(t, err)
	res, details, err := g.AnalyzeDetailed(context.Background(), []detector.View{{Data: img}}, detector.AnalyzeOptions{NoRender: true})
	require.NoError(t, err)
	require.Len(t, details, 1)
	assert.NotEmpty(t, details[0].Occupants, "the retrained model judged the driver of %s", stem)
	for _, r := range res.Detection.Models {
		if r.Name == detector.ModelOccupant {
			assert.Equal(t, m.Version, r.Version)
		}
	}
}
