package detector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crossborder/offencecam/detector/imgproc"
	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/models"
	"github.com/crossborder/offencecam/pipeline"
)

func TestGatedFinding(t *testing.T) {
	box := imgproc.Box{X1: 1, Y1: 2, X2: 11, Y2: 22}
	for name, tc := range map[string]struct {
		prob, vis, gate, thr float64
		state                string
		score                float64
	}{
		"below the gate is unknown, however sure": {prob: 0.99, vis: 0.2, gate: 0.3, thr: 0.5, state: pipeline.StateUnknown, score: 0.99},
		"at the gate and threshold is held":       {prob: 0.5, vis: 0.3, gate: 0.3, thr: 0.5, state: pipeline.PhoneHeld, score: 0.5},
		"visible and under threshold is none":     {prob: 0.1, vis: 0.9, gate: 0.3, thr: 0.5, state: pipeline.PhoneNone, score: 0.9},
		"no gate judges every crop":               {prob: 0.7, vis: 0, gate: 0, thr: 0.5, state: pipeline.PhoneHeld, score: 0.7},
	} {
		t.Run(name, func(t *testing.T) {
			f := gatedFinding(tc.prob, tc.vis, tc.gate, tc.thr, pipeline.PhoneHeld, pipeline.PhoneNone, "front", box)
			assert.Equal(t, tc.state, f.State)
			assert.InDelta(t, tc.score, f.Score, 1e-9)
			require.NotNil(t, f.Box)
			assert.Equal(t, pipeline.Box{X: 1, Y: 2, W: 10, H: 20}, *f.Box)
		})
	}
}

func TestSeatBoxMirrorsForTheLeftSeat(t *testing.T) {
	ws := imgproc.Box{X1: 100, Y1: 100, X2: 300, Y2: 200}
	r := Region{X: 0.4, Y: -0.05, W: 0.65, H: 1.25}
	right := seatBox(ws, r, true)
	left := seatBox(ws, r, false)
	assert.InDelta(t, 180, right.X1, 1e-9)
	assert.InDelta(t, 310, right.X2, 1e-9)
	assert.InDelta(t, 95, right.Y1, 1e-9)
	assert.InDelta(t, 220, right.Y2, 1e-9)
	// The mirror image about the windshield's centre line.
	assert.InDelta(t, 400-right.X2, left.X1, 1e-9)
	assert.InDelta(t, 400-right.X1, left.X2, 1e-9)
	assert.Equal(t, right.Y1, left.Y1)
}

// The shipped occupant model serves both roles from one session, and every judged state
// agrees with the scores, gates and thresholds it reports.
func TestOccupantClassifierOnRoadsideFrames(t *testing.T) {
	g := sharedDefaultGraph(t)
	require.NotNil(t, g.occupant, "the default graph has an occupant classifier")
	sessions := 0
	for _, md := range g.all {
		if md.m.Name == ModelOccupant {
			sessions++
		}
	}
	assert.Equal(t, 1, sessions, "one session serves the phone and seatbelt roles")
	roles := map[string]bool{}
	for _, r := range g.Models() {
		if r.Name == ModelOccupant {
			roles[r.Role] = true
		}
	}
	assert.Equal(t, map[string]bool{RolePhone: true, RoleSeatbelt: true}, roles)

	files := sharedImages(t, "data", "seatbelt-phone", "images")
	seen := 0
	for _, f := range files[:min(8, len(files))] {
		res, details, err := g.AnalyzeDetailed(context.Background(), []View{{Data: readFile(t, f)}}, AnalyzeOptions{NoRender: true})
		require.NoError(t, err, f)
		require.Len(t, details, 1)
		for _, o := range details[0].Occupants {
			seen++
			for _, p := range []float64{o.Phone, o.PhoneVisible, o.NoSeatbelt, o.SeatbeltVisible} {
				assert.True(t, p >= 0 && p <= 1, "%s: probability %v", f, p)
			}
			veh := res.Detection.Vehicles[o.Vehicle]
			if o.Seat == SeatDriver {
				want := gatedFinding(o.Phone, o.PhoneVisible, g.phoneGate, g.phoneThr, pipeline.PhoneHeld, pipeline.PhoneNone, "", imgproc.Box{})
				assert.Equal(t, want.State, veh.Phone.State, f)
				want = gatedFinding(o.NoSeatbelt, o.SeatbeltVisible, g.seatbeltGate, g.seatbeltThr, pipeline.SeatbeltNotWorn, pipeline.SeatbeltWorn, "", imgproc.Box{})
				assert.Equal(t, want.State, veh.Seatbelt.State, f)
				require.NotNil(t, veh.Driver)
				assert.Equal(t, o.Box, *veh.Driver, "the judged crop is the vehicle's driver box")
			} else {
				require.NotNil(t, veh.PassengerSeatbelt, f)
			}
		}
		flagged := false
		for _, v := range res.Detection.Vehicles {
			flagged = flagged || len(g.vehicleOffences(v)) > 0
		}
		assert.Equal(t, flagged, res.Detection.Flagged, f)
	}
	assert.NotZero(t, seen, "the classifier judged no seat on %d roadside frames", min(8, len(files)))
}

// The training recipe runs end to end at smoke size (a handful of images, one epoch): train,
// cross-validate, export ONNX, write the manifest; the Go detector loads the result and
// analyses a frame with it. This keeps training/ from rotting.
func TestTrainingRecipeSmoke(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch, torchvision, onnx, cv2, numpy").Run(); err != nil {
		testenv.Missing(t, "Debian's python3-torch, python3-torchvision, python3-onnx, python3-opencv (%v)", err)
	}
	data := testenv.SharedPath(t, "data", "roadside-train")
	base := testenv.ModelFile(t, "yolox_nano.onnx")
	out := t.TempDir()
	cmd := exec.Command(py, filepath.Join(testenv.RepoRoot(), "training", "occupant", "train.py"),
		"--smoke", "16", "--data", data, "--base", base, "--out", out, "--threads", "1")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	for _, f := range []string{"occupant-v1.onnx", "occupant.yaml", "metrics.json", "oof.tsv", "folds.tsv", "occupant-fold0.onnx"} {
		assert.FileExists(t, filepath.Join(out, f))
	}

	// The manifest the recipe wrote, pointing at the model it exported, in a cache of its own
	// beside the other models.
	mb, err := os.ReadFile(filepath.Join(out, "occupant.yaml"))
	require.NoError(t, err)
	m, err := models.Parse(mb)
	require.NoError(t, err)
	onnx, err := os.ReadFile(filepath.Join(out, "occupant-v1.onnx"))
	require.NoError(t, err)
	sum := sha256.Sum256(onnx)
	require.Equal(t, hex.EncodeToString(sum[:]), m.ModelFile().SHA256, "the manifest names the exported file's sha256")
	cat, err := models.Builtin()
	require.NoError(t, err)
	cat[ModelOccupant] = m
	cache := t.TempDir()
	require.NoError(t, os.Symlink(testenv.ModelFile(t, "yolox_nano.onnx"), filepath.Join(cache, "yolox_nano.onnx")))
	require.NoError(t, os.WriteFile(filepath.Join(cache, m.ModelFile().Name), onnx, 0o600))
	cfg := DefaultConfig()
	cfg.Models.PlateDetector, cfg.Models.PlateReader, cfg.Models.Face = "", "", ""
	g, err := New(cfg, cache, WithCatalog(cat), WithLibrary(testenv.ModelFile(t, "libonnxruntime.so.1")))
	require.NoError(t, err)
	defer g.Close()
	img := sharedImages(t, "data", "seatbelt-phone", "images")[0]
	_, details, err := g.AnalyzeDetailed(context.Background(), []View{{Data: readFile(t, img)}}, AnalyzeOptions{NoRender: true})
	require.NoError(t, err)
	require.Len(t, details, 1)
	assert.NotEmpty(t, details[0].Occupants, "the freshly trained model judged the driver of %s", img)
}

// With judge_passenger the passenger's crop (the mirror image of the driver's) is judged
// too and its belt reported on the vehicle; only with passenger_seatbelt_offence can it flag.
func TestOccupantPassenger(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Models.PlateDetector, cfg.Models.PlateReader, cfg.Models.Face = "", "", ""
	cfg.JudgePassenger = true
	g := newTestGraph(t, cfg)
	img := sharedImages(t, "data", "seatbelt-phone", "images")[0]
	res, details, err := g.AnalyzeDetailed(context.Background(), []View{{Data: readFile(t, img)}}, AnalyzeOptions{NoRender: true})
	require.NoError(t, err)
	var seats []string
	for _, o := range details[0].Occupants {
		if o.Vehicle == 0 {
			seats = append(seats, o.Seat)
		}
	}
	require.Equal(t, []string{SeatDriver, SeatPassenger}, seats)
	veh := res.Detection.Vehicles[0]
	require.NotNil(t, veh.PassengerSeatbelt)
	require.NotNil(t, veh.Passenger)
	assert.Equal(t, *veh.Passenger, *veh.PassengerSeatbelt.Box)
	// Front view, left-hand drive: the driver on the image's right, the passenger on its left.
	assert.Greater(t, veh.Driver.X, veh.Passenger.X)

	// A passenger without a belt flags only when the configuration fines it.
	unbelted := veh
	unbelted.Seatbelt = pipeline.Finding{State: pipeline.SeatbeltWorn}
	unbelted.PassengerSeatbelt = &pipeline.Finding{State: pipeline.SeatbeltNotWorn, Score: 1}
	assert.Empty(t, g.vehicleOffences(unbelted))
	g.cfg.PassengerSeatbeltOffence = true
	assert.Equal(t, []pipeline.Offence{{Kind: pipeline.OffenceSeatbelt, Score: 1}}, g.vehicleOffences(unbelted))
}
