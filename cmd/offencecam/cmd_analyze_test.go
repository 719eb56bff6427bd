package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/pipeline"
)

func modelEnv(t *testing.T) []string {
	t.Helper()
	testenv.ModelFile(t, "libonnxruntime.so.1")
	return []string{"OFFENCECAM_MODELS_CACHE=" + testenv.ModelCache(), "OFFENCECAM_CONFIG="}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst, b, 0o644))
}

// `offencecam analyze --json DIR` prints one Detection per image, reports a bad file on
// stderr with its reason, keeps going and exits 1.
func TestAnalyzeFolder(t *testing.T) {
	env := modelEnv(t)
	plates := testenv.SharedPath(t, "data", "plates")
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))
	copyFile(t, filepath.Join(plates, "wts-lg-000132.jpg"), filepath.Join(dir, "a.jpg"))
	copyFile(t, filepath.Join(plates, "car1.jpg"), filepath.Join(sub, "b.jpg"))
	copyFile(t, filepath.Join(plates, "us3.jpg"), filepath.Join(sub, "c.jpeg"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty.jpg"), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not an image"), 0o644))

	// A folder is walked for images; a file named explicitly is analysed whatever its name.
	cmd := offencecam(t, env, "analyze", "--json", "--data", t.TempDir(), dir, filepath.Join(dir, "notes.txt"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "stderr: %s", stderr.String())
	assert.Equal(t, 1, ee.ExitCode())
	assert.Contains(t, stderr.String(), "empty.jpg: empty:")
	assert.Contains(t, stderr.String(), "notes.txt: unknown_format:")
	assert.Contains(t, stderr.String(), "2 of 5 images failed")

	var dets []pipeline.Detection
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		d, err := pipeline.Decode[pipeline.Detection](sc.Bytes())
		require.NoError(t, err, sc.Text())
		dets = append(dets, d)
	}
	require.Len(t, dets, 3)
	byKey := map[string]pipeline.Detection{}
	for _, d := range dets {
		require.Len(t, d.Frames, 1)
		byKey[filepath.Base(d.Frames[0].Key)] = d
		assert.NotEmpty(t, d.Models)
		assert.Contains(t, d.TimingsMS, "total")
	}
	a := byKey["a.jpg"]
	require.NotEmpty(t, a.Vehicles)
	require.NotNil(t, a.Vehicles[0].Plate)
	assert.Equal(t, "7AHN739", a.Vehicles[0].Plate.Text)
	assert.Contains(t, byKey, "b.jpg")
	assert.Contains(t, byKey, "c.jpeg")
}

// --annotate writes the evidence images of every analysed image.
func TestAnalyzeAnnotate(t *testing.T) {
	env := modelEnv(t)
	out := t.TempDir()
	img := testenv.SharedPath(t, "data", "plates", "wts-lg-000132.jpg")
	cmd := offencecam(t, env, "analyze", "--annotate", out, "--data", t.TempDir(), img)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
	assert.Contains(t, string(b), "plate 7AHN739")
	for _, k := range []string{pipeline.EvidenceAnnotated, pipeline.EvidencePlateCrop, pipeline.EvidenceDriverCrop} {
		st, err := os.Stat(filepath.Join(out, "wts-lg-000132."+k+".jpg"))
		require.NoError(t, err, k)
		assert.Greater(t, st.Size(), int64(500))
	}
}

// `offencecam eval --json` on the shared sets prints per-class metrics and plate scores.
func TestEvalSharedSets(t *testing.T) {
	env := modelEnv(t)
	set := testenv.SharedPath(t, "data", "seatbelt-phone")
	plates := testenv.SharedPath(t, "data", "plates")
	cmd := offencecam(t, env, "eval", "--json", "--data", t.TempDir(), "--set", set, "--plates", plates)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	var rep struct {
		Classes map[string]struct {
			Precision *float64 `json:"precision"`
			Recall    *float64 `json:"recall"`
			AP50      *float64 `json:"ap50"`
			N         *int     `json:"n"`
			Note      string   `json:"note"`
		} `json:"classes"`
		Plates *struct {
			N     int     `json:"n"`
			Exact float64 `json:"exact"`
			CER   float64 `json:"cer"`
		} `json:"plates"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), stdout.String())
	require.Len(t, rep.Classes, 3)
	for _, name := range []string{"mobile", "seatbelt", "windshield"} {
		c, ok := rep.Classes[name]
		require.True(t, ok, name)
		require.NotNil(t, c.Precision)
		require.NotNil(t, c.Recall)
		require.NotNil(t, c.AP50)
		require.NotNil(t, c.N)
		assert.Greater(t, *c.N, 0, name)
		for _, v := range []float64{*c.Precision, *c.Recall, *c.AP50} {
			assert.True(t, v >= 0 && v <= 1, "%s: %v", name, v)
		}
	}
	assert.Equal(t, 49, *rep.Classes["windshield"].N)
	assert.Greater(t, *rep.Classes["windshield"].AP50, 0.5, "the windshield prior matches the labels")
	assert.Contains(t, rep.Classes["seatbelt"].Note, "no seatbelt model")
	require.NotNil(t, rep.Plates)
	assert.Equal(t, 30, rep.Plates.N)
	assert.True(t, rep.Plates.Exact >= 0.7 && rep.Plates.Exact <= 1, "exact %v", rep.Plates.Exact)
	assert.True(t, rep.Plates.CER >= 0 && rep.Plates.CER < 0.2, "cer %v", rep.Plates.CER)

	// The table form names every class; --misses lists exactly the plates not read exactly.
	cmd = offencecam(t, env, "eval", "--misses", "--data", t.TempDir(), "--plates", plates)
	stdout.Reset()
	stderr.Reset()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	assert.True(t, strings.Contains(stdout.String(), "exact") && strings.Contains(stdout.String(), "CER"), stdout.String())
	misses := regexp.MustCompile(`(?m)^offencecam eval: miss: \S+: label \S+, read .+$`).FindAllString(stderr.String(), -1)
	assert.Len(t, misses, rep.Plates.N-int(math.Round(rep.Plates.Exact*float64(rep.Plates.N))), stderr.String())
}

// `offencecam bench --json` reports the keys the issue names, with sane values.
func TestBenchJSON(t *testing.T) {
	env := modelEnv(t)
	img := testenv.SharedPath(t, "data", "plates", "wts-lg-000132.jpg")
	cmd := offencecam(t, env, "bench", "--json", "--data", t.TempDir(), "--duration", "1ms", "--frames", "4", "--sessions", "2", img)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	var rep struct {
		Frames          *float64           `json:"frames"`
		FramesPerSecond *float64           `json:"frames_per_second"`
		P50             *float64           `json:"p50_ms"`
		P99             *float64           `json:"p99_ms"`
		Overhead        *float64           `json:"overhead_ratio"`
		Model           float64            `json:"model_ms_per_frame"`
		Stages          map[string]float64 `json:"stages_ms_per_frame"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), stdout.String())
	for k, v := range map[string]*float64{"frames": rep.Frames, "frames_per_second": rep.FramesPerSecond,
		"p50_ms": rep.P50, "p99_ms": rep.P99, "overhead_ratio": rep.Overhead} {
		require.NotNil(t, v, "key %s", k)
	}
	assert.GreaterOrEqual(t, *rep.Frames, 4.0)
	assert.Greater(t, *rep.FramesPerSecond, 0.0)
	assert.LessOrEqual(t, *rep.P50, *rep.P99)
	// Pipeline time includes the model time.
	assert.GreaterOrEqual(t, *rep.Overhead, 1.0)
	// The stage breakdown says where it goes: decoding, and the stages that run models (each
	// at least its share of the model time).
	assert.Greater(t, rep.Stages["decode"], 0.0)
	assert.Greater(t, rep.Stages["scene"], 0.0)
	var stages float64
	for _, v := range rep.Stages {
		stages += v
	}
	assert.Greater(t, stages, rep.Model, "the stages hold the model time and more")
}

func TestAnalyzeUsage(t *testing.T) {
	cmd := offencecam(t, nil, "analyze")
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 2, ee.ExitCode(), string(b))
}
