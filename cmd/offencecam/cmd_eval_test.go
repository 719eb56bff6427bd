package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/models"
)

// occupantRows picks up to n rows of the shared roadside labels (the header kept), first
// those that bring a scored value not yet picked, and returns the file's text and the rows.
func occupantRows(t *testing.T, n int) (string, [][]string) {
	t.Helper()
	b := readFile(t, testenv.SharedPath(t, "data", "roadside-train", "labels.tsv"))
	need := map[string]bool{"yes": true, "no": true, "worn": true, "not_worn": true}
	var text strings.Builder
	var rows [][]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			text.WriteString(line + "\n")
			continue
		}
		f := strings.Split(line, "\t")
		if len(rows) < n && len(f) >= 3 && (need[f[1]] || need[f[2]]) {
			delete(need, f[1])
			delete(need, f[2])
			rows = append(rows, f)
			text.WriteString(line + "\n")
		}
	}
	require.Empty(t, need, "%d rows cannot hold every scored value", n)
	return text.String(), rows
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

// occupantJSON is the --json form of --occupants, keys as pointers so a missing one shows.
type occupantJSON struct {
	Occupants *struct {
		Phone      map[string]json.RawMessage `json:"phone"`
		Seatbelt   map[string]json.RawMessage `json:"seatbelt"`
		DriverCrop *struct {
			MeanIoU *float64 `json:"mean_iou"`
			IoUGE05 *float64 `json:"iou_ge_0_5"`
			N       *int     `json:"n"`
		} `json:"driver_crop"`
		Images   int  `json:"images"`
		NoDriver *int `json:"no_driver"`
		Folds    []struct {
			Fold    int    `json:"fold"`
			File    string `json:"file"`
			SHA256  string `json:"sha256"`
			Version string `json:"version"`
			Images  int    `json:"images"`
		} `json:"folds"`
		PerImage []struct {
			Stem  string `json:"stem"`
			Fold  *int   `json:"fold"`
			Model string `json:"model"`
		} `json:"per_image"`
	} `json:"occupants"`
}

func runEvalCmd(t *testing.T, env []string, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := offencecam(t, env, append([]string{"eval", "--data", t.TempDir()}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Run(), errb.String())
	return out.String(), errb.String()
}

func num[T any](t *testing.T, m map[string]json.RawMessage, key string) T {
	t.Helper()
	raw, ok := m[key]
	require.True(t, ok, "key %q missing from %v", key, m)
	var v T
	require.NoError(t, json.Unmarshal(raw, &v), "%s: %s", key, raw)
	return v
}

// `eval --occupants LABELS IMAGES_DIR --json --plot FILE` (flags after the arguments, as the
// issue writes it) prints the contract's keys with counts that add up, shows progress and
// writes a PNG; the text form is a table.
func TestEvalOccupantsCLI(t *testing.T) {
	env := modelEnv(t)
	text, rows := occupantRows(t, 6)
	labels := filepath.Join(t.TempDir(), "labels.tsv")
	require.NoError(t, os.WriteFile(labels, []byte(text), 0o644))
	images := testenv.SharedPath(t, "data", "roadside-train", "images")
	plot := filepath.Join(t.TempDir(), "pr.png")

	stdout, stderr := runEvalCmd(t, env, "--occupants", labels, images, "--json", "--plot", plot)
	assert.Contains(t, stderr, fmt.Sprintf("%d/%d images", len(rows), len(rows)))
	var rep occupantJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	o := rep.Occupants
	require.NotNil(t, o)
	assert.Equal(t, len(rows), o.Images)
	require.NotNil(t, o.NoDriver)
	phoneN, beltN := 0, 0
	for _, r := range rows {
		if r[1] == "yes" || r[1] == "no" {
			phoneN++
		}
		if r[2] == "worn" || r[2] == "not_worn" {
			beltN++
		}
	}
	for name, c := range map[string]struct {
		m map[string]json.RawMessage
		n int
	}{"phone": {o.Phone, phoneN}, "seatbelt": {o.Seatbelt, beltN}} {
		n := num[int](t, c.m, "n")
		assert.Equal(t, c.n, n, name)
		tn := num[int](t, c.m, "tn")
		assert.Equal(t, n, num[int](t, c.m, "tp")+num[int](t, c.m, "fp")+num[int](t, c.m, "fn")+tn, name)
		for _, k := range []string{"precision", "recall"} {
			v := num[float64](t, c.m, k)
			assert.True(t, v >= 0 && v <= 1, "%s %s %v", name, k, v)
		}
		p90 := num[*float64](t, c.m, "threshold_precision_0.9") // null when no threshold reaches it
		if p90 != nil {
			assert.True(t, *p90 > 0 && *p90 <= 1, "%s %v", name, *p90)
		}
	}
	require.NotNil(t, o.DriverCrop)
	require.NotNil(t, o.DriverCrop.MeanIoU)
	require.NotNil(t, o.DriverCrop.IoUGE05)
	require.NotNil(t, o.DriverCrop.N)
	assert.Equal(t, len(rows), *o.DriverCrop.N)
	assert.True(t, *o.DriverCrop.MeanIoU >= 0 && *o.DriverCrop.MeanIoU <= 1)
	assert.True(t, *o.DriverCrop.IoUGE05 >= 0 && *o.DriverCrop.IoUGE05 <= 1)
	assert.Len(t, o.PerImage, len(rows))
	png := readFile(t, plot)
	assert.True(t, bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")), "plot is not a PNG")

	stdout, _ = runEvalCmd(t, env, "--occupants", labels, images)
	for _, want := range []string{"phone held", "belt not worn", "threshold P>=0.9", "driver crop", "mean IoU"} {
		assert.Contains(t, stdout, want)
	}
}

// --folds judges each image with its fold's model; the report says which.
func TestEvalOccupantsFoldsCLI(t *testing.T) {
	env := modelEnv(t)
	text, rows := occupantRows(t, 4)
	dir := t.TempDir()
	labels := filepath.Join(dir, "labels.tsv")
	require.NoError(t, os.WriteFile(labels, []byte(text), 0o644))
	cat, err := models.Builtin()
	require.NoError(t, err)
	model := readFile(t, testenv.ModelFile(t, cat["occupant"].ModelFile().Name))
	folds := filepath.Join(dir, "run")
	require.NoError(t, os.Mkdir(folds, 0o755))
	var ft strings.Builder
	ft.WriteString("# stem\tfold\n")
	want := map[string]int{}
	for i, r := range rows {
		want[r[0]] = i % 2
		fmt.Fprintf(&ft, "%s\t%d\n", r[0], i%2)
	}
	require.NoError(t, os.WriteFile(filepath.Join(folds, "folds.tsv"), []byte(ft.String()), 0o644))
	for k := 0; k < 2; k++ {
		require.NoError(t, os.WriteFile(filepath.Join(folds, fmt.Sprintf("occupant-fold%d.onnx", k)), model, 0o644))
	}
	images := testenv.SharedPath(t, "data", "roadside-train", "images")

	stdout, _ := runEvalCmd(t, env, "--json", "--occupants", labels, "--folds", folds, images)
	var rep occupantJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	o := rep.Occupants
	require.NotNil(t, o)
	require.Len(t, o.Folds, 2)
	for k, f := range o.Folds {
		assert.Equal(t, k, f.Fold)
		assert.Equal(t, fmt.Sprintf("occupant-fold%d.onnx", k), f.File)
		assert.Equal(t, cat["occupant"].ModelFile().SHA256, f.SHA256, "a copy of the shipped model")
		assert.True(t, strings.HasSuffix(f.Version, fmt.Sprintf("+fold%d", k)), f.Version)
	}
	require.Len(t, o.PerImage, len(rows))
	for _, r := range o.PerImage {
		require.NotNil(t, r.Fold, r.Stem)
		assert.Equal(t, want[r.Stem], *r.Fold, r.Stem)
		assert.True(t, strings.HasSuffix(r.Model, fmt.Sprintf("+fold%d", want[r.Stem])), "%s: %s", r.Stem, r.Model)
	}
}

// Broken input is reported with where it is; misplaced flags are usage errors (exit 2).
func TestEvalOccupantsCLIErrors(t *testing.T) {
	env := modelEnv(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.tsv")
	require.NoError(t, os.WriteFile(bad, []byte("# stem\tphone\tbelt\na\tyes\tworn\nb\tperhaps\tworn\n"), 0o644))
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--occupants", bad, dir}, 1, "bad.tsv: line 3: phone \"perhaps\""},
		{[]string{"--plot", filepath.Join(dir, "x.png"), "--set", dir}, 2, "--folds and --plot go with --occupants"},
		{[]string{"--occupants", bad, dir, "other"}, 2, "one IMAGES_DIR"},
	} {
		cmd := offencecam(t, env, append([]string{"eval", "--data", t.TempDir()}, c.args...)...)
		b, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "%v: %s", c.args, b)
		assert.Equal(t, c.code, ee.ExitCode(), "%v: %s", c.args, b)
		assert.Contains(t, string(b), c.msg, "%v", c.args)
	}
}

// `eval --set` adds image-level figures for the largest vehicle's driver, next to the box
// figures.
func TestEvalSetImageLevelCLI(t *testing.T) {
	env := modelEnv(t)
	src := testenv.SharedPath(t, "data", "seatbelt-phone")
	set := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(set, "images"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(set, "labels"), 0o755))
	copyFile(t, filepath.Join(src, "data.yaml"), filepath.Join(set, "data.yaml"))
	imgs, err := filepath.Glob(filepath.Join(src, "images", "*.jpg"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(imgs), 6)
	phones, belts := 0, 0
	for _, p := range imgs[:6] {
		stem := strings.TrimSuffix(filepath.Base(p), ".jpg")
		copyFile(t, p, filepath.Join(set, "images", stem+".jpg"))
		lb := readFile(t, filepath.Join(src, "labels", stem+".txt"))
		require.NoError(t, os.WriteFile(filepath.Join(set, "labels", stem+".txt"), lb, 0o644))
		classes := map[string]bool{}
		for _, line := range strings.Split(string(lb), "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				classes[f[0]] = true
			}
		}
		if classes["0"] { // mobile
			phones++
		}
		if classes["1"] { // seatbelt
			belts++
		}
	}
	stdout, _ := runEvalCmd(t, env, "--json", "--set", set)
	var rep struct {
		Classes    map[string]json.RawMessage            `json:"classes"`
		ImageLevel map[string]map[string]json.RawMessage `json:"image_level"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	assert.Len(t, rep.Classes, 3, "the box figures stay")
	for name, positives := range map[string]int{"phone": phones, "seatbelt_worn": belts} {
		m, ok := rep.ImageLevel[name]
		require.True(t, ok, "image_level.%s missing: %s", name, stdout)
		n := num[int](t, m, "n")
		assert.Equal(t, 6, n, name)
		tp, fp, fn, tn := num[int](t, m, "tp"), num[int](t, m, "fp"), num[int](t, m, "fn"), num[int](t, m, "tn")
		assert.Equal(t, n, tp+fp+fn+tn, name)
		assert.Equal(t, positives, tp+fn, name)
		for _, k := range []string{"precision", "recall"} {
			v := num[float64](t, m, k)
			assert.True(t, v >= 0 && v <= 1, "%s %s %v", name, k, v)
		}
	}
	stdout, _ = runEvalCmd(t, env, "--set", set)
	assert.Contains(t, stdout, "seatbelt_worn")
	assert.Contains(t, stdout, "per image (largest vehicle)")
}
