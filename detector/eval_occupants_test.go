package detector

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocv.io/x/gocv"

	"github.com/crossborder/offencecam/detector/evalmetrics"
	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/models"
	"github.com/crossborder/offencecam/pipeline"
)

// occupantSample copies up to n labelled roadside frames (a spread of label combinations,
// every scored value at least once) into a fresh images directory, plus a blank frame in
// which no vehicle can be found, and returns their labels.
func occupantSample(t *testing.T, n int) ([]evalmetrics.OccupantLabel, string) {
	t.Helper()
	root := testenv.SharedPath(t, "data", "roadside-train")
	all, err := ReadOccupantLabels(filepath.Join(root, "labels.tsv"))
	require.NoError(t, err)
	// First rows that bring a scored value not yet in the sample, then new combinations.
	var out []evalmetrics.OccupantLabel
	need := map[string]bool{evalmetrics.PhoneYes: true, evalmetrics.PhoneNo: true, evalmetrics.BeltWorn: true, evalmetrics.BeltNotWorn: true}
	taken := map[string]bool{}
	for _, l := range all {
		if len(out) < n && (need[l.Phone] || need[l.Belt]) {
			delete(need, l.Phone)
			delete(need, l.Belt)
			out, taken[l.Stem] = append(out, l), true
		}
	}
	require.Empty(t, need, "a sample of %d frames cannot hold every scored label value", n)
	combos := map[string]bool{}
	for _, l := range out {
		combos[l.Phone+"/"+l.Belt] = true
	}
	for _, l := range all {
		if k := l.Phone + "/" + l.Belt; len(out) < n && !taken[l.Stem] && !combos[k] {
			combos[k] = true
			out = append(out, l)
		}
	}
	dir := t.TempDir()
	for _, l := range out {
		b := readFile(t, filepath.Join(root, "images", l.Stem+".jpg"))
		require.NoError(t, os.WriteFile(filepath.Join(dir, l.Stem+".jpg"), b, 0o644))
	}
	writeBlank(t, filepath.Join(dir, "blank.png"))
	blank := evalmetrics.OccupantLabel{Stem: "blank", Phone: evalmetrics.PhoneNo, Belt: evalmetrics.BeltWorn,
		Crop: evalmetrics.Box{X: 300, Y: 150, W: 250, H: 250}, HasCrop: true}
	return append(out, blank), dir
}

func writeBlank(t *testing.T, p string) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 640, 640))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	f, err := os.Create(p)
	require.NoError(t, err)
	require.NoError(t, png.Encode(f, img))
	require.NoError(t, f.Close())
}

// scoredCounts are the number of scored labels and of positives for phone and belt.
func scoredCounts(labels []evalmetrics.OccupantLabel) (phoneN, phonePos, beltN, beltPos int) {
	for _, l := range labels {
		if pos, ok := l.PhonePositive(); ok {
			phoneN++
			if pos {
				phonePos++
			}
		}
		if pos, ok := l.BeltPositive(); ok {
			beltN++
			if pos {
				beltPos++
			}
		}
	}
	return
}

// The occupant eval on real frames through the real graph: the counts add up, the figures
// are at the graph's thresholds, each image's flag agrees with its gated score, and an image
// without a vehicle is a predicted negative counted as no_driver. Accuracy is not asserted:
// the model is retrained.
func TestEvalOccupantsOnRoadsideFrames(t *testing.T) {
	g := sharedDefaultGraph(t)
	labels, dir := occupantSample(t, 10)
	var calls [][2]int
	ev, err := g.EvalOccupants(context.Background(), labels, dir, func(done, total int) { calls = append(calls, [2]int{done, total}) })
	require.NoError(t, err)
	assert.Empty(t, ev.Errors)
	assert.Equal(t, len(labels), ev.Images)
	require.Len(t, ev.PerImage, len(labels))
	require.NotEmpty(t, calls)
	assert.Equal(t, [2]int{len(labels), len(labels)}, calls[len(calls)-1])

	phoneN, phonePos, beltN, beltPos := scoredCounts(labels)
	for _, c := range []struct {
		name   string
		e      OffenceEval
		n, pos int
		thr    float64
		gate   float64
	}{
		{"phone", ev.Phone, phoneN, phonePos, max(g.phoneThr, g.offenceThr[pipeline.OffencePhone]), g.phoneGate},
		{"seatbelt", ev.Seatbelt, beltN, beltPos, max(g.seatbeltThr, g.offenceThr[pipeline.OffenceSeatbelt]), g.seatbeltGate},
	} {
		assert.Equal(t, c.n, c.e.N, c.name)
		assert.Equal(t, c.n, c.e.TP+c.e.FP+c.e.FN+c.e.TN, c.name)
		assert.Equal(t, c.pos, c.e.TP+c.e.FN, c.name)
		assert.Equal(t, c.thr, c.e.Threshold, c.name)
		assert.Equal(t, c.gate, c.e.Gate, c.name)
		for _, v := range []float64{c.e.Precision, c.e.Recall, c.e.AP} {
			assert.True(t, v >= 0 && v <= 1, "%s: %v", c.name, v)
		}
		if c.e.ThresholdP90 != nil {
			require.NotNil(t, c.e.AtP90)
			assert.Equal(t, *c.e.ThresholdP90, c.e.AtP90.Threshold)
			assert.GreaterOrEqual(t, c.e.AtP90.Precision, MinPrecision, c.name)
		}
	}

	assert.GreaterOrEqual(t, ev.NoDriver, 1, "the blank frame has no driver")
	assert.GreaterOrEqual(t, ev.Phone.NoDriver, 1)
	assert.Equal(t, len(labels), ev.DriverCrop.N, "every label has a crop")
	assert.True(t, ev.DriverCrop.MeanIoU >= 0 && ev.DriverCrop.MeanIoU <= 1, "%v", ev.DriverCrop.MeanIoU)
	assert.True(t, ev.DriverCrop.IoUGE05 >= 0 && ev.DriverCrop.IoUGE05 <= 1, "%v", ev.DriverCrop.IoUGE05)

	model := ModelOccupant + "@" + g.occupant.m.Version
	for _, r := range ev.PerImage {
		assert.Equal(t, model, r.Model, r.Stem)
		assert.Nil(t, r.Fold, r.Stem)
		require.NotNil(t, r.DriverIoU, r.Stem)
		if r.Stem == "blank" {
			assert.False(t, r.Driver)
			assert.False(t, r.PhoneFlagged || r.BeltFlagged)
			assert.Zero(t, *r.DriverIoU)
			continue
		}
		// The offence is the gated score against the operating threshold (the offence
		// check rounds the score to 3 decimals).
		for _, c := range []struct {
			flagged    bool
			score, thr float64
			what       string
		}{{r.PhoneFlagged, r.PhoneScore, ev.Phone.Threshold, "phone"}, {r.BeltFlagged, r.BeltScore, ev.Seatbelt.Threshold, "belt"}} {
			if c.flagged {
				assert.GreaterOrEqual(t, c.score, c.thr-0.0005, "%s %s", r.Stem, c.what)
			} else if r.Driver {
				assert.Less(t, c.score, c.thr+0.0005, "%s %s", r.Stem, c.what)
			}
		}
	}

	// The plot is a PNG of the promised size.
	b, err := PlotOccupantPR(ev)
	require.NoError(t, err)
	img, err := gocv.IMDecode(b, gocv.IMReadColor)
	require.NoError(t, err)
	defer img.Close()
	assert.Equal(t, []int{720, 1060}, []int{img.Rows(), img.Cols()})
}

func TestEvalOccupantsRefusals(t *testing.T) {
	g := sharedDefaultGraph(t)
	labels, dir := occupantSample(t, 4)
	missing := append(labels, evalmetrics.OccupantLabel{Stem: "not-there", Phone: "no", Belt: "worn"})
	_, err := g.EvalOccupants(context.Background(), missing, dir, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "1 labelled images not found")
	assert.Contains(t, err.Error(), "not-there")

	// Detectors for both roles: nothing for this eval to score.
	cfg := DefaultConfig()
	cfg.Models.Phone, cfg.Models.Seatbelt = "", ""
	_, err = newTestGraph(t, cfg).EvalOccupants(context.Background(), labels, dir, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "occupant classifier")
}

// writeFolds makes a folds directory: folds.tsv for the labels (fold of label i: folds[i])
// and a copy of the cached occupant model per fold.
func writeFolds(t *testing.T, labels []evalmetrics.OccupantLabel, folds []int) (string, string) {
	t.Helper()
	cat, err := models.Builtin()
	require.NoError(t, err)
	src := testenv.ModelFile(t, cat[ModelOccupant].ModelFile().Name)
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("# stem\tfold\nunlabelled-frame\t0\n")
	for i, l := range labels {
		fmt.Fprintf(&b, "%s\t%d\n", l.Stem, folds[i])
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, FoldsFile), []byte(b.String()), 0o644))
	model := readFile(t, src)
	for _, k := range folds {
		require.NoError(t, os.WriteFile(filepath.Join(dir, FoldModelName(k)), model, 0o644))
	}
	return dir, src
}

// --folds judges each image with its fold's model: the per-image model names the fold, the
// fold list has each file's sha256, a broken fold file fails that fold, and the shared
// model cache is left as it was.
func TestEvalOccupantFolds(t *testing.T) {
	g := sharedDefaultGraph(t)
	labels, dir := occupantSample(t, 4)
	folds := []int{2, 0, 2, 0, 2}
	require.Len(t, labels, len(folds))
	foldsDir, src := writeFolds(t, labels, folds)
	sum, _, err := fileSHA256(src)
	require.NoError(t, err)
	cacheBefore, err := os.ReadDir(testenv.ModelCache())
	require.NoError(t, err)

	ev, err := EvalOccupantFolds(context.Background(), DefaultConfig(), testenv.ModelCache(), labels, dir, foldsDir, nil)
	require.NoError(t, err)
	assert.Empty(t, ev.Errors)
	assert.Empty(t, ev.FoldsManifest)
	assert.Equal(t, len(labels), ev.Images)
	version := g.occupant.m.Version
	require.Len(t, ev.Folds, 2)
	for i, k := range []int{0, 2} {
		f := ev.Folds[i]
		assert.Equal(t, k, f.Fold)
		assert.Equal(t, FoldModelName(k), f.File)
		assert.Equal(t, sum, f.SHA256)
		assert.Equal(t, fmt.Sprintf("%s+fold%d", version, k), f.Version)
		assert.Equal(t, map[int]int{0: 2, 2: 3}[k], f.Images)
	}
	want := map[string]int{}
	for i, l := range labels {
		want[l.Stem] = folds[i]
	}
	// The same weights as the shipped model: the same scores as the plain eval.
	plain, err := g.EvalOccupants(context.Background(), labels, dir, nil)
	require.NoError(t, err)
	plainBy := map[string]OccupantImage{}
	for _, r := range plain.PerImage {
		plainBy[r.Stem] = r
	}
	require.Len(t, ev.PerImage, len(labels))
	for _, r := range ev.PerImage {
		require.NotNil(t, r.Fold, r.Stem)
		assert.Equal(t, want[r.Stem], *r.Fold, r.Stem)
		assert.Equal(t, fmt.Sprintf("%s@%s+fold%d", ModelOccupant, version, want[r.Stem]), r.Model, r.Stem)
		p := plainBy[r.Stem]
		assert.InDelta(t, p.PhoneScore, r.PhoneScore, 1e-6, r.Stem)
		assert.InDelta(t, p.BeltScore, r.BeltScore, 1e-6, r.Stem)
		assert.Equal(t, p.Driver, r.Driver, r.Stem)
	}
	assert.Equal(t, plain.Phone.BinaryMetrics, ev.Phone.BinaryMetrics)
	assert.Equal(t, plain.Seatbelt.BinaryMetrics, ev.Seatbelt.BinaryMetrics)
	cacheAfter, err := os.ReadDir(testenv.ModelCache())
	require.NoError(t, err)
	assert.Equal(t, len(cacheBefore), len(cacheAfter), "fold models stay out of the shared cache")

	// A training run's own manifest beside its fold models gives their version, input and
	// crop; the thresholds stay the shipped ones.
	y, err := models.BuiltinFile(ModelOccupant + ".yaml")
	require.NoError(t, err)
	run := strings.Replace(string(y), `version: "`+version+`"`, `version: "run7"`, 1)
	withVersion := run
	run = regexp.MustCompile(`\bphone: [0-9.]+`).ReplaceAllString(run, "phone: 0.0123")
	require.NotEqual(t, string(y), withVersion, "the version line moved: update this test")
	require.NotEqual(t, withVersion, run, "the phone threshold moved: update this test")
	require.NoError(t, os.WriteFile(filepath.Join(foldsDir, ModelOccupant+".yaml"), []byte(run), 0o644))
	withRun, err := EvalOccupantFolds(context.Background(), DefaultConfig(), testenv.ModelCache(), labels, dir, foldsDir, nil)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(foldsDir, ModelOccupant+".yaml"), withRun.FoldsManifest)
	assert.Equal(t, ev.Phone.Threshold, withRun.Phone.Threshold)
	assert.Equal(t, ev.Seatbelt.Gate, withRun.Seatbelt.Gate)
	for _, r := range withRun.PerImage {
		assert.Equal(t, fmt.Sprintf("%s@run7+fold%d", ModelOccupant, want[r.Stem]), r.Model, r.Stem)
	}
	require.NoError(t, os.Remove(filepath.Join(foldsDir, ModelOccupant+".yaml")))

	// The graph of fold 2 loads fold 2's file: a broken one fails that fold.
	require.NoError(t, os.WriteFile(filepath.Join(foldsDir, FoldModelName(2)), []byte("not a model"), 0o644))
	_, err = EvalOccupantFolds(context.Background(), DefaultConfig(), testenv.ModelCache(), labels, dir, foldsDir, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "fold 2")

	// Every labelled image needs a fold.
	extra := append(labels, evalmetrics.OccupantLabel{Stem: "no-fold", Phone: "no", Belt: "worn"})
	_, err = EvalOccupantFolds(context.Background(), DefaultConfig(), testenv.ModelCache(), extra, dir, foldsDir, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no-fold")
	assert.Contains(t, err.Error(), "no fold")
}

// Image-level outcomes of a YOLO set image: labelled by the image's boxes, predicted from
// the largest vehicle (vehicle 0) only.
func TestImageOutcomes(t *testing.T) {
	g := &Graph{offenceThr: map[string]float64{pipeline.OffencePhone: 0.5, pipeline.OffenceSeatbelt: 0.5}}
	names := []string{"mobile", "seatbelt", "windshield"}
	phoneBox := evalmetrics.Label{Class: 0}
	beltBox := evalmetrics.Label{Class: 1}
	veh := func(phone, belt string, score float64) pipeline.Vehicle {
		return pipeline.Vehicle{Phone: pipeline.Finding{State: phone, Score: score}, Seatbelt: pipeline.Finding{State: belt, Score: score}}
	}
	for name, c := range map[string]struct {
		labels []evalmetrics.Label
		vehs   []pipeline.Vehicle
		want   map[string]evalmetrics.Outcome
	}{
		"phone held and belt worn by the main driver": {
			[]evalmetrics.Label{phoneBox, beltBox}, []pipeline.Vehicle{veh(pipeline.PhoneHeld, pipeline.SeatbeltWorn, 0.9)},
			map[string]evalmetrics.Outcome{ImagePhone: {Positive: true, Predicted: true}, ImageSeatbeltWorn: {Positive: true, Predicted: true}},
		},
		"a phone under the offence threshold is not flagged": {
			nil, []pipeline.Vehicle{veh(pipeline.PhoneHeld, pipeline.SeatbeltNotWorn, 0.4)},
			map[string]evalmetrics.Outcome{ImagePhone: {}, ImageSeatbeltWorn: {}},
		},
		"another vehicle's phone is not the main driver's": {
			[]evalmetrics.Label{phoneBox}, []pipeline.Vehicle{veh(pipeline.PhoneNone, pipeline.StateUnknown, 0.9), veh(pipeline.PhoneHeld, pipeline.SeatbeltWorn, 0.9)},
			map[string]evalmetrics.Outcome{ImagePhone: {Positive: true}, ImageSeatbeltWorn: {}},
		},
		"no vehicle predicts nothing": {
			[]evalmetrics.Label{beltBox}, nil,
			map[string]evalmetrics.Outcome{ImagePhone: {}, ImageSeatbeltWorn: {Positive: true}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			got := g.imageOutcomes(names, c.labels, pipeline.Detection{Vehicles: c.vehs})
			assert.Equal(t, c.want, got)
		})
	}
	// A set without a phone class has no phone figure.
	got := g.imageOutcomes([]string{"windshield", "seatbelt"}, []evalmetrics.Label{{Class: 5}}, pipeline.Detection{})
	assert.Equal(t, map[string]evalmetrics.Outcome{ImageSeatbeltWorn: {}}, got)
}
